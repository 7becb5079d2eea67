"""CPU threads for training on a shared machine.

PyTorch's intra-op threads synchronise at every parallel region, so when other
processes keep some cores busy, a thread per core makes every op wait for a thread
that is not scheduled: measured on the 2-core development machine with the cores
shared, a PPO step of the tiny policy took 17.5 s with 2 threads and 2.4 s with 1, and
the whole PPO recipe 918 s with 2 threads against 369 s with 1 (with 2 threads the
large batched ops of reward-model training and the policy warm-up ranged from 1.8x
faster to 3x slower than with 1, depending on the other load). ``set_cpu_threads``
picks the number of cores the other processes leave free (never fewer than one).

"Free" is measured now, not remembered: the cores' idle time over a short window
(``/proc/stat``, 0.5 s by default). The 1-minute load average, used before, still
counts work that has just ended (the README's ``pip install`` right before the main
job left it above 1 on 2 idle cores, so the job ran on one thread: 53 s per PPO step,
821 s in all); it is the fallback where ``/proc/stat`` does not exist.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

__all__ = ["ThreadChoice", "cpu_idle_fraction", "free_cores", "set_cpu_threads"]

logger = logging.getLogger(__name__)


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores from /proc/stat, or None where it is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return idle, sum(values[:8])  # guest time is already inside user/nice


def cpu_idle_fraction(window_s: float = 0.5) -> float | None:
    """The share of all cores' time spent idle over the next ``window_s`` seconds."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(window_s)
    second = _cpu_times()
    if second is None:
        return None
    total = second[1] - first[1]
    return None if total <= 0 else (second[0] - first[0]) / total


@dataclass(frozen=True)
class ThreadChoice:
    """How many torch threads, and why (printed by the recipes, kept in their metrics)."""

    threads: int
    cores: int
    rule: str
    idle_fraction: float | None = None
    load_average: float | None = None

    def describe(self) -> str:
        seen = []
        if self.idle_fraction is not None:
            seen.append(f"cores {100 * self.idle_fraction:.0f}% idle over 0.5 s")
        if self.load_average is not None:
            seen.append(f"1-min load average {self.load_average:.2f}")
        return f"{self.threads} of {self.cores} cores ({self.rule}: {', '.join(seen) or 'n/a'})"


def free_cores(window_s: float = 0.5) -> ThreadChoice:
    """Cores not used by other processes, from their idle time now (at least 1)."""
    n_cpu = os.cpu_count() or 1
    try:
        load: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    idle = cpu_idle_fraction(window_s)
    if idle is not None:
        threads = max(1, min(n_cpu, int(idle * n_cpu + 0.5)))
        return ThreadChoice(threads, n_cpu, "idle cores now", idle, load)
    if load is not None:  # no /proc/stat: the load average, which lags
        threads = max(1, min(n_cpu, int(n_cpu - load + 0.5)))
        return ThreadChoice(threads, n_cpu, "1-min load average", None, load)
    return ThreadChoice(n_cpu, n_cpu, "no CPU statistics: all cores")


def set_cpu_threads(n: int | None = None) -> ThreadChoice:
    """Set torch's intra-op threads to ``n`` (None: ``free_cores()``); returns the choice."""
    import torch

    choice = (
        free_cores() if n is None else ThreadChoice(max(1, int(n)), os.cpu_count() or 1, "asked")
    )
    torch.set_num_threads(choice.threads)
    logger.info("torch uses %s", choice.describe())
    return choice
