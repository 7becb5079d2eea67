"""The per-step record of the reward-hacking monitor, its logged keys and its JSONL file.

A record is what the monitor measured at one checked step. Trainers log it as flat
metrics under the one prefix ``monitor/`` (``StepRecord.to_metrics``); the JSONL file holds
the same flat keys plus ``step``, one object per checked step, so ``rlreward audit`` reads
the monitor's own file and a trainer's log of the same keys alike::

    {"step": 40, "monitor/reward_mean": 0.81, "monitor/reference_mean": 0.62,
     "monitor/rank_corr": 0.44, "monitor/gap": 0.19, "monitor/monitor/relevance": 0.55,
     "monitor/component/length": 0.9, "monitor/length_mean": 23.5, "monitor/kl": 0.08,
     "monitor/rows_scored": 32}

A value the step did not have (no KL from this trainer, a reference column whose grades
all failed) is left out, never written as a made-up number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlreward.checks import is_number
from rlreward.dataset import iter_jsonl, json_line
from rlreward.errors import DatasetError

__all__ = [
    "COMPONENT_PREFIX",
    "MONITOR_PREFIX",
    "PREFIX",
    "StepRecord",
    "read_records",
    "write_record",
]

#: the one prefix of every key the monitor logs
PREFIX = "monitor/"
#: ``monitor/component/<name>``: the mean of one component of the reference reward
COMPONENT_PREFIX = PREFIX + "component/"
#: ``monitor/monitor/<name>``: the mean of one monitor (reported beside the reward, never in it)
MONITOR_PREFIX = PREFIX + "monitor/"

#: scalar fields of StepRecord and their logged keys
_SCALARS = {
    "reward_mean": PREFIX + "reward_mean",
    "reference_mean": PREFIX + "reference_mean",
    "rank_corr": PREFIX + "rank_corr",
    "gap": PREFIX + "gap",
    "length_mean": PREFIX + "length_mean",
    "kl": PREFIX + "kl",
    "entropy": PREFIX + "entropy",
    "zero_spread_groups": PREFIX + "zero_spread_groups",
    "rows_scored": PREFIX + "rows_scored",
}


@dataclass
class StepRecord:
    """What the monitor measured at one step (None: not measured at that step).

    - ``reward_mean``: mean of the trained reward over the step's rows (failed grades left out);
    - ``reference_mean``: mean of the reference reward over the checked subsample;
    - ``rank_corr``: Spearman of trained vs reference reward on that subsample;
    - ``gap``: mean of (trained - reference) on that subsample (meaningful on one scale);
    - ``components`` / ``monitors``: mean of each component / monitor on the subsample;
    - ``length_mean``: mean words per response over the step's rows;
    - ``kl`` / ``entropy``: as the trainer reported them;
    - ``zero_spread_groups``: share of GRPO groups whose trained rewards are all equal;
    - ``rows_scored``: rows the reference scored at this step (the monitor's cost).
    """

    step: int
    reward_mean: float | None = None
    reference_mean: float | None = None
    rank_corr: float | None = None
    gap: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    monitors: dict[str, float] = field(default_factory=dict)
    length_mean: float | None = None
    kl: float | None = None
    entropy: float | None = None
    zero_spread_groups: float | None = None
    rows_scored: int | None = None

    def value(self, signal: str) -> float | None:
        """One signal by name: a scalar field, ``monitor/<name>`` or ``component/<name>``."""
        if signal.startswith("monitor/"):
            return self.monitors.get(signal[len("monitor/") :])
        if signal.startswith("component/"):
            return self.components.get(signal[len("component/") :])
        if signal not in _SCALARS:
            known = ", ".join([*_SCALARS, "monitor/<name>", "component/<name>"])
            raise KeyError(f"unknown signal {signal!r}; known: {known}")
        value = getattr(self, signal)
        return None if value is None else float(value)

    def to_metrics(self) -> dict[str, float]:
        """The flat ``monitor/...`` metrics a trainer logs; values that are None left out."""
        out: dict[str, float] = {}
        for attr, key in _SCALARS.items():
            value = getattr(self, attr)
            if value is not None and math.isfinite(value):
                out[key] = float(value)
        for name, value in self.components.items():
            out[COMPONENT_PREFIX + name] = float(value)
        for name, value in self.monitors.items():
            out[MONITOR_PREFIX + name] = float(value)
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSONL object: ``step`` plus ``to_metrics()``."""
        return {"step": self.step, **self.to_metrics()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StepRecord:
        """A record from a ``to_json`` object (unknown keys are ignored)."""
        step = obj.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise ValueError(f"'step' must be an integer, got {step!r}")
        record = cls(step=step)
        for attr, key in _SCALARS.items():
            value = obj.get(key)
            if value is not None:
                if not is_number(value):
                    raise ValueError(f"{key!r} must be a finite number, got {value!r}")
                setattr(record, attr, int(value) if attr == "rows_scored" else float(value))
        for key, value in obj.items():
            for prefix, target in (
                (COMPONENT_PREFIX, record.components),
                (MONITOR_PREFIX, record.monitors),
            ):
                if key.startswith(prefix):
                    if not is_number(value):
                        raise ValueError(f"{key!r} must be a finite number, got {value!r}")
                    target[key[len(prefix) :]] = float(value)
        return record


def write_record(path: str | os.PathLike[str], record: StepRecord) -> None:
    """Append one record to a JSONL file (one whole line per write; creates the folder)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a", encoding="utf-8") as fh:
        fh.write(json_line(record.to_json()))


def read_records(path: str | os.PathLike[str]) -> list[StepRecord]:
    """The records of a monitor JSONL file, in file order; a bad line is a DatasetError."""
    return list(_iter_records(path))


def _iter_records(path: str | os.PathLike[str]) -> Iterator[StepRecord]:
    for lineno, obj in iter_jsonl(path):
        try:
            yield StepRecord.from_json(obj)
        except ValueError as exc:
            raise DatasetError(f"{path}:{lineno}: {exc}") from None
