"""RewardModelTrainer on tiny models: data, the traps of the original, LoRA, pairwise."""

from __future__ import annotations

import json
import os

import pytest

import rlreward

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.data import load_reward_records
from rlreward.errors import ConfigError
from rlreward.models.reward_model_io import METADATA_FILE
from rlreward.training.trainer import RewardModelFidelityError, RewardModelTrainer
from tests.training.tiny import tiny_gpt2_dir

RECORDS = load_reward_records()
TEXTS = [r["text"] for r in RECORDS]
PROMPTS = [r["prompt"] for r in RECORDS]


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return str(tiny_gpt2_dir(tmp_path_factory.mktemp("tiny_gpt2")))


def test_training_data_shape_and_string_named_functions_give_real_labels():
    trainer = RewardModelTrainer(
        reward_functions=["length", "sentiment", "safety"], composite_weights=[1, 2, 1]
    )
    data = trainer.generate_training_data(
        TEXTS[:40], prompts=PROMPTS[:40], batch_size=16, show_progress=False
    )
    assert data.num_rows == 40
    assert data.column_names == ["text", "prompt", "length", "sentiment", "safety", "composite"]
    for name in ("length", "sentiment", "safety", "composite"):
        column = data[name]
        assert all(0.0 <= x <= 1.0 for x in column)
        assert len(set(column)) > 1, f"{name} is constant: the original's all-zero-labels trap"
    # the composite is the weighted mean of the (already [0, 1], higher-is-better) scores
    row = data[0]
    expected = (row["length"] + 2 * row["sentiment"] + row["safety"]) / 4
    assert row["composite"] == pytest.approx(expected)


def test_reference_texts_reach_reference_functions():
    trainer = RewardModelTrainer(reward_functions=["length", "bleu"])
    refs = [RECORDS[i]["text"] if i % 2 else "something else entirely" for i in range(20)]
    data = trainer.generate_training_data(TEXTS[:20], reference_texts=refs, show_progress=False)
    assert data["reference"] == refs
    bleu = data["bleu"]
    assert max(bleu) > 0.9 and min(bleu) < 0.1  # identical refs score high, unrelated ones low
    with pytest.raises(ConfigError, match=r"'bleu' needs reference_texts"):
        trainer.generate_training_data(TEXTS[:20], show_progress=False)
    with pytest.raises(ConfigError, match="got 3 reference_texts for 20 texts"):
        trainer.generate_training_data(TEXTS[:20], reference_texts=refs[:3], show_progress=False)


def test_callable_reward_function():
    @rlreward.batched
    def exclaim(response):
        return [min(1.0, t.count("!") / 2) for t in response]

    trainer = RewardModelTrainer(reward_functions=["length", exclaim])
    data = trainer.generate_training_data(TEXTS[:30], show_progress=False)
    assert "exclaim" in data.column_names and len(set(data["exclaim"])) > 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, r"reward_functions is required"),
        ({"reward_functions": ["lenght"]}, r"unknown reward function 'lenght'; known: .*length"),
        (
            {"reward_functions": ["length"], "composite_weights": [1, 2]},
            r"got 2 weights for 1 reward functions",
        ),
        ({"reward_functions": ["length"], "objective": "dpo"}, r"objective = 'dpo' is not allowed"),
        (
            {"reward_functions": ["length"], "lora_config": {"r": 4}},
            r"lora_config is given but use_lora=False",
        ),
        ({"reward_functions": ["length"], "base_model_name": ""}, r"base_model_name is required"),
    ],
)
def test_trainer_validation(kwargs, expected):
    with pytest.raises(ConfigError, match=expected):
        RewardModelTrainer(**kwargs)


def test_train_validation_before_any_model_loads(tmp_path):
    trainer = RewardModelTrainer("/nonexistent/model", reward_functions=["length"])
    constant = {"text": TEXTS[:12], "composite": [0.0] * 12}
    with pytest.raises(
        ConfigError, match=r"every training label \('composite'\) is 0.0: there is nothing to learn"
    ):
        trainer.train_reward_model(constant, str(tmp_path))
    with pytest.raises(ConfigError, match=r"training_data has no 'composite' column"):
        trainer.train_reward_model({"text": TEXTS[:12]}, str(tmp_path))
    with pytest.raises(ConfigError, match=r"training_data.text has 5 texts; at least 10"):
        trainer.train_reward_model({"text": TEXTS[:5], "composite": [0, 1, 0, 1, 0]}, str(tmp_path))
    good = {"text": TEXTS[:12], "composite": [i / 12 for i in range(12)]}
    with pytest.raises(ConfigError, match=r"eval_fraction = 1.5 is not allowed"):
        trainer.train_reward_model(good, str(tmp_path), eval_fraction=1.5)
    with pytest.raises(ConfigError, match=r"batch_size = 0 is not allowed"):
        trainer.train_reward_model(good, str(tmp_path), batch_size=0)


