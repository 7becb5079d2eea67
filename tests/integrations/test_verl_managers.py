"""Every reward manager verl 0.9.1 ships, fed our entry points through verl's own loader.

Pre-reward-loop managers (``verl.workers.reward_manager`` naive, dapo, prime, batch) get
their ``compute_score`` from ``verl.trainer.ppo.reward.get_custom_reward_fn``, exactly as
a trainer builds it; reward-loop managers (dapo, rate_limited, RLRewardManager) run in
verl's ``RewardLoopWorker``.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
import yaml

pytest.importorskip("verl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from verl.trainer.ppo.reward import get_custom_reward_fn

from rlreward.embedded import embedded_model_path
from tests.integrations import adapter_helpers as H
from tests.integrations import verl_helpers as V

SAMPLES = [
    {"prompt": "what is 2 plus 2", "response": "it is 4", "ground_truth": "4"},
    {"prompt": "what is 3 plus 3", "response": "fail it is 6", "ground_truth": "6"},
    {"prompt": "name a colour", "response": "bad bad red", "ground_truth": "blue"},
]
# renormalize: (2*match + brevity + tox_aligned + flaky) / weights that succeeded
EXPECTED = [(2 + 0.94 + 1 + 1) / 5, (2 + 0.92 + 1) / 4, (0.94 + 1) / 5]
KEYS = {
    "score",
    "score__error",
    "score__abstained",
    *(
        k
        for g in ("match", "brevity", "tox", "flaky")
        for k in (g, f"{g}__error", f"{g}__abstained", f"{g}__aligned")
    ),
    *(k for g in ("extra", "style") for k in (g, f"{g}__error", f"{g}__abstained")),
}


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "rules.yaml"
    path.write_text(yaml.safe_dump(V.rules_spec()))
    return str(path)


def scores_at_last_token(tensor, data):
    valid = H.valid_response_lengths(data)
    return [tensor[i, valid[i] - 1].item() for i in range(len(valid))]


def check_info(info, n=3):
    """reward_extra_info as the pre-reward-loop managers build it: {key: [per sample]}."""
    assert set(info) == KEYS
    assert all(len(v) == n for v in info.values())
    assert info["flaky__error"] == [0, 1, 0] and math.isnan(info["flaky"][1])
    assert info["flaky__aligned"][1] == pytest.approx(EXPECTED[1])  # renormalize: its score
    assert info["score__error"] == [0, 0, 0]
    assert info["tox"][2] == 10.0 and info["tox__aligned"][2] == 0.0


@pytest.mark.parametrize("manager", ["naive", "dapo"])
def test_per_sample_legacy_managers_with_compute_score_sync(tok, spec, manager):
    from verl.workers.reward_manager import get_reward_manager_cls

    fn = get_custom_reward_fn(V.reward_fn_config(spec, "compute_score_sync"))
    data = H.make_dataproto(tok, SAMPLES)
    out = get_reward_manager_cls(manager)(tok, 0, compute_score=fn)(data, return_dict=True)
    got = scores_at_last_token(out["reward_tensor"], data)
    assert got == pytest.approx(EXPECTED, abs=1e-6)
    check_info(out["reward_extra_info"])


def test_the_async_compute_score_is_what_fails_there(tok, spec):
    """Why compute_score_sync exists: verl's old naive manager cannot await."""
    from verl.workers.reward_manager.naive import NaiveRewardManager

    fn = get_custom_reward_fn(V.reward_fn_config(spec, "compute_score"))
    data = H.make_dataproto(tok, SAMPLES[:1])
    with pytest.raises(TypeError, match="coroutine"):
        NaiveRewardManager(tok, 0, compute_score=fn)(data)


def test_prime_manager_pickles_compute_score_scalar_into_its_process_pool(tok, spec, capfd):
    from verl.workers.reward_manager.prime import PrimeRewardManager

    fn = get_custom_reward_fn(V.reward_fn_config(spec, "compute_score_scalar"))
    data = H.make_dataproto(tok, SAMPLES)
    tensor = PrimeRewardManager(tok, 0, compute_score=fn)(data)
    # prime turns any exception (e.g. a pickling error) into all-zero rewards and a print
    assert "[Error]" not in capfd.readouterr().out
    assert scores_at_last_token(tensor, data) == pytest.approx(EXPECTED, abs=1e-6)
    assert data.batch["acc"].tolist() == pytest.approx(EXPECTED, abs=1e-6)


def test_batch_manager_with_compute_score_batch_grades_the_batch_at_once(tok, spec, monkeypatch):
    from verl.workers.reward_manager.batch import BatchRewardManager

    from rlreward.integrations.verl import _score

    calls: list[int] = []
    grade = _score._grade

    async def counting(handle, cols, rows):
        calls.append(len(rows))
        return await grade(handle, cols, rows)

    monkeypatch.setattr(_score, "_grade", counting)
    fn = get_custom_reward_fn(V.reward_fn_config(spec, "compute_score_batch"))
    data = H.make_dataproto(tok, SAMPLES)
    out = BatchRewardManager(tok, 0, compute_score=fn)(data, return_dict=True)
    assert calls == [3]
    assert scores_at_last_token(out["reward_tensor"], data) == pytest.approx(EXPECTED, abs=1e-6)
    check_info(dict(out["reward_extra_info"]))


