"""Graders, specs and a DataProto builder for the VERL/TRL adapter tests (importable: picklable)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from rlreward.schema import GraderError

WORD = re.compile(r"\w+")


def exact_match(response: str, reference_response: str) -> float:
    """1.0 when the response contains the reference answer (case-insensitive)."""
    return float(reference_response.strip().lower() in response.lower())


def brevity(response: str) -> float:
    """1.0 for an empty response, falling to 0 at 50 words."""
    return max(0.0, 1.0 - len(WORD.findall(response)) / 50)


def mentions_query(query: str, response: str) -> float:
    """Share of the query's words (len > 3) that the response repeats."""
    q = {w.lower() for w in WORD.findall(query) if len(w) > 3}
    if not q:
        return 1.0
    return len(q & {w.lower() for w in WORD.findall(response)}) / len(q)


def toxicity(response: str) -> float:
    """A lower-is-better score on [0, 10]: 10 points per 'bad'."""
    return min(10.0, 10.0 * response.lower().count("bad"))


def flaky(response: str) -> Any:
    """Fails (a GraderError value) when the response contains "fail" (any case)."""
    if "fail" in response.lower():
        return GraderError("flaky", "the judge refused")
    return 1.0


async def slow_judge(response: str) -> float:
    """An async 'judge' that takes 50 ms."""
    await asyncio.sleep(0.05)
    return 0.5


IN_FLIGHT = {"now": 0, "max": 0, "calls": 0}


async def counting_judge(response: str) -> float:
    """Records how many calls are in flight at once (IN_FLIGHT) and takes 10 ms."""
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["calls"] += 1
    IN_FLIGHT["max"] = max(IN_FLIGHT["max"], IN_FLIGHT["now"])
    try:
        await asyncio.sleep(0.01)
    finally:
        IN_FLIGHT["now"] -= 1
    return 1.0


async def quick_judge(response: str) -> float:
    """The same judge with no latency."""
    return 0.5


def sync_slow_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None
) -> float:
    """A synchronous VERL compute_score taking 50 ms (the baseline the adapters are compared with)."""
    import time

    time.sleep(0.05)
    return 0.5


def spec_dict(
    *, on_error: str = "renormalize", concurrency: int = 64, weigh_flaky: bool = False
) -> dict[str, Any]:
    """Three rule graders + one that fails on "fail", a weighted-sum reward (match 2, others 1)."""
    h = "tests.integrations.adapter_helpers"
    weights = {"match": 2, "brevity": 1, "tox": 1, **({"flaky": 1} if weigh_flaky else {})}
    return {
        "graders": {
            "match": {"callable": f"{h}:exact_match"},
            "brevity": {"callable": f"{h}:brevity"},
            "tox": {"callable": f"{h}:toxicity", "score_range": [0, 10], "higher_is_better": False},
            "flaky": {"callable": f"{h}:flaky"},
        },
        "aggregators": [
            {"type": "weighted_sum", "name": "reward", "weights": weights, "on_error": on_error},
        ],
        "runner": {"max_concurrency": concurrency},
    }


def judge_spec_dict(judge: str = "slow_judge", concurrency: int = 128) -> dict[str, Any]:
    h = "tests.integrations.adapter_helpers"
    return {
        "graders": {"judge": {"callable": f"{h}:{judge}"}},
        "aggregators": [{"type": "weighted_sum", "name": "reward"}],
        "runner": {"max_concurrency": concurrency},
    }


def tokenizer() -> Any:
    """The embedded MiniLM tokenizer (offline), with an EOS and a chat template set."""
    from transformers import AutoTokenizer

    from rlreward.embedded import embedded_model_path

    tok = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    tok.eos_token = "[SEP]"
    tok.model_input_names = [
        "input_ids",
        "attention_mask",
    ]  # no BERT token_type_ids for a causal LM
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return tok


def make_dataproto(
    tok: Any, samples: list[dict[str, Any]], prompt_len: int = 24, response_len: int = 24
) -> Any:
    """A real verl DataProto: left-padded prompts, right-padded responses, one attention mask.

    Each sample: ``prompt``, ``response``, ``ground_truth``, optional ``extra_info`` and
    ``data_source``.
    """
    import numpy as np
    import torch
    from verl import DataProto

    pad = tok.pad_token_id
    prompts, responses, masks = [], [], []
    for s in samples:
        p = tok.encode(s["prompt"], add_special_tokens=False)[-prompt_len:]
        body = tok.encode(s["response"], add_special_tokens=False)[: response_len - 1]
        r = [*body, tok.sep_token_id]
        prompts.append([pad] * (prompt_len - len(p)) + p)
        responses.append(r + [pad] * (response_len - len(r)))
        masks.append(
            [0] * (prompt_len - len(p))
            + [1] * len(p)
            + [1] * len(r)
            + [0] * (response_len - len(r))
        )
    prompts_t, responses_t = torch.tensor(prompts), torch.tensor(responses)
    attention = torch.tensor(masks)
    position = torch.clip(torch.cumsum(attention, dim=-1) - 1, min=0)
    n = len(samples)
    obj = np.empty(n, dtype=object)
    tensors = {
        "prompts": prompts_t,
        "responses": responses_t,
        "input_ids": torch.cat([prompts_t, responses_t], dim=-1),
        "attention_mask": attention,
        "position_ids": position,
    }
    reward_model, extra_info = obj.copy(), obj.copy()
    for i, s in enumerate(samples):
        reward_model[i] = {"ground_truth": s["ground_truth"], "style": "rule"}
        extra_info[i] = dict(s.get("extra_info", {}))
    non_tensors = {
        "data_source": np.array([s.get("data_source", "unit") for s in samples], dtype=object),
        "reward_model": reward_model,
        "extra_info": extra_info,
    }
    return DataProto.from_dict(tensors=tensors, non_tensors=non_tensors)


