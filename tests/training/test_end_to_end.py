"""The real end-to-end run: the embedded MiniLM learns the rule-based composite on CPU.

Trains once per module with the recipe defaults on all 672 shipped texts (20% held out):
about 80 s on 2 idle cores, several minutes when other work shares them. Checks what
the issue asks: held-out Spearman >= 0.9 against the composite (0.97 measured; 400 texts
give 0.90-0.93 depending on the split, too close to call reliable), identical scores
after a save/load round trip, the grader inside GradingRunner, and the metadata that
makes the model reusable.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.aggregators import WeightedSumAggregator
from rlreward.data import load_reward_texts
from rlreward.graders.reward_model import RewardModelGrader
from rlreward.models.reward_model_io import read_metadata
from rlreward.runner import GraderConfig, GradingRunner
from rlreward.training.config import RewardModelSourceConfig
from rlreward.training.metrics import fidelity_metrics
from rlreward.training.trainer import RewardModelTrainer

pytestmark = pytest.mark.slow

FUNCTIONS = ["length", "sentiment", "safety", "coherence", "helpfulness"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    texts = load_reward_texts()
    trainer = RewardModelTrainer(reward_functions=FUNCTIONS)  # None -> the embedded MiniLM
    data = trainer.generate_training_data(texts, show_progress=False)
    out = tmp_path_factory.mktemp("minilm_rm") / "model"
    path = trainer.train_reward_model(data, str(out), show_progress=False)  # recipe defaults
    return trainer, path


def test_embedded_minilm_reproduces_the_composite(trained):
    trainer, path = trained
    meta = read_metadata(path)
    ev = meta["metrics"]["eval"]
    assert ev["n"] == 134
    assert ev["spearman"] >= 0.9, f"held-out Spearman {ev['spearman']} < 0.9"
    assert ev["pearson"] >= 0.85
    assert ev["mse"] < 0.5 * ev["baseline_mse"]  # far better than predicting the mean
    assert meta["base_model"] == "embedded" and meta["model_type"] == "bert"
    assert meta["reward_functions"] == FUNCTIONS and meta["objective"] == "regression"
    assert meta["training"]["learning_rate"] == trainer.default_learning_rate()
    assert meta["input_format"] == "text"


def test_save_load_round_trip_gives_identical_scores(trained):
    trainer, path = trained
    run = trainer.last_run
    eval_texts = run.eval_rows["text"]
    in_memory = RewardModelGrader((run.model, run.tokenizer)).score_texts(eval_texts)
    loaded = RewardModelGrader(path).score_texts(eval_texts)
    assert loaded == pytest.approx(in_memory, abs=1e-6)
    via_source = RewardModelGrader(
        RewardModelSourceConfig("pretrained_local", model_path=path).materialize()
    )
    assert via_source.score_texts(eval_texts[:8]) == pytest.approx(loaded[:8], abs=1e-6)
    # the metadata's held-out metrics are what the loaded model really does
    recomputed = fidelity_metrics(loaded, run.eval_rows["composite"])
    meta = read_metadata(path)
    assert recomputed["spearman"] == pytest.approx(meta["metrics"]["eval"]["spearman"], abs=1e-6)


def test_trained_grader_inside_grading_runner(trained):
    trainer, path = trained
    records = [{"text": t} for t in trainer.last_run.eval_rows["text"][:24]]  # never trained on
    grader = RewardModelGrader(path, name="rm", normalize="minmax", batch_size=8)
    runner = GradingRunner(
        [GraderConfig(grader, mapper={"response": "text"})],
        aggregators=WeightedSumAggregator("reward"),
        show_progress=False,
    )
    results = runner.run(records)
    scores = results.scores("rm")
    assert scores == pytest.approx(grader.score_texts([r["text"] for r in records]), abs=1e-6)
    assert all(0.0 <= s <= 1.0 for s in scores)
    # unseen texts still rank like the composite they were never trained on
    from rlreward.training.composite import CompositeReward

    truth = CompositeReward(FUNCTIONS)([r["text"] for r in records]).composite
    assert fidelity_metrics(scores, truth)["spearman"] > 0.8
