"""What one graded batch adds to TRL's logs (``_trl_state.batch_metrics``)."""

from __future__ import annotations

import math

import pytest

from rlreward import FunctionGrader, Reward, WeightedSumAggregator
from rlreward.integrations._trl_state import batch_metrics


def _words(response: str) -> float:
    return min(1.0, len(response.split()) / 10)


def _polite(response: str) -> float:
    return 1.0 if "please" in response else 0.0


def _short(response: str) -> float:
    return 1.0 if len(response.split()) <= 3 else 0.0


def test_a_nested_reward_logs_each_inner_grader() -> None:
    """A spec joined to rule functions is one member ("spec"); its graders still get a
    curve each, under the member's name, with the same keys whatever the batch holds."""
    spec = Reward(
        {
            "words": FunctionGrader(_words, name="words"),
            "polite": FunctionGrader(_polite, name="polite"),
        },
        WeightedSumAggregator("judges"),
    )
    reward = Reward(
        {"spec": spec, "short": FunctionGrader(_short, name="short")},
        WeightedSumAggregator("reward"),
    )
    rows = [{"response": "yes please"}, {"response": "one two three four five six"}]
    results = reward.grade(rows)
    out = batch_metrics(reward, results, aligned=True)
    assert out["rewards/spec/words/mean"] == pytest.approx((0.2 + 0.6) / 2)
    assert out["rewards/spec/polite/mean"] == pytest.approx(0.5)
    assert out["rewards/spec/polite/std"] == pytest.approx(0.5)
    assert out["rewards/spec/mean"] == pytest.approx(((0.2 + 1.0) / 2 + (0.6 + 0.0) / 2) / 2)
    assert "rewards/short/mean" in out and not any(
        k.startswith("rewards/short/") and k.count("/") > 2 for k in out
    )


def test_a_nested_grader_with_no_score_in_the_batch_logs_nan() -> None:
    def failing(response: str) -> float:
        raise RuntimeError("judge down")

    spec = Reward(
        {"ok": FunctionGrader(_words, name="ok"), "down": FunctionGrader(failing, name="down")},
        WeightedSumAggregator("judges", on_error="renormalize"),
    )
    reward = Reward(
        {"spec": spec, "short": FunctionGrader(_short, name="short")},
        WeightedSumAggregator("reward"),
    )
    out = batch_metrics(reward, reward.grade([{"response": "a b"}]), aligned=False)
    assert math.isnan(out["rewards/spec/down/mean"])  # the key is there: TRL gathers it
    assert out["rewards/spec/ok/mean"] == pytest.approx(0.2)
