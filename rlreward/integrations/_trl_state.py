"""State shared by the TRL reward functions and the logging callback (imports neither).

A ``RewardGroup`` belongs to the functions of one ``make_reward_funcs`` call (they hold
it; the callback reaches it through them): it grades each batch once for all of them
and keeps ``RewardStats``, running sums of fixed size, so a run without the callback
holds a few numbers per column, not a list per call. Pickling a group drops its state;
functions pickled together still share one group (pickle keeps shared references).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rlreward.aggregators import aligned_key
from rlreward.checks import RunningStats
from rlreward.integrations._rows import trl_rows
from rlreward.results import GradingResults
from rlreward.schema import GraderError, GraderScore

__all__ = ["RewardGroup", "RewardStats", "weighed_components"]


@dataclass
class _Column:
    n: int = 0
    errors: int = 0
    skipped: int = 0
    scores: RunningStats | None = None
    latency: RunningStats | None = None
    cache_hits: int = 0
    cache_seen: int = 0


def _add(col: _Column, attr: str, value: float) -> None:
    r = getattr(col, attr)
    if r is None:
        r = RunningStats()
        setattr(col, attr, r)
    r.add(value)


class RewardStats:
    """Per-column counts, mean/std, judge latency and cache hits since the last ``pop``.

    Columns: every grader (raw scores) and aggregator under its own name, and, for the
    reward aggregator's weighted graders, ``<grader>__aligned`` (the components it
    weighed on the rows it scored).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cols: dict[str, _Column] = {}

    def record(self, results: GradingResults, reward: str | None = None) -> None:
        """Add a graded batch; ``reward`` names the aggregator whose components to add."""
        with self._lock:
            for name, column in results.items():
                c = self._cols.setdefault(name, _Column())
                for r in column:
                    c.n += 1
                    if isinstance(r, GraderScore):
                        _add(c, "scores", r.score)
                    elif isinstance(r, GraderError) and r.metadata.get("not_applicable"):
                        c.skipped += 1
                        continue
                    else:
                        c.errors += 1
                    meta = r.metadata
                    if isinstance(meta.get("latency_s"), (int, float)):
                        _add(c, "latency", float(meta["latency_s"]))
                    if isinstance(meta.get("cached"), bool):
                        c.cache_seen += 1
                        c.cache_hits += meta["cached"]
            for components in weighed_components(results, reward):
                for grader, value in components.items():
                    _add(self._cols.setdefault(aligned_key(grader), _Column()), "scores", value)

    def pop(self, prefix: str = "rlreward") -> dict[str, float]:
        """``{prefix/<name>/<stat>: value}`` (mean, std, error_rate, skip_rate, latency_s,
        cache_hit_rate) since the last call; resets. Aligned columns have mean/std only."""
        with self._lock:
            cols, self._cols = self._cols, {}
        out: dict[str, float] = {}
        for name, c in cols.items():
            key = f"{prefix}/{name}"
            if c.scores is not None:
                out[f"{key}/mean"] = c.scores.mean
                out[f"{key}/std"] = c.scores.std
            if c.n == 0:  # an aligned column: no results of its own to count
                continue
            applicable = c.n - c.skipped
            out[f"{key}/error_rate"] = c.errors / applicable if applicable else 0.0
            if c.skipped:
                out[f"{key}/skip_rate"] = c.skipped / c.n
            if c.latency is not None:
                out[f"{key}/latency_s"] = c.latency.mean
            if c.cache_seen:
                out[f"{key}/cache_hit_rate"] = c.cache_hits / c.cache_seen
        return out


def weighed_components(results: GradingResults, reward: str | None) -> list[dict[str, float]]:
    """The ``components`` the ``reward`` aggregator published, for the rows it scored."""
    if reward is None or reward not in results:
        return []
    out = []
    for r in results[reward]:
        components = r.metadata.get("components") if isinstance(r, GraderScore) else None
        if isinstance(components, Mapping):
            out.append({str(k): float(v) for k, v in components.items()})
    return out


@dataclass
class _Memo:
    loop: asyncio.AbstractEventLoop
    prompts: Any
    completions: Any
    task: asyncio.Task[GradingResults]
    uses: int = 1


class RewardGroup:
    """What the functions of one ``make_reward_funcs`` call share in a process."""

    def __init__(self) -> None:
        self.stats = RewardStats()
        self.memo: _Memo | None = None
        self.checked: set[int] = set()  # ids of trainers whose reward settings were checked
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def check_once(self, key: int, check: Callable[[], None]) -> None:
        """Run ``check`` the first time ``key`` is seen (it may raise; then it runs again)."""
        with self._lock:
            if key in self.checked:
                return
        check()
        with self._lock:
            self.checked.add(key)

    async def results(
        self,
        grade: Callable[[list[dict[str, Any]]], Any],
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
        task: asyncio.Task[GradingResults] = loop.create_task(grade(rows))
        self.memo = _Memo(loop, prompts, completions, task) if consumers > 1 else None
        return await asyncio.shield(task)