def test_processing_class_not_tokenizer_and_dynamic_padding(tmp_path):
    """Trap: transformers 5 rejects Trainer(tokenizer=...); trap: padding everything to 512."""
    import transformers
    from transformers import Trainer

    assert int(transformers.__version__.split(".")[0]) >= 5
    trainer = RewardModelTrainer(reward_functions=["length", "sentiment"])
    data = trainer.generate_training_data(TEXTS[:48], show_progress=False)
    run = trainer.prepare(data, str(tmp_path), batch_size=8, max_length=512, show_progress=False)
    with pytest.raises(TypeError, match="tokenizer"):
        Trainer(model=run.model, tokenizer=run.tokenizer)  # what the original did
    assert run.trainer.processing_class is run.tokenizer
    batch = next(iter(run.trainer.get_train_dataloader()))
    width = batch["input_ids"].shape[1]
    assert width < 200, "batches must be padded to their longest text, not to max_length=512"
    assert int(batch["attention_mask"].sum(dim=1).max()) == width  # the longest text fills it
    assert run.input_format == "text"
    # the regression head starts at the label mean (weights 0), not at random noise around 0
    labels = run.train_rows["composite"]
    head = run.model.classifier
    assert float(head.weight.detach().abs().max()) == 0.0
    assert float(head.bias.detach()) == pytest.approx(sum(labels) / len(labels), abs=1e-6)


def test_gpt2_family_without_pad_token_trains_with_batches(tmp_path, gpt2_dir):
    """Trap: DialoGPT/GPT-2 have no pad token, so any batch above 1 failed."""
    from transformers import AutoConfig, AutoTokenizer

    assert AutoTokenizer.from_pretrained(gpt2_dir).pad_token is None
    trainer = RewardModelTrainer(gpt2_dir, reward_functions=["length", "sentiment"])
    data = trainer.generate_training_data(TEXTS[:40], prompts=PROMPTS[:40], show_progress=False)
    out = trainer.train_reward_model(
        data,
        str(tmp_path / "rm"),
        num_epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        show_progress=False,
    )
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.pad_token == tok.eos_token == "<eos>"
    assert AutoConfig.from_pretrained(out).pad_token_id == tok.eos_token_id
    meta = json.loads((tmp_path / "rm" / METADATA_FILE).read_text())
    assert meta["input_format"] == "pair"  # prompts were given: the model reads (prompt, text)
    assert meta["reward_functions"] == ["length", "sentiment"]
    assert meta["model_type"] == "gpt2" and meta["objective"] == "regression"
    assert meta["metrics"]["eval"]["n"] == 8 and meta["training"]["n_train"] == 32
    assert trainer.last_metrics["eval"] == meta["metrics"]["eval"]
    assert not any(p.name.startswith("checkpoint") for p in (tmp_path / "rm").iterdir())


def test_a_bias_free_score_head_starts_as_a_ridge_probe(tmp_path, gpt2_dir):
    """GPT-2/Llama/Qwen ``score`` heads have no bias: the head starts as a ridge regression
    of the labels on the pooled features, its mean output exactly the label mean."""
    import torch

    from rlreward.training.head_start import pooled_features, ridge_head

    trainer = RewardModelTrainer(gpt2_dir, reward_functions=["length", "sentiment"])
    data = trainer.generate_training_data(TEXTS[:24], show_progress=False)
    run = trainer.prepare(data, str(tmp_path), batch_size=4, show_progress=False)
    assert run.model.score.bias is None
    labels = run.train_rows["composite"]
    run.model.eval()
    with torch.inference_mode():
        outs = [float(run.model(input_ids=torch.tensor([ids])).logits) for ids in run.train_ids]
    # the mean output is the label mean (the mean feature direction carries the intercept)
    assert sum(outs) / len(outs) == pytest.approx(sum(labels) / len(labels), abs=1e-3)
    # and every output is the ridge probe's prediction from that text's pooled features
    feats = pooled_features(run.model, run.train_ids, run.tokenizer.pad_token_id)
    w, _, _ = ridge_head(feats, labels)
    assert outs == pytest.approx((feats @ w).tolist(), abs=1e-4)


def test_ridge_head_recovers_a_linear_target_and_keeps_the_mean():
    import torch

    from rlreward.training.head_start import ridge_head

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=gen, dtype=torch.float64) + 3.0  # features off-centre
    true_w = torch.randn(16, generator=gen, dtype=torch.float64) / 10
    y = (x @ true_w).tolist()
    w, strength, _ = ridge_head(x, y)
    pred = x @ w
    assert float(pred.mean()) == pytest.approx(sum(y) / len(y), abs=1e-9)
    assert float(torch.corrcoef(torch.stack([pred, torch.tensor(y)]))[0, 1]) > 0.99
    assert strength <= 0.01  # noise-free data: GCV picks the weakest regularisation


