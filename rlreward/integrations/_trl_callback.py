"""TRL callbacks: rlreward's per-grader diagnostics (``RewardLoggingCallback``) and the
reward-hacking monitor (``RewardMonitorCallback``) in a transformers Trainer's logs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from transformers import TrainerCallback

from rlreward.errors import ConfigError
from rlreward.integrations._rows import trl_rows
from rlreward.integrations._runtime import run_sync
from rlreward.integrations._trl_state import RewardGroup, RewardStats
from rlreward.integrations.reward_monitor import (
    MonitorConfig,
    Rollouts,
    RolloutTap,
    attach_tap,
    build_monitor,
)

__all__ = ["RewardLoggingCallback", "RewardMonitorCallback"]

log = logging.getLogger(__name__)


def _install(callback: Any, trainer: Any) -> None:
    handler = trainer.callback_handler
    if callback in handler.callbacks:
        handler.callbacks.remove(callback)
    # right after DefaultFlowCallback, before the reporters that read the logs
    handler.callbacks.insert(1 if handler.callbacks else 0, callback)


def _update_logs(state: Any, logs: dict[str, Any], metrics: dict[str, float]) -> None:
    """Add ``metrics`` to the logs the reporters get and to the entry already in log_history."""
    logs.update(metrics)
    if state.log_history and state.log_history[-1].get("step") == state.global_step:
        state.log_history[-1].update(metrics)


def _ours(f: Any) -> bool:
    return isinstance(getattr(f, "group", None), RewardGroup)


def _funcs(reward_funcs: Any, who: str = "RewardLoggingCallback") -> list[Any]:
    """The functions from make_reward_funcs in ``reward_funcs`` (RewardFuncs, a list or one)."""
    if _ours(reward_funcs):
        items: Iterable[Any] = [reward_funcs]
    elif isinstance(getattr(reward_funcs, "funcs", None), list):  # RewardFuncs
        items = reward_funcs.funcs
    elif isinstance(reward_funcs, Iterable) and not isinstance(reward_funcs, (str, bytes)):
        items = reward_funcs
    else:
        items = []
    funcs = [f for f in items if _ours(f)]
    if not funcs:
        raise ConfigError(
            f"{who} needs the functions from make_reward_funcs(...) "
            f"(the RewardFuncs or its .funcs), got {reward_funcs!r:.120}"
        )
    return funcs


class RewardLoggingCallback(TrainerCallback):
    """Adds ``<prefix>/<name>/<stat>`` to the logs: mean, std, error_rate, abstain_rate,
    latency_s, cache_hit_rate.

    ``<name>`` is every grader and monitor (raw scores, as the grader returned them),
    every aggregator (the reward's value among them), and ``<grader>__aligned`` for each
    grader the reward weighs (mean/std of the values it weighed, on the rows it scored).
    ``abstain_rate`` is the share of rows the column did not apply to; ``error_rate``
    the share of the others that failed. Values cover the reward
    calls since the previous log; on an evaluation log the keys get TRL's ``eval_``
    prefix. They land in ``state.log_history``; to send them to reporters (W&B,
    TensorBoard) as well, add the callback with ``install``, which places it before the
    reporting callbacks.

    ``grade(prompts, completions, **columns)`` grades evaluation generations with the
    same reward and returns (and logs at the next log) ``eval_<prefix>/...`` metrics.
    """

    def __init__(self, reward_funcs: Any, prefix: str = "rlreward") -> None:
        funcs = _funcs(reward_funcs)
        self.groups: list[RewardGroup] = []
        for f in funcs:
            if all(f.group is not g for g in self.groups):
                self.groups.append(f.group)
        self.reward = funcs[0].reward
        self.prefix = prefix
        self._pending: dict[str, float] = {}

    def pop_metrics(self) -> dict[str, float]:
        """The metrics gathered since the last call (resets them)."""
        out = dict(self._pending)
        self._pending.clear()
        for g in self.groups:
            out.update(g.stats.pop(self.prefix))
        return out

    def grade(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> dict[str, float]:
        """Grade evaluation generations; returns ``eval_<prefix>/<name>/...`` metrics."""
        rows = trl_rows(prompts, completions, columns)
        stats = RewardStats()
        stats.record(run_sync(self.reward.agrade(rows, on_missing="skip")), self.reward)
        metrics = stats.pop(f"eval_{self.prefix}")
        self._pending.update(metrics)
        return metrics

    def install(self, trainer: Any) -> RewardLoggingCallback:
        """Add this callback to ``trainer`` ahead of its reporting callbacks."""
        _install(self, trainer)
        return self

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        metrics = self.pop_metrics()
        if not metrics or logs is None:
            return
        if any(k.startswith("eval_") for k in logs):
            metrics = {k if k.startswith("eval_") else f"eval_{k}": v for k, v in metrics.items()}
        _update_logs(state, logs, metrics)


class RewardMonitorCallback(TrainerCallback):
    """The reward-hacking monitor in a GRPO/RLOO run (``rlreward.monitoring.RewardMonitor``).

    ``RewardMonitorCallback(funcs, every=5, sample_size=32, reference=None,
    jsonl_path=None, on_alert="log", detectors=None, seed=0)`` (or ``config=
    MonitorConfig(...)``) watches the functions ``make_reward_funcs`` returned. Every
    ``every``-th optimizer step it takes the rollouts of that step's batch (this
    process's prompts and completions, the trained reward per row, i.e. the Reward's
    value, and the GRPO groups from TRL's ``num_generations``), scores at most
    ``sample_size`` of them with the reference (``RewardReference``: the trained reward
    itself when ``reference`` is None, or another Reward/spec, e.g. the true composite
    when the trainer optimises a learned reward model), and adds the ``monitor/...`` keys
    to that step's log, with TRL's ``kl`` and ``entropy`` of the log where TRL reports
    them. A checked step is always logged (the callback sets ``should_log``), so the keys
    land in ``state.log_history`` at steps k, 2k, ...; ``install(trainer)`` places the
    callback before the reporters (W&B, TensorBoard) so they get the keys too.

    ``on_alert="stop"`` ends training after the step that raised an alert
    (``should_training_stop``); ``"best_checkpoint"`` also saves a checkpoint at every
    check that set a new best reference mean (``should_save``) and stops on an alert,
    so ``checkpoint-<monitor.best_step>`` is the one to keep. ``monitor`` is the
    RewardMonitor (``monitor.summary()``, ``monitor.alerts``).

    In a multi-process run only the main process checks (its own rollouts) and writes
    the JSONL; ``on_alert`` other than ``"log"`` is refused there (the other processes
    would not stop with it).
    """

    def __init__(
        self, reward_funcs: Any, config: MonitorConfig | None = None, **options: Any
    ) -> None:
        funcs = _funcs(reward_funcs, "RewardMonitorCallback")
        if config is not None and options:
            raise ConfigError(
                f"RewardMonitorCallback: pass config=MonitorConfig(...) or the options "
                f"{sorted(options)}, not both"
            )
        self.config = MonitorConfig.from_options(
            config if config is not None else options, "RewardMonitorCallback"
        )
        self.reward = funcs[0].reward
        self.monitor, self.reference = build_monitor(self.config, self.reward)
        self.taps: list[RolloutTap] = []
        for f in funcs:
            tap = attach_tap(f.group)
            if all(tap is not t for t in self.taps):
                self.taps.append(tap)
        self._checked_seq = 0
        self._last_step: int | None = None

    def install(self, trainer: Any) -> RewardMonitorCallback:
        """Add this callback to ``trainer`` ahead of its reporting callbacks."""
        _install(self, trainer)
        return self

    def _latest(self) -> Rollouts | None:
        batches = [t.latest for t in self.taps if t.latest is not None]
        return max(batches, key=lambda b: b.seq) if batches else None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if getattr(args, "world_size", 1) > 1 and self.config.on_alert != "log":
            raise ConfigError(
                f"RewardMonitorCallback: on_alert={self.config.on_alert!r} in a run of "
                f"{args.world_size} processes: only the main process checks, so the others "
                "would not stop with it; use on_alert='log' and stop on its warning"
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.monitor.every == 0:
            control.should_log = True  # a checked step is logged, with TRL's kl/entropy

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        step = state.global_step
        if logs is None or any(k.startswith("eval_") for k in logs):
            return
        if step % self.monitor.every != 0 or step == self._last_step:
            return
        self._last_step = step
        if not state.is_world_process_zero:
            return
        batch = self._latest()
        if batch is None or batch.seq == self._checked_seq:
            log.info("reward monitor: no new rollouts since the last check at step %d", step)
            return
        self._checked_seq = batch.seq
        metrics = self.monitor.observe(
            step,
            batch.rows,
            batch.trained,
            kl=_logged(logs, "kl"),
            entropy=_logged(logs, "entropy"),
            group_ids=batch.group_ids,
        )
        _update_logs(state, logs, metrics)
        if self.monitor.should_stop:
            control.should_training_stop = True
        if self.config.on_alert == "best_checkpoint" and self.monitor.new_best:
            control.should_save = True


def _logged(logs: dict[str, Any], key: str) -> float | None:
    """A number TRL logged (``kl``, ``entropy``), or None when it did not log one."""
    value = logs.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
