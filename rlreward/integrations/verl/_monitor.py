"""The reward-hacking monitor inside ``RLRewardManager`` (``reward_kwargs.monitor``).

VERL's reward loop hands a manager the samples of a training step, and nothing about
the step but the batch itself. Each manager (one per ``RewardLoopWorker``) therefore
monitors the samples it grades: every batch it grades is one step (``meta_info
["global_steps"]`` is used instead when the batch carries it); at every ``every``-th
step it scores at most ``sample_size`` of them with the reference, writes the record
to its JSONL, and puts the ``monitor/...`` metrics into ``reward_extra_info``: the same
keys on every sample of every batch (``monitor_keys``), the check's values on the
samples of a checked batch and NaN on the others. GRPO groups are the samples' ``uid``.
KL and entropy are not known to a reward manager, so those keys are not there, and
it cannot stop verl's trainer: ``on_alert`` is ``"log"`` here.

A batch marked ``meta_info["validate"]`` is not a training step: it gets no monitor
keys. verl 0.9.1's colocated reward path does not pass that mark on, so with
``trainer.test_freq > 0`` a validation batch graded by the same manager counts as a
step there; the record's ``step`` is then the manager's batch count, not verl's step.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

from rlreward.errors import ConfigError
from rlreward.integrations._rows import VerlRow
from rlreward.integrations.reward_monitor import (
    MonitorConfig,
    build_monitor,
    monitor_keys,
    trained_values,
)
from rlreward.integrations.verl._columns import SCORE
from rlreward.reward import Reward

__all__ = ["PID_FIELD", "BatchMonitor", "Sample"]

log = logging.getLogger(__name__)

#: the placeholder in ``jsonl_path`` that becomes the worker's process id
PID_FIELD = "{pid}"


class Sample(NamedTuple):
    """A row the manager grades, with what the batch says about its step and group."""

    row: VerlRow
    uid: Hashable | None = None
    global_step: int | None = None
    validate: bool = False


def _workers(config: Any) -> int:
    reward = config.get("reward") if hasattr(config, "get") else None
    n = reward.get("num_workers", 1) if reward is not None and hasattr(reward, "get") else 1
    return n if isinstance(n, int) and not isinstance(n, bool) else 1


class BatchMonitor:
    """Feeds one manager's graded batches to a ``RewardMonitor`` (module docstring)."""

    def __init__(self, options: Any, reward: Reward, config: Any = None) -> None:
        cfg = MonitorConfig.from_options(options, "RLRewardManager")
        if cfg.on_alert in ("stop", "best_checkpoint"):
            raise ConfigError(
                f"RLRewardManager: monitor.on_alert={cfg.on_alert!r}: a reward manager cannot "
                "stop verl's trainer or choose its checkpoints; use on_alert='log' (a warning "
                "per alert, and the JSONL for `rlreward audit`)"
            )
        path = cfg.jsonl_path
        if path is not None:
            text = os.fspath(path)
            if _workers(config) > 1 and PID_FIELD not in text:
                raise ConfigError(
                    f"RLRewardManager: monitor.jsonl_path={text!r} with "
                    f"reward.num_workers={_workers(config)}: every worker monitors its own "
                    f"samples and would write the same file; put {PID_FIELD} in the path "
                    "(e.g. outputs/monitor-{pid}.jsonl)"
                )
            path = text.replace(PID_FIELD, str(os.getpid()))
        self.config = cfg
        self.monitor, self.reference = build_monitor(cfg, reward, jsonl_path=path)
        self.keys = monitor_keys(self.reference)
        self._batches = 0
        self._last_step: int | None = None
        self._lock = threading.Lock()

    def _step(self, samples: Sequence[Sample]) -> int | None:
        """This batch's step, or None when it was checked already (a later tick of it)."""
        given = samples[0].global_step
        with self._lock:
            if given is None:
                self._batches += 1
                step = self._batches
            else:
                step = given
            if self._last_step is not None and step <= self._last_step:
                return None
            if step % self.monitor.every == 0:
                self._last_step = step
            return step

    async def add(self, samples: Sequence[Sample], dicts: list[dict[str, float | int]]) -> None:
        """Check the batch if its step is a k-th one; add the monitor keys to every dict."""
        if not samples or all(s.validate for s in samples):
            return
        step = self._step(samples)
        metrics: dict[str, float] = {}
        if step is not None and step % self.monitor.every == 0:
            rows = [s.row.row for s in samples]
            trained = trained_values([d[SCORE] for d in dicts])
            uids = [s.uid for s in samples]
            groups = None if any(u is None for u in uids) else uids
            # in a thread: the reference grades on the background loop, this loop goes on
            metrics = await asyncio.to_thread(self._observe, step, rows, trained, groups)
        for d in dicts:
            d.update({k: metrics.get(k, math.nan) for k in self.keys})

    def _observe(
        self,
        step: int,
        rows: list[dict[str, Any]],
        trained: list[float | None],
        groups: list[Hashable | None] | None,
    ) -> dict[str, float]:
        with self._lock:  # one check at a time: the monitor's records are not shared state
            metrics = self.monitor.observe(step, rows, trained, group_ids=groups)
        log.info(
            "reward monitor step %d: %s",
            step,
            ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()),
        )
        return metrics
