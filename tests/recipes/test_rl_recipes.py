"""The RL recipes' shortened runs: ppo_unsloth.py writes metrics.json + PNG with the right keys."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ppo_unsloth_quick_run_writes_metrics_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    out = tmp_path / "run"
    metrics = _load("ppo_unsloth").main(["--quick", "--output-dir", str(out)])
    printed = capsys.readouterr().out
    if not torch.cuda.is_available():
        assert "No CUDA GPU: using the TRL backend (backend='trl')" in printed
    assert "reward model held-out Spearman:" in printed
    assert "true composite on" in printed

    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert {"reward_model", "ppo", "fixed_prompts", "success", "timings_s", "paths"} <= set(saved)
    rm = saved["reward_model"]
    assert -1.0 <= rm["heldout_spearman"] <= 1.0 and rm["heldout_n"] > 0
    ppo = saved["ppo"]
    assert ppo["steps"] == len(ppo["mean_reward_per_step"]) >= 2
    assert {"first_quarter_mean", "last_quarter_mean", "kl_per_step"} <= set(ppo)
    fixed = saved["fixed_prompts"]
    for when in ("before", "after"):
        assert {"true_composite_mean", "reward_model_mean", "true_composite"} <= set(fixed[when])
        assert len(fixed[when]["true_composite"]) == fixed["n_prompts"] * fixed["n_samples"]
        assert 0.0 <= fixed[when]["true_composite_mean"] <= 1.0
    # the held-out prompts are not among PPO's training prompts
    assert set(saved["success"]) == {"ppo_reward_rose", "true_composite_rose"}

    png = out / "ppo_reward.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (Path(saved["paths"]["reward_model"]) / "rlreward_reward_model.json").is_file()
    assert (Path(saved["paths"]["policy"]) / "model.safetensors").is_file()


def test_split_prompts_holds_out_a_fixed_set() -> None:
    recipe = _load("ppo_unsloth")
    prompts = [f"q{i}" for i in range(48)]
    train, held = recipe.split_prompts(prompts, 12)
    assert len(held) == 12 and not set(held) & set(train) and len(train) == 36
    assert recipe.split_prompts(prompts, 12) == (train, held)  # fixed, not random


def test_grpo_trl_quick_run_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    metrics = _load("grpo_trl").main(["--quick", "--output-dir", str(tmp_path / "grpo")])
    assert (
        "OPENAI_API_KEY is not set: rewarding with rule functions only" in capsys.readouterr().out
    )
    assert metrics["judges"] is False and metrics["reward_trend"]["steps"] == 2
    assert "rewards/safety/mean" in metrics["history"][-1]
    assert (tmp_path / "grpo" / "metrics.json").is_file()


def test_grpo_trl_quick_run_with_llm_judges(
    openai_server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    metrics = _load("grpo_trl").main(
        ["--quick", "--judge-model", "judge", "--output-dir", str(tmp_path / "g")]
    )
    assert (
        "LLM judges relevance + harmfulness (judge) join the rule functions"
        in capsys.readouterr().out
    )
    last = metrics["history"][-1]
    assert {"rewards/relevance/mean", "rewards/harmfulness/mean", "rewards/safety/mean"} <= set(
        last
    )
    assert last["rlreward/relevance/error_rate"] == 0.0
    # 2 steps x 4 completions, two judges each (the result cache may answer repeats)
    assert 0 < openai_server.n_requests <= 16
