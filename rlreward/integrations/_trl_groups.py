"""Whole groups across TRL processes: grade a group on the process that holds its first row.

With several processes, TRL's GRPOTrainer/RLOOTrainer call the reward functions on each
process's slice of the generation batch and check only that the global batch holds
whole groups, so a prompt's completions can straddle two processes. ``spread_grade``
makes every process's call see whole groups:

1. every process sends its rows to all (``all_gather_object``, in rank order: the
   generation batch in TRL's order, a prompt's completions consecutive);
2. the global rows are cut into runs of consecutive rows with the same prompt (a run
   holds one or more whole groups); each run is graded, in one ``Reward.agrade`` per
   process, by the process that holds the run's first row;
3. the graded rows go back to all (a second ``all_gather_object``) and each process
   keeps the results of its own rows, in its order.

Each row is graded once, on one process; every process makes the same two collective
calls per batch (the decision to spread is made from the trainer's settings, the same
on every process). The collectives run in a worker thread, off TRL's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rlreward.results import GradingResults

__all__ = ["owners", "spread_grade"]


def owners(sizes: list[int], rows: list[dict[str, Any]], field: str = "query") -> list[int]:
    """The process that grades each global row: the holder of its prompt run's first row."""
    holder = [p for p, n in enumerate(sizes) for _ in range(n)]
    out: list[int] = []
    for i, row in enumerate(rows):
        same = i > 0 and row.get(field) == rows[i - 1].get(field)
        out.append(out[-1] if same else holder[i])
    return out


async def spread_grade(
    rows: list[dict[str, Any]],
    grade: Callable[[list[dict[str, Any]]], Awaitable[GradingResults]],
    device: Any = None,
) -> GradingResults:
    """``grade`` over whole prompt runs gathered from every process; this process's rows."""
    import torch.distributed as dist

    def all_gather(obj: Any) -> list[Any]:
        if device is not None and getattr(device, "type", None) == "cuda":
            import torch

            torch.cuda.set_device(device)  # the collective's device, in this thread
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out

    loop = asyncio.get_running_loop()
    rank = dist.get_rank()
    parts = await loop.run_in_executor(None, all_gather, rows)
    sizes = [len(p) for p in parts]
    every = [r for p in parts for r in p]
    owner = owners(sizes, every)
    mine = [i for i, p in enumerate(owner) if p == rank]
    graded: dict[int, dict[str, Any]] = {}
    if mine:
        results = await grade([every[i] for i in mine])
        graded = {i: {n: col[k] for n, col in results.items()} for k, i in enumerate(mine)}
    shared: dict[int, dict[str, Any]] = {}
    for part in await loop.run_in_executor(None, all_gather, graded):
        shared.update(part)
    start = sum(sizes[:rank])
    local = [shared[i] for i in range(start, start + len(rows))]
    names = list(next(iter(shared.values()), {}))
    return GradingResults((n, [row[n] for row in local]) for n in names)
