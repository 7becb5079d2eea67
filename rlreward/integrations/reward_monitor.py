"""The reward-hacking monitor in trainer runs: a Reward as the monitor's reference, and what
the TRL and VERL adapters share to feed it (imports neither TRL nor VERL).

``RewardReference(reward)`` is the ``reference`` callable a ``RewardMonitor`` calls on its
subsample: it grades the rows with the Reward (one ``agrade``) and returns one value per
row (None where there is none) under these column names:

- ``reference``: the reference reward's value (``Reward.values``): the spec's reward, or
  the true composite when the trainer optimises a learned reward model; None where it
  failed or did not apply. Logged as ``monitor/reference_mean``, compared with the
  trained reward (``monitor/rank_corr``, ``monitor/gap``).
- ``<grader>__aligned``: each grader the reference weighs, the component it weighed (on
  [0, 1], higher = better; None where the grader failed or abstained). Logged as
  ``monitor/component/<grader>__aligned``. A reward with a callable aggregator publishes
  no components: no such columns.
- ``<monitor>``: each monitor of the reference, its raw score (in its own range and
  direction). Logged as ``monitor/monitor/<monitor>`` and watched by the detectors
  (divergence, monitor drop).

``MonitorConfig`` is what a user gives an adapter (``RewardMonitorCallback`` for TRL,
``reward_kwargs.monitor`` for VERL's ``RLRewardManager``); ``build_monitor`` turns it and
the trained Reward into the ``RewardMonitor``.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from rlreward.aggregators import WeightedSumAggregator, aligned_key
from rlreward.checks import is_number
from rlreward.errors import ConfigError
from rlreward.integrations._rows import trl_rows
from rlreward.integrations._runtime import as_reward, run_sync
from rlreward.monitoring import PREFIX, Detector, RewardMonitor, StepRecord
from rlreward.monitoring.monitor import OnAlert
from rlreward.results import GradingResults
from rlreward.reward import Reward
from rlreward.schema import GraderScore

__all__ = [
    "REFERENCE",
    "MonitorConfig",
    "RewardReference",
    "RolloutTap",
    "Rollouts",
    "attach_tap",
    "build_monitor",
    "capture_rollouts",
    "monitor_keys",
    "trained_values",
]

log = logging.getLogger(__name__)

#: the reference reward's column in a ``RewardReference`` answer
REFERENCE = "reference"


class RewardReference:
    """A Reward as a ``RewardMonitor`` reference: rows -> columns (module docstring).

    Synchronous (the monitor's contract): it runs the grading on the process's
    background event loop (``run_sync``), so it may be called from a trainer's callback
    or from inside another event loop's thread; not from the background loop itself.
    Rows whose fields a grader lacks make that grader abstain (``on_missing="skip"``).
    """

    def __init__(self, reward: Reward) -> None:
        if not isinstance(reward, Reward):
            raise ConfigError(
                f"RewardReference needs a Reward, got {type(reward).__name__}; build one with "
                "rlreward.integrations.spec.load_reward(...)"
            )
        self.reward = reward
        agg = reward.aggregator
        self.weighted: tuple[str, ...] = (
            tuple(g for g in reward.graders if g in agg.grader_weights)
            if isinstance(agg, WeightedSumAggregator)
            else ()
        )
        self.monitor_names: tuple[str, ...] = tuple(reward.monitors)
        #: the component columns, in the reward's grader order
        self.component_names: tuple[str, ...] = tuple(aligned_key(g) for g in self.weighted)
        clash = {REFERENCE} & {*self.monitor_names, *self.component_names}
        if clash:
            raise ConfigError(
                f"monitor {sorted(clash)} of the reference reward is named like the reference "
                f"column {REFERENCE!r}; rename the monitor"
            )

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column an answer holds, in order."""
        return (REFERENCE, *self.component_names, *self.monitor_names)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, list[float | None]]:
        return run_sync(self.acolumns(rows))

    async def acolumns(self, rows: list[dict[str, Any]]) -> dict[str, list[float | None]]:
        """The columns for ``rows``, graded on the caller's event loop."""
        results = await self.reward.agrade(rows, on_missing="skip")
        out: dict[str, list[float | None]] = {REFERENCE: self.reward.values(results)}
        rewards = self.reward.results(results)
        for grader, column in zip(self.weighted, self.component_names, strict=True):
            values: list[float | None] = []
            for r in rewards:
                components = r.metadata.get("components") if isinstance(r, GraderScore) else None
                value = components.get(grader) if isinstance(components, Mapping) else None
                values.append(float(value) if value is not None and is_number(value) else None)
            out[column] = values
        for name in self.monitor_names:
            out[name] = [r.score if isinstance(r, GraderScore) else None for r in results[name]]
        return out

    def __repr__(self) -> str:
        return f"RewardReference({self.reward!r})"


