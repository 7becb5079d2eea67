"""CPU threads for training on a shared machine.

PyTorch's intra-op threads synchronise at every parallel region, so when other
processes keep some cores busy, a thread per core makes every op wait for a thread
that is not scheduled: measured on the 2-core development machine with the cores
shared, a PPO step of the tiny policy took 17.5 s with 2 threads and 2.4 s with 1, and
the whole PPO recipe 918 s with 2 threads against 369 s with 1 (with 2 threads the
large batched ops of reward-model training and the policy warm-up ranged from 1.8x
faster to 3x slower than with 1, depending on the other load). ``set_cpu_threads``
picks the number of cores the other processes leave free (never fewer than one).
"""

from __future__ import annotations

import logging
import os

__all__ = ["free_cores", "set_cpu_threads"]

logger = logging.getLogger(__name__)


def free_cores() -> int:
    """Cores not used by other processes, from the 1-minute load average (at least 1)."""
    n_cpu = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return n_cpu
    return max(1, min(n_cpu, int(n_cpu - busy + 0.5)))


def set_cpu_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to ``n`` (None: ``free_cores()``); returns the number."""
    import torch

    threads = free_cores() if n is None else max(1, int(n))
    torch.set_num_threads(threads)
    logger.info("torch uses %d CPU thread(s) of %s", threads, os.cpu_count())
    return threads
