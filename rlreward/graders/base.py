"""The grader base class: declared fields, score range and direction, one async method.

Subclasses implement ``_aevaluate(**fields)`` and return a ``GraderScore`` (or a bare
number, or ``(score, reason)``); the public ``aevaluate`` turns exceptions and
out-of-range scores into ``GraderError`` values so that a runner never sees a raise.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

from rlreward.schema import GraderError, GraderResult, GraderScore, ScoreRange

__all__ = ["Grader", "to_result"]


def to_result(name: str, value: Any) -> GraderResult:
    """Turn what a grader implementation returned into a result value."""
    if isinstance(value, (GraderScore, GraderError)):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        return GraderScore(name=name, score=value[0], reason=value[1])
    if isinstance(value, dict) and "score" in value:
        extra = {k: v for k, v in value.items() if k not in ("score", "reason")}
        return GraderScore(name, value["score"], str(value.get("reason", "")), extra)
    if value is None:
        return GraderError(name, "grader returned None instead of a score")
    return GraderScore(name=name, score=value)


class Grader:
    """Base class for graders.

    Class attributes (or instance attributes set in ``__init__``) declare the contract:

    - ``name``: key of this grader's results.
    - ``required_fields``: sample fields that must be present.
    - ``optional_fields``: fields passed when present.
    - ``accepts_any_fields``: pass every field of the (mapped) sample.
    - ``score_range``: ``(low, high)`` of the score, or ``None`` for unbounded.
    - ``higher_is_better``: direction; aggregators turn lower-is-better scores around.
    """

    name: str = "grader"
    required_fields: tuple[str, ...] = ()
    optional_fields: tuple[str, ...] = ()
    accepts_any_fields: bool = False
    score_range: ScoreRange | None = (0.0, 1.0)
    higher_is_better: bool = True
    #: Whether out-of-range scores are rejected (as GraderError) rather than passed on.
    enforce_range: ClassVar[bool] = True

    async def _aevaluate(self, **fields: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement _aevaluate(**fields)")

    async def aevaluate(self, **fields: Any) -> GraderResult:
        """Grade one sample; failures come back as a GraderError, never as a raise."""
        try:
            result = to_result(self.name, await self._aevaluate(**fields))
        except Exception as exc:  # a failed grade is a value; see module docstring
            return GraderError(
                self.name, f"{type(exc).__name__}: {exc}", {"exception_type": type(exc).__name__}
            )
        return self._check_range(result)

    def _check_range(self, result: GraderResult) -> GraderResult:
        rng = self.score_range
        if rng is None or not self.enforce_range or not isinstance(result, GraderScore):
            return result
        if rng[0] <= result.score <= rng[1]:
            return result
        return GraderError(
            self.name,
            f"score {result.score!r} is outside the declared range [{rng[0]}, {rng[1]}]",
            {"out_of_range_score": result.score, **result.metadata},
        )

    def missing_fields(self, available: Collection[str]) -> list[str]:
        """Names of required fields absent from ``available`` (override for either/or)."""
        return [f for f in self.required_fields if f not in available]

    def select_fields(self, sample: dict[str, Any]) -> dict[str, Any]:
        """The subset of a mapped sample that this grader is called with."""
        if self.accepts_any_fields:
            return sample
        out = {f: sample[f] for f in self.required_fields}
        for f in self.optional_fields:
            if f in sample:
                out[f] = sample[f]
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (for metadata files and logs)."""
        return {
            "name": self.name,
            "type": type(self).__name__,
            "required_fields": list(self.required_fields),
            "score_range": list(self.score_range) if self.score_range else None,
            "higher_is_better": self.higher_is_better,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
