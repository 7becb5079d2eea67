"""The VERL adapter against real verl 0.9.1 on CPU: its own reward loop, managers and DataProto."""

import asyncio
import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("verl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.embedded import embedded_model_path
from rlreward.errors import ConfigError, MissingFieldsError
from rlreward.integrations.verl import LegacyRLRewardManager, compute_score, resolve_reward
from tests.integrations import adapter_helpers as H
from tests.integrations import verl_helpers as V

SAMPLES = [
    # match 1, brevity 1 - 3/50, tox 0 (-> 1), flaky 1: (2 + 0.94 + 1 + 1) / 5
    {
        "prompt": "what is 2 plus 2",
        "response": "it is 4",
        "ground_truth": "4",
        "extra_info": {"question": "what is 2 plus 2", "index": 0},
    },
    # flaky fails -> with on_error="error" the reward is NaN and error=1
    {"prompt": "what is 3 plus 3", "response": "fail it is 6", "ground_truth": "6"},
    # match 0, brevity 0.94, tox 10 (-> 0), flaky 1: 1.94 / 5
    {"prompt": "name a colour", "response": "bad bad red", "ground_truth": "blue"},
]
EXPECTED = [(2 + 0.94 + 1 + 1) / 5, math.nan, (0.94 + 1) / 5]
GRADERS = ["brevity", "flaky", "match", "tox"]


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    d = tmp_path_factory.mktemp("specs")
    query_spec = {
        "graders": {"q": {"callable": "tests.integrations.adapter_helpers:mentions_query"}},
        "aggregators": [{"type": "weighted_sum", "name": "reward"}],
    }
    all_specs = {
        "rules": H.spec_dict(on_error="error", weigh_flaky=True),
        "query": query_spec,
    }
    paths = {}
    for name, spec in all_specs.items():
        paths[name] = d / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(spec))
    return {k: str(v) for k, v in paths.items()}


