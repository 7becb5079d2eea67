"""Result values: every grader call ends as a GraderScore or a GraderError, never a raise."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = ["GraderError", "GraderResult", "GraderScore", "is_score"]


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


GraderResult: TypeAlias = GraderScore | GraderError


def is_score(result: object) -> bool:
    """True for a GraderScore (a usable value), False for a GraderError or anything else."""
    return isinstance(result, GraderScore)
