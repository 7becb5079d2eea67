"""What a grader is (the ``Grader`` protocol) and the base class that keeps its promises.

``Grader`` is the typed contract the runner and the adapters rely on: a name, a score
range, a direction and ``aevaluate(**fields) -> GraderScore | GraderError``. Anything
with those is a grader. ``BaseGrader`` is the one place where a grader call is guarded:
its ``aevaluate`` checks the declared field types, runs the subclass's
``_aevaluate(**fields)`` (which may return a GraderScore, a bare number or
``(score, reason)``), and turns an exception or an out-of-range score into a
GraderError. The runner wraps an object that only follows the protocol in
``ProtocolGrader`` (a BaseGrader), so every call is guarded exactly once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from rlreward.graders.fields import ANY, FieldType, field_problem
from rlreward.schema import (
    GraderAbstention,
    GraderError,
    GraderResult,
    GraderScore,
    ScoreRange,
)

__all__ = ["BaseGrader", "Grader", "ProtocolGrader", "to_result"]


def to_result(name: str, value: Any) -> GraderResult:
    """Turn what a grader implementation returned into a result value."""
    if isinstance(value, (GraderScore, GraderError, GraderAbstention)):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        return GraderScore(name=name, score=value[0], reason=value[1])
    if isinstance(value, dict) and "score" in value:
        extra = {k: v for k, v in value.items() if k not in ("score", "reason")}
        return GraderScore(name, value["score"], str(value.get("reason", "")), extra)
    if value is None:
        return GraderError(name, "grader returned None instead of a score")
    return GraderScore(name=name, score=value)


@runtime_checkable
class Grader(Protocol):
    """The grader contract: one async call per row that returns a value, never raises.

    The value is a GraderScore, a GraderError (failed) or a GraderAbstention (does not
    apply to this row: return one instead of an error or a made-up score).

    - ``name``: key of this grader's results.
    - ``score_range``: ``(low, high)`` of the score, or ``None`` for unbounded.
    - ``higher_is_better``: direction; aggregators turn lower-is-better scores around.

    Optional hooks the runner uses when present: ``missing_fields(available)`` and
    ``select_fields(sample)`` (see BaseGrader).
    """

    name: str
    score_range: ScoreRange | None
    higher_is_better: bool

    async def aevaluate(self, **fields: Any) -> GraderResult: ...


class BaseGrader:
    """Base class for graders: implement ``_aevaluate(**fields)``.

    Class attributes (or instance attributes set in ``__init__``) declare the contract:

    - ``name``: key of this grader's results.
    - ``required_fields``: sample fields that must be present.
    - ``optional_fields``: fields passed when present.
    - ``field_types``: ``{field: FieldType}`` (``TEXT``, ``NUMBER``, ...); a given field
      of the wrong type is a GraderError for that row before any work. Fields not
      listed get ``default_field_type`` (``ANY``: anything but NaN / infinity).
    - ``accepts_any_fields``: pass every field of the (mapped) sample.
    - ``score_range``: ``(low, high)`` of the score, or ``None`` for unbounded.
    - ``higher_is_better``: direction; aggregators turn lower-is-better scores around.
    """

    name: str = "grader"
    required_fields: tuple[str, ...] = ()
    optional_fields: tuple[str, ...] = ()
    field_types: Mapping[str, FieldType] = {}
    #: the type of a given field that ``field_types`` does not list
    default_field_type: FieldType = ANY
    accepts_any_fields: bool = False
    score_range: ScoreRange | None = (0.0, 1.0)
    higher_is_better: bool = True
    #: Whether out-of-range scores are rejected (as GraderError) rather than passed on.
    enforce_range: ClassVar[bool] = True

    async def _aevaluate(self, **fields: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement _aevaluate(**fields)")

    async def aevaluate(self, **fields: Any) -> GraderResult:
        """Grade one sample; failures come back as a GraderError, never as a raise."""
        bad = self.check_fields(fields)
        if bad is not None:
            return bad
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

    def check_fields(self, fields: Mapping[str, Any]) -> GraderError | None:
        """A GraderError naming the first field whose value has the wrong type, or None."""
        types = self.field_types
        for key, value in fields.items():
            problem = field_problem(key, value, types.get(key, self.default_field_type))
            if problem is not None:
                return GraderError(
                    self.name,
                    f"invalid input: {problem}",
                    {"invalid_field": key, "exception_type": "TypeError"},
                )
        return None

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
            "field_types": {k: v.name for k, v in self.field_types.items()},
            "score_range": list(self.score_range) if self.score_range else None,
            "higher_is_better": self.higher_is_better,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class ProtocolGrader(BaseGrader):
    """A BaseGrader around an object that only follows the ``Grader`` protocol, so its
    calls are guarded like every other grader's (exceptions and bad values become
    GraderErrors). Its declared fields and hooks are used when it has them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = str(getattr(inner, "name", type(inner).__name__))
        # the range aggregators normalise by, so a score outside it is refused here (a
        # (0, 1) grader returning 5.0 would otherwise weigh as far more than its best)
        self.declares_range = hasattr(inner, "score_range")
        self.score_range = getattr(inner, "score_range", (0.0, 1.0))
        self.higher_is_better = bool(getattr(inner, "higher_is_better", True))
        self.required_fields = tuple(getattr(inner, "required_fields", ()))
        self.optional_fields = tuple(getattr(inner, "optional_fields", ()))
        self.field_types = dict(getattr(inner, "field_types", {}))

    async def _aevaluate(self, **fields: Any) -> Any:
        return await self.inner.aevaluate(**fields)

    def _check_range(self, result: GraderResult) -> GraderResult:
        checked = super()._check_range(result)
        if checked is result or not isinstance(result, GraderScore) or self.score_range is None:
            return checked
        low, high = self.score_range
        whose = "it declares" if self.declares_range else "assumed for a grader declaring none"
        return GraderError(
            self.name,
            f"score {result.score!r} is outside the range [{low}, {high}] {whose}; return "
            "scores inside it, or declare score_range = (low, high), or None for unbounded",
            {"out_of_range_score": result.score, **result.metadata},
        )

    def missing_fields(self, available: Collection[str]) -> list[str]:
        hook = getattr(self.inner, "missing_fields", None)
        return list(hook(available)) if hook is not None else super().missing_fields(available)

    def select_fields(self, sample: dict[str, Any]) -> dict[str, Any]:
        hook = getattr(self.inner, "select_fields", None)
        return dict(hook(sample)) if hook is not None else sample

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __repr__(self) -> str:
        return f"ProtocolGrader({self.inner!r})"
