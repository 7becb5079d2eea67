"""TRL adapter: a reward spec as TRL reward functions (GRPO, RLOO) plus a logging callback.

``make_reward_funcs(spec)`` returns ``RewardFuncs(funcs, weights)``:

- ``mode="per_grader"``: one function per grader, named after it (TRL logs
  ``rewards/<grader>/mean``), each returning the grader's score normalised to [0, 1]
  and turned around for lower-is-better graders, exactly as the aggregator sees it;
  ``weights`` are the aggregator's weights, for ``GRPOConfig(reward_weights=...)``.
- ``mode="combined"``: one function named after the aggregator returning the
  aggregate; it logs each grader's normalised mean/std as ``rewards/<grader>/mean|std``
  through TRL's ``log_metric``.

The functions are async (TRL runs them concurrently on its event loop) and picklable:
they hold only the spec (path or dict) and build the process's one runner on first
call. The per-grader functions of one batch share a single ``runner.arun``. A row that
lacks a grader's fields gets ``None`` from that grader (it does not apply), and so does
a failed grade (counted as an error); TRL treats ``None`` as "no reward from this
function" and gives a completion that no function scored a zero advantage.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from rlreward.errors import ConfigError
from rlreward.integrations._rows import trl_rows
from rlreward.integrations._runtime import RewardHandle, RewardSource, get_handle
from rlreward.results import GradingResults
from rlreward.schema import GraderError, GraderScore

__all__ = [  # noqa: F822 (RewardLoggingCallback comes from __getattr__, importing transformers)
    "RLRewardFunc",
    "RewardFuncs",
    "RewardLoggingCallback",
    "RewardStats",
    "make_reward_funcs",
]

Mode = Literal["per_grader", "combined"]


async def _trl_reward_signature(prompts, completions, completion_ids=None, **kwargs):  # type: ignore[no-untyped-def]
    """Only its code object is used: the signature TRL sees on RLRewardFunc."""


class RewardFuncs(NamedTuple):
    """What ``make_reward_funcs`` returns: ``funcs, weights = make_reward_funcs(spec)``."""

    funcs: list[RLRewardFunc]
    weights: list[float]


@dataclass
class _Column:
    n: int = 0
    errors: int = 0
    skipped: int = 0
    scores: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    cached: list[bool] = field(default_factory=list)


class RewardStats:
    """Per-column counts, scores, judge latencies and cache hits since the last ``pop``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cols: dict[str, _Column] = {}

    def record(self, results: GradingResults) -> None:
        with self._lock:
            for name, column in results.items():
                c = self._cols.setdefault(name, _Column())
                for r in column:
                    c.n += 1
                    if isinstance(r, GraderScore):
                        c.scores.append(r.score)
                    elif isinstance(r, GraderError) and r.metadata.get("not_applicable"):
                        c.skipped += 1
                        continue
                    else:
                        c.errors += 1
                    meta = r.metadata
                    if isinstance(meta.get("latency_s"), (int, float)):
                        c.latencies.append(float(meta["latency_s"]))
                    if isinstance(meta.get("cached"), bool):
                        c.cached.append(meta["cached"])

    def pop(self, prefix: str = "rlreward") -> dict[str, float]:
        """``{prefix/<name>/<stat>: value}`` (mean, std, error_rate, skip_rate, latency_s,
        cache_hit_rate) since the last call; resets."""
        with self._lock:
            cols, self._cols = self._cols, {}
        out: dict[str, float] = {}
        for name, c in cols.items():
            key = f"{prefix}/{name}"
            if c.scores:
                mean = math.fsum(c.scores) / len(c.scores)
                out[f"{key}/mean"] = mean
                out[f"{key}/std"] = math.sqrt(
                    math.fsum((s - mean) ** 2 for s in c.scores) / len(c.scores)
                )
            applicable = c.n - c.skipped
            out[f"{key}/error_rate"] = c.errors / applicable if applicable else 0.0
            if c.skipped:
                out[f"{key}/skip_rate"] = c.skipped / c.n
            if c.latencies:
                out[f"{key}/latency_s"] = math.fsum(c.latencies) / len(c.latencies)
            if c.cached:
                out[f"{key}/cache_hit_rate"] = sum(c.cached) / len(c.cached)
        return out


@dataclass
class _Memo:
    loop: asyncio.AbstractEventLoop
    prompts: Any
    completions: Any
    task: asyncio.Task[GradingResults]
    uses: int = 1


