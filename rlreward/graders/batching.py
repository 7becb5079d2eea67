"""MicroBatcher: turn many concurrent single-item awaits into few batch calls.

Graders keep the one-sample ``aevaluate(**fields)`` interface of the runner, while
models that are fast only in batches (reward models, embedders) see batches: every
``submit`` made while a batch call is running (or in the same loop tick) joins the next
batch. State is per event loop, so a batcher is safe across ``asyncio.run`` calls.
What it observes is kept in a ``BatchStats`` of fixed size: counters plus the last
``RECENT_BATCHES`` batch sizes, so a batcher living through a whole training run does
not grow.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from rlreward.checks import number_rule
from rlreward.errors import ConfigError

__all__ = ["RECENT_BATCHES", "BatchStats", "MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")

#: how many of the latest batch sizes a BatchStats keeps
RECENT_BATCHES = 256


class BatchStats:
    """What a MicroBatcher observed, in constant memory: totals and the latest sizes."""

    __slots__ = ("batches", "items", "largest", "recent")

    def __init__(self, recent: int = RECENT_BATCHES) -> None:
        self.batches = 0
        self.items = 0
        self.largest = 0
        #: sizes of the latest batches, oldest first (at most ``recent`` of them)
        self.recent: deque[int] = deque(maxlen=recent)

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)
        self.recent.append(size)

    def __repr__(self) -> str:
        return f"BatchStats(batches={self.batches}, items={self.items}, largest={self.largest})"


class _Pending(Generic[T, R]):
    __slots__ = ("futures", "items", "task")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.futures: list[asyncio.Future[R]] = []
        self.task: asyncio.Task[None] | None = None


class MicroBatcher(Generic[T, R]):
    """Collect concurrent ``submit(item)`` calls into ``fn(list_of_items) -> list_of_results``.

    Args:
        fn: the batch function; must return one result per item, in order. It may be
            an ``async def`` function, which is awaited in the loop (no thread).
        max_batch_size: most items per ``fn`` call.
        run_in_thread: run a sync ``fn`` in a worker thread (keep True for torch/numpy work).
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]] | Callable[[list[T]], Awaitable[Sequence[R]]],
        max_batch_size: int = 64,
        run_in_thread: bool = True,
    ) -> None:
        if number_rule(max_batch_size, integer=True, low=1) is not None:
            raise ConfigError(
                f"MicroBatcher.max_batch_size must be an int >= 1, got {max_batch_size!r}"
            )
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.run_in_thread = run_in_thread
        self._is_async = inspect.iscoroutinefunction(fn)
        self.stats = BatchStats()
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending[T, R]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def batch_sizes(self) -> list[int]:
        """Sizes of the latest batches (at most ``RECENT_BATCHES``), for tests and benchmarks."""
        return list(self.stats.recent)

    async def submit(self, item: T) -> R:
        """Queue one item; returns its result (or raises the batch function's exception)."""
        loop = asyncio.get_running_loop()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = _Pending()
        fut: asyncio.Future[R] = loop.create_future()
        pending.items.append(item)
        pending.futures.append(fut)
        if pending.task is None:
            pending.task = loop.create_task(self._drain(pending))
        return await fut

    async def _drain(self, pending: _Pending[T, R]) -> None:
        await asyncio.sleep(0)  # let the submits of this loop tick join the first batch
        try:
            while pending.items:
                n = self.max_batch_size
                items, futures = pending.items[:n], pending.futures[:n]
                del pending.items[:n], pending.futures[:n]
                self.stats.record(len(items))
                try:
                    fn = cast(Callable[[list[T]], Any], self.fn)
                    if self._is_async:
                        results = await fn(items)
                    elif self.run_in_thread:
                        results = await asyncio.to_thread(fn, items)
                    else:
                        results = fn(items)
                    if len(results) != len(items):
                        raise RuntimeError(
                            f"batch function returned {len(results)} results for {len(items)} items"
                        )
                except Exception as exc:  # every waiter of this batch gets the error
                    for f in futures:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                for f, r in zip(futures, results, strict=True):
                    if not f.done():
                        f.set_result(r)
        finally:
            pending.task = None