def test_legacy_naive_timeout_gives_our_keys_not_verls_zero(tok, tmp_path):
    """verl's old naive manager times a call out with SIGALRM and writes a bare 0.0 (no
    keys). Our sync entry catches it: the sample is NaN with every flag set, same keys."""
    from verl.workers.reward_manager.naive import NaiveRewardManager

    path = tmp_path / "sleepy.yaml"
    path.write_text(yaml.safe_dump(V.one_grader_spec(f"{V.V}:sleepy_judge")))
    fn = get_custom_reward_fn(V.reward_fn_config(str(path), "compute_score_sync", timeout=None))
    samples = [
        {"prompt": "p", "response": "quick", "ground_truth": "x"},
        {"prompt": "p", "response": "slow answer", "ground_truth": "x"},
    ]
    data = H.make_dataproto(tok, samples)
    manager = NaiveRewardManager(tok, 0, compute_score=fn, compute_score_timeout=0.5)
    out = manager(data, return_dict=True)
    info = out["reward_extra_info"]
    assert all(len(v) == 2 for v in info.values())  # nothing missing for the timed-out one
    assert info["score__error"] == [0, 1] and info["judge__error"] == [0, 1]
    assert math.isnan(info["score"][1]) and math.isnan(info["judge__aligned"][1])
    assert scores_at_last_token(out["reward_tensor"], data)[0] == 0.5


def test_our_time_limit_fires_before_verls(tok, tmp_path):
    """reward_kwargs.timeout below the host's limit: our failed sample, not the host's."""
    from verl.workers.reward_manager.naive import NaiveRewardManager

    path = tmp_path / "sleepy.yaml"
    path.write_text(yaml.safe_dump(V.one_grader_spec(f"{V.V}:sleepy_judge")))
    fn = get_custom_reward_fn(V.reward_fn_config(str(path), "compute_score_sync", timeout=0.3))
    data = H.make_dataproto(tok, [{"prompt": "p", "response": "slow", "ground_truth": "x"}])
    out = NaiveRewardManager(tok, 0, compute_score=fn, compute_score_timeout=2.0)(
        data, return_dict=True
    )
    assert out["reward_extra_info"]["score__error"] == [1]


def loop_config(spec, manager, **reward):
    config = H.verl_config(str(embedded_model_path()), spec)
    config.reward.reward_manager.name = manager
    for k, v in reward.items():
        config.reward[k] = v
    return config


def test_reward_loop_dapo_manager(tok, spec):
    data = H.make_dataproto(tok, SAMPLES)
    worker, rm, infos, stacked = V.reward_loop(loop_config(spec, "dapo"), data)
    assert type(worker.reward_manager).__name__ == "DAPORewardManager"
    assert scores_at_last_token(rm, data) == pytest.approx(EXPECTED, abs=1e-6)
    assert all(set(i) == KEYS for i in infos)
    assert stacked["flaky__error"].tolist() == [0, 1, 0]


def test_rate_limited_timeout_path_keeps_our_keys(tok, tmp_path, monkeypatch):
    """verl's RateLimitedRewardManager writes {timeout, acc} and 0.0 for a call past
    reward.timeout; our per-call limit (reward_kwargs.timeout) fires first."""
    from verl.experimental.reward_loop.reward_manager.limited import RateLimitedRewardManager

    monkeypatch.setattr(RateLimitedRewardManager, "_class_initialized", False)  # per-loop state
    path = tmp_path / "sleepy.yaml"
    path.write_text(yaml.safe_dump(V.one_grader_spec(f"{V.V}:sleepy_judge")))
    config = loop_config(str(path), "rate_limited", timeout=2.0, max_concurrent=4)
    config.reward.custom_reward_function.reward_kwargs.timeout = 0.3
    samples = [
        {"prompt": "p", "response": "quick", "ground_truth": "x"},
        {"prompt": "p", "response": "slow answer", "ground_truth": "x"},
    ]
    data = H.make_dataproto(tok, samples)
    worker, rm, infos, stacked = V.reward_loop(config, data)
    assert type(worker.reward_manager).__name__ == "RateLimitedRewardManager"
    assert set(infos[0]) == set(infos[1]) and "timeout" not in infos[1]
    assert stacked["score__error"].tolist() == [0, 1]
    assert stacked["score"].dtype.kind == "f"  # no "error" string next to our numbers
    got = scores_at_last_token(rm, data)
    assert got[0] == 0.5 and math.isnan(got[1])


def test_rl_reward_manager_on_a_batch_without_prompts(tok, spec):
    from verl import DataProto

    full = H.make_dataproto(tok, SAMPLES)
    tensors = {k: v for k, v in full.batch.items() if k in ("responses", "attention_mask")}
    data = DataProto.from_dict(tensors=tensors, non_tensors=dict(full.non_tensor_batch))
    assert "prompts" not in data.batch.keys()  # noqa: SIM118
    config = H.verl_config(
        str(embedded_model_path()), spec, manager="RLRewardManager", custom_fn=False
    )
    worker, rm, infos, _ = V.reward_loop(config, data)
    assert type(worker.reward_manager).__name__ == "RLRewardManager"
    assert scores_at_last_token(rm, full) == pytest.approx(EXPECTED, abs=1e-6)
    assert torch.count_nonzero(rm) == 3
    assert all(set(i) == KEYS for i in infos)
