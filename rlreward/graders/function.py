"""FunctionGrader: a user's Python function as a grader, by the one calling convention.

The convention (docs/grading.md, "Your own function"): the function receives row fields
by name (``response``, ``query``, ``reference_response`` or any mapped field) and
returns a score (a number, ``(score, reason)``, a dict with ``score`` or a GraderScore).
Whether it is batched is declared (``@rlreward.batched`` or ``batched=True``), never
guessed: a batched function receives each field as a list, one item per row, and
returns one score per row; concurrent rows from the runner are gathered into one call
by a MicroBatcher. Every entrance that takes a user's function (a spec's ``callable:``,
``GraderConfig(fn)``, ``create_rl_trainer(reward_functions=[fn])``, a function
registered with ``register_reward_function``) builds this grader from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from rlreward.callables import (
    is_async_callable,
    resolve_batched,
    signature_annotations,
    signature_params,
)
from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader
from rlreward.graders.batching import MicroBatcher
from rlreward.graders.fields import FieldType, from_annotation
from rlreward.schema import ScoreRange, check_score_range

__all__ = ["FunctionGrader"]

_Row = dict[str, Any]


def _annotated_types(fn: Callable[..., Any], batched: bool) -> dict[str, FieldType]:
    """Field types from the callable's annotations (``response: str`` -> STR); a batched
    function's annotations describe lists, so its fields are left unchecked."""
    if batched:
        return {}
    return {name: from_annotation(a) for name, a in signature_annotations(fn).items()}


class FunctionGrader(BaseGrader):
    """Wrap a callable ``fn(**fields) -> float | (float, reason) | GraderScore``.

    Fields default to the callable's parameters (those without defaults are required);
    their types to its annotations (``str`` -> STR, ``float``/``int`` -> NUMBER, else
    ANY), or pass ``field_types={"response": TEXT}``. A value of the wrong type, NaN or
    infinity is a GraderError for that row and the callable is not called.
    Sync callables run in a worker thread so they never block the event loop; pass
    ``run_in_thread=False`` for cheap pure functions where a thread hop costs more than
    the call. ``batched=True`` (or ``@rlreward.batched`` on the function) calls it once
    per batch of up to ``max_batch_size`` concurrent rows, each field a list.
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
        batched: bool | None = None,
        max_batch_size: int = 64,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"FunctionGrader: fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        owner = f"FunctionGrader {self.name!r}"
        self.batched = resolve_batched(
            fn, batched, owner, fields_declared=required_fields is not None
        )
        sig = signature_params(fn)
        req, opt, var_kw = sig.required, sig.optional, sig.var_keyword
        if required_fields is not None:
            req, opt = tuple(required_fields), tuple(optional_fields)
            var_kw = False
        self.required_fields, self.optional_fields = req, opt
        self.accepts_any_fields = var_kw
        self.field_types = (
            dict(field_types) if field_types is not None else _annotated_types(fn, self.batched)
        )
        bad = {k: v for k, v in self.field_types.items() if not isinstance(v, FieldType)}
        if bad:
            raise ConfigError(
                f"{owner}: field_types values must be FieldType "
                f"(TEXT, STR, NUMBER, TEXT_OR_NUMBER, ANY from rlreward.graders.fields), "
                f"got {bad!r}"
            )
        self.score_range = check_score_range(score_range, owner)
        self.higher_is_better = bool(higher_is_better)
        self.run_in_thread = run_in_thread
        if number_rule(max_batch_size, integer=True, low=1) is not None:
            raise ConfigError(
                f"{owner}: max_batch_size must be an int >= 1, got {max_batch_size!r}"
            )
        self.max_batch_size = max_batch_size
        self._is_async = is_async_callable(fn)
        self._batcher = self._make_batcher()

    def _make_batcher(self) -> MicroBatcher[_Row, Any] | None:
        if not self.batched:
            return None
        call = self._acall_batch if self._is_async else self._call_batch
        return MicroBatcher(call, self.max_batch_size, run_in_thread=self.run_in_thread)

    def _groups(self, rows: list[_Row]) -> dict[tuple[str, ...], list[int]]:
        """Row indices by the fields they carry (an optional field may be absent)."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(tuple(sorted(row)), []).append(i)
        return groups

    def _collect(self, out: list[Any], idx: list[int], scores: Any) -> None:
        try:
            values = list(scores)
        except TypeError:
            raise TypeError(
                f"batched function {self.name!r} must return a list of scores, one per row, "
                f"got {type(scores).__name__}"
            ) from None
        if len(values) != len(idx):
            raise ValueError(
                f"batched function {self.name!r} returned {len(values)} scores for {len(idx)} rows"
            )
        for i, v in zip(idx, values, strict=True):
            out[i] = v

    def _call_batch(self, rows: list[_Row]) -> list[Any]:
        out: list[Any] = [None] * len(rows)
        for keys, idx in self._groups(rows).items():
            self._collect(out, idx, self.fn(**{k: [rows[i][k] for i in idx] for k in keys}))
        return out

    async def _acall_batch(self, rows: list[_Row]) -> list[Any]:
        out: list[Any] = [None] * len(rows)
        for keys, idx in self._groups(rows).items():
            scores = await self.fn(**{k: [rows[i][k] for i in idx] for k in keys})
            self._collect(out, idx, scores)
        return out

    async def _aevaluate(self, **fields: Any) -> Any:
        if self._batcher is not None:
            return await self._batcher.submit(fields)
        if self._is_async:
            return await self.fn(**fields)
        if self.run_in_thread:
            return await asyncio.to_thread(self.fn, **fields)
        return self.fn(**fields)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_batcher"] = None  # loop-bound; rebuilt on unpickling
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._batcher = self._make_batcher()

    def describe(self) -> dict[str, Any]:
        fn = self.fn
        target = fn.func if isinstance(fn, partial) else fn
        where = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"
        return {
            **super().describe(),
            "function": where,
            "params": dict(fn.keywords) if isinstance(fn, partial) else {},
            "optional_fields": list(self.optional_fields),
            "accepts_any_fields": self.accepts_any_fields,
            "batched": self.batched,
        }
