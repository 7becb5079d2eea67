"""TRL adapter: a Reward as TRL reward functions (GRPO, RLOO, AsyncGRPO) plus a logging callback.

``make_reward_funcs(reward)`` takes anything ``as_reward`` takes (a ``Reward``, a
``RewardSpec``, a YAML path, a spec dict, a ``GradingRunner``) and returns
``RewardFuncs(funcs, weights)``; pass ``reward_funcs=funcs`` and, where the trainer has
them, ``reward_weights=weights``. The functions hold the ``Reward`` itself; what TRL
optimises is ``Reward.aevaluate``'s value, row by row:

- ``mode="combined"`` (default; exact under every ``on_error``, with abstentions, with
  any aggregator): one function, named after the reward, returning the reward's value,
  ``None`` where it failed or did not apply. Its weight is 1.0 and lives inside, so a
  host that passes no ``reward_weights`` (TRL 1.16's ``AsyncGRPOTrainer``) trains on
  the same value.
- ``mode="per_grader"`` (opt-in; TRL then draws one curve per grader): one function
  per weighted grader, named ``<grader>__aligned``, returning the component the
  reward weighed for it, with ``weights`` the reward's normalised weights. TRL reduces
  them with ``(rewards_per_func * reward_weights).nansum(dim=1)``, which is the reward
  only when every weighted grader has a component on the row. So it is refused up
  front where that cannot hold (a callable aggregator, ``on_error="renormalize"``,
  ``multi_objective_aggregation="normalize_then_sum"``), and a row where a weighted
  grader abstained (the reward rescales the others; nansum cannot) raises
  ``ConfigError`` naming the fix instead of training on another value. Returning
  ``None`` from every function for such a row is not exact either: TRL then treats
  the row as unscorable (no reward, advantage 0), while the reward has a value.

``None`` in TRL (1.12 and 1.16, ``GRPOTrainer`` and ``AsyncGRPOTrainer``): a function's
``None`` becomes NaN; a row where EVERY function returned ``None`` is unscorable: its
reward is NaN, it is left out of the group's mean/std, its advantage is 0 and it is
left out of the logged reward. A row where only some functions returned ``None`` is
the nansum of the others (so per grader, a failed grader under ``on_error="error"``
makes every function return ``None``: the row is unscorable, as the combined
function's ``None``).

What else TRL logs, through the ``log_metric`` a ``GRPOTrainer``/``RLOOTrainer`` passes
(``_trl_state.batch_metrics``): raw grader scores, the aligned values,
``monitors/<name>/...`` (monitors are graded and logged, never in the reward) and
abstain/error rates. ``AsyncGRPOTrainer`` passes no ``log_metric`` and calls the
functions in its spawned child, where ``RewardLoggingCallback`` (in the trainer's
process) cannot see them: there TRL logs only its own ``rewards/<function>`` columns.

On the first call inside a ``GRPOTrainer``/``RLOOTrainer`` (found through
``log_metric``, a bound method of the trainer) the functions check the trainer's own
settings: all functions of the group are there, ``reward_weights`` are ours, and
per-grader functions are summed (``sum_then_normalize``). A mismatch raises
``ConfigError`` before anything is graded.

**Group graders** (``listwise_judge``, ``pairwise_judge``, a nested reward holding one)
need a prompt's ``num_generations`` completions in one call. TRL's ``GRPOTrainer`` and
``RLOOTrainer`` (1.12 and 1.16) call the functions on each process's slice of the
generation batch, which its ``RepeatSampler`` fills with each prompt's completions
consecutively: with one process the slice is the whole generation batch (TRL checks it
is a multiple of ``num_generations``), so groups are whole; with N processes each slice
is ``per_device_train_batch_size * steps_per_generation`` rows
(``per_device_eval_batch_size`` in evaluation) and TRL checks only the global batch, so
a group can straddle two processes. Where the trainer's settings allow that, the
functions grade across processes (``_trl_groups.spread_grade``: rows gathered, each
prompt's rows graded on the process holding its first row, results sent back; two
``all_gather_object`` calls per batch), so every group is judged whole; slices that
hold whole groups cost nothing extra. The trainer check refuses, before anything is
graded, a group grader whose ``group_size`` is not the trainer's ``num_generations``
(or ``num_generations_eval`` when it evaluates).

The functions are async (TRL runs them concurrently on its event loop) and pickle
with the Reward inside (its clients and models are built lazily in each process);
functions pickled together share one ``RewardGroup`` (one grading per batch, bounded
stats). ``RewardLoggingCallback`` (importable from here, loaded on use because it
imports transformers) reads those stats.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from rlreward.aggregators import aligned_key
from rlreward.errors import ConfigError
from rlreward.graders.group import is_group_grader
from rlreward.integrations._runtime import as_reward
from rlreward.integrations._trl_state import RewardGroup, RewardStats, batch_metrics
from rlreward.integrations.reward_monitor import MonitorConfig, capture_rollouts
from rlreward.results import GradingResults
from rlreward.reward import Reward
from rlreward.schema import GraderScore

# RewardLoggingCallback and RewardMonitorCallback are importable from this module too
# (module __getattr__); not listed here because they exist only once transformers is imported.
__all__ = ["MonitorConfig", "RLRewardFunc", "RewardFuncs", "RewardStats", "make_reward_funcs"]

log = logging.getLogger(__name__)
Mode = Literal["combined", "per_grader"]
MODES: tuple[str, ...] = ("combined", "per_grader")


async def _trl_reward_signature(prompts, completions, completion_ids=None, **kwargs):  # type: ignore[no-untyped-def]
    """Only its code object is used: the signature TRL sees on RLRewardFunc."""


class RewardFuncs(NamedTuple):
    """What ``make_reward_funcs`` returns: ``funcs, weights = make_reward_funcs(reward)``."""

    funcs: list[RLRewardFunc]
    weights: list[float]


class RLRewardFunc:
    """One TRL reward function: ``async (prompts, completions, completion_ids=None, **kwargs)``.

    A small picklable class rather than a closure. TRL 1.12 runs a reward function on
    its event loop only if ``inspect.iscoroutinefunction`` says so, which for an object
    means looking function-like: ``__name__``, ``__code__`` (of an ``async def`` with
    TRL's signature), ``__defaults__`` and ``__kwdefaults__`` (TRL 1.16 also reads the
    ``async`` of ``__call__``).
    """

    __defaults__ = (None,)
    __kwdefaults__ = None

    def __init__(
        self,
        reward: Reward,
        column: str,
        mode: Mode,
        group: RewardGroup,
        consumers: int,
        weight: float,
    ) -> None:
        self.reward = reward
        self.column = column  # the grader (per_grader) or the reward's name (combined)
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
        log_metric = kwargs.get("log_metric")
        trainer = getattr(log_metric, "__self__", None)
        if trainer is not None and hasattr(trainer, "reward_funcs"):
            self.group.check_once(id(trainer), lambda: self._check_trainer(trainer))
        elif self.mode == "per_grader" and self.group.first_time("unchecked"):
            log.warning(
                "make_reward_funcs(mode='per_grader') functions were called without a trainer's "
                "log_metric, so the trainer's reward_weights cannot be checked; a host that passes "
                "no reward_weights (TRL's AsyncGRPOTrainer sums every function with weight 1) "
                "does not train on the reward: use mode='combined' there"
            )
        batch = await self.group.results(self._grade, prompts, completions, kwargs, self.consumers)
        if batch.first:  # for a RewardMonitorCallback watching these functions, if any
            capture_rollouts(self.group, trainer, self.reward, prompts, completions, kwargs, batch)
        if batch.first and callable(log_metric):
            metrics = batch_metrics(self.reward, batch.results, aligned=self.mode == "combined")
            for key, value in metrics.items():
                log_metric(key, value)
        if self.mode == "per_grader":
            return per_grader_values(self.reward, batch.results, self.column)
        return self.reward.values(batch.results)

    async def _grade(self, rows: list[dict[str, Any]]) -> GradingResults:
        if self.group.spread:  # TRL's per-process slices split groups: grade across them
            from rlreward.integrations._trl_groups import spread_grade

            results = await spread_grade(rows, self._agrade, self.group.device)
        else:
            results = await self._agrade(rows)
        self.group.stats.record(results, self.reward)
        return results

    async def _agrade(self, rows: list[dict[str, Any]]) -> GradingResults:
        return await self.reward.agrade(rows, on_missing="skip")

    def _check_trainer(self, trainer: Any) -> None:
        """Refuse trainer settings under which TRL would not optimise the reward."""
        funcs = list(getattr(trainer, "reward_funcs", []))
        ours = [(i, f) for i, f in enumerate(funcs) if getattr(f, "group", None) is self.group]
        if len(ours) != self.consumers:
            raise ConfigError(
                f"the trainer's reward_funcs hold {len(ours)} of the {self.consumers} functions "
                "make_reward_funcs returned together; pass all of them (reward_funcs=funcs), "
                "or the reward TRL sums is not the reward"
            )
        weights = [float(w) for w in getattr(trainer, "reward_weights", [])]
        got = [weights[i] if i < len(weights) else math.nan for i, _ in ours]
        want = [f.weight for _, f in ours]
        close = (math.isclose(g, w, rel_tol=1e-6) for g, w in zip(got, want, strict=True))
        if not all(close):  # TRL holds the weights as float32
            raise ConfigError(
                f"the trainer's reward_weights for {[f.__name__ for _, f in ours]} are {got}, "
                f"but the reward's are {want}; pass the weights make_reward_funcs "
                "returned: GRPOConfig(reward_weights=weights) (RLOOConfig likewise)"
            )
        problems = group_problems(self.reward, trainer)
        if problems:
            raise ConfigError(
                "the reward's group graders would not get whole groups from this trainer: "
                + "; ".join(problems)
            )
        splits = split_slices(self.reward, trainer)
        if splits:
            if not _distributed():
                raise ConfigError(
                    "the reward's group graders would not get whole groups: "
                    + "; ".join(splits)
                    + " (and torch.distributed is not initialised, so rlreward cannot gather "
                    "them)"
                )
            self.group.spread = True
            self.group.device = getattr(getattr(trainer, "accelerator", None), "device", None)
            log.info(
                "%s; rlreward grades each prompt's rows on one process and sends the results "
                "back (two all_gather_object calls per batch)",
                "; ".join(splits),
            )
        aggregation = getattr(trainer, "multi_objective_aggregation", "sum_then_normalize")
        if self.mode == "per_grader" and len(ours) > 1 and aggregation != "sum_then_normalize":
            raise ConfigError(
                f"multi_objective_aggregation={aggregation!r} standardises each grader's "
                "function before summing, so TRL would not optimise the reward; use "
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
                "the trainer sums other reward functions %s with the reward's; what it "
                "optimises is not the reward alone",
                others,
            )

    def __repr__(self) -> str:
        return f"RLRewardFunc({self.__name__!r}, mode={self.mode!r}, reward={self.reward!r})"


def _whole_group_graders(reward: Reward) -> dict[str, Any]:
    configs = {**reward.graders, **reward.monitors}
    return {n: c.grader for n, c in configs.items() if is_group_grader(c.grader)}


def _slices(trainer: Any) -> list[tuple[str, int, int, str]]:
    """``(setting, completions per prompt, rows per process, what sets them)`` for
    training and, when the trainer evaluates, evaluation."""
    args = getattr(trainer, "args", None)
    train_gens = getattr(trainer, "num_generations", None)
    if args is None or not isinstance(train_gens, int):
        return []
    steps = int(getattr(args, "steps_per_generation", None) or 1)
    out = [
        (
            "num_generations",
            train_gens,
            int(args.per_device_train_batch_size) * steps,
            f"per_device_train_batch_size ({args.per_device_train_batch_size}) * "
            f"steps_per_generation ({steps})",
        )
    ]
    if str(getattr(args, "eval_strategy", "no")).lower().rsplit(".", 1)[-1] != "no":
        eval_gens = getattr(trainer, "num_generations_eval", None) or train_gens
        out.append(
            (
                "num_generations_eval",
                int(eval_gens),
                int(args.per_device_eval_batch_size),
                f"per_device_eval_batch_size ({args.per_device_eval_batch_size})",
            )
        )
    return out


def group_problems(reward: Reward, trainer: Any) -> list[str]:
    """Why ``trainer`` (a GRPOTrainer/RLOOTrainer) would misform the groups of ``reward``'s
    group graders (monitors included): a ``group_size`` other than the completions per
    prompt. Empty when it would not."""
    groups = _whole_group_graders(reward)
    problems: list[str] = []
    for setting, gens, _, _ in _slices(trainer) if groups else []:
        for name, grader in groups.items():
            if grader.group_size != gens:
                problems.append(
                    f"grader {name!r} has group_size {grader.group_size} but the trainer samples "
                    f"{setting}={gens} completions per prompt; set group_size: {gens} (or "
                    f"{setting}={grader.group_size})"
                )
    return problems


def split_slices(reward: Reward, trainer: Any) -> list[str]:
    """How ``trainer``'s per-process slices split groups (several processes, a slice not a
    multiple of the completions per prompt), when ``reward`` has group graders."""
    processes = int(getattr(getattr(trainer, "accelerator", None), "num_processes", 1) or 1)
    if processes < 2 or not _whole_group_graders(reward):
        return []
    return [
        f"each of the {processes} processes scores {what} = {local} completions, not a "
        f"multiple of {setting}={gens}, so a prompt's group straddles two processes (TRL "
        f"checks only the global batch; {what.split(' (')[0]}={gens} would keep them whole)"
        for setting, gens, local, what in _slices(trainer)
        if local % gens
    ]


def _distributed() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - TRL needs torch
        return False
    return bool(dist.is_available() and dist.is_initialized())


def per_grader_values(reward: Reward, results: GradingResults, grader: str) -> list[float | None]:
    """``grader``'s weighed component per row; ``None`` where the reward has no value.

    Exact only when each scored row has a component for every weighted grader (then
    TRL's weighted nansum is the reward); anything else raises ``ConfigError``.
    """
    weighted = reward.weighted_sum().grader_weights
    out: list[float | None] = []
    for i, r in enumerate(reward.results(results)):
        if not isinstance(r, GraderScore):
            out.append(None)  # failed or abstained: every function says None, as combined does
            continue
        components = r.metadata.get("components", {})
        missing = [n for n in weighted if n not in components]
        if missing:
            abstained = [n for n in missing if n in r.metadata.get("abstained", ())]
            why = (
                f"{abstained} abstained (did not apply) on it, and the reward rescales the "
                "other graders' weights"
                if abstained
                else f"{missing} have no component on it"
            )
            raise ConfigError(
                f"make_reward_funcs(mode='per_grader'): on row {i} of this batch {why}; TRL's "
                "weighted nansum cannot rescale, so it would train on another value than the "
                f"reward ({r.score:.6g}); use make_reward_funcs(..., mode='combined'), which "
                "is exact with abstentions"
            )
        out.append(components[grader])
    return out


def make_reward_funcs(
    reward: Any, *, mode: Mode = "combined", aggregator: str | None = None
) -> RewardFuncs:
    """TRL reward functions for a reward (a Reward, RewardSpec, YAML path, spec dict or runner).

    Returns ``RewardFuncs(funcs, weights)``: pass ``funcs`` as ``reward_funcs=`` and
    ``weights`` as ``GRPOConfig(reward_weights=...)``. The reward is built here once,
    so a bad spec fails now rather than at the first training step. ``aggregator``
    names the aggregator whose value is the reward (default: the reward's own).
    """
    if mode not in MODES:
        raise ConfigError(
            f"make_reward_funcs: mode={mode!r} is not allowed; choose 'combined' (default) "
            "or 'per_grader'"
        )
    held = as_reward(reward, aggregator)
    group = RewardGroup()
    if mode == "combined":
        return RewardFuncs([RLRewardFunc(held, held.name, mode, group, 1, 1.0)], [1.0])
    agg = held.weighted_sum()  # ConfigError naming mode='combined' for a callable aggregator
    weights = agg.grader_weights
    if agg.on_error == "renormalize" and len(weights) > 1:
        raise ConfigError(
            f"make_reward_funcs(mode='per_grader') cannot reproduce aggregator {agg.name!r}'s "
            "on_error='renormalize': TRL sums the per-grader rewards with nansum, which drops "
            "a failed grader without rescaling the other weights, so the trained reward would "
            "not be the reward; use mode='combined' (exact under every on_error, components "
            "logged), or on_error='zero' / 'error'"
        )
    names = [n for n in held.graders if n in weights]  # the reward's order
    funcs = [RLRewardFunc(held, n, mode, group, len(names), weights[n]) for n in names]
    return RewardFuncs(funcs, [weights[n] for n in names])


def __getattr__(name: str) -> Any:
    if name in ("RewardLoggingCallback", "RewardMonitorCallback"):  # import transformers
        return getattr(importlib.import_module("rlreward.integrations._trl_callback"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