def reward_loop(config, data):
    """VERL's RewardLoopWorker in-process: one run_single task per sample, then the
    assembly RewardLoopManager.compute_rm_score does (rm_scores + stacked extra info)."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    async def main():
        worker = RewardLoopWorker(config)  # built inside the loop, as in its Ray actor
        return worker, await worker.compute_score_batch(data)

    worker, outputs = asyncio.run(main())
    rm_scores = worker.reward_manager.assemble_rm_scores(data, [o["reward_score"] for o in outputs])
    infos = [o["reward_extra_info"] for o in outputs]
    extra = {k: np.array([info[k] for info in infos]) for k in infos[0]}
    return worker, rm_scores, infos, extra


def check_token_level(rm_scores, data, expected):
    """Each score sits on the last valid response token; everything else is 0."""
    valid = H.valid_response_lengths(data)
    assert rm_scores.shape == data.batch["responses"].shape and rm_scores.dtype == torch.float32
    for i, want in enumerate(expected):
        pos = valid[i] - 1
        got = rm_scores[i, pos].item()
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-6)
        rest = torch.cat([rm_scores[i, :pos], rm_scores[i, pos + 1 :]])
        assert torch.count_nonzero(rest) == 0


def check_extra(infos):
    keys = {"score", "score__error", "score__abstained"}
    keys |= {k for g in GRADERS for k in (g, f"{g}__error", f"{g}__abstained", f"{g}__aligned")}
    assert all(set(info) == keys for info in infos)  # the same keys for every sample
    flaky_failed = [info["flaky__error"] for info in infos]
    assert flaky_failed == [0, 1, 0] and math.isnan(infos[1]["flaky"])
    assert [info["score__error"] for info in infos] == [0, 1, 0] and math.isnan(infos[1]["score"])
    assert infos[2]["tox"] == 10.0 and infos[2]["match"] == 0.0  # raw grader scores
    assert infos[2]["tox__aligned"] == 0.0 and infos[0]["tox__aligned"] == 1.0  # turned around


def test_naive_manager_with_our_compute_score(tok, specs):
    data = H.make_dataproto(tok, SAMPLES)
    config = H.verl_config(str(embedded_model_path()), specs["rules"])
    worker, rm_scores, infos, extra = reward_loop(config, data)
    assert type(worker.reward_manager).__name__ == "NaiveRewardManager"
    check_token_level(rm_scores, data, EXPECTED)
    check_extra(infos)
    assert extra["flaky__error"].tolist() == [0, 1, 0]


def test_reward_manager_reads_prompt_from_batch_and_grades_in_one_run(tok, specs, monkeypatch):
    from rlreward.integrations.verl import RLRewardManager

    graded: list[int] = []
    grade = RLRewardManager._grade

    async def counting(self, rows):
        graded.append(len(rows))
        return await grade(self, rows)

    monkeypatch.setattr(RLRewardManager, "_grade", counting)
    samples = [
        {
            "prompt": "tell me about purple elephants",
            "response": "purple elephants",
            "ground_truth": "x",
        },
        {"prompt": "describe green frogs please", "response": "frogs", "ground_truth": "x"},
    ]
    data = H.make_dataproto(tok, samples)
    config = H.verl_config(
        str(embedded_model_path()), specs["query"], manager="RLRewardManager", custom_fn=False
    )
    worker, rm_scores, infos, _ = reward_loop(config, data)
    assert type(worker.reward_manager).__name__ == "RLRewardManager"
    # the query is the decoded prompt: {tell, about, purple, elephants} -> 2/4; {describe, green, frogs, please} -> 1/4
    check_token_level(rm_scores, data, [0.5, 0.25])
    assert [i["q"] for i in infos] == [0.5, 0.25]
    assert graded == [2]  # one runner.arun for the batch
    # the naive manager has no prompt to offer: the missing field is a clear error
    naive = H.verl_config(str(embedded_model_path()), specs["query"])
    with pytest.raises(MissingFieldsError, match="field 'query' missing"):
        reward_loop(naive, data)


def test_reward_manager_matches_the_naive_path(tok, specs):
    data = H.make_dataproto(tok, SAMPLES)
    config = H.verl_config(
        str(embedded_model_path()), specs["rules"], manager="RLRewardManager", custom_fn=False
    )
    _, rm_scores, infos, _ = reward_loop(config, data)
    check_token_level(rm_scores, data, EXPECTED)
    check_extra(infos)


def test_legacy_manager_returns_tensor_and_extra_info(tok, specs):
    data = H.make_dataproto(tok, SAMPLES)
    manager = LegacyRLRewardManager(tok, num_examine=0, spec=specs["rules"])
    check_token_level(manager(data), data, EXPECTED)
    out = manager(data, return_dict=True)
    check_token_level(out["reward_tensor"], data, EXPECTED)
    info = out["reward_extra_info"]
    check_extra([{k: v[i] for k, v in info.items()} for i in range(len(SAMPLES))])
    # a batch a reward model already scored is passed through, as VERL's managers do
    data.batch["rm_scores"] = torch.ones_like(data.batch["responses"], dtype=torch.float32)
    assert torch.equal(manager(data), data.batch["rm_scores"])


@pytest.mark.parametrize("entrance", ["naive+compute_score", "RLRewardManager", "legacy"])
def test_every_entrance_grades_many_samples_concurrently(tok, tmp_path, entrance):
    """96 samples through a judge that holds each call until 48 are in flight at once: an
    entrance that grades one sample after another never gets there (no clock involved)."""
    spec = tmp_path / "gate.yaml"
    spec.write_text(yaml.safe_dump(V.one_grader_spec(f"{V.V}:gate_judge", concurrency=128)))
    samples = [
        {"prompt": f"what is {i}", "response": f"it is {i}", "ground_truth": str(i)}
        for i in range(96)
    ]
    data = H.make_dataproto(tok, samples)
    V.reset_gate(48)
    if entrance == "legacy":
        tensor = LegacyRLRewardManager(tok, spec=str(spec))(data)
    else:
        manager = "naive" if entrance.startswith("naive") else entrance
        config = H.verl_config(
            str(embedded_model_path()), str(spec), manager=manager, custom_fn=manager == "naive"
        )
        _, tensor, _, _ = reward_loop(config, data)
    assert V.GATE["open"] and not V.GATE["gave_up"], V.GATE
    assert V.GATE["max"] >= 48
    assert torch.allclose(tensor.sum(-1), torch.full((96,), 0.5))


def test_compute_score_reads_spec_from_env_and_prompt_from_extra_info(specs, monkeypatch):
    monkeypatch.setenv("RLREWARD_SPEC", specs["query"])
    out = asyncio.run(compute_score("src", "purple things", "x", {"question": "purple elephants"}))
    assert out == {
        "score": 0.5,
        "score__error": 0,
        "score__abstained": 0,
        "q": 0.5,
        "q__error": 0,
        "q__abstained": 0,
        "q__aligned": 0.5,
    }
    # an explicit prompt kwarg wins over extra_info; a chat-message raw_prompt works too
    out = asyncio.run(
        compute_score("src", "purple things", "x", {"question": "x"}, prompt="purple hats")
    )
    assert out["q"] == 0.5
    raw = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "green purple"}]
    assert asyncio.run(compute_score("src", "purple", None, {"raw_prompt": raw}))["q"] == 0.5
    monkeypatch.delenv("RLREWARD_SPEC")
    with pytest.raises(ConfigError, match="reward_kwargs.spec=.*RLREWARD_SPEC"):
        asyncio.run(compute_score("src", "a", "b", {}))


def test_extra_kwargs_become_row_fields_and_reserved_names_are_refused(tmp_path):
    spec = {
        "graders": {
            "q": {
                "callable": "tests.integrations.adapter_helpers:mentions_query",
                "mapper": {"query": "extra_info.meta.topic"},
            }
        },
    }
    out = asyncio.run(compute_score("s", "cats", None, {"meta": {"topic": "cats"}}, spec=spec))
    assert out["score"] == 1.0 and out["q"] == 1.0
    spec2 = {
        "graders": {
            "r": {
                "callable": "tests.integrations.adapter_helpers:exact_match",
                "mapper": {"reference_response": "answer_key"},
            }
        }
    }
    out = asyncio.run(compute_score("s", "the answer is 7", None, {}, spec=spec2, answer_key="7"))
    assert out["r"] == 1.0
    bad = {"graders": {"score": {"callable": "tests.integrations.adapter_helpers:brevity"}}}
    with pytest.raises(ConfigError, match="'score' is a reserved name"):
        asyncio.run(compute_score("s", "a", None, {}, spec=bad))


def test_concurrent_compute_score_calls_share_one_runner_and_its_limit():
    spec = {
        "graders": {"j": {"callable": "tests.integrations.adapter_helpers:counting_judge"}},
        "runner": {"max_concurrency": 4},
    }
    H.IN_FLIGHT.update(now=0, max=0, calls=0)

    async def main():
        return await asyncio.gather(
            *(compute_score("s", f"r{i}", None, {}, spec=spec) for i in range(40))
        )

    t0 = time.perf_counter()
    outs = asyncio.run(main())
    elapsed = time.perf_counter() - t0
    assert all(o["score"] == 1.0 for o in outs) and H.IN_FLIGHT["calls"] == 40
    assert H.IN_FLIGHT["max"] == 4  # one semaphore across all 40 compute_score calls
    assert elapsed >= 40 / 4 * 0.01 * 0.9


def test_llm_judge_calls_run_concurrently_through_one_runner(tok, openai_server, tmp_path):
    """A real LLM judge over HTTP behind compute_score in VERL's reward loop: the 64
    requests overlap at the server (counted as they arrive, not timed)."""
    from tests.openai_server import Action

    openai_server.latency = 0.3
    seen = {"max": 0}
    lock = threading.Lock()

    def responder(body):  # runs as each request arrives; "ok" counts finished ones
        with lock:
            seen["max"] = max(
                seen["max"], openai_server.counts["chat"] - openai_server.counts["ok"]
            )
        return Action.judge(4)

    openai_server.responder = responder
    spec = {
        "judge_model": {"model": "judge", "base_url": openai_server.url, "api_key": "sk-test-0000"},
        "cache": False,
        "graders": {"relevance": {"type": "relevance"}},
        "aggregators": [{"type": "weighted_sum", "name": "reward"}],
        "runner": {"max_concurrency": 32},
    }
    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump(spec))
    samples = [
        {
            "prompt": f"what is {i} plus {i}",
            "response": f"it is {2 * i}",
            "ground_truth": str(2 * i),
            "extra_info": {"question": f"what is {i} plus {i}"},
        }
        for i in range(64)
    ]
    data = H.make_dataproto(tok, samples)
    resolve_reward(str(path))  # built once, as a worker does at its first call
    _, rm_scores, infos, _ = reward_loop(H.verl_config(str(embedded_model_path()), str(path)), data)
    assert [i["relevance"] for i in infos] == [
        0.75
    ] * 64  # the server's 4 on the judge's 1..5 scale
    assert torch.allclose(rm_scores.sum(-1), torch.full((64,), 0.75))
    assert openai_server.n_requests == 64
    # the judge saw the prompt from extra_info
    assert any("what is 5 plus 5" in r["messages"][-1]["content"] for r in openai_server.requests)
    assert seen["max"] >= 8, seen  # requests overlapped at the server (up to 32 allowed)


def test_example_spec_grades_with_registry_reward_functions():
    spec = str(Path(__file__).resolve().parents[2] / "examples" / "verl_reward.yaml")
    good = "<think>2 + 2 = 4</think><answer>4</answer>"
    out = asyncio.run(
        compute_score("openai/gsm8k", good, "4", {"question": "what is 2+2"}, spec=spec)
    )
    assert out == {
        "score": 1.0,
        "score__error": 0,
        "score__abstained": 0,
        "correct": 1.0,
        "correct__error": 0,
        "correct__abstained": 0,
        "formatted": 1.0,
        "formatted__error": 0,
        "formatted__abstained": 0,
        "repetition": 0.0,  # raw: no repeated 3-grams (lower is better)
        "repetition__error": 0,
        "repetition__abstained": 0,
        "correct__aligned": 1.0,
        "formatted__aligned": 1.0,
        "repetition__aligned": 1.0,  # turned around for the reward
    }
    wrong = asyncio.run(compute_score("openai/gsm8k", "so the answer is 5", "4", None, spec=spec))
    assert wrong["correct"] == 0.0 and wrong["score"] == pytest.approx(0.1)  # repetition-free only
