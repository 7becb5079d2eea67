"""``RewardMonitor``: the reward-hacking monitor every trainer integration and recipe uses.

Every ``every``-th step the trainer hands over that step's rollouts and the rewards it
optimised; the monitor scores a bounded, seeded random subsample with a *reference*
(a callable: rows -> columns, e.g. the spec's reward and its monitors when the trainer
optimises a learned reward model), records the step (``StepRecord``), appends it to a
JSONL file, and runs the detectors on the records so far::

    monitor = RewardMonitor(reference, every=5, sample_size=32, monitor_names=["relevance"],
                            jsonl_path="outputs/monitor.jsonl", on_alert="stop")
    for step, (rows, rewards) in enumerate(batches, 1):
        metrics = monitor.observe(step, rows, rewards, kl=kl)   # {} on steps not checked
        log(metrics)                                            # "monitor/..." keys
        if monitor.should_stop:
            break

Cost: at most ``sample_size`` rows and one reference call per checked step
(``monitor.cost``). The monitor knows nothing about how rewards are computed.

What an alert does (``on_alert``): ``"log"`` logs a warning and goes on; ``"stop"`` also
sets ``should_stop``; ``"best_checkpoint"`` sets ``should_stop`` too, and the caller
keeps the checkpoint of ``best_step`` (the checked step with the highest reference mean;
``new_best`` is True right after a check that set it, the moment to save one).
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from rlreward.checks import is_number, number_rule
from rlreward.errors import ConfigError
from rlreward.monitoring.detectors import Detector, Verdict, default_detectors, run_detectors
from rlreward.monitoring.records import PREFIX, StepRecord, write_record
from rlreward.monitoring.stats import mean, spearman

__all__ = ["MonitorCost", "OnAlert", "Reference", "RewardMonitor"]

log = logging.getLogger(__name__)

OnAlert = Literal["log", "stop", "best_checkpoint"]
#: rows -> {column name: one value per row (None: failed or not applicable)}
Reference = Callable[[list[dict[str, Any]]], Mapping[str, Sequence[float | None]]]


@dataclass(frozen=True)
class MonitorCost:
    """What the monitor spent: reference calls made and rows they scored."""

    reference_calls: int
    rows_scored: int


def _words(response: Any) -> int | None:
    """Words of a response: a string, or chat messages (the words of their contents)."""
    if isinstance(response, str):
        return len(response.split())
    if isinstance(response, list) and all(
        isinstance(m, Mapping) and isinstance(m.get("content"), str) for m in response
    ):
        return sum(len(m["content"].split()) for m in response)
    return None


def _value(value: Any) -> float | None:
    """A finite float, or None for a missing/failed/non-finite value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if not is_number(value):
        raise TypeError(type(value).__name__)
    return float(value)


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return mean(present) if present else None


