"""FunctionGrader: any sync or async Python callable as a grader."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from rlreward.callables import is_async_callable, signature_annotations, signature_params
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader
from rlreward.graders.fields import FieldType, from_annotation
from rlreward.schema import ScoreRange, check_score_range

__all__ = ["FunctionGrader"]


def _annotated_types(fn: Callable[..., Any]) -> dict[str, FieldType]:
    """Field types from the callable's annotations (``response: str`` -> STR)."""
    return {name: from_annotation(a) for name, a in signature_annotations(fn).items()}


class FunctionGrader(BaseGrader):
    """Wrap a callable ``fn(**fields) -> float | (float, reason) | GraderScore``.

    Fields default to the callable's parameters (those without defaults are required);
    their types to its annotations (``str`` -> STR, ``float``/``int`` -> NUMBER, else
    ANY), or pass ``field_types={"response": TEXT}``. A value of the wrong type, NaN or
    infinity is a GraderError for that row and the callable is not called.
    Sync callables run in a worker thread so they never block the event loop; pass
    ``run_in_thread=False`` for cheap pure functions where a thread hop costs more than
    the call.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        *,
        required_fields: tuple[str, ...] | list[str] | None = None,
        optional_fields: tuple[str, ...] | list[str] = (),
        score_range: ScoreRange | None = (0.0, 1.0),
        higher_is_better: bool = True,
        run_in_thread: bool = True,
        field_types: Mapping[str, FieldType] | None = None,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"FunctionGrader: fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        sig = signature_params(fn)
        req, opt, var_kw = sig.required, sig.optional, sig.var_keyword
        if required_fields is not None:
            req, opt = tuple(required_fields), tuple(optional_fields)
            var_kw = False
        self.required_fields, self.optional_fields = req, opt
        self.accepts_any_fields = var_kw
        self.field_types = dict(field_types) if field_types is not None else _annotated_types(fn)
        bad = {k: v for k, v in self.field_types.items() if not isinstance(v, FieldType)}
        if bad:
            raise ConfigError(
                f"FunctionGrader {self.name!r}: field_types values must be FieldType "
                f"(TEXT, STR, NUMBER, TEXT_OR_NUMBER, ANY from rlreward.graders.fields), "
                f"got {bad!r}"
            )
        self.score_range = check_score_range(score_range, f"FunctionGrader {self.name!r}")
        self.higher_is_better = bool(higher_is_better)
        self.run_in_thread = run_in_thread
        self._is_async = is_async_callable(fn)

    async def _aevaluate(self, **fields: Any) -> Any:
        if self._is_async:
            return await self.fn(**fields)
        if self.run_in_thread:
            return await asyncio.to_thread(self.fn, **fields)
        return self.fn(**fields)
