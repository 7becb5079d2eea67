"""The TRL adapter against real TRL 1.12 on CPU: GRPOTrainer with our reward functions."""

import ast
import asyncio
import base64
import inspect
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch.overrides import TorchFunctionMode

from rlreward.errors import ConfigError
from rlreward.integrations.trl import RewardLoggingCallback, make_reward_funcs
from tests.integrations import adapter_helpers as H
from tests.training.tiny import tiny_llama_config

ROOT = Path(__file__).resolve().parents[2]
GRADERS = ["match", "brevity", "tox", "flaky"]
WEIGHTED = ["match", "brevity", "tox"]  # spec_dict() weighs these 2 : 1 : 1
ALIGNED = [f"{g}__aligned" for g in WEIGHTED]


def call_all(funcs, prompts, completions, **columns):
    """Call every function with the same lists, concurrently, as TRL does."""

    async def main():
        return await asyncio.gather(*(f(prompts, completions, None, **columns) for f in funcs))

    return asyncio.run(main())


def test_functions_look_like_async_functions_to_trl():
    from trl.trainer.utils import get_callable_name

    funcs, weights = make_reward_funcs(H.spec_dict(on_error="zero"))
    # one function per weighted grader, named for what it returns: the aligned value
    assert [get_callable_name(f) for f in funcs] == ALIGNED
    assert weights == [0.5, 0.25, 0.25]  # the aggregator's (normalised) weights
    for f in funcs:
        assert inspect.iscoroutinefunction(f)  # TRL's test for running it on its event loop
        assert str(inspect.signature(f)) == "(prompts, completions, completion_ids=None, **kwargs)"
    (combined,), w = make_reward_funcs(H.spec_dict(), mode="combined")
    assert get_callable_name(combined) == "reward" and w == [1.0]


@pytest.mark.parametrize("on_error", ["zero", "error"])
def test_per_grader_values_are_the_published_components_and_sum_to_the_aggregate(on_error):
    from rlreward.integrations.spec import RewardSpec

    spec = H.spec_dict(on_error=on_error, weigh_flaky=True)
    funcs, weights = make_reward_funcs(spec)
    (combined,), _ = make_reward_funcs(spec, mode="combined")
    prompts = ["what is 2 plus 2", "name a colour", "q"]
    completions = ["it is 4", "bad red", "fail"]  # row 2: flaky fails
    cols = {"ground_truth": ["4", "blue", "x"]}
    per = dict(zip([f.__name__ for f in funcs], call_all(funcs, prompts, completions, **cols)))
    rows = [
        {"response": c, "reference_response": g} for c, g in zip(completions, cols["ground_truth"])
    ]
    spec_rewards = RewardSpec.from_dict(spec).build_runner().run(rows)["reward"]
    for i, r in enumerate(spec_rewards):
        if r.ok:
            assert {k: per[f"{k}__aligned"][i] for k in r.metadata["components"]} == (
                r.metadata["components"]
            )
            trained = sum(w * per[name][i] for name, w in zip(per, weights))
            assert trained == pytest.approx(r.score, abs=1e-12)
        else:  # "error": every function says None, so TRL scores the row as unscorable
            assert [per[name][i] for name in per] == [None] * len(per)
    assert per["tox__aligned"][:2] == [1.0, 0.0]  # lower-is-better on [0, 10], turned around
    if on_error == "zero":
        assert per["flaky__aligned"][2] == 0.0 and spec_rewards[2].ok  # the worst, and counted
    else:
        assert not spec_rewards[2].ok
    assert call_all([combined], prompts, completions, **cols)[0] == [
        r.score if r.ok else None for r in spec_rewards
    ]