def valid_response_lengths(data: Any) -> list[int]:
    prompt_len = data.batch["prompts"].shape[-1]
    return data.batch["attention_mask"][:, prompt_len:].sum(-1).tolist()


def verl_config(
    tokenizer_path: str, spec_path: str, *, manager: str = "naive", custom_fn: bool = True
) -> Any:
    """The part of VERL's trainer config that its RewardLoopWorker reads."""
    from omegaconf import OmegaConf

    reward: dict[str, Any] = {
        "num_workers": 1,
        "custom_reward_function": {"path": None, "name": "compute_score"},
        "reward_manager": {
            "source": "register",
            "name": "naive",
            "module": {"path": None, "name": None},
        },
        "reward_model": {"enable": False, "model_path": None},
        "sandbox_fusion": {"url": None},
    }
    if custom_fn:
        reward["custom_reward_function"] = {
            "path": "pkg://rlreward.integrations.verl",
            "name": "compute_score",
            "reward_kwargs": {"spec": spec_path},
        }
    if manager != "naive":
        reward["reward_manager"] = {
            "source": "importlib",
            "name": manager,
            "module": {"path": "pkg://rlreward.integrations.verl", "name": None},
        }
        reward["reward_kwargs"] = {"spec": spec_path}
    return OmegaConf.create(
        {
            "actor_rollout_ref": {
                "model": {"path": tokenizer_path, "tokenizer_path": tokenizer_path}
            },
            "reward": reward,
        }
    )


def min_reward(results: dict[str, Any]) -> float:
    """A custom aggregator: the lowest successful grader score."""
    return min(r.score for r in results.values() if r.ok)


# --- trl ---
# The rewards the TRL tests train on (module-level, so they pickle into a spawned child).
# Which texts fail or abstain is decided by the text (crc32), so a batch of generations
# mixes scored, failed and abstaining rows.


def _crc(response: str, salt: str = "") -> int:
    import zlib

    return zlib.crc32((salt + response).encode())


def by_length(response: str) -> float:
    """An unbounded raw score (the text's length in characters): needs ``bounds``."""
    return float(len(response))


def refuses_some(response: str) -> float:
    """A judge that refuses (fails) on about a third of the texts."""
    if _crc(response) % 3 == 0:
        raise RuntimeError("the judge refused")
    return (_crc(response) % 97) / 96


def abstains_some(response: str) -> Any:
    """A grader that does not apply to about a third of the texts (a GraderAbstention)."""
    from rlreward.schema import GraderAbstention

    if _crc(response, "a") % 3 == 0:
        return GraderAbstention("abstains", "no verdict for this kind of text")
    return (_crc(response, "a") % 89) / 88


def lowest(results: dict[str, Any]) -> Any:
    """A callable aggregator: the lowest score on [0, 1] among the graders that scored."""
    from rlreward.schema import GraderError, GraderScore

    scores = [r.score for r in results.values() if isinstance(r, GraderScore)]
    return min(scores) if scores else GraderError("lowest", "no grader scored")


lowest.score_range = (0.0, 1.0)  # type: ignore[attr-defined]

#: The rewards of the "Done when" matrix (issue 18): name -> builder below.
TRL_CASES = ("zero_bounds", "callable", "two_aggregators", "nested", "abstaining", "failing")


def trl_reward(case: str) -> Any:
    """A Reward for one case of TRL_CASES; every one carries a monitor (``words``)."""
    from rlreward import FunctionGrader, WeightedSumAggregator
    from rlreward.reward import Reward

    def g(fn: Any, **kw: Any) -> Any:
        return FunctionGrader(fn, name=fn.__name__, run_in_thread=False, **kw)

    monitors = {"words": g(brevity)}
    judge = {"brevity": g(brevity), "judge": g(refuses_some)}
    if case == "zero_bounds":
        graders = {**judge, "length": g(by_length, score_range=None, higher_is_better=False)}
        agg = WeightedSumAggregator(
            "reward",
            weights={"brevity": 2, "judge": 1, "length": 1},
            on_error="zero",
            bounds={"length": (0, 40)},
        )
        return Reward(graders, agg, monitors=monitors)
    if case == "callable":
        return Reward(judge, lowest, monitors=monitors)
    if case == "two_aggregators":
        first = WeightedSumAggregator("first", on_error="zero")
        second = WeightedSumAggregator(
            "second", weights={"brevity": 1, "judge": 3}, on_error="zero"
        )
        return Reward(judge, [first, second], monitors=monitors, reward="second")
    if case == "nested":
        inner = Reward(judge, WeightedSumAggregator("inner", on_error="zero"))
        tox = g(toxicity, score_range=(0, 10), higher_is_better=False)
        agg = WeightedSumAggregator("reward", weights={"inner": 3, "tox": 1}, on_error="zero")
        return Reward({"inner": inner, "tox": tox}, agg, monitors=monitors)
    if case == "abstaining":
        graders = {"brevity": g(brevity), "abstains": g(abstains_some)}
        return Reward(
            graders,
            WeightedSumAggregator("reward", weights={"brevity": 1, "abstains": 3}),
            monitors=monitors,
        )
    if case == "failing":
        return Reward(judge, WeightedSumAggregator("reward", on_error="error"), monitors=monitors)
    raise ValueError(f"unknown TRL case {case!r}; known: {TRL_CASES}")
