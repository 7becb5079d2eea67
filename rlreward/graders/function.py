"""FunctionGrader: any sync or async Python callable as a grader."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rlreward.callables import is_async_callable, signature_params
from rlreward.errors import ConfigError
from rlreward.graders.base import Grader
from rlreward.schema import ScoreRange, check_score_range

__all__ = ["FunctionGrader"]


class FunctionGrader(Grader):
    """Wrap a callable ``fn(**fields) -> float | (float, reason) | GraderScore``.

    Fields default to the callable's parameters (those without defaults are required).
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