def test_per_grader_refuses_renormalize_and_names_the_fix():
    with pytest.raises(ConfigError, match="cannot reproduce .*on_error='renormalize'") as exc:
        make_reward_funcs(H.spec_dict(on_error="renormalize"))
    assert "use mode='combined'" in str(exc.value) and "nansum" in str(exc.value)
    assert make_reward_funcs(H.spec_dict(on_error="renormalize"), mode="combined").weights == [1.0]
    one = {**H.spec_dict(on_error="renormalize")}
    one["aggregators"] = [{"name": "reward", "weights": {"tox": 1}, "on_error": "renormalize"}]
    assert make_reward_funcs(one).weights == [1.0]  # one grader: nothing to rescale


def test_none_where_a_grader_does_not_apply_or_fails_and_both_are_counted():
    funcs, _ = make_reward_funcs(H.spec_dict(on_error="zero", weigh_flaky=True))
    cb = RewardLoggingCallback(funcs)
    cb.pop_metrics()
    # row 0 has no ground truth (match does not apply); row 1 makes flaky fail
    out = dict(
        zip(
            [*ALIGNED, "flaky__aligned"],
            call_all(funcs, ["q", "q"], ["x", "fail"], ground_truth=[None, "fail"]),
        )
    )
    # under on_error="zero" both count as the worst score, as in the aggregate
    assert out["match__aligned"] == [0.0, 1.0] and out["flaky__aligned"] == [1.0, 0.0]
    m = cb.pop_metrics()
    assert m["rlreward/match/skip_rate"] == 0.5 and m["rlreward/match/error_rate"] == 0.0
    assert m["rlreward/flaky/error_rate"] == 0.5 and "rlreward/flaky/skip_rate" not in m
    assert m["rlreward/brevity/std"] == pytest.approx(0.0)
    assert m["rlreward/match__aligned/mean"] == 0.5  # what the reward weighed: 0.0 and 1.0
    assert cb.pop_metrics() == {}  # reset after each log


def test_ground_truth_follows_the_one_rule_numpy_is_text_and_nan_is_refused():
    import numpy as np

    spec = {
        "graders": {"match": {"callable": f"{H.__name__}:exact_match"}},
        "aggregators": [{"name": "reward", "on_error": "error"}],
    }
    (reward,), _ = make_reward_funcs(spec, mode="combined")
    cb = RewardLoggingCallback([reward])
    cb.pop_metrics()
    # np.int64(4) is the answer "4" (as VERL reads it); a NaN answer is refused, never
    # the reference text "nan" (which "it is nan" would match)
    got = call_all(
        [reward],
        ["q"] * 3,
        ["it is 4", "it is nan", "it is 4"],
        ground_truth=[np.int64(4), math.nan, np.float64("nan")],
    )
    assert got == [[1.0, None, None]]
    m = cb.pop_metrics()
    assert m["rlreward/match/error_rate"] == pytest.approx(2 / 3)  # failures, not skips
    assert "rlreward/match/skip_rate" not in m


def test_logged_names_say_what_the_value_is():
    """A grader's bare name carries its raw score; <grader>__aligned what the reward weighed."""
    spec = H.spec_dict(on_error="zero")
    funcs, _ = make_reward_funcs(spec)
    (combined,), _ = make_reward_funcs(spec, mode="combined")
    cb = RewardLoggingCallback(funcs)
    logged = {}
    completions = ["bad bad", "bad bad bad"]  # toxicity 20 -> 10 (clipped by the grader), 10
    call_all(funcs, ["q", "q"], completions, ground_truth=["x", "x"])
    call_all(
        [combined], ["q", "q"], completions, ground_truth=["x", "x"], log_metric=logged.__setitem__
    )
    m = cb.pop_metrics()
    assert m["rlreward/tox/mean"] == 10.0  # what the grader said: very toxic
    assert m["rlreward/tox__aligned/mean"] == 0.0  # what the reward made of it: worst
    assert logged["rewards/tox/mean"] == 10.0 and logged["rewards/tox__aligned/mean"] == 0.0
    assert logged["rewards/match/mean"] == 0.0 and "rewards/flaky__aligned/mean" not in logged
    assert "rewards/flaky/mean" in logged  # raw scores of an unweighted grader are still shown
    assert [f.__name__ for f in funcs] == ALIGNED


