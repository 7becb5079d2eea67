"""Short PPO runs on tiny models on CPU: reward-model training then PPO, and save/load."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from rlreward.data import load_reward_texts
from rlreward.rl import create_rl_trainer
from tests.rl.conftest import PROMPTS

FAST_PPO = {"total_episodes": 4, "num_ppo_epochs": 1}


def test_custom_reward_model_then_ppo_then_save_and_load(
    policy_dir: Path, tiny_reward_base: Path, tmp_path: Path
) -> None:
    """The seed's flow in one call: train() trains the reward model first, then runs PPO."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlreward.rl.trainer import POLICY_METADATA_FILE

    trainer = create_rl_trainer(
        model_name=str(policy_dir),
        dataset_name=PROMPTS,
        algorithm="ppo",
        backend="trl",
        train_custom_reward_model=True,
        reward_training_texts=load_reward_texts()[:24],
        reward_functions=["length", "sentiment", "safety"],
        reward_function_weights=[0.3, 0.4, 0.3],
        reward_training_base_model=str(tiny_reward_base),
        reward_training_output_dir=str(tmp_path / "rm"),
        reward_training_epochs=1,
        reward_training_batch_size=8,
        batch_size=2,
        learning_rate=1e-4,
        max_new_tokens=6,
        max_prompt_length=12,
        output_dir=str(tmp_path / "out"),
        ppo_options=FAST_PPO,
        show_progress=False,
    )
    with pytest.raises(RuntimeError, match=r"before train\(\)"):
        trainer.save_model()
    summary = trainer.train()

    # stage 1 happened: a reward model with rlreward metadata and held-out metrics
    assert trainer.reward_model_path == str(tmp_path / "rm")
    assert (tmp_path / "rm" / "rlreward_reward_model.json").is_file()
    assert "eval" in trainer.reward_model_metrics
    # stage 2: two PPO steps (4 episodes / batch 2), each logging TRL's reward and ours
    assert len(trainer.history) == 2
    for step in trainer.history:
        # the reward TRL optimised is exactly what the text-level adapter scored
        assert step["objective/scores"] == pytest.approx(step["reward/mean"], abs=1e-5)
        assert "objective/kl" in step
    assert summary["reward_trend"]["steps"] == 2
    assert summary["algorithm"] == "ppo" and summary["timings_s"]["rl_s"] > 0

    path = trainer.save_model()
    assert path == str(tmp_path / "out")
    meta = json.loads((Path(path) / POLICY_METADATA_FILE).read_text())
    assert meta["reward_model_path"] == str(tmp_path / "rm") and len(meta["history"]) == 2
    loaded = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.padding_side == "left" and tok.eos_token == "[SEP]"
    ids = torch.tensor([[101, 2129, 2079, 1045, 102]])
    trained = trainer.policy.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, trained(ids).logits, atol=1e-5)
        original = AutoModelForCausalLM.from_pretrained(policy_dir)(ids).logits
    assert not torch.allclose(original, loaded(ids).logits)  # PPO changed the weights


