"""The reward-hacking monitor in verl's reward loop: RLRewardManager (reward_kwargs.monitor)
checks every k-th batch it grades and returns the monitor/... keys in reward_extra_info."""

from __future__ import annotations

import asyncio
import json
import math
import os

import numpy as np
import pytest
import yaml

pytest.importorskip("verl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.embedded import embedded_model_path
from rlreward.errors import ConfigError
from rlreward.integrations.spec import load_reward
from rlreward.integrations.verl._monitor import BatchMonitor
from tests.integrations import adapter_helpers as H
from tests.integrations import verl_helpers as V

SAMPLES = [
    {"prompt": "what is 2 plus 2", "response": "it is 4", "ground_truth": "4"},
    {"prompt": "what is 2 plus 2", "response": "four", "ground_truth": "4"},
    {"prompt": "name a colour", "response": "bad bad red", "ground_truth": "blue"},
    {"prompt": "name a colour", "response": "bad bad red", "ground_truth": "blue"},
]
KEYS = {
    "monitor/reward_mean",
    "monitor/reference_mean",
    "monitor/rank_corr",
    "monitor/gap",
    "monitor/length_mean",
    "monitor/zero_spread_groups",
    "monitor/rows_scored",
    "monitor/alerts",
    *(f"monitor/component/{g}__aligned" for g in ("match", "brevity", "tox", "flaky")),
    "monitor/monitor/words",
}


def spec_with_monitor() -> dict:
    spec = V.rules_spec()
    spec["monitors"] = {"words": {"callable": f"{V.H}:brevity"}}
    return spec


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


def batch(tok, **meta):
    data = H.make_dataproto(tok, SAMPLES)
    data.non_tensor_batch["uid"] = np.array(["a", "a", "b", "b"], dtype=object)  # 2 groups
    data.meta_info.update(meta)
    return data


def config_for(tmp_path, **monitor):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec_with_monitor()))
    config = H.verl_config(
        str(embedded_model_path()), str(path), manager="RLRewardManager", custom_fn=False
    )
    config.reward.reward_kwargs.monitor = monitor
    return config


def run_batches(config, batches):
    """verl's own RewardLoopWorker (one manager) grading ``batches`` one after another."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    async def main():
        worker = RewardLoopWorker(config)
        return worker, [await worker.compute_score_batch(b) for b in batches]

    worker, outputs = asyncio.run(main())
    infos = [[o["reward_extra_info"] for o in out] for out in outputs]
    return worker, infos


def test_reward_loop_worker_returns_the_monitor_keys_every_k_batches(tok, tmp_path):
    path = tmp_path / "monitor.jsonl"
    config = config_for(tmp_path, every=2, sample_size=3, jsonl_path=str(path))
    worker, infos = run_batches(config, [batch(tok) for _ in range(4)])
    assert type(worker.reward_manager).__name__ == "RLRewardManager"
    for step, samples in enumerate(infos, 1):
        stacked = {k: np.array([s[k] for s in samples]) for k in samples[0]}  # as verl does
        assert all(set(s) == set(samples[0]) for s in samples)  # the same keys everywhere
        monitor = {k: v for k, v in stacked.items() if k.startswith("monitor/")}
        assert set(monitor) == KEYS
        if step % 2:  # not checked: NaN, never a made-up number
            assert all(np.isnan(v).all() for v in monitor.values())
            continue
        assert all(len(set(v.tolist())) == 1 for v in monitor.values())  # one value per batch
        m = {k: float(v[0]) for k, v in monitor.items()}
        assert m["monitor/rows_scored"] == 3.0
        # the trained reward is what the manager wrote into `score`
        assert m["monitor/reward_mean"] == pytest.approx(float(np.mean(stacked["score"])))
        assert m["monitor/gap"] == pytest.approx(0.0, abs=1e-12)  # reference = the trained
        # group "b" answers the same text twice: zero spread; "a" does not
        assert m["monitor/zero_spread_groups"] == 0.5
        assert m["monitor/monitor/words"] > 0.0 and m["monitor/alerts"] == 0.0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    monitor = worker.reward_manager.monitor.monitor
    assert monitor.cost.reference_calls == 2 and monitor.cost.rows_scored == 6


def test_global_steps_and_validation_batches(tok, tmp_path):
    config = config_for(tmp_path, every=3, sample_size=4)
    _, infos = run_batches(
        config,
        [batch(tok, global_steps=3), batch(tok, validate=True), batch(tok, global_steps=3)],
    )
    assert infos[0][0]["monitor/rows_scored"] == 4.0  # verl's step 3: a k-th step
    assert not any(k.startswith("monitor/") for k in infos[1][0])  # validation: no keys
    assert math.isnan(infos[2][0]["monitor/rows_scored"])  # step 3 again: checked already


def test_monitor_settings_are_checked_at_start(tok, tmp_path):
    reward = load_reward(spec_with_monitor())
    two = H.verl_config(str(embedded_model_path()), "x.yaml", manager="RLRewardManager")
    two.reward.num_workers = 2
    with pytest.raises(ConfigError, match=r"put \{pid\} in the path"):
        BatchMonitor({"jsonl_path": "m.jsonl"}, reward, two)
    per_worker = BatchMonitor({"jsonl_path": str(tmp_path / "m-{pid}.jsonl")}, reward, two)
    assert per_worker.monitor.jsonl_path == str(tmp_path / f"m-{os.getpid()}.jsonl")
    with pytest.raises(ConfigError, match=r"no option \['k'\]"):
        BatchMonitor({"k": 2}, reward)
    with pytest.raises(ConfigError, match="cannot stop verl's trainer"):
        BatchMonitor({"on_alert": "stop"}, reward)
    with pytest.raises(ConfigError, match="on_alert = 'panic'"):
        BatchMonitor({"on_alert": "panic"}, reward)
