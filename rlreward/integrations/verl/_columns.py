"""Grading results -> VERL score dicts: the column naming rule, in one place.

VERL stacks ``reward_extra_info`` per key across the batch (a key missing from one
sample is a KeyError there) and merges the columns into its batch, so every sample gets
exactly the same keys, on every path (graded, failed, abstained, timed out)::

    score                   the reward: the Reward's value (NaN when it has none)
    score__error            1 when the reward failed for this sample, else 0
    score__abstained        1 when the reward did not apply (every weighted grader
                            abstained), else 0
    <grader>                the grader's RAW score, in its own range and direction
    <grader>__error         1 when the grader failed for this sample, else 0
    <grader>__abstained     1 when the grader did not apply to this sample, else 0
    <grader>__aligned       the grader's value as the reward aggregator used it: on
                            [0, 1], higher = better, read from its
                            ``metadata["components"]``; only for graders it weighs
    <monitor>               a monitor's raw score (with ``__error`` / ``__abstained``):
                            reported, never weighed into ``score``
    <aggregator>            other aggregators' values (with ``__error`` / ``__abstained``)
    <judge>__calls, <judge>__prompt_tokens, <judge>__completion_tokens, <judge>__latency_s
                            for every grader or monitor that is an LLM judge (an
                            LLMGrader or a group judge), from its ``metadata["usage"]``
                            record (``rlreward.usage``)

Usage columns say what the judge's usage record says: a grade answered by the cache (or
shared with an identical call) has 0 calls and 0 tokens; a failed call its record's calls,
tokens and latency; a group judge counts the group's calls on its first row and 0 on the
others. Tokens are NaN when the server reported none (``reported: False``). A result with
no record is an abstention (0 calls, 0 tokens, 0 s) or a failure that never reached the
judge or was cut off (NaN: unknown), as is a sample with no result at all (time limit).

Three outcomes stay apart: a failure is NaN with ``__error`` = 1, an abstention NaN
with ``__abstained`` = 1 (and ``__error`` = 0), a score a number with both flags 0.

``<grader>__aligned`` columns are what GDPO (``algorithm.adv_estimator=gdpo``) should
name in ``gdpo_reward_keys``. They stay finite whenever ``score`` is:

- an abstaining grader: the sample's ``score`` (before any gate: the aggregator's
  ``metadata["ungated"]``). The aggregator weighs the graders that applied, so the
  aligned columns weighted by its weights still average to that weighted mean, which is
  ``score`` when the aggregator has no gates;
- a failed grader follows the aggregator's ``on_error``: ``zero`` gives 0.0, the worst
  aligned value (what the aggregator counted); ``renormalize`` gives the sample's
  weighted mean (as for an abstention: the failed grader adds nothing the others did not
  say, and in GDPO its column judges the sample by its other graders instead of by a
  made-up worst or best score); ``error`` gives NaN (the reward itself is NaN).

A sample whose whole reward failed or abstained has NaN in ``score`` and in every
aligned column: there is no honest number.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlreward.aggregators import (
    ABSTAINED_SUFFIX,
    ERROR_SUFFIX,
    WeightedSumAggregator,
    aligned_key,
)
from rlreward.errors import ConfigError
from rlreward.graders.kinds import is_judge
from rlreward.integrations.reserved import reserved_reason
from rlreward.results import GradingResults
from rlreward.reward import Reward
from rlreward.schema import GraderAbstention, GraderResult, GraderScore
from rlreward.usage import USAGE_KEY

__all__ = [
    "SCORE",
    "SCORE_ABSTAINED",
    "SCORE_ERROR",
    "Columns",
    "columns_for",
]

log = logging.getLogger(__name__)

SCORE = "score"
SCORE_ERROR = SCORE + ERROR_SUFFIX
SCORE_ABSTAINED = SCORE + ABSTAINED_SUFFIX
#: VERL's validation loop writes the reward under this key and then appends every
#: reward_extra_info key to the same dict: a column named so would double its list
_VALIDATION_KEY = "reward"

ScoreDict = dict[str, float | int]

#: usage columns of an LLM judge: ``<judge>__<field>``, from its usage record
USAGE_FIELDS: tuple[str, ...] = ("calls", "prompt_tokens", "completion_tokens", "latency_s")
_TOKEN_FIELDS = frozenset({"prompt_tokens", "completion_tokens"})


def usage_key(name: str, field: str) -> str:
    """The usage column of judge ``name`` for one of ``USAGE_FIELDS``."""
    return f"{name}__{field}"


def _usage(result: GraderResult | None) -> tuple[float, ...]:
    """The usage columns of one judge result (see the module docstring)."""
    meta = result.metadata if result is not None else None
    record = meta.get(USAGE_KEY) if isinstance(meta, Mapping) else None
    if not isinstance(record, Mapping):
        zero = isinstance(result, GraderAbstention)
        return tuple(0.0 if zero else math.nan for _ in USAGE_FIELDS)
    reported = record.get("reported", True) is not False
    out: list[float] = []
    for field in USAGE_FIELDS:
        value = record.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(math.nan)  # a record without this field: unknown
        elif field in _TOKEN_FIELDS and not reported:
            out.append(math.nan)  # the server reported no token counts
        else:
            out.append(float(value))
    return tuple(out)


def _value(result: GraderResult | None) -> tuple[float, int, int]:
    """(value, error flag, abstained flag) of one result."""
    if isinstance(result, GraderScore):
        return result.score, 0, 0
    if isinstance(result, GraderAbstention):
        return math.nan, 0, 1
    return math.nan, 1, 0


def _put(d: ScoreDict, name: str, result: GraderResult | None) -> None:
    d[name], d[name + ERROR_SUFFIX], d[name + ABSTAINED_SUFFIX] = _value(result)


@dataclass(frozen=True)
class Columns:
    """The score-dict layout of one Reward (the same for every sample)."""

    reward: str
    graders: tuple[str, ...]
    monitors: tuple[str, ...]
    aligned: tuple[str, ...]
    others: tuple[str, ...]
    policy: str | None
    #: graders and monitors that are LLM judges: they get the usage columns
    judges: tuple[str, ...] = ()

    def keys(self) -> list[str]:
        keys = [SCORE, SCORE_ERROR, SCORE_ABSTAINED]
        for g in (*self.graders, *self.monitors):
            keys += [g, g + ERROR_SUFFIX, g + ABSTAINED_SUFFIX]
        keys += [usage_key(j, f) for j in self.judges for f in USAGE_FIELDS]
        keys += [aligned_key(g) for g in self.aligned]
        for a in self.others:
            keys += [a, a + ERROR_SUFFIX, a + ABSTAINED_SUFFIX]
        return keys

    def failed(self) -> ScoreDict:
        """A sample with no result at all (time limit): NaN values, every error flag 1."""
        out: ScoreDict = {}
        for k in self.keys():
            if k.endswith(ERROR_SUFFIX):
                out[k] = 1
            elif k.endswith(ABSTAINED_SUFFIX):
                out[k] = 0
            else:
                out[k] = math.nan
        return out

    def score_dicts(self, results: GradingResults) -> list[ScoreDict]:
        """One dict per row, with ``keys()`` in that order."""
        out: list[ScoreDict] = []
        for i, reward in enumerate(results[self.reward]):
            d: ScoreDict = {}
            _put(d, SCORE, reward)
            for g in (*self.graders, *self.monitors):
                _put(d, g, results[g][i])
            for j in self.judges:
                for f, value in zip(USAGE_FIELDS, _usage(results[j][i]), strict=True):
                    d[usage_key(j, f)] = value
            meta: Mapping[str, Any] = reward.metadata or {}
            components: Mapping[str, float] = meta.get("components") or {}
            abstained = set(meta.get("abstained") or ())
            # the weighted mean of the graders that applied: the score before any gate
            mean = float(meta.get("ungated", d[SCORE])) if math.isfinite(d[SCORE]) else math.nan
            for g in self.aligned:
                d[aligned_key(g)] = self._aligned(g, components, abstained, mean)
            for a in self.others:
                _put(d, a, results[a][i])
            out.append(d)
        return out

    def _aligned(
        self, grader: str, components: Mapping[str, float], abstained: set[str], mean: float
    ) -> float:
        value = components.get(grader)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        if grader in abstained or self.policy == "renormalize":
            return mean  # weighed as the graders that applied weigh it (NaN if none did)
        if self.policy == "zero":
            return 0.0 if math.isfinite(mean) else math.nan
        return math.nan


def _weighted(agg: Any, graders: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """The graders ``agg`` weighs (in grader order) and its on_error policy."""
    if not isinstance(agg, WeightedSumAggregator):
        return (), None  # a custom aggregator publishes no components to align
    named = set(agg.grader_weights)
    return tuple(g for g in graders if g in named), agg.on_error


def check_names(names: Sequence[str], judges: Sequence[str] = ()) -> None:
    """Refuse grader/monitor/aggregator names that are VERL batch keys or score-dict keys,
    or that equal another name's usage column (``<judge>__calls``, ...)."""
    usage = {usage_key(j, f): j for j in judges for f in USAGE_FIELDS}
    for name in names:
        reason = reserved_reason(name)
        if reason is None and name == _VALIDATION_KEY:
            reason = (
                f"{name!r} would be a score column, and VERL's validation loop already "
                "writes the reward under 'reward'; rename it (the reward aggregator itself "
                "may be called 'reward': its value is the 'score' column)"
            )
        if reason is None and name in usage:
            reason = (
                f"{name!r} is the usage column of LLM judge {usage[name]!r} "
                f"('<judge>__calls|prompt_tokens|completion_tokens|latency_s'); rename it"
            )
        if reason is not None:
            raise ConfigError(f"VERL adapter: grader/monitor/aggregator name {reason}")


#: the layout of each Reward an adapter holds, checked once (dropped with the Reward)
_layouts: weakref.WeakKeyDictionary[Reward, Columns] = weakref.WeakKeyDictionary()


def columns_for(reward: Reward) -> Columns:
    """The reward's column layout, its names checked once."""
    cols = _layouts.get(reward)
    if cols is not None:
        return cols
    graders = tuple(reward.graders)
    monitors = tuple(reward.monitors)
    others = tuple(a for a in reward.aggregators if a != reward.name)
    configs = {**reward.graders, **reward.monitors}
    judges = tuple(n for n in (*graders, *monitors) if is_judge(configs[n].grader))
    check_names([*graders, *monitors, *others], judges)
    aligned, policy = _weighted(reward.aggregator, graders)
    cols = Columns(reward.name, graders, monitors, aligned, others, policy, judges)
    _layouts[reward] = cols
    return cols