def test_stats_are_owned_by_the_functions_and_bounded():
    import rlreward.integrations._trl_callback as cb_mod
    import rlreward.integrations.trl as trl_mod

    assert not [n for n in vars(trl_mod) if n.startswith("_group")]  # no process-global registry
    assert all(n in vars(trl_mod) for n in trl_mod.__all__)  # __all__ names only real names
    imports = {
        node.module
        for node in ast.walk(ast.parse(Path(cb_mod.__file__).read_text()))
        if isinstance(node, ast.ImportFrom)
    }
    assert "rlreward.integrations.trl" not in imports  # no cycle trl <-> _trl_callback
    funcs, _ = make_reward_funcs(H.spec_dict(on_error="zero"))
    group = funcs[0].group
    assert all(f.group is group for f in funcs)
    call_all(funcs, ["q"], ["it is 4"], ground_truth=["4"])
    size = len(pickle.dumps(group.stats._cols))
    for i in range(40):  # no callback pops: the stats must not grow with the run
        call_all(funcs, ["q"] * 3, ["it is 4", "x y", "bad " * i], ground_truth=["4"] * 3)
    assert len(pickle.dumps(group.stats._cols)) == size
    brevity = [1 - 3 / 50] + [1 - 3 / 50, 1 - 2 / 50] * 40 + [1 - i / 50 for i in range(40)]
    m = group.stats.pop()
    assert m["rlreward/brevity/mean"] == pytest.approx(statistics.fmean(brevity), abs=1e-12)
    assert m["rlreward/brevity/std"] == pytest.approx(statistics.pstdev(brevity), abs=1e-12)


def test_conversational_completions_and_dataset_columns_reach_the_graders():
    spec = {
        "graders": {
            "q": {"callable": "tests.integrations.adapter_helpers:mentions_query"},
            "topic": {
                "callable": "tests.integrations.adapter_helpers:mentions_query",
                "mapper": {"query": "topic"},
            },
        },
    }
    funcs, _ = make_reward_funcs(spec)
    prompts = [
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "purple elephants"}]
    ]
    completions = [[{"role": "assistant", "content": [{"type": "text", "text": "purple cats"}]}]]
    q, topic = call_all(funcs, prompts, completions, topic=["cats"], trainer_state=object())
    assert q == [0.5]  # query = last user message: purple (yes), elephants (no)
    assert topic == [1.0]  # the dataset column 'topic' mapped onto the query


PICKLE_CHILD = """
import asyncio, base64, json, pickle, sys
funcs = pickle.loads(base64.b64decode(sys.argv[1]))
assert all(f.group is funcs[0].group for f in funcs)  # still one grading per batch
out = [asyncio.run(f(["what is 2 plus 2"], ["it is 4 bad"], ground_truth=["4"])) for f in funcs]
print(json.dumps(out))
"""


@pytest.mark.parametrize("kind", ["path", "dict", "runner"])
def test_pickled_functions_work_in_a_fresh_process(tmp_path, kind):
    spec = H.spec_dict(on_error="zero")
    if kind == "path":
        source = tmp_path / "reward.yaml"
        source.write_text(yaml.safe_dump(spec))
    elif kind == "dict":
        source = spec
    else:
        from rlreward.integrations.spec import RewardSpec

        source = RewardSpec.from_dict(spec).build_runner()
    funcs, _ = make_reward_funcs(source)
    blob = base64.b64encode(pickle.dumps(funcs)).decode()
    here = [
        asyncio.run(f(["what is 2 plus 2"], ["it is 4 bad"], ground_truth=["4"])) for f in funcs
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", PICKLE_CHILD, blob],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert json.loads(child.stdout) == here
    names = [f.__name__ for f in funcs]
    assert dict(zip(names, here)) == {
        "match__aligned": [1.0],
        "brevity__aligned": [0.92],
        "tox__aligned": [0.0],
    }


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="mode='both' is not allowed"):
        make_reward_funcs(H.spec_dict(), mode="both")
    custom = {
        **H.spec_dict(),
        "aggregators": [{"callable": "tests.integrations.adapter_helpers:min_reward"}],
    }
    with pytest.raises(ConfigError, match="use mode='combined'"):
        make_reward_funcs(custom)
    assert make_reward_funcs(custom, mode="combined").weights == [1.0]
    with pytest.raises(ConfigError, match="needs the functions from make_reward_funcs"):
        RewardLoggingCallback([len])


