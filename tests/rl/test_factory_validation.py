"""Every validation rule of create_rl_trainer: a ConfigError naming the argument, value and fix.

None of these may load a model: they run in milliseconds, and the family test proves
it by pointing at a reward "model" directory that has no weights at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlreward.errors import ConfigError, UnknownNameError
from rlreward.rl import RLTrainer, create_rl_trainer

TEXTS = [f"This is helpful answer number {i}, with a clear explanation." for i in range(12)]
CUSTOM = {
    "train_custom_reward_model": True,
    "reward_training_texts": TEXTS,
    "reward_functions": ["length", "sentiment"],
    "reward_function_weights": [0.5, 0.5],
}


def _raises(match: str, **kwargs: object) -> ConfigError:
    kwargs.setdefault("model_name", "embedded")
    with pytest.raises(ConfigError, match=match) as info:
        create_rl_trainer(**kwargs)  # type: ignore[arg-type]
    return info.value


def test_a_valid_ppo_request_passes_validation_and_loads_nothing() -> None:
    trainer = create_rl_trainer("embedded", **CUSTOM)
    assert isinstance(trainer, RLTrainer)
    assert trainer.policy is None and trainer.reward_model_path is None  # nothing loaded yet
    assert trainer.family_report is not None and trainer.family_report.compatible


def test_unknown_algorithm_lists_the_choices() -> None:
    err = _raises("unknown algorithm 'dpo'; known: grpo, ppo", algorithm="dpo", **CUSTOM)
    assert isinstance(err, UnknownNameError)


def test_unknown_backend_lists_the_choices() -> None:
    _raises("unknown backend 'vllm'; known: trl, unsloth", backend="vllm", **CUSTOM)


def test_ppo_without_a_reward_source_says_which_ones_exist() -> None:
    err = _raises("algorithm='ppo' needs a reward: reward_functions")
    assert "reward_model_name" in str(err) and "reward_spec" in str(err)


def test_ppo_with_two_reward_sources_names_both(tmp_path: Path) -> None:
    err = _raises(
        "exactly one reward model source, got 2", reward_model_path=str(tmp_path), **CUSTOM
    )
    assert "train_custom_reward_model=True" in str(err) and str(tmp_path) in str(err)
    _raises("got 2", reward_model_name="org/rm", reward_model_path=str(tmp_path))


def test_ppo_takes_rule_functions_or_a_spec_without_a_reward_model() -> None:
    """The reward goes through the runner; the value model then starts from the policy."""
    trainer = create_rl_trainer("embedded", reward_functions=["length", "safety"])
    assert trainer.family_report is None and trainer.config.lora  # LoRA policy by default
    spec = {"graders": {"short": {"type": "reward_function", "function": "length"}}}
    assert create_rl_trainer("embedded", reward_spec=spec).family_report is None


def test_grpo_needs_some_reward() -> None:
    _raises("algorithm='grpo' needs a reward", algorithm="grpo")


def test_weights_must_be_positive_and_one_per_function() -> None:
    _raises(
        r"reward_function_weights\[1\] = -0.5 is not allowed",
        **{**CUSTOM, "reward_function_weights": [0.5, -0.5]},
    )
    _raises(
        r"reward_function_weights\[0\] = 0 is not allowed",
        **{**CUSTOM, "reward_function_weights": [0, 1]},
    )
    _raises(
        "got 3 weights for 2 reward functions", **{**CUSTOM, "reward_function_weights": [1, 1, 1]}
    )


def test_weights_without_functions() -> None:
    _raises(
        "reward_function_weights=.* given without reward_functions",
        algorithm="grpo",
        reward_model_name="o/rm",
        reward_function_weights=[1.0],
    )


def test_reward_training_needs_ten_texts() -> None:
    err = _raises(
        "reward_training_texts has 9 texts; at least 10",
        **{**CUSTOM, "reward_training_texts": TEXTS[:9]},
    )
    assert "load_reward_texts" in str(err)
    _raises("needs reward_training_texts", **{**CUSTOM, "reward_training_texts": None})
    _raises(
        r"reward_training_texts\[3\] must be a str",
        **{**CUSTOM, "reward_training_texts": [*TEXTS[:3], 7, *TEXTS]},
    )


def test_reward_training_needs_known_functions() -> None:
    err = _raises(
        "unknown reward function 'sentimnt'; known: ",
        **{**CUSTOM, "reward_functions": ["length", "sentimnt"]},
    )
    assert "sentiment" in str(err) and "coherence" in str(err)
    _raises(
        "train_custom_reward_model=True needs reward_functions",
        **{**CUSTOM, "reward_functions": None, "reward_function_weights": None},
    )


def test_reward_model_path_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    _raises(f"reward_model_path='{missing}' is not a directory", reward_model_path=str(missing))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("batch_size", 0, "batch_size=0 is not allowed; use an integer >= 1"),
        ("batch_size", 2.5, "batch_size=2.5 is not allowed"),
        ("learning_rate", -1e-5, "learning_rate=-1e-05 is not allowed; use a number > 0"),
        ("num_epochs", 0, "num_epochs=0 is not allowed"),
        ("max_samples", 0, r"max_samples=0 is not allowed; use an integer >= 1 \(or None\)"),
        ("reward_training_epochs", 0, "reward_training_epochs = 0 is not allowed"),
        ("reward_training_lr", 0.0, "reward_training_lr = 0.0 is not allowed"),
        ("reward_training_batch_size", 0, "reward_training_batch_size = 0 is not allowed"),
        ("reward_training_policy_samples", -1, "reward_training_policy_samples = -1 is not"),
        ("policy_warmup_steps", -1, "policy_warmup_steps=-1 is not allowed"),
    ],
)
def test_numbers_are_checked(name: str, value: object, expected: str) -> None:
    _raises(expected, **{**CUSTOM, name: value})


def test_unknown_argument_suggests_the_close_one() -> None:
    _raises(
        "unknown arguments 'reward_function_weight' \\(did you mean 'reward_function_weights'\\?\\)",
        reward_function_weight=[1.0],
        **CUSTOM,
    )


def test_ppo_options_are_checked() -> None:
    _raises(
        "ppo_options has unknown keys \\['kl'\\]; each must be a field of PPOSettings or PPOConfig",
        ppo_options={"kl": 0.1},
        **CUSTOM,
    )


def test_ppo_value_trainable_is_checked() -> None:
    _raises(
        "ppo_options\\['value_trainable'\\] must be one of \\['head', 'all'\\]",
        ppo_options={"value_trainable": "lora"},
        **CUSTOM,
    )


def test_unsloth_4bit_needs_lora() -> None:
    _raises(
        "load_in_4bit=True and use_lora=False cannot train",
        backend="unsloth",
        use_lora=False,
        **CUSTOM,
    )


def test_missing_local_dataset_file() -> None:
    _raises(
        "dataset_name='prompts.jsonl' looks like a local file but does not exist",
        dataset_name="prompts.jsonl",
        **CUSTOM,
    )


def test_family_mismatch_is_caught_before_any_weights_load(tmp_path: Path) -> None:
    """The reward model directory holds a config and a *different* tokenizer but no weights."""
    from transformers import GPT2Config

    from tests.training.tiny import word_tokenizer

    tok = word_tokenizer()
    tok.save_pretrained(tmp_path)
    GPT2Config(vocab_size=len(tok), n_layer=1, n_embd=8, n_head=1).save_pretrained(tmp_path)
    from rlreward.training.family import FamilyMismatchError

    with pytest.raises(FamilyMismatchError, match="tokenizer vocabularies differ") as info:
        create_rl_trainer("embedded", reward_model_path=str(tmp_path))
    # the fix names the policy's own base
    assert "reward_training_base_model='embedded-smollm2'" in str(info.value)


def test_grpo_skips_the_family_check() -> None:
    trainer = create_rl_trainer("embedded", algorithm="grpo", reward_functions=["length"])
    assert trainer.family_report is None


def test_unsloth_without_a_gpu_raises_and_names_the_alternative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a GPU machine too
    from rlreward.rl.unsloth import BackendUnavailableError

    for algorithm, extra in (("ppo", CUSTOM), ("grpo", {"reward_functions": ["length"]})):
        with pytest.raises(BackendUnavailableError) as info:
            create_rl_trainer("embedded", algorithm=algorithm, backend="unsloth", **extra)
        msg = str(info.value)
        assert "needs a CUDA GPU" in msg and "torch.cuda.is_available() is False" in msg
        assert "use backend='trl'" in msg


def test_reward_model_training_is_one_typed_object() -> None:
    """The seed's flat keywords become one RewardModelTrainingConfig; hyperparameters are
    declared once (RewardModelHyperparameters) and their defaults come from there."""
    from rlreward.training.config import RewardModelTrainingConfig
    from rlreward.training.settings import RewardModelHyperparameters

    trainer = create_rl_trainer(
        "embedded",
        **CUSTOM,
        reward_training_epochs=2,
        reward_training_lr=1e-4,
        reward_training_output_dir="out/rm",
    )
    rmt = trainer.config.reward_model_training
    assert isinstance(rmt, RewardModelTrainingConfig)
    assert (rmt.num_epochs, rmt.learning_rate, rmt.output_dir) == (2, 1e-4, "out/rm")
    assert rmt.training_texts == TEXTS and rmt.reward_functions == ["length", "sentiment"]
    assert rmt.base_model_name == "embedded-smollm2"  # the policy's family
    assert rmt.batch_size == RewardModelHyperparameters().batch_size  # one default
    assert trainer.config.reward_model_source == "out/rm"

    typed = RewardModelTrainingConfig(
        base_model_name="embedded-smollm2",
        training_texts=TEXTS,
        reward_functions=["length", "safety"],
        output_dir="out/typed",
        num_epochs=1,
    )
    trainer = create_rl_trainer("embedded", reward_model_training=typed)
    assert trainer.config.train_custom_reward_model  # given whole, it says what to train
    assert trainer.config.reward_functions == ["length", "safety"]
    assert trainer.label_reward is not None and list(trainer.label_reward.graders) == [
        "length",
        "safety",
    ]
    _raises(
        "give reward_model_training or the flat keywords",
        reward_model_training=typed,
        reward_training_epochs=1,
    )
    _raises(
        "reward_training_epochs given without train_custom_reward_model=True",
        reward_functions=["length"],
        reward_training_epochs=1,
    )
    _raises(
        "reward_model_training has unknown fields \\['epochs'\\]",
        train_custom_reward_model=True,
        reward_functions=["length"],
        reward_model_training={"training_texts": TEXTS, "epochs": 1},
    )


def test_train_reward_model_options_are_the_hyperparameters() -> None:
    from rlreward.training.trainer import RewardModelTrainer

    trainer = RewardModelTrainer(reward_functions=["length"])
    with pytest.raises(ConfigError, match="'num_epoch' \\(did you mean 'num_epochs'\\?\\)"):
        trainer.settings("/tmp/unused", num_epoch=2)
    assert trainer.settings("/tmp/unused", num_epochs=2).num_epochs == 2