def test_min_spearman_makes_a_bad_model_visible(tmp_path, gpt2_dir):
    trainer = RewardModelTrainer(gpt2_dir, reward_functions=["length", "sentiment"])
    data = trainer.generate_training_data(TEXTS[:30], show_progress=False)
    with pytest.raises(RewardModelFidelityError, match=r"below min_spearman=0.999"):
        trainer.train_reward_model(
            data,
            str(tmp_path / "bad"),
            num_epochs=1,
            learning_rate=1e-6,
            min_spearman=0.999,
            show_progress=False,
        )
    meta = json.loads((tmp_path / "bad" / METADATA_FILE).read_text())
    assert meta["metrics"]["eval"]["n"] == 6  # saved, with its metrics, for inspection


@pytest.mark.parametrize("merge", [True, False])
def test_lora_trains_and_saves(tmp_path, gpt2_dir, merge):
    from rlreward.graders.reward_model import RewardModelGrader

    trainer = RewardModelTrainer(
        gpt2_dir, reward_functions=["length", "sentiment"], use_lora=True, lora_config={"r": 4}
    )
    data = trainer.generate_training_data(TEXTS[:30], show_progress=False)
    out = tmp_path / "lora"
    trainer.train_reward_model(
        data,
        str(out),
        num_epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        lora_merge=merge,
        show_progress=False,
    )
    files = {p.name for p in out.iterdir()}
    if merge:
        assert "config.json" in files and "adapter_config.json" not in files
    else:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= files
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["lora"]["merged"] is merge
    run = trainer.last_run
    texts = TEXTS[100:110]
    in_memory = RewardModelGrader((run.model, run.tokenizer), batch_size=4).score_texts(texts)
    from_disk = RewardModelGrader(str(out), batch_size=4).score_texts(texts)
    assert from_disk == pytest.approx(in_memory, abs=1e-5)


def test_pairwise_reward_trainer_path(tmp_path, gpt2_dir):
    trainer = RewardModelTrainer(
        gpt2_dir, reward_functions=["length", "sentiment"], objective="pairwise"
    )
    data = trainer.generate_training_data(TEXTS[:30], show_progress=False)
    out = trainer.train_reward_model(
        data,
        str(tmp_path / "pw"),
        num_epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        show_progress=False,
    )
    from trl import RewardTrainer

    assert isinstance(trainer.last_run.trainer, RewardTrainer)
    meta = json.loads((tmp_path / "pw" / METADATA_FILE).read_text())
    assert meta["objective"] == "pairwise"
    assert 0.0 <= meta["metrics"]["train"]["pair_accuracy"] <= 1.0
    assert os.path.isfile(os.path.join(out, "config.json"))


def test_custom_trained_source_materializes_once(tmp_path, gpt2_dir):
    from rlreward.graders.reward_model import RewardModelGrader
    from rlreward.training.config import RewardModelSourceConfig, RewardModelTrainingConfig

    config = RewardModelTrainingConfig(
        base_model_name=gpt2_dir,
        training_texts=TEXTS[:24],
        reward_functions=["length", "safety"],
        output_dir=str(tmp_path / "custom"),
        reward_weights=[0.4, 0.6],
        num_epochs=1,
        batch_size=4,
    )
    source = RewardModelSourceConfig(source_type="custom_trained", training_config=config)
    path = source.materialize(show_progress=False)
    assert path == str(tmp_path / "custom")
    meta = json.loads((tmp_path / "custom" / METADATA_FILE).read_text())
    assert meta["weights"] == [0.4, 0.6] and meta["training"]["learning_rate"] == 1e-5
    stamp = (tmp_path / "custom" / METADATA_FILE).stat().st_mtime_ns
    assert source.materialize() == path  # trained once per config object
    assert (tmp_path / "custom" / METADATA_FILE).stat().st_mtime_ns == stamp
    grader = RewardModelGrader(source.materialize(), normalize="minmax")
    assert all(0.0 <= s <= 1.0 for s in grader.score_texts(TEXTS[:5]))


def test_minilm_learning_rate_warnings_only_where_measured_short(caplog):
    import logging

    def warnings(trainer, **options):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rlreward.training.trainer"):
            trainer.settings("/tmp/unused", **options)
        return caplog.text

    trainer = RewardModelTrainer(reward_functions=["length"])
    # the head's own rate (default) makes the seed's 1e-5 work: no warning
    assert warnings(trainer, learning_rate=1e-5) == ""
    assert warnings(trainer, learning_rate=None) == ""
    assert warnings(trainer, learning_rate=2e-4) == ""
    # one rate for everything at a low lr: measured short, the warning gives the fix
    text = warnings(trainer, learning_rate=1e-5, head_learning_rate=1e-5)
    assert "learning_rate=1e-05 with head_learning_rate=1e-05 is low for the embedded" in text
    assert "pass head_learning_rate=0.001" in text and "0.89 at 1e-5 on 538 texts" in text
    # LoRA keeps one rate by default, so a low lr still warns
    lora = RewardModelTrainer(reward_functions=["length"], use_lora=True)
    assert "pass head_learning_rate=0.001" in warnings(lora, learning_rate=1e-5)
    assert warnings(lora, learning_rate=5e-4) == ""
    # outside the measured range: said so
    assert "outside [1e-05, 0.0002], the range measured" in warnings(trainer, learning_rate=1e-6)
