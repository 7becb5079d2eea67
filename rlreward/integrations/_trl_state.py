"""State shared by the TRL reward functions and the logging callback (imports neither).

A ``RewardGroup`` belongs to the functions of one ``make_reward_funcs`` call (they hold
it; the callback reaches it through them): it grades each batch once for all of them
and keeps ``RewardStats``, running sums of fixed size, so a run without the callback
holds a few numbers per column, not a list per call. Pickling a group drops its state;
functions pickled together still share one group (pickle keeps shared references).

``batch_metrics`` is what one graded batch adds to TRL's own logs (``log_metric``): a
fixed set of keys per reward, NaN where a column has no score in the batch, because
TRL averages each key over the batch calls of a log step (and TRL 1.12 gathers the
keys across ranks in sorted order, so every batch must send the same keys).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from rlreward.aggregators import WeightedSumAggregator, aligned_key
from rlreward.checks import RunningStats, mean_std
from rlreward.graders.kinds import is_judge
from rlreward.integrations._rows import trl_rows
from rlreward.results import GradingResults
from rlreward.reward import Reward
from rlreward.schema import GraderAbstention, GraderError, GraderResult, GraderScore
from rlreward.usage import UsageSummary

__all__ = ["Batch", "RewardGroup", "RewardStats", "batch_metrics", "weighed_components"]


@dataclass
class _Column:
    n: int = 0
    errors: int = 0
    abstained: int = 0
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

    Columns: every grader and monitor (raw scores) and aggregator under its own name,
    and, for the reward's weighted graders, ``<grader>__aligned`` (the components the
    reward weighed on the rows it scored).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cols: dict[str, _Column] = {}

    def record(self, results: GradingResults, reward: Reward | None = None) -> None:
        """Add a graded batch; ``reward`` is the Reward whose components to add."""
        with self._lock:
            for name, column in results.items():
                c = self._cols.setdefault(name, _Column())
                for r in column:
                    c.n += 1
                    if isinstance(r, GraderScore):
                        _add(c, "scores", r.score)
                    elif isinstance(r, GraderAbstention):
                        c.abstained += 1
                        continue
                    else:
                        c.errors += 1
                    meta = r.metadata
                    if isinstance(meta.get("latency_s"), (int, float)):
                        _add(c, "latency", float(meta["latency_s"]))
                    if isinstance(meta.get("cached"), bool):
                        c.cache_seen += 1
                        c.cache_hits += meta["cached"]
            if reward is not None:
                for components in weighed_components(results[reward.name]):
                    for grader, value in components.items():
                        _add(self._cols.setdefault(aligned_key(grader), _Column()), "scores", value)

    def pop(self, prefix: str = "rlreward") -> dict[str, float]:
        """``{prefix/<name>/<stat>: value}`` (mean, std, error_rate, abstain_rate,
        latency_s, cache_hit_rate) since the last call; resets. Aligned columns have
        mean/std only. ``error_rate`` is over the rows where the column applied."""
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
            applicable = c.n - c.abstained
            out[f"{key}/error_rate"] = c.errors / applicable if applicable else 0.0
            out[f"{key}/abstain_rate"] = c.abstained / c.n
            if c.latency is not None:
                out[f"{key}/latency_s"] = c.latency.mean
            if c.cache_seen:
                out[f"{key}/cache_hit_rate"] = c.cache_hits / c.cache_seen
        return out


def weighed_components(column: list[GraderResult]) -> list[dict[str, float]]:
    """The ``components`` a reward column published, for the rows it scored."""
    out = []
    for r in column:
        components = r.metadata.get("components") if isinstance(r, GraderScore) else None
        if isinstance(components, Mapping):
            out.append({str(k): float(v) for k, v in components.items()})
    return out


def _rates(column: list[GraderResult]) -> tuple[float, float]:
    """(abstain_rate over all rows, error_rate over the rows where it applied)."""
    n = len(column)
    abstained = sum(isinstance(r, GraderAbstention) for r in column)
    errors = sum(isinstance(r, GraderError) for r in column)
    applicable = n - abstained
    return (abstained / n if n else 0.0), (errors / applicable if applicable else 0.0)


def _column_metrics(key: str, column: list[GraderResult], *, scores: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    if scores:
        out[f"{key}/mean"], out[f"{key}/std"] = mean_std(
            r.score for r in column if isinstance(r, GraderScore)
        )
    out[f"{key}/abstain_rate"], out[f"{key}/error_rate"] = _rates(column)
    return out


def _nested_metrics(key: str, inner: Reward, column: list[GraderResult]) -> dict[str, float]:
    """``<key>/<inner grader>/mean|std`` for a member that is itself a ``Reward`` (e.g. a
    spec nested beside rule functions): each inner grader's raw score, from the row's
    metadata (``Reward.row_result``). The keys come from the reward, not the batch (NaN
    where no row has a score), so every process logs the same ones."""
    out: dict[str, float] = {}
    for sub in inner.graders:
        values = [r.metadata.get("graders", {}).get(sub) for r in column]
        out[f"{key}/{sub}/mean"], out[f"{key}/{sub}/std"] = mean_std(
            float(v) for v in values if v is not None
        )
    return out


def batch_metrics(reward: Reward, results: GradingResults, *, aligned: bool) -> dict[str, float]:
    """What one batch adds to TRL's logs, beside the curves TRL draws from the functions.

    ``rewards/<grader>/mean|std`` raw scores (and ``abstain_rate|error_rate``; for a
    member that is a nested ``Reward``, also ``rewards/<member>/<inner grader>/mean|std``),
    ``rewards/<grader>__aligned/mean|std`` what the reward weighed (``aligned``: only
    when no function of ours already returns it, i.e. combined mode),
    ``monitors/<monitor>/mean|std|abstain_rate|error_rate``, the reward's own
    ``rewards/<reward>/abstain_rate|error_rate`` (its mean/std is TRL's curve for the
    combined function, or TRL's ``reward``), and ``rewards/<aggregator>/mean|std`` for
    the aggregators reported beside the reward.
    """
    out: dict[str, float] = {}
    for name, cfg in reward.graders.items():
        out.update(_column_metrics(f"rewards/{name}", results[name], scores=True))
        if isinstance(cfg.grader, Reward):
            out.update(_nested_metrics(f"rewards/{name}", cfg.grader, results[name]))
    if aligned and isinstance(reward.aggregator, WeightedSumAggregator):
        columns: dict[str, list[float]] = {n: [] for n in reward.aggregator.grader_weights}
        for components in weighed_components(results[reward.name]):
            for name, value in components.items():
                columns[name].append(value)
        for name, values in columns.items():
            key = f"rewards/{aligned_key(name)}"
            out[f"{key}/mean"], out[f"{key}/std"] = mean_std(values)
    for name in reward.monitors:
        out.update(_column_metrics(f"monitors/{name}", results[name], scores=True))
    out.update(_column_metrics(f"rewards/{reward.name}", results[reward.name], scores=False))
    for name in reward.aggregators:
        if name != reward.name:
            out.update(_column_metrics(f"rewards/{name}", results[name], scores=True))
    out.update(usage_metrics(reward, results))
    return out


#: what ``usage_metrics`` logs per LLM-judge grader, from ``rlreward.usage.UsageSummary``
USAGE_KEYS = ("calls", "prompt_tokens", "completion_tokens", "cached_tokens", "errors")


def usage_metrics(reward: Reward, results: GradingResults) -> dict[str, float]:
    """``usage/<judge>/calls|prompt_tokens|completion_tokens|cached_tokens|errors`` (this
    batch's totals) and ``usage/<judge>/latency_p95_s`` for every LLM-judge grader or
    monitor of the reward. The keys come from the reward, not from the batch (0 and NaN
    where a batch made no call): TRL gathers every logged key across processes, and a
    key that one process logs and another does not would hang the gather."""
    judges = [
        name for name, cfg in {**reward.graders, **reward.monitors}.items() if is_judge(cfg.grader)
    ]
    if not judges:
        return {}
    summary = UsageSummary()
    summary.add_results({n: results[n] for n in judges})
    stats = summary.summary()
    out: dict[str, float] = {}
    for name in judges:
        got = stats.get(name, {})
        for key in USAGE_KEYS:
            out[f"usage/{name}/{key}"] = float(got.get(key) or 0)
        p95 = got.get("latency_p95_s")
        out[f"usage/{name}/latency_p95_s"] = float(p95) if p95 is not None else math.nan
    return out


class Batch(NamedTuple):
    """One graded batch, and whether this caller is the one that graded it."""

    results: GradingResults
    first: bool


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
        self.warned: set[str] = set()
        #: set by the trainer check when TRL's per-process slices split groups: grade
        #: whole groups across processes (``_trl_groups.spread_grade``) on this device
        self.spread: bool = False
        self.device: Any = None
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

    def first_time(self, what: str) -> bool:
        """True the first time ``what`` is asked about in this process (for one-time warnings)."""
        with self._lock:
            if what in self.warned:
                return False
            self.warned.add(what)
            return True

    async def results(
        self,
        grade: Callable[[list[dict[str, Any]]], Any],
        prompts: Any,
        completions: Any,
        columns: Mapping[str, Any],
        consumers: int,
    ) -> Batch:
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
            return Batch(await asyncio.shield(m.task), False)
        rows = trl_rows(prompts, completions, columns)
        task: asyncio.Task[GradingResults] = loop.create_task(grade(rows))
        self.memo = _Memo(loop, prompts, completions, task) if consumers > 1 else None
        return Batch(await asyncio.shield(task), True)
