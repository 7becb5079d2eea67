"""TRL adapter: a reward spec as TRL reward functions (GRPO, RLOO) plus a logging callback.

``make_reward_funcs(spec)`` returns ``RewardFuncs(funcs, weights)``; pass
``reward_funcs=funcs`` and ``GRPOConfig(reward_weights=weights)``. What TRL optimises
is then the spec aggregator's value, row by row, failures included:

- ``mode="combined"`` (exact under every ``on_error``): one function, named after the
  aggregator, returning the aggregate (``None`` where it failed). It reports each
  grader through TRL's ``log_metric``: ``rewards/<grader>/mean|std`` the raw scores,
  ``rewards/<grader>__aligned/mean|std`` the values the aggregator weighed.
- ``mode="per_grader"`` (default; TRL then logs one curve per grader): one function per
  weighted grader, named ``<grader>__aligned``, returning the aggregator's published
  component for that grader (``metadata["components"]``: on [0, 1], higher = better),
  with ``weights`` the aggregator's normalised weights. TRL 1.12 reduces with
  ``(rewards_per_func * reward_weights).nansum(dim=1)``; that equals the aggregate when
  the used weights sum to 1, which holds for ``on_error="zero"`` (a failed grader's
  component is its worst, 0.0) and ``"error"`` (a row where a grader failed gets
  ``None`` from every function: TRL's "unscorable", zero advantage, as the combined
  function's ``None``). It cannot hold for ``"renormalize"``: nansum drops the failed
  grader without rescaling the others (0.784 where the spec says 0.98), and returning
  rescaled values would put a number that is not the grader's under its name. So that
  combination is refused with the fix (``mode="combined"``).

On the first call in a trainer the functions check the trainer's own settings (found
through the ``log_metric`` TRL passes, a bound method of the trainer): all functions of
the group are there, ``reward_weights`` are ours, and per-grader functions are summed
(``multi_objective_aggregation="sum_then_normalize"``, not ``"normalize_then_sum"``,
which standardises each grader before summing: another reward). A mismatch raises
``ConfigError`` before anything is graded.

Naming (the project's one rule): a grader's bare name carries its raw score, its own
range and direction; ``<grader>__aligned`` carries the value the aggregator weighs.

The functions are async (TRL runs them concurrently on its event loop) and picklable:
they hold the spec (path or dict) and build the process's one runner on first call.
The functions of one call share a ``RewardGroup`` (one grading per batch, bounded
stats); ``RewardLoggingCallback`` (importable from here, loaded on use because it
imports transformers) reads those stats.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

from rlreward.aggregators import aligned_key
from rlreward.checks import mean_std
from rlreward.errors import ConfigError
from rlreward.integrations._runtime import RewardHandle, RewardSource, get_handle
from rlreward.integrations._trl_state import RewardGroup, RewardStats, weighed_components
from rlreward.results import GradingResults
from rlreward.schema import GraderScore

# RewardLoggingCallback is importable from this module too (module __getattr__); it is
# not listed here because it exists only once transformers is imported.
__all__ = ["RLRewardFunc", "RewardFuncs", "RewardStats", "make_reward_funcs"]

log = logging.getLogger(__name__)
Mode = Literal["per_grader", "combined"]


async def _trl_reward_signature(prompts, completions, completion_ids=None, **kwargs):  # type: ignore[no-untyped-def]
    """Only its code object is used: the signature TRL sees on RLRewardFunc."""


class RewardFuncs(NamedTuple):
    """What ``make_reward_funcs`` returns: ``funcs, weights = make_reward_funcs(spec)``."""

    funcs: list[RLRewardFunc]
    weights: list[float]


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
        self,
        source: RewardSource,
        column: str,
        mode: Mode,
        group: RewardGroup,
        consumers: int,
        weight: float,
    ) -> None:
        self.source = source
        self.column = column  # the grader (per_grader) or the aggregator (combined)
        self.mode = mode
        self.group = group
        self.consumers = consumers
        self.weight = weight
        self.__name__ = aligned_key(column) if mode == "per_grader" else column
        self.__qualname__ = self.__name__

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
        trainer = getattr(kwargs.get("log_metric"), "__self__", None)
        if trainer is not None and hasattr(trainer, "reward_funcs"):
            self.group.check_once(id(trainer), lambda: self._check_trainer(trainer))

        async def grade(rows: list[dict[str, Any]]) -> GradingResults:
            results = await handle.runner.arun(rows, on_missing="skip")
            self.group.stats.record(results, handle.reward)
            return results

        results = await self.group.results(grade, prompts, completions, kwargs, self.consumers)
        reward = results[handle.reward]
        if self.mode == "per_grader":
            return [
                r.metadata["components"].get(self.column) if isinstance(r, GraderScore) else None
                for r in reward
            ]
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            self._log_components(handle, results, log_metric)
        return [r.score if isinstance(r, GraderScore) else None for r in reward]

    def _log_components(
        self, handle: RewardHandle, results: GradingResults, log_metric: Callable[..., Any]
    ) -> None:
        """Raw scores under ``rewards/<grader>``, weighed values under ``<grader>__aligned``."""
        for name in handle.graders:
            raw = [r.score for r in results[name] if isinstance(r, GraderScore)]
            if raw:
                mean, std = mean_std(raw)
                log_metric(f"rewards/{name}/mean", mean)
                log_metric(f"rewards/{name}/std", std)
        columns: dict[str, list[float]] = {}
        for components in weighed_components(results, handle.reward):
            for name, value in components.items():
                columns.setdefault(name, []).append(value)
        for name, values in columns.items():
            mean, std = mean_std(values)
            log_metric(f"rewards/{aligned_key(name)}/mean", mean)
            log_metric(f"rewards/{aligned_key(name)}/std", std)

    def _check_trainer(self, trainer: Any) -> None:
        """Refuse trainer settings under which TRL would not optimise the spec's reward."""
        funcs = list(getattr(trainer, "reward_funcs", []))
        ours = [(i, f) for i, f in enumerate(funcs) if getattr(f, "group", None) is self.group]
        if len(ours) != self.consumers:
            raise ConfigError(
                f"the trainer's reward_funcs hold {len(ours)} of the {self.consumers} functions "
                "make_reward_funcs returned together; pass all of them (reward_funcs=funcs), "
                "or the reward TRL sums is not the spec's"
            )
        weights = [float(w) for w in getattr(trainer, "reward_weights", [])]
        got = [weights[i] if i < len(weights) else math.nan for i, _ in ours]
        want = [f.weight for _, f in ours]
        close = (math.isclose(g, w, rel_tol=1e-6) for g, w in zip(got, want, strict=True))
        if not all(close):  # TRL holds the weights as float32
            raise ConfigError(
                f"the trainer's reward_weights for {[f.__name__ for _, f in ours]} are {got}, "
                f"but the reward spec's are {want}; pass the weights make_reward_funcs "
                "returned: GRPOConfig(reward_weights=weights) (RLOOConfig likewise)"
            )
        aggregation = getattr(trainer, "multi_objective_aggregation", "sum_then_normalize")
        if self.mode == "per_grader" and len(ours) > 1 and aggregation != "sum_then_normalize":
            raise ConfigError(
                f"multi_objective_aggregation={aggregation!r} standardises each grader's "
                "function before summing, so TRL would not optimise the spec's reward; use "
                "multi_objective_aggregation='sum_then_normalize' or "
                "make_reward_funcs(..., mode='combined')"
            )
        others = [
            getattr(f, "__name__", repr(f))
            for f in funcs
            if getattr(f, "group", None) is not self.group
        ]
        if others:
            log.warning(
                "the trainer sums other reward functions %s with the reward spec's; what it "
                "optimises is not the spec's reward alone",
                others,
            )

    def __repr__(self) -> str:
        return (
            f"RLRewardFunc({self.__name__!r}, mode={self.mode!r}, spec={self.source.describe()!r})"
        )


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
    group = RewardGroup()
    if mode == "combined":
        return RewardFuncs([RLRewardFunc(source, handle.reward, mode, group, 1, 1.0)], [1.0])
    agg = handle.weighted_sum()
    weights = agg.grader_weights
    if agg.on_error == "renormalize" and len(weights) > 1:
        raise ConfigError(
            f"make_reward_funcs(mode='per_grader') cannot reproduce aggregator {agg.name!r}'s "
            "on_error='renormalize': TRL sums the per-grader rewards with nansum, which drops "
            "a failed grader without rescaling the other weights, so the trained reward would "
            "not be the spec's; use mode='combined' (exact under every on_error, components "
            "logged), or on_error='zero' / 'error' in the spec"
        )
    names = [n for n in handle.graders if n in weights]  # the spec's order
    funcs = [RLRewardFunc(source, n, mode, group, len(names), weights[n]) for n in names]
    return RewardFuncs(funcs, [weights[n] for n in names])


def __getattr__(name: str) -> Any:
    if name == "RewardLoggingCallback":  # imports transformers: only on use
        return importlib.import_module("rlreward.integrations._trl_callback").RewardLoggingCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
