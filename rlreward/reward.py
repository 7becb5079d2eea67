"""Reward: graders plus their aggregation (plus monitors), one value that is itself a grader.

Every entrance holds a ``Reward`` and asks it, nothing else: the CLI, the TRL reward
functions, the VERL entry points, PPO and GRPO (``create_rl_trainer(...).reward``),
reward-model labels and the recipes' evaluation. A reward is built once, from Python,
a spec (``load_spec(path).reward``) or ``create_rl_trainer``'s keywords, and is fixed
after that: its graders, aggregators and monitors cannot be swapped.

- **A batch**: ``await reward.agrade(rows)`` (or ``reward.grade(rows)``) runs the rows
  through the reward's one ``GradingRunner`` (scheduling, micro-batching, cache and
  timeouts live there) and returns every column: each grader's raw results, each
  monitor's, and each aggregator's; ``reward.values(results)`` is the reward per row.
- **A row, as a grader**: ``await reward.aevaluate(**fields)`` gives a ``GraderScore``
  (metadata: ``components``, ``graders``, ``monitors``, ``aggregates``, ``abstained``),
  a ``GraderError`` or a ``GraderAbstention``; so a reward nests inside another reward
  as one of its graders, with its own aggregation and ``on_error`` intact.
- **Three outcomes** per row and grader: a score, a failure, or not applicable
  (abstain). Only the aggregation decides what each means for the reward.
- **Monitors** are graded for every row and reported beside the reward, never weighed.
- **Group graders inside** (``rlreward.graders.group``): a reward holding them is a
  group grader itself (``group_size``, ``group_key``, ``aevaluate_group``), so when it
  is nested, the outer runner hands it whole groups and its graders see them in one
  inner ``agrade``. This needs one ``group_size`` and one ``group_key`` among its group
  graders; otherwise ``group_size`` is None and it is graded row by row (where its
  group graders refuse each row as a partial group).
- **Pickles** whole when its graders do (the built-in ones do: clients and models are
  created lazily in each process); a copy grades to the same values.

Without an aggregator the reward is the documented default: an equal-weight
``WeightedSumAggregator("reward")`` over every grader, ``on_error="error"``. With
several aggregators the reward is the one named ``reward=`` (default: the first); the
others are reported beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from rlreward.aggregators import AggregatorLike, WeightedSumAggregator, aggregator_name
from rlreward.errors import ConfigError
from rlreward.results import GradingResults
from rlreward.runner import GraderConfig, GradingRunner, OnMissing
from rlreward.schema import GraderAbstention, GraderError, GraderResult, GraderScore, ScoreRange

__all__ = ["Reward"]


class Reward:
    """One reward: graders + aggregation (+ monitors), fixed once built; a Grader itself.

    Args:
        graders: ``{name: GraderConfig | Grader | callable}`` (or a list of graders).
        aggregators: one aggregator or a list; default an equal-weight
            ``WeightedSumAggregator("reward")``.
        monitors: graders computed for every row and reported, never weighed.
        reward: the name of the aggregator whose value is the reward (default: the first).
        max_concurrency, timeout, show_progress: the runner's options.
    """

    def __init__(
        self,
        graders: Any,
        aggregators: AggregatorLike | Sequence[AggregatorLike] | None = None,
        *,
        monitors: Any = None,
        reward: str | None = None,
        max_concurrency: int = 32,
        timeout: float | None = None,
        show_progress: bool = False,
    ) -> None:
        if aggregators is None or (isinstance(aggregators, (list, tuple)) and not aggregators):
            aggregators = WeightedSumAggregator("reward")
        runner = GradingRunner(
            graders,
            aggregators=aggregators,
            monitors=monitors,
            max_concurrency=max_concurrency,
            show_progress=show_progress,
            timeout=timeout,
        )
        name = reward if reward is not None else next(iter(runner.aggregators))
        if name not in runner.aggregators:
            raise ConfigError(
                f"Reward: reward={name!r} names no aggregator; aggregators are "
                f"{sorted(runner.aggregators)}"
            )
        self._runner = runner
        self.name: str = name
        groups = list(runner._group_graders.values())
        sizes = {g.group_size for g in groups}
        keys = {getattr(g, "group_key", None) for g in groups}
        #: the group size of its group graders when they agree (it is then a group grader)
        self.group_size: int | None = sizes.pop() if len(sizes) == 1 and len(keys) == 1 else None
        self.group_key: str | None = keys.pop() if self.group_size is not None else None
        agg = runner.aggregators[name]
        self.score_range: ScoreRange | None = _range_of(agg)
        self.higher_is_better: bool = bool(getattr(agg, "higher_is_better", True))

    # -- what it is made of (read-only views) ---------------------------------------------
    @property
    def runner(self) -> GradingRunner:
        """The one runner every batch of this reward goes through."""
        return self._runner

    @property
    def graders(self) -> Mapping[str, GraderConfig]:
        return dict(self._runner.grader_configs)

    @property
    def monitors(self) -> Mapping[str, GraderConfig]:
        return dict(self._runner.monitor_configs)

    @property
    def aggregators(self) -> Mapping[str, Any]:
        """``{name: bound aggregator}``; ``self.name`` is the reward's."""
        return dict(self._runner.aggregators)

    @property
    def aggregator(self) -> Any:
        """The bound aggregator whose value is the reward."""
        return self._runner.aggregators[self.name]

    def weighted_sum(self) -> WeightedSumAggregator:
        """The reward's aggregator as a bound WeightedSumAggregator (its public view:
        ``grader_weights``, ``score_ranges``, ``aligned``); ConfigError for another kind."""
        agg = self.aggregator
        if not isinstance(agg, WeightedSumAggregator):
            raise ConfigError(
                f"the reward {self.name!r} is computed by a {type(agg).__name__}, not a "
                "WeightedSumAggregator, so it has no per-grader weights to hand to a trainer; "
                "use mode='combined' (the TRL adapter) or a weighted_sum aggregator"
            )
        return agg

    def with_reward(self, aggregator: str) -> Reward:
        """This reward with another of its aggregators as the value (same graders)."""
        if aggregator == self.name:
            return self
        runner = self._runner
        return Reward(
            runner.grader_configs,
            list(runner.aggregators.values()),
            monitors=runner.monitor_configs or None,
            reward=aggregator,
            max_concurrency=runner.max_concurrency,
            timeout=runner.timeout,
            show_progress=runner.show_progress,
        )

    # -- batches ----------------------------------------------------------------------
    async def agrade(
        self, rows: Any, *, on_missing: OnMissing = "skip", show_progress: bool | None = None
    ) -> GradingResults:
        """Every column for ``rows``: graders, monitors and aggregators, in row order.

        ``on_missing="skip"`` (default): a grader whose fields a row lacks abstains on it;
        ``"raise"``: one MissingFieldsError listing every gap, before any call.
        """
        runner = self._runner
        before = runner.show_progress
        if show_progress is not None:
            runner.show_progress = show_progress
        try:
            return await runner.arun(rows, on_missing=on_missing)
        finally:
            runner.show_progress = before

    def grade(
        self, rows: Any, *, on_missing: OnMissing = "skip", show_progress: bool | None = None
    ) -> GradingResults:
        """Synchronous ``agrade`` (its own event loop; loop-bound clients closed after)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._grade_and_close(rows, on_missing, show_progress))
        raise RuntimeError("Reward.grade() was called inside a running event loop; await agrade()")

    async def _grade_and_close(
        self, rows: Any, on_missing: OnMissing, show_progress: bool | None
    ) -> GradingResults:
        try:
            return await self.agrade(rows, on_missing=on_missing, show_progress=show_progress)
        finally:
            await self._runner.aclose()

    def results(self, results: GradingResults) -> list[GraderResult]:
        """The reward's column of ``results`` (one value per row)."""
        return results[self.name]

    def values(self, results: GradingResults) -> list[float | None]:
        """The reward per row: its score, or None where it failed or did not apply."""
        return [r.score if isinstance(r, GraderScore) else None for r in results[self.name]]

    # -- a row, as a grader -------------------------------------------------------------
    async def aevaluate(self, **fields: Any) -> GraderResult:
        """Grade one row: the reward's value, its metadata carrying every column."""
        results = await self._runner.arun([fields], on_missing="skip")
        return self.row_result(results, 0)

    async def aevaluate_group(self, rows: Sequence[dict[str, Any]]) -> list[GraderResult]:
        """Grade a whole group (or several) in one inner ``agrade``: one value per row, as
        ``aevaluate`` gives it. The outer runner calls it when ``group_size`` is set."""
        results = await self._runner.arun(list(rows), on_missing="skip")
        return [self.row_result(results, i) for i in range(len(rows))]

    def row_result(self, results: GradingResults, index: int) -> GraderResult:
        """Row ``index`` of ``results`` as one value: the reward's result, its metadata
        extended with ``graders`` / ``monitors`` (raw scores) and ``aggregates``."""
        result = results[self.name][index]
        meta = dict(result.metadata)
        meta["graders"] = {n: _raw(results[n][index]) for n in self._runner.graders}
        if self._runner.monitors:
            meta["monitors"] = {n: _raw(results[n][index]) for n in self._runner.monitors}
        others = [a for a in self._runner.aggregators if a != self.name]
        if others:
            meta["aggregates"] = {a: _raw(results[a][index]) for a in others}
        if isinstance(result, GraderScore):
            return GraderScore(self.name, result.score, result.reason, meta)
        if isinstance(result, GraderAbstention):
            return GraderAbstention(self.name, result.reason, meta)
        return GraderError(self.name, result.error, meta)

    def missing_fields(self, available: Collection[str]) -> list[str]:
        """Fields the row lacks when NO weighted grader could apply (otherwise the graders
        that lack theirs abstain and the rest decide): used when this reward is nested."""
        weighted = _weighted(self.aggregator, self._runner.graders)
        gaps: list[str] = []
        for n in weighted:
            cfg = self._runner.grader_configs[n]
            guarded = self._runner._guarded[n]
            try:
                fields = cfg.map(dict.fromkeys(available))
            except Exception:
                return []
            missing = guarded.missing_fields(fields)
            if not missing:
                return []
            gaps.extend(f for f in missing if f not in gaps)
        return gaps

    def select_fields(self, sample: dict[str, Any]) -> dict[str, Any]:
        return sample  # every inner grader maps its own fields from the whole row

    async def aclose(self) -> None:
        await self._runner.aclose()

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: the reward's name, graders, weights, monitors."""
        agg = self.aggregator
        weights = dict(agg.grader_weights) if isinstance(agg, WeightedSumAggregator) else None
        return {
            "name": self.name,
            "graders": list(self._runner.graders),
            "monitors": list(self._runner.monitors),
            "aggregators": list(self._runner.aggregators),
            "weights": weights,
            "on_error": getattr(agg, "on_error", None),
            "score_range": list(self.score_range) if self.score_range else None,
        }

    def __repr__(self) -> str:
        return (
            f"Reward({self.name!r}, graders={list(self._runner.graders)}, "
            f"monitors={list(self._runner.monitors)}, "
            f"aggregators={list(self._runner.aggregators)})"
        )


def _raw(result: GraderResult) -> float | None:
    return result.score if isinstance(result, GraderScore) else None


def _weighted(agg: Any, graders: Mapping[str, Any]) -> list[str]:
    if isinstance(agg, WeightedSumAggregator):
        return list(agg.grader_weights)
    return list(graders)  # a callable aggregator may read any grader


def _range_of(agg: Any) -> ScoreRange | None:
    """The declared range of an aggregator's value (a callable declares ``score_range``)."""
    rng = getattr(agg, "score_range", None)
    if rng is None:
        return None
    try:
        low, high = (float(v) for v in rng)
    except (TypeError, ValueError):
        raise ConfigError(
            f"aggregator {aggregator_name(agg)!r}: score_range must be (low, high) or None, "
            f"got {rng!r}"
        ) from None
    return (low, high)
