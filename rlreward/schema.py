"""Result values and score ranges: the ground floor every layer above builds on.

Every grader call ends as one of three values, never a raise: a GraderScore (a score), a
GraderError (a failure, with its reason) or a GraderAbstention (not applicable: the
grader does not score this row, e.g. a reference-based grader on a row without a
reference). An abstention is neither a failure nor a score: aggregators weigh the
graders that applied, and never turn an abstention into 0. A grader
declares its ``ScoreRange`` (checked by ``check_score_range``) and direction;
``normalise_score`` is the one place a score is mapped onto [0, 1], higher = better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from rlreward.errors import ConfigError

__all__ = [
    "GraderAbstention",
    "GraderError",
    "GraderResult",
    "GraderScore",
    "ScoreRange",
    "check_score_range",
    "is_abstention",
    "is_score",
    "normalise_score",
]

ScoreRange: TypeAlias = tuple[float, float]


@dataclass(frozen=True, slots=True)
class GraderScore:
    """A successful grade: a finite float score with an optional reason."""

    name: str
    score: float
    reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    ok: Literal[True] = field(default=True, init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.score
        # numpy / torch scalars are accepted through __float__; bool and str are not.
        if isinstance(s, (bool, str, bytes)) or not hasattr(s, "__float__"):
            raise TypeError(
                f"GraderScore.score for {self.name!r} must be a real number, "
                f"got {type(s).__name__} {s!r}"
            )
        value = float(s)
        if not math.isfinite(value):
            raise ValueError(
                f"GraderScore.score for {self.name!r} must be finite, got {value!r}; "
                "return a GraderError to report a failed grade"
            )
        object.__setattr__(self, "score", value)


@dataclass(frozen=True, slots=True)
class GraderError:
    """A failed grade: why it failed. It has no ``score`` attribute on purpose."""

    name: str
    error: str
    metadata: dict[str, Any] = field(default_factory=dict)
    ok: Literal[False] = field(default=False, init=False, repr=False)


@dataclass(frozen=True, slots=True)
class GraderAbstention:
    """Not applicable: the grader does not score this row (never a failure, never a 0).

    ``reason`` says why (e.g. ``"the row lacks fields ['reference_response']"``). It has
    no ``score`` and no ``error`` attribute on purpose.
    """

    name: str
    reason: str
    metadata: dict[str, Any] = field(default_factory=dict)
    ok: Literal[False] = field(default=False, init=False, repr=False)


GraderResult: TypeAlias = GraderScore | GraderError | GraderAbstention


def is_score(result: object) -> bool:
    """True for a GraderScore (a usable value), False for a GraderError or anything else."""
    return isinstance(result, GraderScore)


def is_abstention(result: object) -> bool:
    """True for a GraderAbstention (the grader did not apply to the row)."""
    return isinstance(result, GraderAbstention)


def check_score_range(score_range: ScoreRange | None, owner: str) -> ScoreRange | None:
    """Validate a ``(low, high)`` range; ``None`` means unbounded."""
    if score_range is None:
        return None
    try:
        low, high = (float(v) for v in score_range)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{owner}: score_range must be a (low, high) pair of numbers or None, "
            f"got {score_range!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(
            f"{owner}: score_range must be finite with low < high, got {score_range!r}; "
            "use None for an unbounded score"
        )
    return (low, high)


def normalise_score(
    score: float, score_range: tuple[float, float] | None, higher_is_better: bool
) -> float:
    """Map a score to [0, 1], higher = better. Unbounded scores are only sign-flipped."""
    if score_range is None:
        return score if higher_is_better else -score
    low, high = score_range
    x = (score - low) / (high - low)
    return x if higher_is_better else 1.0 - x