class _Group:
    """Process-local state of the functions made by one ``make_reward_funcs`` call."""

    def __init__(self) -> None:
        self.stats = RewardStats()
        self.memo: _Memo | None = None

    async def results(
        self,
        handle: RewardHandle,
        prompts: Any,
        completions: Any,
        columns: Mapping[str, Any],
        consumers: int,
    ) -> GradingResults:
        """Grade a batch once for the ``consumers`` functions TRL calls with the same lists."""
        loop = asyncio.get_running_loop()
        m = self.memo
        if (
            m is not None
            and m.loop is loop
            and m.prompts is prompts
            and m.completions is completions
        ):
            m.uses += 1
            if m.uses >= consumers:
                self.memo = None
            return await asyncio.shield(m.task)
        rows = trl_rows(prompts, completions, columns)
        task = loop.create_task(self._grade(handle, rows))
        self.memo = _Memo(loop, prompts, completions, task) if consumers > 1 else None
        return await asyncio.shield(task)

    async def _grade(self, handle: RewardHandle, rows: list[dict[str, Any]]) -> GradingResults:
        results = await handle.runner.arun(rows, on_missing="skip")
        self.stats.record(results)
        return results


_groups_lock = threading.Lock()
_groups: dict[str, _Group] = {}


def group_state(group: str) -> _Group:
    """The process's state for one group of reward functions."""
    with _groups_lock:
        g = _groups.get(group)
        if g is None:
            g = _groups[group] = _Group()
        return g


class RLRewardFunc:
    """One TRL reward function: ``async (prompts, completions, completion_ids=None, **kwargs)``.

    A small picklable class rather than a closure. TRL runs a reward function on its
    event loop only if ``inspect.iscoroutinefunction`` says so, which for an object means
    looking function-like: ``__name__``, ``__code__`` (of an ``async def`` with TRL's
    signature), ``__defaults__`` and ``__kwdefaults__``.
    """

    __defaults__ = (None,)
    __kwdefaults__ = None

    def __init__(
        self, source: RewardSource, column: str, mode: Mode, group: str, consumers: int
    ) -> None:
        self.source = source
        self.column = column
        self.mode = mode
        self.group = group
        self.consumers = consumers
        self.__name__ = column
        self.__qualname__ = column

    @property
    def __code__(self) -> Any:
        return _trl_reward_signature.__code__

    async def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        handle = get_handle(self.source)
        results = await group_state(self.group).results(
            handle, prompts, completions, kwargs, self.consumers
        )
        if self.mode == "per_grader":
            return [handle.normalised(self.column, r) for r in results[self.column]]
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            for name in handle.graders:
                values = [
                    v for v in (handle.normalised(name, r) for r in results[name]) if v is not None
                ]
                if values:
                    mean = math.fsum(values) / len(values)
                    log_metric(f"rewards/{name}/mean", mean)
                    log_metric(
                        f"rewards/{name}/std",
                        math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values)),
                    )
        return [r.score if isinstance(r, GraderScore) else None for r in results[self.column]]

    def __repr__(self) -> str:
        return f"RLRewardFunc({self.column!r}, mode={self.mode!r}, spec={self.source.describe()!r})"


def make_reward_funcs(
    spec_or_runner: Any, *, mode: Mode = "per_grader", aggregator: str | None = None
) -> RewardFuncs:
    """TRL reward functions for a reward spec (YAML path, dict, RewardSpec or GradingRunner).

    Returns ``RewardFuncs(funcs, weights)``: pass ``funcs`` as ``reward_funcs=`` and
    ``weights`` as ``GRPOConfig(reward_weights=...)``. The spec is built here once, so
    a bad spec fails now rather than at the first training step. ``aggregator`` names
    the aggregator that defines the reward (default: the spec's first).
    """
    if mode not in ("per_grader", "combined"):
        raise ConfigError(
            f"make_reward_funcs: mode={mode!r} is not allowed; choose 'per_grader' or 'combined'"
        )
    source = RewardSource.coerce(spec_or_runner, aggregator)
    handle = get_handle(source)
    group = uuid.uuid4().hex
    if mode == "combined":
        return RewardFuncs([RLRewardFunc(source, handle.reward, mode, group, 1)], [1.0])
    weights = handle.grader_weights()
    names = handle.graders
    funcs = [RLRewardFunc(source, n, mode, group, len(names)) for n in names]
    return RewardFuncs(funcs, [weights[n] for n in names])


def __getattr__(name: str) -> Any:
    if name == "RewardLoggingCallback":  # imports transformers: only on use
        return importlib.import_module("rlreward.integrations._trl_callback").RewardLoggingCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
