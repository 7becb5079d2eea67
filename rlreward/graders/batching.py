"""MicroBatcher: turn many concurrent single-item awaits into few batch calls.

Graders keep the one-sample ``aevaluate(**fields)`` interface of the runner, while
models that are fast only in batches (reward models, embedders) see batches: every
``submit`` made while a batch call is running (or in the same loop tick) joins the next
batch. State is per event loop, so a batcher is safe across ``asyncio.run`` calls.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from rlreward.errors import ConfigError

__all__ = ["MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


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
        if (
            isinstance(max_batch_size, bool)
            or not isinstance(max_batch_size, int)
            or max_batch_size < 1
        ):
            raise ConfigError(
                f"MicroBatcher.max_batch_size must be an int >= 1, got {max_batch_size!r}"
            )
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.run_in_thread = run_in_thread
        self._is_async = inspect.iscoroutinefunction(fn)
        self.batch_sizes: list[int] = []  # observed batch sizes, for tests and benchmarks
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending[T, R]] = (
            weakref.WeakKeyDictionary()
        )

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
                self.batch_sizes.append(len(items))
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
