"""Grading results -> VERL score dicts: the column naming rule, in one place.

VERL stacks ``reward_extra_info`` per key across the batch (a key missing from one
sample is a KeyError there) and merges the columns into its batch, so every sample gets
exactly the same keys, on every path (graded, failed, timed out)::

    score                 the reward: the reward aggregator's value (NaN when it failed)
    score__error          1 when the reward failed for this sample, else 0
    <grader>              the grader's RAW score, in its own range and direction
    <grader>__error       1 when the grader failed for this sample, else 0
    <grader>__aligned     the grader's value as the reward aggregator used it: on [0, 1],
                          higher = better, read from its ``metadata["components"]``;
                          only for graders the reward aggregator weighs
    <aggregator>          other aggregators' values, with ``<aggregator>__error``

``<grader>__aligned`` columns are what GDPO (``algorithm.adv_estimator=gdpo``) should
name in ``gdpo_reward_keys``. For a failed grader they follow the aggregator's
``on_error`` policy, so they stay finite whenever ``score`` is:

- ``zero``: 0.0, the worst aligned value (what the aggregator counted);
- ``renormalize``: the sample's ``score``, the weighted mean of the graders that
  succeeded. Then the aligned columns, weighted by the aggregator's weights, still
  average to ``score`` (a failed grader adds nothing the other graders did not say),
  and in GDPO the failed grader's column judges the sample by its other graders
  instead of by a made-up worst or best score;
- ``error``: NaN (the reward itself is NaN; an evaluation setting, not for training).

A sample whose whole reward failed (every weighted grader failed, or our time limit
expired) has NaN in ``score`` and in every aligned column: there is no honest number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlreward.aggregators import ERROR_SUFFIX, WeightedSumAggregator, aligned_key
from rlreward.errors import ConfigError
from rlreward.integrations._runtime import RewardHandle
from rlreward.integrations.reserved import reserved_reason
from rlreward.results import GradingResults
from rlreward.schema import GraderScore

__all__ = [
    "SCORE",
    "SCORE_ERROR",
    "Columns",
    "columns_for",
]

log = logging.getLogger(__name__)

SCORE = "score"
SCORE_ERROR = SCORE + ERROR_SUFFIX
#: VERL's validation loop writes the reward under this key and then appends every
#: reward_extra_info key to the same dict: a column named so would double its list
_VALIDATION_KEY = "reward"

ScoreDict = dict[str, float | int]


def _value(result: Any) -> tuple[float, int]:
    if isinstance(result, GraderScore):
        return result.score, 0
    return math.nan, 1


@dataclass(frozen=True)
class Columns:
    """The score-dict layout of one reward (the same for every sample)."""

    reward: str
    graders: tuple[str, ...]
    aligned: tuple[str, ...]
    others: tuple[str, ...]
    policy: str | None

    def keys(self) -> list[str]:
        keys = [SCORE, SCORE_ERROR]
        for g in self.graders:
            keys += [g, g + ERROR_SUFFIX]
        keys += [aligned_key(g) for g in self.aligned]
        for a in self.others:
            keys += [a, a + ERROR_SUFFIX]
        return keys

    def failed(self) -> ScoreDict:
        """A sample with no result at all (time limit): NaN values, every flag 1."""
        return {k: 1 if k.endswith(ERROR_SUFFIX) else math.nan for k in self.keys()}

    def score_dicts(self, results: GradingResults) -> list[ScoreDict]:
        """One dict per row, with ``keys()`` in that order."""
        out: list[ScoreDict] = []
        for i, reward in enumerate(results[self.reward]):
            score, failed = _value(reward)
            d: ScoreDict = {SCORE: score, SCORE_ERROR: failed}
            for g in self.graders:
                d[g], d[g + ERROR_SUFFIX] = _value(results[g][i])
            meta: Mapping[str, Any] = getattr(reward, "metadata", None) or {}
            components: Mapping[str, float] = meta.get("components") or {}
            for g in self.aligned:
                d[aligned_key(g)] = self._aligned(g, components, score)
            for a in self.others:
                d[a], d[a + ERROR_SUFFIX] = _value(results[a][i])
            out.append(d)
        return out

    def _aligned(self, grader: str, components: Mapping[str, float], score: float) -> float:
        value = components.get(grader)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        if self.policy == "zero":
            return 0.0 if math.isfinite(score) else math.nan
        if self.policy == "renormalize":
            return score
        return math.nan


def _weighted(agg: Any, graders: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """The graders ``agg`` weighs (in grader order) and its on_error policy."""
    if not isinstance(agg, WeightedSumAggregator):
        return (), None  # a custom aggregator publishes no components to align
    named = set(agg.weights) if agg.weights else set(graders)
    return tuple(g for g in graders if g in named), agg.on_error


def check_names(names: Sequence[str]) -> None:
    """Refuse grader/aggregator names that are VERL batch keys or score-dict keys."""
    for name in names:
        reason = reserved_reason(name)
        if reason is None and name == _VALIDATION_KEY:
            reason = (
                f"{name!r} would be a score column, and VERL's validation loop already "
                "writes the reward under 'reward'; rename it (the reward aggregator itself "
                "may be called 'reward': its value is the 'score' column)"
            )
        if reason is not None:
            raise ConfigError(f"VERL adapter: grader/aggregator name {reason}")


def columns_for(handle: RewardHandle) -> Columns:
    """The handle's column layout, checked once and kept in ``handle.notes``."""
    cols = handle.notes.get("verl_columns")
    if isinstance(cols, Columns):
        return cols
    graders = tuple(handle.graders)
    others = tuple(a for a in handle.aggregators if a != handle.reward)
    check_names([*graders, *others])
    aligned, policy = _weighted(handle.runner.aggregators[handle.reward], graders)
    cols = Columns(handle.reward, graders, aligned, others, policy)
    handle.notes["verl_columns"] = cols
    return cols