def test_callback_reports_judge_latency_and_cache_hits(openai_server, tmp_path):
    spec = {
        "judge_model": {"model": "judge", "base_url": openai_server.url, "api_key": "sk-test-0000"},
        "cache": str(tmp_path / "cache.sqlite"),
        "graders": {
            "relevance": {"type": "relevance"},
            "length": {"type": "reward_function", "function": "length"},
        },
        "aggregators": [{"type": "weighted_sum", "name": "reward", "on_error": "zero"}],
    }
    funcs, weights = make_reward_funcs(spec)
    cb = RewardLoggingCallback(funcs)
    prompts, completions = ["what is the capital of france"] * 2, ["paris", "it is paris"]
    first = call_all(funcs, prompts, completions)
    m1 = cb.pop_metrics()
    second = call_all(funcs, prompts, completions)  # the same batch again: cached judge grades
    m2 = cb.pop_metrics()
    assert first == second and first[0] == [0.75, 0.75]  # the server's default 4 on a 1..5 scale
    assert (
        m1["rlreward/relevance/cache_hit_rate"] == 0.0
        and m2["rlreward/relevance/cache_hit_rate"] == 1.0
    )
    assert m1["rlreward/relevance/latency_s"] > 0 and openai_server.n_requests == 2
    assert "rlreward/length/latency_s" not in m1  # rule functions report no latency
    assert len(weights) == 2


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


def grpo_trainer(tok, funcs, weights, dataset, tmp_path, callbacks=(), rloo=False, **options):
    import torch
    from transformers import LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    torch.manual_seed(0)
    config = tiny_llama_config(len(tok))  # the training tests' 2-layer Llama, built in-process
    config.pad_token_id, config.bos_token_id, config.eos_token_id = (
        tok.pad_token_id,
        None,
        tok.sep_token_id,
    )
    config_cls, trainer_cls = (RLOOConfig, RLOOTrainer) if rloo else (GRPOConfig, GRPOTrainer)
    extra = {"beta": 0.0} if rloo else {}  # RLOO's KL reference would be loaded from a hub id
    kwargs = {
        "output_dir": str(tmp_path),
        "use_cpu": True,
        "bf16": False,
        "max_completion_length": 8,
        "num_generations": 2,
        "per_device_train_batch_size": 2,
        "max_steps": 2,
        "logging_steps": 1,
        "learning_rate": 1e-3,
        "report_to": [],
        "save_strategy": "no",
        "reward_weights": weights,
        "seed": 0,
        **extra,
        **options,
    }
    return trainer_cls(
        model=LlamaForCausalLM(config),
        reward_funcs=funcs,
        args=config_cls(**kwargs),
        train_dataset=dataset,
        processing_class=tok,
        callbacks=list(callbacks),
    )


def arith_rows(n=4):
    from datasets import Dataset

    rows = [{"prompt": f"what is {i} plus {i}", "ground_truth": str(2 * i)} for i in range(n)]
    return Dataset.from_list(rows)


# -- what TRL optimises == what the spec says, row by row, with a grader failing on some rows


