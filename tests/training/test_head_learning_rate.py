"""The reward head's own learning rate: validation, defaults, the real optimizer's groups."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.data import load_reward_texts
from rlreward.errors import ConfigError
from rlreward.models.reward_model_io import METADATA_FILE
from rlreward.training.trainer import EMBEDDED_HEAD_LEARNING_RATE, RewardModelTrainer
from tests.training.tiny import tiny_gpt2_dir

TEXTS = load_reward_texts()


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return str(tiny_gpt2_dir(tmp_path_factory.mktemp("tiny_gpt2_head")))


def groups(hf):
    """(lr, weight_decay, {parameter names}) per group of the HF trainer's real optimizer
    (``initial_lr``: the rate the scheduler started from, once training ran)."""
    optimizer = hf.optimizer or hf.create_optimizer()
    names = {id(p): n for n, p in hf.model.named_parameters()}
    return [
        (g.get("initial_lr", g["lr"]), g["weight_decay"], {names[id(p)] for p in g["params"]})
        for g in optimizer.param_groups
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (-1e-3, "-0.001"), ("1e-3", "'1e-3'"), (True, "True"), (float("nan"), "nan")],
)
def test_head_learning_rate_is_checked_before_any_model_loads(tmp_path, value, shown):
    trainer = RewardModelTrainer("/nonexistent/model", reward_functions=["length"])
    data = {"text": TEXTS[:12], "composite": [i / 12 for i in range(12)]}
    expected = (
        rf"train_reward_model.head_learning_rate = {shown} is not allowed; use a number > 0 "
        r"\(the reward head's learning rate, e.g. 1e-3\) or None for the default"
    )
    with pytest.raises(ConfigError, match=expected):
        trainer.train_reward_model(data, str(tmp_path), head_learning_rate=value)


def test_config_validates_and_passes_head_learning_rate(tmp_path):
    from rlreward.training.config import RewardModelTrainingConfig

    base = {
        "base_model_name": "embedded",
        "training_texts": TEXTS[:10],
        "reward_functions": ["length"],
        "output_dir": str(tmp_path),
    }
    assert RewardModelTrainingConfig(**base).head_learning_rate is None
    with pytest.raises(ConfigError, match=r"RewardModelTrainingConfig.head_learning_rate = 0 "):
        RewardModelTrainingConfig(**base, head_learning_rate=0)
    config = RewardModelTrainingConfig(**base, head_learning_rate=3e-3)
    assert config.head_learning_rate == 3e-3


def test_defaults_per_case(gpt2_dir):
    minilm = RewardModelTrainer(reward_functions=["length"])
    assert EMBEDDED_HEAD_LEARNING_RATE == 1e-3
    # full fine-tune of the embedded MiniLM: the head learns at max(lr, 1e-3)
    assert minilm.settings("/tmp/unused", learning_rate=1e-5).head_learning_rate == 1e-3
    assert minilm.settings("/tmp/unused", learning_rate=2e-3).head_learning_rate == 2e-3
    resolved = minilm.settings("/tmp/unused")
    assert (resolved.learning_rate, resolved.head_learning_rate) == (2e-4, 1e-3)
    # an explicit value always wins
    given = minilm.settings("/tmp/unused", learning_rate=1e-5, head_learning_rate=5e-5)
    assert given.head_learning_rate == 5e-5
    # LoRA (the head sits in modules_to_save) and other bases: one rate, as before
    lora = RewardModelTrainer(reward_functions=["length"], use_lora=True)
    assert lora.settings("/tmp/unused", learning_rate=5e-4).head_learning_rate == 5e-4
    other = RewardModelTrainer(gpt2_dir, reward_functions=["length"])
    assert other.settings("/tmp/unused", learning_rate=1e-5).head_learning_rate == 1e-5


def test_minilm_optimizer_has_the_head_in_its_own_groups(tmp_path, caplog):
    """The real HF Trainer's optimizer: the head (BERT's pooler + classifier) at the head
    rate, the rest at lr, and the weight-decay split kept (weights decay, biases do not)."""
    import logging

    trainer = RewardModelTrainer(reward_functions=["length", "sentiment"])
    data = trainer.generate_training_data(TEXTS[:24], show_progress=False)
    with caplog.at_level(logging.WARNING, logger="rlreward.training.trainer"):
        run = trainer.prepare(
            data, str(tmp_path), learning_rate=1e-5, weight_decay=0.01, show_progress=False
        )
    # few texts at a low rate: measured short even with the head's own rate, so it warns
    assert "learning_rate=1e-05 on 19 training texts is slow for the embedded MiniLM" in (
        caplog.text
    )
    found = groups(run.trainer)
    head = [g for g in found if any(n.startswith(("classifier.", "bert.pooler.")) for n in g[2])]
    assert sorted((lr, wd, sorted(n)) for lr, wd, n in head) == [
        (1e-3, 0.0, ["bert.pooler.dense.bias", "classifier.bias"]),
        (1e-3, 0.01, ["bert.pooler.dense.weight", "classifier.weight"]),
    ]
    rest = [g for g in found if g not in head]
    assert {lr for lr, _, _ in rest} == {1e-5}
    trainable = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert set().union(*(n for _, _, n in found)) == trainable
    assert sum(len(n) for _, _, n in found) == len(trainable)  # each parameter once


def test_training_uses_both_rates_and_records_the_head_rate(tmp_path, gpt2_dir):
    """A run with a near-zero backbone rate: only the head moves; the metadata says why."""
    trainer = RewardModelTrainer(gpt2_dir, reward_functions=["length", "sentiment"])
    data = trainer.generate_training_data(TEXTS[:24], show_progress=False)
    before = trainer.prepare(data, str(tmp_path / "x"), show_progress=False).model
    start = {n: p.detach().clone() for n, p in before.named_parameters()}
    trainer.train_reward_model(
        data,
        str(tmp_path / "rm"),
        num_epochs=1,
        batch_size=4,
        learning_rate=1e-9,
        head_learning_rate=1e-2,
        show_progress=False,
    )
    found = groups(trainer.last_run.trainer)
    assert {lr for lr, _, names in found if names == {"score.weight"}} == {1e-2}
    assert {lr for lr, _, names in found if "score.weight" not in names} == {1e-9}
    moved = {
        n: float((p.detach() - start[n]).abs().max())
        for n, p in trainer.last_run.model.named_parameters()
    }
    assert moved.pop("score.weight") > 1e-4
    assert max(moved.values()) < 1e-6
    meta = json.loads((tmp_path / "rm" / METADATA_FILE).read_text())
    assert meta["training"]["head_learning_rate"] == 1e-2
    assert meta["training"]["learning_rate"] == 1e-9


def test_one_rate_keeps_the_plain_optimizer(tmp_path, gpt2_dir):
    trainer = RewardModelTrainer(gpt2_dir, reward_functions=["length"])
    data = trainer.generate_training_data(TEXTS[:16], show_progress=False)
    run = trainer.prepare(data, str(tmp_path), learning_rate=1e-4, show_progress=False)
    assert run.settings.head_learning_rate == 1e-4
    found = groups(run.trainer)
    assert len(found) == 2 and {lr for lr, _, _ in found} == {1e-4}  # decay / no decay


def test_lora_head_in_modules_to_save_gets_the_head_rate(tmp_path, gpt2_dir):
    trainer = RewardModelTrainer(
        gpt2_dir, reward_functions=["length"], use_lora=True, lora_config={"r": 2}
    )
    data = trainer.generate_training_data(TEXTS[:16], show_progress=False)
    run = trainer.prepare(
        data, str(tmp_path), learning_rate=5e-4, head_learning_rate=2e-3, show_progress=False
    )
    found = groups(run.trainer)
    head = [names for lr, _, names in found if lr == 2e-3]
    assert len(head) == 1 and len(head[0]) == 1
    (name,) = head[0]
    assert "modules_to_save" in name and name.endswith("score.modules_to_save.default.weight")
    others = set().union(*(n for lr, _, n in found if lr == 5e-4))
    assert others and all("lora_" in n for n in others)
    # the default for LoRA: one rate (the lead's measured LoRA runs are unchanged)
    run = trainer.prepare(data, str(tmp_path), learning_rate=5e-4, show_progress=False)
    assert {lr for lr, _, _ in groups(run.trainer)} == {5e-4}


def test_pairwise_reward_trainer_gets_the_head_rate(tmp_path, gpt2_dir):
    from trl import RewardTrainer

    trainer = RewardModelTrainer(gpt2_dir, reward_functions=["length"], objective="pairwise")
    data = trainer.generate_training_data(TEXTS[:16], show_progress=False)
    run = trainer.prepare(
        data, str(tmp_path), learning_rate=1e-5, head_learning_rate=1e-3, show_progress=False
    )
    assert isinstance(run.trainer, RewardTrainer)
    found = groups(run.trainer)
    assert [names for lr, _, names in found if lr == 1e-3] == [{"score.weight"}]