@dataclass(frozen=True)
class MonitorConfig:
    """How an adapter runs the reward-hacking monitor (see ``RewardMonitor``).

    - ``every``: check every k-th training step; ``sample_size``: rows scored per check
      at most (the cost: one reference grading of that many rows per check);
    - ``reference``: the reference reward: None for the trained reward itself (its
      monitors and components are then what the check adds), or a Reward / RewardSpec /
      YAML path / spec dict, e.g. the spec's true composite when the trainer optimises a
      learned reward model;
    - ``jsonl_path``: the per-step JSONL (None: none); ``on_alert``: ``"log"``,
      ``"stop"`` or ``"best_checkpoint"``; ``detectors``: None for the five defaults;
      ``seed``: the subsample's seed.
    """

    every: int = 5
    sample_size: int = 32
    reference: Any = None
    jsonl_path: str | os.PathLike[str] | None = None
    on_alert: OnAlert = "log"
    detectors: Sequence[Detector] | None = None
    seed: int = 0

    @classmethod
    def from_options(cls, options: Any, where: str) -> MonitorConfig:
        """A MonitorConfig from a MonitorConfig, a mapping of its fields (VERL's
        ``reward_kwargs.monitor``), or True (the defaults)."""
        if isinstance(options, MonitorConfig):
            return options
        if options is True:
            return cls()
        if not isinstance(options, Mapping) and not hasattr(options, "items"):
            raise ConfigError(
                f"{where}: monitor must be a MonitorConfig or a mapping of its fields "
                f"({', '.join(f.name for f in fields(cls))}), got {type(options).__name__}"
            )
        data = dict(options.items())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{where}: monitor has no option {unknown}; its options are {sorted(known)}"
            )
        return cls(**data)


def build_monitor(
    config: MonitorConfig, trained: Reward, *, jsonl_path: Any = None
) -> tuple[RewardMonitor, RewardReference]:
    """The RewardMonitor for a run that trains on ``trained``, and its reference.

    ``jsonl_path`` overrides ``config.jsonl_path`` (an adapter that resolved a
    placeholder). Bad settings raise ``ConfigError`` now, before training starts.
    """
    reward = trained if config.reference is None else as_reward(config.reference)
    reference = RewardReference(reward)
    monitor = RewardMonitor(
        reference,
        every=config.every,
        sample_size=config.sample_size,
        reference_key=REFERENCE,
        monitor_names=reference.monitor_names,
        component_names=reference.component_names,
        jsonl_path=jsonl_path if jsonl_path is not None else config.jsonl_path,
        detectors=config.detectors,
        on_alert=config.on_alert,
        seed=config.seed,
    )
    log.info(
        "reward monitor: every %d steps, up to %d rows against %r (monitors %s)",
        config.every,
        config.sample_size,
        reward.name,
        list(reference.monitor_names),
    )
    return monitor, reference


def trained_values(values: Sequence[Any]) -> list[float | None]:
    """Trained rewards as the monitor takes them: a finite number, else None (NaN, None)."""
    return [float(v) if is_number(v) else None for v in values]


# -- TRL: the rollouts of the latest training batch, for RewardMonitorCallback ----------


@dataclass(frozen=True)
class Rollouts:
    """One training batch as the reward functions saw it (this process's rows)."""

    rows: list[dict[str, Any]]
    trained: list[float | None]
    group_ids: list[int] | None
    seq: int


class RolloutTap:
    """The latest training batch graded by one group of TRL reward functions.

    Holds one batch at a time (bounded), replaced by the next; ``seq`` counts batches,
    so the callback can tell a new batch from one it already checked.
    """

    def __init__(self) -> None:
        self.latest: Rollouts | None = None
        self._seq = 0
        self._lock = threading.Lock()

    def capture(
        self,
        trainer: Any,
        reward: Reward,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        columns: Mapping[str, Any],
        results: GradingResults,
    ) -> None:
        rows = trl_rows(prompts, completions, columns)
        with self._lock:
            self._seq += 1
            trained = trained_values(reward.values(results))
            self.latest = Rollouts(rows, trained, _group_ids(trainer, len(rows)), self._seq)


def _group_ids(trainer: Any, n: int) -> list[int] | None:
    """GRPO/RLOO groups of this process's rows: TRL repeats each prompt ``num_generations``
    times in a row over the global batch and hands process p the slice starting at p * n."""
    g = getattr(trainer, "num_generations", None)
    if not isinstance(g, int) or isinstance(g, bool) or g < 2:
        return None
    process = getattr(getattr(trainer, "accelerator", None), "process_index", 0)
    start = process * n if isinstance(process, int) else 0
    return [(start + i) // g for i in range(n)]


#: the tap of each RewardGroup a RewardMonitorCallback watches (per process: a pickled
#: group in another process has none, as its callback cannot see it)
_taps: weakref.WeakKeyDictionary[Any, RolloutTap] = weakref.WeakKeyDictionary()


def attach_tap(group: Any) -> RolloutTap:
    """The tap of ``group`` (a RewardGroup), made on first use."""
    with _taps_lock:
        tap = _taps.get(group)
        if tap is None:
            tap = _taps[group] = RolloutTap()
        return tap


def capture_rollouts(
    group: Any,
    trainer: Any,
    reward: Reward,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    columns: Mapping[str, Any],
    batch: Any,
) -> None:
    """Called by the TRL reward functions once per graded ``batch`` (a ``Batch``): keep it
    when a monitor watches ``group`` and the trainer is training (evaluation batches are
    not rollouts)."""
    tap = _taps.get(group)
    if tap is None:
        return
    model = getattr(trainer, "model", None)
    if model is not None and not getattr(model, "training", True):
        return
    tap.capture(trainer, reward, prompts, completions, columns, batch.results)


_taps_lock = threading.Lock()


def monitor_keys(reference: RewardReference) -> list[str]:
    """Every ``monitor/...`` key a check against ``reference`` can log, except the
    trainer's own ``kl``/``entropy``: the fixed key set of a host that needs the same keys
    on every sample (VERL's ``reward_extra_info``)."""
    full = StepRecord(
        step=0,
        reward_mean=0.0,
        reference_mean=0.0,
        rank_corr=0.0,
        gap=0.0,
        components=dict.fromkeys(reference.component_names, 0.0),
        monitors=dict.fromkeys(reference.monitor_names, 0.0),
        length_mean=0.0,
        zero_spread_groups=0.0,
        rows_scored=0,
    )
    return [*full.to_metrics(), PREFIX + "alerts"]