def by_length(response: str) -> float:
    """A raw score that varies with the generated text: its length mod 11, on [0, 10]."""
    return float(len(response) % 11)


def refuses_some(response: str) -> float:
    """A judge that refuses (fails) on about a third of the texts, decided by the text."""
    if zlib.crc32(response.encode()) % 3 == 0:
        raise RuntimeError("the judge refused")
    return (zlib.crc32(response.encode()) % 97) / 96


def failing_runner(on_error):
    from rlreward import FunctionGrader, GradingRunner, WeightedSumAggregator

    graders = {
        "brevity": FunctionGrader(H.brevity, name="brevity"),
        "length": FunctionGrader(
            by_length, name="length", score_range=(0, 10), higher_is_better=False
        ),
        "judge": FunctionGrader(refuses_some, name="judge"),
    }
    weights = {"brevity": 2, "length": 1, "judge": 1}
    agg = WeightedSumAggregator("reward", weights=weights, on_error=on_error)
    return GradingRunner(graders, aggregators=agg, show_progress=False)


class RewardTap(TorchFunctionMode):
    """Records what TRL's own reduction ``(rewards_per_func * weights).nansum(dim=1)`` yields."""

    def __init__(self):
        super().__init__()
        self.sums = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is torch.Tensor.nansum and kwargs.get("dim") == 1:
            self.sums.append(out.detach().clone())
        return out


CASES = [
    ("grpo", "per_grader", "zero"),
    ("grpo", "per_grader", "error"),
    ("grpo", "combined", "renormalize"),
    ("grpo", "combined", "zero"),
    ("grpo", "combined", "error"),
    ("rloo", "per_grader", "zero"),
    ("rloo", "combined", "renormalize"),
]


@pytest.mark.parametrize(("host", "mode", "on_error"), CASES)
def test_trl_optimises_the_spec_reward_row_by_row(tok, tmp_path, host, mode, on_error):
    runner = failing_runner(on_error)
    funcs, weights = make_reward_funcs(runner, mode=mode)
    trainer = grpo_trainer(
        tok,
        funcs,
        weights,
        arith_rows(2),
        tmp_path,
        rloo=host == "rloo",
        max_steps=1,
        num_generations=8,
        per_device_train_batch_size=8,
    )
    tap = RewardTap()
    with tap:
        trainer.train()
    trl_reward = tap.sums[0].tolist()  # TRL's reward per completion, before NaN-masking
    texts = list(trainer._logs["completion"])
    rewards_per_func = list(zip(*trainer._logs["rewards"].values()))  # TRL's per-function inputs
    assert len(texts) == len(trl_reward) == 8
    # the spec's reward for the same texts, computed without the TRL adapter
    spec = failing_runner(on_error).run([{"response": t} for t in texts])
    failed = [not r.ok for r in spec["judge"]]
    assert any(failed) and not all(failed), "the batch must mix failed and scored rows"
    for i, expected in enumerate(spec["reward"]):
        if expected.ok:
            assert trl_reward[i] == pytest.approx(expected.score, abs=1e-6), (i, texts[i])
        else:  # unscorable for TRL: every function said None, so the reward is NaN, advantage 0
            assert all(math.isnan(v) for v in rewards_per_func[i]), (i, rewards_per_func[i])
            assert trainer._logs["advantages"][i] == 0.0
    scored = [r.score for r in spec["reward"] if r.ok]
    logged = trainer.state.log_history[0]["reward"]  # TRL's own logged mean over scorable rows
    assert logged == pytest.approx(statistics.fmean(scored), abs=1e-5)