def test_ppo_with_a_ready_reward_model_and_a_jsonl_dataset(
    policy_dir: Path, minilm_reward_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text("\n".join(json.dumps({"question": p, "id": i}) for i, p in enumerate(PROMPTS)))
    trainer = create_rl_trainer(
        str(policy_dir),
        str(data),
        reward_model_path=str(minilm_reward_dir),
        batch_size=2,
        max_samples=4,
        max_new_tokens=6,
        max_prompt_length=12,
        output_dir=str(tmp_path / "out"),
        ppo_options=FAST_PPO,
        show_progress=False,
    )
    trl_trainer = trainer.prepare()
    assert len(trl_trainer.train_dataset) == 4  # max_samples
    assert trl_trainer.args.use_cpu and not trl_trainer.args.bf16
    assert trl_trainer.args.num_sample_generations == 0 and trl_trainer.args.stop_token == "eos"
    assert trainer.policy.generation_config.eos_token_id == trainer.tokenizer.sep_token_id
    trainer.train()
    assert [s["reward/mean"] for s in trainer.history] == pytest.approx(
        [s["objective/scores"] for s in trainer.history], abs=1e-5
    )


def test_ppo_with_a_gpt2_family_policy_and_reward_model_without_pad(tmp_path: Path) -> None:
    """DialoGPT-like: no pad token (eos pads), a reward model with a native ``score`` head."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.training.tiny import tiny_gpt2_dir, word_tokenizer

    tok = word_tokenizer()
    assert tok.pad_token is None
    reward_dir = tiny_gpt2_dir(tmp_path / "rm", tok)
    policy_dir = tmp_path / "policy"
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=128)
    GPT2LMHeadModel(cfg).save_pretrained(policy_dir)
    tok.save_pretrained(policy_dir)
    trainer = create_rl_trainer(
        str(policy_dir),
        ["how do i boil an egg", "why is the sky blue", "how can i sleep", "save money please"],
        reward_model_path=str(reward_dir),
        batch_size=2,
        max_new_tokens=5,
        max_prompt_length=8,
        output_dir=str(tmp_path / "out"),
        ppo_options={**FAST_PPO, "value_trainable": "all"},
        show_progress=False,
    )
    value = trainer.prepare().model.value_model
    assert trainer.value_trainable == "all"
    assert all(p.requires_grad for p in value.parameters())  # TRL's way, asked for
    trainer.train()
    assert trainer.tokenizer.pad_token == trainer.tokenizer.eos_token  # pads with eos
    assert len(trainer.history) == 2
    for step in trainer.history:
        assert step["objective/scores"] == pytest.approx(step["reward/mean"], abs=1e-5)


def test_ppo_on_rule_functions_through_the_runner(
    policy_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No reward model: PPO's reward is the spec's aggregate, the value model the policy's base."""
    trainer = create_rl_trainer(
        str(policy_dir),
        PROMPTS[:4],
        reward_functions=["length", "safety"],
        reward_function_weights=[0.5, 0.5],
        batch_size=2,
        max_new_tokens=6,
        output_dir=str(tmp_path / "out"),
        ppo_options=FAST_PPO,
        show_progress=False,
    )
    assert trainer.family_report is None
    trl_trainer = trainer.prepare()
    assert type(trl_trainer.model.value_model).__name__ == "LlamaForSequenceClassification"
    assert trl_trainer.is_peft_model and trl_trainer.ref_model is None  # LoRA: no second copy
    # a LoRA policy: only the value head learns (one learning rate, sized for adapters)
    value = trl_trainer.model.value_model
    assert trainer.value_trainable == "head"
    learning = {n for n, p in value.named_parameters() if p.requires_grad}
    assert learning == {"score.weight", "score.bias"}
    before = {n: p.detach().clone() for n, p in value.named_parameters()}
    # a new head: every value starts at the expected reward (0 without a reward model)
    assert not before["score.weight"].any() and not before["score.bias"].any()
    trainer.train()
    after = dict(value.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before if n not in learning)
    assert any(not torch.equal(before[n], after[n]) for n in learning)
    # the frozen backbone read each rollout row once: the PPO epochs reused its features
    feats = value.model
    assert feats.computed == 4 and feats.reused == 4 * FAST_PPO["num_ppo_epochs"]
    assert "===training policy===" not in capsys.readouterr().out  # TRL's banner is dropped
    assert len(trainer.history) == 2
    results = trainer.scorer.last_results  # the runner's results for the last rollouts
    assert set(results) == {"length", "safety", "reward"}
    last = [r.score for r in results["reward"]]
    assert trainer.history[-1]["objective/scores"] == pytest.approx(sum(last) / len(last), abs=1e-5)


def test_quiet_trl_generation_drops_only_trls_generate_notice() -> None:
    """transformers' notice about TRL's generate call is dropped while PPO trains, only then."""
    from rlreward.rl.ppo import TRL_GENERATE_NOTICE, quiet_trl_generation

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    log = logging.getLogger("transformers.generation.utils")
    keep = Keep()
    log.addHandler(keep)
    try:
        notice = TRL_GENERATE_NOTICE + "=({'output_scores'}) is deprecated"
        with quiet_trl_generation():
            log.warning(notice)
            log.warning("another warning")
        log.warning(notice)
    finally:
        log.removeHandler(keep)
    assert seen == ["another warning", notice]