class RewardMonitor:
    """Scores a subsample of every k-th step with a reference; records; detects hacking.

    Args:
        reference: rows -> columns: ``reference_key`` (the reference reward), each of
            ``monitor_names``, and components; one value per row, None where it failed.
        every: check every k-th step (``step % every == 0``).
        sample_size: rows scored per checked step at most (a seeded random subsample).
        reference_key: the reference reward's column.
        monitor_names: columns logged as ``monitor/monitor/<name>`` and watched by the
            detectors (divergence, monitor drop); each must be in every reference answer.
        component_names: columns logged as ``monitor/component/<name>``; None: every
            column that is not the reference or a monitor.
        jsonl_path: write each checked step's record here, one JSON line each; the
            monitor's first check starts the file afresh (None: no file).
        detectors: what runs on the records after each check (default: the five defaults).
        on_alert: ``"log"``, ``"stop"`` or ``"best_checkpoint"`` (module docstring).
        seed: seed of the subsample's random choice.
        response_key: the row field whose words are counted as response length: a
            string, or chat messages (``[{"role": ..., "content": ...}]``).
    """

    def __init__(
        self,
        reference: Reference,
        *,
        every: int = 1,
        sample_size: int = 32,
        reference_key: str = "reference",
        monitor_names: Sequence[str] = (),
        component_names: Sequence[str] | None = None,
        jsonl_path: str | os.PathLike[str] | None = None,
        detectors: Sequence[Detector] | None = None,
        on_alert: OnAlert = "log",
        seed: int = 0,
        response_key: str = "response",
    ) -> None:
        if not callable(reference):
            raise ConfigError(
                f"RewardMonitor: reference must be a callable rows -> columns, "
                f"got {type(reference).__name__}"
            )
        for field, value in (("every", every), ("sample_size", sample_size)):
            problem = number_rule(value, integer=True, low=1)
            if problem is not None:
                raise ConfigError(
                    f"RewardMonitor: {field} = {value!r} is not allowed; use {problem}"
                )
        if on_alert not in get_args(OnAlert):
            raise ConfigError(
                f"RewardMonitor: on_alert = {on_alert!r} is not allowed; use one of "
                f"{', '.join(map(repr, get_args(OnAlert)))}"
            )
        monitors = list(monitor_names)
        components = None if component_names is None else list(component_names)
        for name in [*monitors, *(components or [])]:
            if name == reference_key:
                raise ConfigError(
                    f"RewardMonitor: {name!r} is the reference_key; it cannot also be a "
                    "monitor or a component"
                )
        if components is not None and (both := sorted(set(monitors) & set(components))):
            raise ConfigError(
                f"RewardMonitor: {both} are both monitors and components; name each once"
            )
        self.reference = reference
        self.every = every
        self.sample_size = sample_size
        self.reference_key = reference_key
        self.monitor_names = monitors
        self.component_names = components
        self.jsonl_path = jsonl_path
        self.detectors: tuple[Detector, ...] = (
            default_detectors() if detectors is None else tuple(detectors)
        )
        self.on_alert: OnAlert = on_alert
        self.response_key = response_key
        self.records: list[StepRecord] = []
        #: the detectors' verdicts after the last check
        self.verdicts: list[Verdict] = []
        #: every verdict that fired, in the order the alerts were raised
        self.alerts: list[Verdict] = []
        self.best_step: int | None = None
        self.best_reference: float | None = None
        #: True right after a check that set a new best reference mean
        self.new_best = False
        self._rng = random.Random(seed)
        self._calls = 0
        self._rows_scored = 0

    @property
    def should_stop(self) -> bool:
        """An alert was raised and ``on_alert`` asks the run to stop."""
        return bool(self.alerts) and self.on_alert != "log"

    @property
    def cost(self) -> MonitorCost:
        return MonitorCost(self._calls, self._rows_scored)

    def observe(
        self,
        step: int,
        rows: Sequence[Mapping[str, Any]],
        trained_rewards: Sequence[float | None],
        *,
        kl: float | None = None,
        entropy: float | None = None,
        group_ids: Sequence[Hashable] | None = None,
    ) -> dict[str, float]:
        """Check ``step`` if it is a k-th step: the logged ``monitor/...`` metrics, else {}.

        ``trained_rewards[i]`` is what the trainer optimised for ``rows[i]`` (None: no
        reward); ``group_ids[i]`` the GRPO group (prompt) of row i, for the zero-spread
        share. The returned metrics are the step's record plus ``monitor/alerts`` (alerts
        raised so far).
        """
        self.new_best = False
        if isinstance(step, bool) or not isinstance(step, int):
            raise ConfigError(f"RewardMonitor.observe: step must be an integer, got {step!r}")
        if len(trained_rewards) != len(rows):
            raise ConfigError(
                f"RewardMonitor.observe: {len(trained_rewards)} trained rewards for "
                f"{len(rows)} rows; pass one reward per row (None where it failed)"
            )
        if group_ids is not None and len(group_ids) != len(rows):
            raise ConfigError(
                f"RewardMonitor.observe: {len(group_ids)} group_ids for {len(rows)} rows"
            )
        if step % self.every != 0 or not rows:
            return {}
        trained = [self._number("trained_rewards", i, v) for i, v in enumerate(trained_rewards)]
        record = StepRecord(
            step=step,
            reward_mean=_mean_or_none(trained),
            length_mean=mean([self._length(row, i) for i, row in enumerate(rows)]),
            kl=self._number("kl", None, kl),
            entropy=self._number("entropy", None, entropy),
            zero_spread_groups=None if group_ids is None else _zero_spread(trained, group_ids),
        )
        self._score_reference(record, rows, trained)
        self.records.append(record)
        if self.jsonl_path is not None:
            if len(self.records) == 1:  # one run per file: a previous run's lines would
                Path(self.jsonl_path).unlink(missing_ok=True)  # read as repeated steps
                log.info("reward monitor: writing %s", self.jsonl_path)
            write_record(self.jsonl_path, record)
        if record.reference_mean is not None and (
            self.best_reference is None or record.reference_mean > self.best_reference
        ):
            self.best_step, self.best_reference, self.new_best = step, record.reference_mean, True
        self._detect()
        return {**record.to_metrics(), PREFIX + "alerts": float(len(self.alerts))}

    # -- one check ----------------------------------------------------------------------
    def _score_reference(
        self, record: StepRecord, rows: Sequence[Mapping[str, Any]], trained: list[float | None]
    ) -> None:
        n = len(rows)
        picked = sorted(self._rng.sample(range(n), min(self.sample_size, n)))
        columns = self.reference([dict(rows[i]) for i in picked])
        self._calls += 1
        self._rows_scored += len(picked)
        record.rows_scored = len(picked)
        values = self._columns(columns, len(picked))
        reference = values.pop(self.reference_key)
        record.reference_mean = _mean_or_none(reference)
        t: list[float] = []
        r: list[float] = []
        for i, ref in zip(picked, reference, strict=True):
            value = trained[i]
            if value is not None and ref is not None:
                t.append(value)
                r.append(ref)
        if t:
            record.rank_corr = spearman(t, r) if len(t) >= 3 else None
            record.gap = mean([a - b for a, b in zip(t, r, strict=True)])
        for name, column in values.items():
            m = _mean_or_none(column)
            if m is None:
                continue
            if name in self.monitor_names:
                record.monitors[name] = m
            else:
                record.components[name] = m

    def _columns(self, columns: Any, n: int) -> dict[str, list[float | None]]:
        """The reference's answer checked: a mapping of known columns, n values each."""
        if not isinstance(columns, Mapping):
            raise ConfigError(
                f"RewardMonitor: reference returned {type(columns).__name__}; it must return "
                "a mapping {column name: one value per row}"
            )
        wanted = [self.reference_key, *self.monitor_names, *(self.component_names or [])]
        missing = [name for name in wanted if name not in columns]
        if missing:
            raise ConfigError(
                f"RewardMonitor: reference returned no column {missing}; it returned "
                f"{sorted(columns)}; fix the reference callable or the monitor's "
                "reference_key / monitor_names / component_names"
            )
        names = wanted if self.component_names is not None else list(columns)
        out: dict[str, list[float | None]] = {}
        for name in names:
            column = columns[name]
            if isinstance(column, (str, bytes)) or len(column) != n:
                got = len(column) if not isinstance(column, (str, bytes)) else "a string"
                raise ConfigError(
                    f"RewardMonitor: reference column {name!r} has {got} values for {n} rows"
                )
            out[name] = [
                self._number(f"reference column {name!r}", i, v) for i, v in enumerate(column)
            ]
        return out

    def _number(self, what: str, index: int | None, value: Any) -> float | None:
        try:
            return _value(value)
        except TypeError:
            where = f"[{index}]" if index is not None else ""
            raise ConfigError(
                f"RewardMonitor: {what}{where} = {value!r} is not a number; give a finite "
                "number, or None where there is none"
            ) from None

    def _length(self, row: Mapping[str, Any], index: int) -> int:
        words = _words(row.get(self.response_key))
        if words is None:
            raise ConfigError(
                f"RewardMonitor: row {index} has no text under {self.response_key!r} "
                f"(keys: {sorted(row)}); give a string or chat messages with 'content' "
                "there, or pass response_key= naming the response field"
            )
        return words

    def _detect(self) -> None:
        self.verdicts = run_detectors(self.records, self.detectors)
        raised = {a.name for a in self.alerts}
        for verdict in self.verdicts:
            if verdict.fired and verdict.name not in raised:
                self.alerts.append(verdict)
                log.warning("reward hacking alert (%s): %s", self.on_alert, verdict.format())

    def summary(self) -> dict[str, Any]:
        """JSON-ready: verdicts, alerts, best step, cost (for a run's metrics file)."""
        return {
            "verdicts": [v.to_json() for v in self.verdicts],
            "alerts": [a.to_json() for a in self.alerts],
            "best_step": self.best_step,
            "best_reference_mean": self.best_reference,
            "on_alert": self.on_alert,
            "checks": len(self.records),
            "reference_calls": self._calls,
            "rows_scored": self._rows_scored,
        }


def _zero_spread(trained: Sequence[float | None], group_ids: Sequence[Hashable]) -> float | None:
    """Share of groups (2+ scored rows) whose trained rewards are all equal."""
    groups: dict[Hashable, list[float]] = {}
    for gid, value in zip(group_ids, trained, strict=True):
        if value is not None:
            groups.setdefault(gid, []).append(value)
    sized = [g for g in groups.values() if len(g) >= 2]
    if not sized:
        return None
    return sum(1 for g in sized if max(g) == min(g)) / len(sized)