@pytest.mark.parametrize(
    ("mode", "options", "weights", "match"),
    [
        ("per_grader", {}, None, r"reward_weights for .* are \[1.0, 1.0, 1.0\]"),
        ("combined", {}, [2.0], r"reward_weights for \['reward'\] are \[2.0\]"),
        (
            "per_grader",
            {"multi_objective_aggregation": "normalize_then_sum"},
            "ours",
            "multi_objective_aggregation='normalize_then_sum'",
        ),
        ("per_grader", {}, "first two", "hold 2 of the 3 functions"),
    ],
)
def test_trainer_settings_that_change_the_reward_are_refused(
    tok, tmp_path, mode, options, weights, match
):
    funcs, ours = make_reward_funcs(H.spec_dict(on_error="zero"), mode=mode)
    if weights == "first two":
        funcs, weights = funcs[:2], ours[:2]
    elif weights == "ours":
        weights = ours
    trainer = grpo_trainer(tok, funcs, weights, arith_rows(), tmp_path, max_steps=1, **options)
    with pytest.raises(ConfigError, match=match) as exc:
        trainer.train()
    assert "make_reward_funcs" in str(exc.value)  # the message names the fix
    assert funcs[0].group.stats.pop() == {}  # refused before anything was graded


def test_grpo_trains_two_steps_with_one_function_per_grader(tok, tmp_path):
    funcs, weights = make_reward_funcs(H.spec_dict(on_error="zero"))
    cb = RewardLoggingCallback(funcs)
    trainer = grpo_trainer(tok, funcs, weights, arith_rows(), tmp_path, [cb])
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for log in logs:
        for g in WEIGHTED:
            # TRL's own per-function curve and the callback's say the same, under the same name
            assert log[f"rewards/{g}__aligned/mean"] == pytest.approx(
                log[f"rlreward/{g}__aligned/mean"], abs=1e-6
            )
            assert f"rewards/{g}/mean" not in log  # no aligned value under a raw name
        for g in GRADERS:
            assert log[f"rlreward/{g}/error_rate"] == 0.0  # the callback's metrics
        assert log["rlreward/reward/mean"] == pytest.approx(log["reward"], abs=1e-5)
    after = [p.detach() for p in trainer.model.parameters()]
    assert any(not a.equal(b) for a, b in zip(before, after))  # the policy was updated


def test_grpo_combined_on_chat_prompts_logs_components_and_grades_eval(tok, tmp_path):
    from datasets import Dataset

    rows = [
        {
            "prompt": [{"role": "user", "content": f"what is {i} plus {i}"}],
            "ground_truth": str(2 * i),
        }
        for i in range(4)
    ]
    funcs, weights = make_reward_funcs(H.spec_dict(), mode="combined")
    trainer = grpo_trainer(tok, funcs, weights, Dataset.from_list(rows), tmp_path)
    cb = RewardLoggingCallback(funcs).install(trainer)
    assert trainer.callback_handler.callbacks[1] is cb  # ahead of the reporters
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for log in logs:
        assert math.isfinite(log["rewards/reward/mean"])
        for g in WEIGHTED:  # components through TRL's log_metric: raw and aligned
            assert 0.0 <= log[f"rewards/{g}__aligned/mean"] <= 1.0
            assert f"rewards/{g}/mean" in log and f"rlreward/{g}/mean" in log
        assert log["rewards/tox/mean"] == pytest.approx(log["rlreward/tox/mean"], abs=1e-6)
    metrics = cb.grade(["what is 2 plus 2", "q"], ["it is 4", "it is 5"], ground_truth=["4", "4"])
    assert metrics["eval_rlreward/match/mean"] == 0.5
    trainer.log({"eval_loss": 0.0})  # the next log carries the evaluation metrics
    assert trainer.state.log_history[-1]["eval_rlreward/match/mean"] == 0.5


def test_aligned_keys_cannot_be_taken_by_a_grader():
    from rlreward.aggregators import ALIGNED_SUFFIX, aligned_key
    from rlreward.integrations.reserved import reserved_reason

    assert aligned_key("tox") == "tox__aligned" and ALIGNED_SUFFIX == "__aligned"
    assert "reserved suffix '__aligned'" in reserved_reason(aligned_key("tox"))
