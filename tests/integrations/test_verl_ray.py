"""verl's RewardLoopManager on real Ray actors: the spec travels by path in verl's config,
each RewardLoopWorker actor builds RLRewardManager (or the naive manager) itself, and
verl stacks the workers' score dicts (padding the batch to the worker count)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rlreward.embedded import embedded_model_path
from tests.integrations import adapter_helpers as H
from tests.integrations import verl_helpers as V

pytest.importorskip("verl")
ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = [
    {"prompt": "what is 2 plus 2", "response": "it is 4", "ground_truth": "4"},
    {"prompt": "what is 3 plus 3", "response": "fail it is 6", "ground_truth": "6"},
    {"prompt": "name a colour", "response": "bad bad red", "ground_truth": "blue"},
]
EXPECTED = [(2 + 0.94 + 1 + 1) / 5, (2 + 0.92 + 1) / 4, (0.94 + 1) / 5]


@pytest.fixture(scope="module")
def ray_cluster():
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    yield
    ray.shutdown()


@pytest.mark.slow
def test_rl_reward_manager_on_ray_reward_loop_workers(ray_cluster, tmp_path):
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    spec = tmp_path / "rules.yaml"
    spec.write_text(yaml.safe_dump(V.rules_spec()))
    tok = H.tokenizer()
    data = H.make_dataproto(tok, SAMPLES)
    config = H.verl_config(
        str(embedded_model_path()), str(spec), manager="RLRewardManager", custom_fn=False
    )
    config.reward.num_workers = 2  # 3 samples: verl pads the batch to 4 and drops the pad
    out = RewardLoopManager(config).compute_rm_score(data)
    valid = H.valid_response_lengths(data)
    got = [out.batch["rm_scores"][i, valid[i] - 1].item() for i in range(3)]
    assert got == pytest.approx(EXPECTED, abs=1e-6)
    cols = out.non_tensor_batch
    assert set(out.meta_info["reward_extra_keys"]) == set(cols)
    assert cols["flaky__error"].tolist() == [0, 1, 0]
    assert cols["tox__aligned"].tolist() == [1.0, 1.0, 0.0]


@pytest.mark.slow
def test_rl_reward_manager_monitor_keys_come_back_from_ray_workers(ray_cluster, tmp_path):
    """Each worker monitors its own chunk, writes its own JSONL ({pid}), and verl stacks
    the monitor/... keys like every other reward_extra_info column."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    spec = tmp_path / "rules.yaml"
    spec.write_text(
        yaml.safe_dump({**V.rules_spec(), "monitors": {"words": {"callable": f"{V.H}:brevity"}}})
    )
    tok = H.tokenizer()
    data = H.make_dataproto(tok, SAMPLES)
    config = H.verl_config(
        str(embedded_model_path()), str(spec), manager="RLRewardManager", custom_fn=False
    )
    config.reward.num_workers = 2
    jsonl = tmp_path / "monitor-{pid}.jsonl"
    config.reward.reward_kwargs.monitor = {"every": 1, "sample_size": 8, "jsonl_path": str(jsonl)}
    out = RewardLoopManager(config).compute_rm_score(data)
    cols = out.non_tensor_batch
    assert set(out.meta_info["reward_extra_keys"]) == set(cols)
    for key in ("monitor/reward_mean", "monitor/reference_mean", "monitor/monitor/words"):
        assert key in cols and np.isfinite(cols[key].astype(float)).all()
    # 3 samples padded to 4: two chunks of 2, each checked by its own worker
    assert cols["monitor/rows_scored"].tolist() == [2.0, 2.0, 2.0]
    files = sorted(tmp_path.glob("monitor-*.jsonl"))
    assert len(files) == 2
    for f in files:
        (line,) = f.read_text().splitlines()
        assert json.loads(line)["step"] == 1
