"""The RL recipes' shortened runs: ppo_unsloth.py writes metrics.json + PNG with the right keys."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
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
    """The real chain at toy sizes: SmolLM2 policy, SmolLM2 LoRA reward model, PPO, checks."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    metrics = _load("ppo_unsloth").main(["--quick", "--output-dir", str(out)])
    captured = capsys.readouterr()
    printed = captured.out
    assert "--quick: a smoke run" in printed
    if not torch.cuda.is_available():
        assert "No CUDA GPU: using the TRL backend (backend='trl')" in printed
    assert "reproduces its target poorly" not in captured.err + printed  # no fidelity alarm
    assert "true composite on" in printed and "fluency (frozen base NLL" in printed
    assert "on topic (relevance to the question" in printed

    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert {"reward_model", "ppo", "fixed_prompts", "success", "timings_s", "paths"} <= set(saved)
    assert saved["quick_smoke_run"] is True and saved["policy"] == "embedded"
    rm = saved["reward_model"]
    assert rm["base"] == "embedded-smollm2" and rm["lora"] is True
    assert rm["own_split_n"] > 0 and rm["heldout_policy_samples_n"] == 4
    # the default task's gate is graded at PPO time: the model alone is checked against
    # the ungated composite it learned, PPO's reward against the true (gated) one
    assert rm["trained_reward"].startswith("the model's score capped by the gates")
    assert rm["model_alone_vs_ungated_before"] is not None
    assert "the reward model alone vs the ungated composite" in printed
    ppo = saved["ppo"]
    assert ppo["steps"] == len(ppo["mean_reward_per_step"]) == 1
    assert len(ppo["kl_per_step"]) == 1
    fixed = saved["fixed_prompts"]
    for when in ("before", "after"):
        stage = fixed[when]
        assert len(stage["true_composite"]) == fixed["n_prompts"] * fixed["n_samples"] == 4
        assert 0.0 <= stage["true_composite_mean"] <= 1.0 and stage["true_composite_se"] >= 0
        assert stage["base_nll_mean"] > 0  # the frozen base model read the answers
        assert 0.0 <= stage["relevance_mean"] <= 1.0  # MiniLM read answers and questions
    assert {
        "rise_in_se",
        "true_composite_rose_3se",
        "fluency_nll_change",
        "relevance_change",
    } <= set(saved["success"])
    examples = (out / "examples.md").read_text()
    assert fixed["prompts"][0] in examples and "- after (" in examples

    png = out / "ppo_reward.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (Path(saved["paths"]["reward_model"]) / "rlreward_reward_model.json").is_file()
    # the saved policy is a plain model that generates with the usual two lines
    policy = saved["paths"]["policy"]
    assert not (Path(policy) / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(policy)
    tok = AutoTokenizer.from_pretrained(policy)
    gen = model.generate(**tok("Why is the sky blue?", return_tensors="pt"), max_new_tokens=4)
    assert gen.shape[1] > len(tok("Why is the sky blue?")["input_ids"])
    assert model.generation_config.eos_token_id == tok.eos_token_id == 2
    assert ppo["value_trainable"] == "head" and ppo["max_new_tokens"] == 8

    # the run's policy re-evaluated with more samples (scripts/eval_ppo_policies.py)
    script = Path(__file__).resolve().parents[2] / "scripts" / "eval_ppo_policies.py"
    done = subprocess.run(
        [sys.executable, str(script), str(out), "--samples", "2", "--no-append"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| base policy |" in done.stdout and f"| {out} |" in done.stdout
    assert "(n=8, seed 99)" in done.stdout


def test_split_prompts_holds_out_a_fixed_set() -> None:
    recipe = _load("ppo_unsloth")
    prompts = [f"q{i}" for i in range(48)]
    train, held = recipe.split_prompts(prompts, 12)
    assert len(held) == 12 and not set(held) & set(train) and len(train) == 36
    assert recipe.split_prompts(prompts, 12) == (train, held)  # fixed, not random


def test_ppo_settings_are_per_task_and_flags_win() -> None:
    recipe = _load("ppo_unsloth")
    gated = recipe.parse_args([])
    assert (gated.task, gated.episodes, gated.lr, gated.kl_coef) == ("concise", 80, 5e-4, 0.1)
    assert (gated.eval_samples, gated.check_samples) == (32, 8)  # 12 x 32 answers, 96 read
    # the ungated variant keeps the settings of the run whose reward was gamed
    old = recipe.parse_args(["--task", "concise-ungated"])
    assert (old.episodes, old.lr, old.kl_coef) == (64, 1e-3, 0.02)
    assert recipe.parse_args(["--lr", "2e-4"]).lr == 2e-4
    assert recipe.parse_args(["--quick"]).output_dir == "outputs/ppo_unsloth_quick"


def test_response_nll_in_batches_equals_one_row_at_a_time() -> None:
    import math

    import torch

    from rlreward.rl.policy import encode_prompt, load_policy

    recipe = _load("ppo_unsloth")
    bundle = load_policy("embedded")
    model, tok = bundle.model.eval(), bundle.tokenizer
    # a prompt asked three times (its cache is shared, across two batches) and answers
    # of different lengths in one batch
    prompts = ["What is photosynthesis?"] * 3 + ["How do I boil an egg?", "Why?"]
    answers = [
        "Plants make food from light.",
        "Light, water and air become sugar in a leaf, with oxygen left over.",
        "Sugar.",
        "Boil it for nine minutes, then cool it.",
        "",
    ]
    batched = recipe.response_nll(model, tok, prompts, answers, batch_size=2)
    with torch.inference_mode():
        for p, r, got in zip(prompts, answers, batched, strict=True):
            a = tok(r, add_special_tokens=False)["input_ids"]
            if not a:
                assert math.isnan(got)
                continue
            q = encode_prompt(tok, p, max_length=1 << 20)
            ids = torch.tensor([q + a])
            logits = model(input_ids=ids).logits[0, len(q) - 1 : -1]
            one = float(torch.nn.functional.cross_entropy(logits, ids[0, len(q) :]))
            assert got == pytest.approx(one, abs=1e-4)


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
    # the judge spec's reward joins the rule functions as one member, "spec"
    assert {"rewards/spec/mean", "rewards/safety/mean"} <= set(last)
    # and each judge inside it keeps its own curve
    assert {"rewards/spec/relevance/mean", "rewards/spec/harmfulness/mean"} <= set(last)
    assert last["rlreward/spec/error_rate"] == 0.0
    # 2 steps x 4 completions, two judges each (the result cache may answer repeats)
    assert 0 < openai_server.n_requests <= 16
