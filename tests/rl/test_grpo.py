"""Short GRPO runs on a tiny policy on CPU with rlreward rewards through the TRL adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlreward.rl import create_rl_trainer
from tests.rl.conftest import PROMPTS


def test_grpo_with_rule_functions_and_a_reward_model(
    policy_dir: Path, minilm_reward_dir: Path, tmp_path: Path
) -> None:
    trainer = create_rl_trainer(
        str(policy_dir),
        PROMPTS,
        algorithm="grpo",
        reward_functions=["length", "sentiment"],
        reward_function_weights=[0.25, 0.75],
        reward_model_path=str(minilm_reward_dir),
        reward_model_normalize="sigmoid",
        batch_size=4,
        learning_rate=1e-3,
        max_new_tokens=8,
        output_dir=str(tmp_path / "grpo"),
        grpo_options={"num_generations": 2, "max_steps": 2},
        show_progress=False,
    )
    # the trainer's one reward, weighted as asked (the model is an rlreward-less raw
    # MiniLM, so it joins the [0, 1] functions squashed by a sigmoid)
    agg = trainer.reward.weighted_sum()
    assert dict(agg.grader_weights) == pytest.approx(
        {"length": 0.125, "sentiment": 0.375, "reward_model": 0.5}
    )
    grpo = trainer.prepare()
    # one TRL reward function: the reward's value
    assert [f.__name__ for f in grpo.reward_funcs] == ["reward"]
    assert grpo.args.reward_weights == [1.0]
    summary = trainer.train()
    assert len(trainer.history) == 2
    step = trainer.history[-1]
    for name in ("length", "sentiment", "reward_model"):
        assert f"rewards/{name}/mean" in step  # TRL's per-function logging
        assert f"rlreward/{name}/mean" in step  # the RewardLoggingCallback's
    assert step["rlreward/sentiment/error_rate"] == 0.0
    assert step["rlreward/reward/mean"] == pytest.approx(step["reward"], abs=1e-5)
    assert summary["reward_trend"]["steps"] == 2
    path = trainer.save_model()
    assert (Path(path) / "model.safetensors").is_file()


def test_grpo_with_a_reward_spec(policy_dir: Path, tmp_path: Path) -> None:
    spec = {
        "graders": {
            "short": {"type": "reward_function", "function": "length", "params": {"target_max": 20}}
        },
        "aggregators": [{"type": "weighted_sum", "name": "reward"}],
    }
    trainer = create_rl_trainer(
        str(policy_dir),
        PROMPTS[:4],
        algorithm="grpo",
        reward_spec=spec,
        reward_functions=["safety"],
        batch_size=2,
        max_new_tokens=6,
        output_dir=str(tmp_path / "grpo"),
        grpo_options={"num_generations": 2, "max_steps": 1},
        show_progress=False,
    )
    # the spec's reward nested as one member beside the added function
    assert list(trainer.reward.graders) == ["spec", "safety"]
    trainer.train()
    assert "reward" in trainer.history[-1]


def test_grpo_batch_must_hold_whole_groups() -> None:
    from rlreward.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_size=3 must be a multiple of num_generations=2"):
        create_rl_trainer(
            "embedded",
            algorithm="grpo",
            reward_functions=["length"],
            batch_size=3,
            grpo_options={"num_generations": 2},
        )
    with pytest.raises(ConfigError, match="num_generations=1 is not allowed"):
        create_rl_trainer(
            "embedded",
            algorithm="grpo",
            reward_functions=["length"],
            grpo_options={"num_generations": 1},
        )
