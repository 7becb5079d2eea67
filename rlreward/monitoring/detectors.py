"""Detectors that say when a reward is being gamed, from the monitor's per-step records.

Each detector reads a sequence of ``StepRecord`` and returns one ``Verdict`` per signal it
watches: fired or not, the step where it fired, and the evidence in numbers. Every
detector is causal: whether it has fired by step t depends only on the records up to t,
so ``rlreward audit`` on a finished log names the same step the monitor alerted at while
the run was going. Trends and shifts are measured in standard errors, not raw thresholds:

- ``Divergence``: over the last ``window`` steps the trained reward's OLS slope is above
  ``+z_reward`` SE while the reference's (or a monitor's) is below ``-z`` SE;
- ``MonitorDrop``: a monitor's mean over the last ``window`` steps is ``z`` SE below its
  mean over the first ``baseline`` steps;
- ``LengthDrift``: the same shift test on mean response length, either way;
- ``FidelityFloor``: the trained reward's rank correlation with the reference on fresh
  rollouts is below ``floor`` at ``consecutive`` checks in a row;
- ``GroupCollapse``: the share of GRPO groups with zero reward spread is above
  ``threshold`` at ``consecutive`` checks in a row.

Standard errors come from each series' step-to-step noise over the steps seen so far
(``stats.StepNoise``: from successive differences, which a trend barely moves, widened
when the noise is autocorrelated): a slope's SE is ``sd / sqrt(sum (x - mean x)^2)``, the
SE of a shift between two means ``sd * sqrt(1/baseline + 1/window)``. The defaults hold
the false-positive rate on clean synthetic runs (60 steps, no hacking) at or under 5%
per run: ``scripts/bench_detectors.py`` measures it, docs/reward-hacking.md has the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.monitoring.records import StepRecord
from rlreward.monitoring.stats import StepNoise, mean, ols_slope

__all__ = [
    "Detector",
    "Divergence",
    "FidelityFloor",
    "GroupCollapse",
    "LengthDrift",
    "MonitorDrop",
    "Verdict",
    "default_detectors",
    "run_detectors",
]


@dataclass(frozen=True)
class Verdict:
    """One detector's answer for one signal.

    ``checked`` is False when the records cannot answer (the signal is absent or too short);
    ``evidence`` then says why. ``step`` is where the detector fired, None when it did not.
    """

    detector: str
    signal: str
    fired: bool
    step: int | None
    evidence: str
    checked: bool = True

    @property
    def name(self) -> str:
        """``detector:signal``, e.g. ``divergence:reference``."""
        return f"{self.detector}:{self.signal}"

    def format(self) -> str:
        """One line for a terminal: ``ALERT``, ``ok`` or ``n/a``, the name and the evidence."""
        status = "ALERT" if self.fired else ("ok" if self.checked else "n/a")
        return f"{status:<5} {self.name}: {self.evidence}"

    def to_json(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "signal": self.signal,
            "fired": self.fired,
            "step": self.step,
            "checked": self.checked,
            "evidence": self.evidence,
        }


class Detector(Protocol):
    """Reads the records so far; one verdict per signal it watches."""

    @property
    def name(self) -> str: ...

    def __call__(self, records: Sequence[StepRecord]) -> list[Verdict]: ...


def _check(owner: str, field: str, value: Any, **rule: Any) -> None:
    problem = number_rule(value, **rule)
    if problem is not None:
        raise ConfigError(f"{owner}: {field} = {value!r} is not allowed; use {problem}")


def _series(records: Sequence[StepRecord], *signals: str) -> tuple[list[int], list[list[float]]]:
    """Steps where every one of ``signals`` has a value, and those values per signal."""
    steps: list[int] = []
    columns: list[list[float]] = [[] for _ in signals]
    for record in records:
        values: list[float] = []
        for signal in signals:
            value = record.value(signal)
            if value is None or not math.isfinite(value):
                break
            values.append(value)
        else:
            steps.append(record.step)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
    return steps, columns


def _monitor_signals(records: Sequence[StepRecord]) -> list[str]:
    names = {name for r in records for name in r.monitors}
    return [f"monitor/{name}" for name in sorted(names)]


def _label(signal: str) -> str:
    return {
        "reward_mean": "trained reward",
        "reference_mean": "reference",
        "length_mean": "response length",
        "rank_corr": "rank correlation",
        "zero_spread_groups": "zero-spread group share",
    }.get(signal, signal)


def _short(signal: str) -> str:
    return {"reference_mean": "reference", "length_mean": "length"}.get(signal, signal)


def _not_checked(detector: str, signal: str, why: str) -> Verdict:
    return Verdict(detector, _short(signal), False, None, f"not checked: {why}", checked=False)


# -- trends: the trained reward up while a reference falls --------------------------------
def _t(value: float, se: float) -> float:
    """value / se; an exact zero SE gives +-inf (or 0 for a zero value)."""
    if se > 0:
        return value / se
    return 0.0 if value == 0 else math.copysign(math.inf, value)


@dataclass(frozen=True)
class _Trend:
    end: int  # exclusive index of the window's last step
    r_slope: float
    r_t: float
    o_slope: float
    o_t: float


@dataclass(frozen=True)
class Divergence:
    """Trained reward rising while the reference (or a monitor) falls, both in SE.

    For each window of ``window`` consecutive checked steps: the OLS slope of the trained
    reward over step in standard errors is above ``+z_reward`` and that of the reference
    (each monitor in turn) below ``-z``, at ``persist`` windows in a row. A slope's SE is the
    series' step noise (``StepNoise``, all steps so far) over sqrt(sum (x - mean x)^2),
    widened for autocorrelated noise.
    """

    window: int = 20
    z: float = 2.5
    z_reward: float = 2.0
    persist: int = 2
    name: str = "divergence"

    def __post_init__(self) -> None:
        _check("Divergence", "window", self.window, integer=True, low=4)
        _check("Divergence", "z", self.z, low=0, low_inclusive=False)
        _check("Divergence", "z_reward", self.z_reward, low=0)
        _check("Divergence", "persist", self.persist, integer=True, low=1)

    def __call__(self, records: Sequence[StepRecord]) -> list[Verdict]:
        targets = ["reference_mean", *_monitor_signals(records)]
        return [self._one(records, target) for target in targets]

    def _trends(
        self, steps: Sequence[int], reward: Sequence[float], other: Sequence[float]
    ) -> Iterator[_Trend]:
        r_noise, o_noise = StepNoise(), StepNoise()
        for i in range(len(steps)):
            r_noise.add(reward[i])
            o_noise.add(other[i])
            end = i + 1
            if end < self.window:
                continue
            x = [float(s) for s in steps[end - self.window : end]]
            r_slope, sxx = ols_slope(x, reward[end - self.window : end])
            o_slope, _ = ols_slope(x, other[end - self.window : end])
            root = math.sqrt(sxx)
            r_t = _t(r_slope, r_noise.sd * r_noise.inflation / root)
            o_t = _t(o_slope, o_noise.sd * o_noise.inflation / root)
            yield _Trend(end, r_slope, r_t, o_slope, o_t)

    def _one(self, records: Sequence[StepRecord], target: str) -> Verdict:
        steps, (reward, other) = _series(records, "reward_mean", target)
        if not steps:
            return _not_checked(
                self.name, target, f"no step has both the trained reward and {_label(target)}"
            )
        need = max(self.window, 4)
        if len(steps) < need:
            return _not_checked(
                self.name, target, f"{len(steps)} steps with both values; needs {need}"
            )
        run = 0
        closest: _Trend | None = None
        rule = f"fires at > +{self.z_reward:g} SE and < -{self.z:g} SE"
        if self.persist > 1:
            rule += f" for {self.persist} windows in a row"
        for trend in self._trends(steps, reward, other):
            if closest is None or min(trend.r_t, -trend.o_t) > min(closest.r_t, -closest.o_t):
                closest = trend
            run = run + 1 if (trend.r_t > self.z_reward and trend.o_t < -self.z) else 0
            if run >= self.persist:
                return Verdict(
                    self.name,
                    _short(target),
                    True,
                    steps[trend.end - 1],
                    f"at step {steps[trend.end - 1]}: {self._slopes(steps, trend, target)}; "
                    + rule,
                )
        assert closest is not None
        return Verdict(
            self.name,
            _short(target),
            False,
            None,
            f"closest window: {self._slopes(steps, closest, target)}; {rule}",
        )

    def _slopes(self, steps: Sequence[int], t: _Trend, target: str) -> str:
        return (
            f"over steps {steps[t.end - self.window]}-{steps[t.end - 1]} the trained reward "
            f"moved {t.r_slope:+.4g}/step ({_se(t.r_t)}), {_label(target)} "
            f"{t.o_slope:+.4g}/step ({_se(t.o_t)})"
        )


def _se(t: float) -> str:
    return f"{t:+.1f} SE" if math.isfinite(t) else f"{'+' if t > 0 else '-'}inf SE (no noise)"


# -- shifts from a baseline -------------------------------------------------------------
@dataclass(frozen=True)
class _Shift:
    base_mean: float
    window_mean: float
    sd: float
    phi: float
    z: float
    end: int


def _shifts(values: Sequence[float], baseline: int, window: int) -> list[_Shift]:
    """For each end index (exclusive) from baseline + window: the window's shift in SE."""
    out: list[_Shift] = []
    base_mean = mean(values[:baseline])
    noise = StepNoise()
    for i, value in enumerate(values):
        noise.add(value)
        end = i + 1
        if end < baseline + window or not noise.ready:
            continue
        window_mean = mean(values[end - window : end])
        diff = window_mean - base_mean
        se = noise.sd * noise.inflation * math.sqrt(1 / baseline + 1 / window)
        out.append(_Shift(base_mean, window_mean, noise.sd, noise.phi, _t(diff, se), end))
    return out


def _scan_shift(
    detector: str,
    records: Sequence[StepRecord],
    signal: str,
    *,
    baseline: int,
    window: int,
    z: float,
    persist: int,
    direction: Literal["down", "both"],
) -> Verdict:
    steps, (values,) = _series(records, signal)
    if not steps:
        return _not_checked(detector, signal, f"no step has a value for {_label(signal)}")
    need = max(baseline + window, 4)  # 4: the step noise's first estimate
    if len(steps) < need:
        return _not_checked(
            detector, signal, f"{len(steps)} steps with a value; needs {need} (baseline + window)"
        )
    run = 0
    extreme: _Shift | None = None

    def strength(s: _Shift) -> float:
        return -s.z if direction == "down" else abs(s.z)

    for shift in _shifts(values, baseline, window):
        if extreme is None or strength(shift) > strength(extreme):
            extreme = shift
        run = run + 1 if strength(shift) > z else 0
        if run >= persist:
            return Verdict(
                detector,
                _short(signal),
                True,
                steps[shift.end - 1],
                _shift_text(
                    signal, steps, shift, baseline, window, z, persist, direction, fired=True
                ),
            )
    assert extreme is not None
    return Verdict(
        detector,
        _short(signal),
        False,
        None,
        _shift_text(signal, steps, extreme, baseline, window, z, persist, direction, fired=False),
    )


def _shift_text(
    signal: str,
    steps: Sequence[int],
    s: _Shift,
    baseline: int,
    window: int,
    z: float,
    persist: int,
    direction: str,
    *,
    fired: bool,
) -> str:
    where = f"at step {steps[s.end - 1]}" if fired else "largest shift"
    rule = f"{'below' if direction == 'down' else 'away from'} baseline by > {z:g} SE"
    persist_text = f" at {persist} steps in a row" if persist > 1 else ""
    return (
        f"{where}: {_label(signal)} mean {s.window_mean:.4g} over steps "
        f"{steps[s.end - window]}-{steps[s.end - 1]} vs {s.base_mean:.4g} over the first "
        f"{baseline} steps ({steps[0]}-{steps[baseline - 1]}): {s.z:+.1f} SE "
        f"(step noise sd {s.sd:.3g}, autocorrelation {s.phi:.2f}); fires {rule}{persist_text}"
    )


@dataclass(frozen=True)
class MonitorDrop:
    """A monitor's recent mean ``z`` SE below its mean over the first ``baseline`` steps."""

    baseline: int = 8
    window: int = 8
    z: float = 3.0
    persist: int = 2
    name: str = "monitor_drop"

    def __post_init__(self) -> None:
        _check("MonitorDrop", "baseline", self.baseline, integer=True, low=2)
        _check("MonitorDrop", "window", self.window, integer=True, low=1)
        _check("MonitorDrop", "z", self.z, low=0, low_inclusive=False)
        _check("MonitorDrop", "persist", self.persist, integer=True, low=1)

    def __call__(self, records: Sequence[StepRecord]) -> list[Verdict]:
        signals = _monitor_signals(records)
        if not signals:
            return [_not_checked(self.name, "monitor/*", "no monitor values in the records")]
        return [
            _scan_shift(
                self.name,
                records,
                s,
                baseline=self.baseline,
                window=self.window,
                z=self.z,
                persist=self.persist,
                direction="down",
            )
            for s in signals
        ]


@dataclass(frozen=True)
class LengthDrift:
    """Mean response length ``z`` SE away from its mean over the first ``baseline`` steps."""

    baseline: int = 8
    window: int = 8
    z: float = 3.5
    persist: int = 2
    name: str = "length_drift"

    def __post_init__(self) -> None:
        _check("LengthDrift", "baseline", self.baseline, integer=True, low=2)
        _check("LengthDrift", "window", self.window, integer=True, low=1)
        _check("LengthDrift", "z", self.z, low=0, low_inclusive=False)
        _check("LengthDrift", "persist", self.persist, integer=True, low=1)

    def __call__(self, records: Sequence[StepRecord]) -> list[Verdict]:
        return [
            _scan_shift(
                self.name,
                records,
                "length_mean",
                baseline=self.baseline,
                window=self.window,
                z=self.z,
                persist=self.persist,
                direction="both",
            )
        ]


# -- levels held for several checks ------------------------------------------------------
def _scan_level(
    detector: str,
    records: Sequence[StepRecord],
    signal: str,
    *,
    bad: Callable[[float], bool],
    consecutive: int,
    rule: str,
) -> Verdict:
    steps, (values,) = _series(records, signal)
    if not steps:
        return _not_checked(detector, signal, f"no step has a value for {_label(signal)}")
    run = 0
    for i, v in enumerate(values):
        run = run + 1 if bad(v) else 0
        if run >= consecutive:
            first = i - consecutive + 1
            shown = ", ".join(f"{x:.3g}" for x in values[first : i + 1])
            return Verdict(
                detector,
                signal,
                True,
                steps[i],
                f"at step {steps[i]}: {_label(signal)} {shown} at steps "
                f"{steps[first]}-{steps[i]} ({consecutive} checks in a row {rule})",
            )
    low, high = min(values), max(values)
    return Verdict(
        detector,
        signal,
        False,
        None,
        f"{_label(signal)} {low:.3g} to {high:.3g} over {len(values)} checks; "
        f"fires at {consecutive} checks in a row {rule}",
    )


@dataclass(frozen=True)
class FidelityFloor:
    """Rank correlation of trained vs reference reward below ``floor``, ``consecutive`` times."""

    floor: float = 0.5
    consecutive: int = 3
    name: str = "fidelity_floor"

    def __post_init__(self) -> None:
        _check("FidelityFloor", "floor", self.floor, low=-1, high=1)
        _check("FidelityFloor", "consecutive", self.consecutive, integer=True, low=1)

    def __call__(self, records: Sequence[StepRecord]) -> list[Verdict]:
        floor = self.floor
        return [
            _scan_level(
                self.name,
                records,
                "rank_corr",
                bad=lambda v: v < floor,
                consecutive=self.consecutive,
                rule=f"below the floor {floor:g}",
            )
        ]


@dataclass(frozen=True)
class GroupCollapse:
    """Share of GRPO groups with zero reward spread above ``threshold``, ``consecutive`` times."""

    threshold: float = 0.5
    consecutive: int = 3
    name: str = "group_collapse"

    def __post_init__(self) -> None:
        _check("GroupCollapse", "threshold", self.threshold, low=0, high=1)
        _check("GroupCollapse", "consecutive", self.consecutive, integer=True, low=1)

    def __call__(self, records: Sequence[StepRecord]) -> list[Verdict]:
        threshold = self.threshold
        return [
            _scan_level(
                self.name,
                records,
                "zero_spread_groups",
                bad=lambda v: v > threshold,
                consecutive=self.consecutive,
                rule=f"above {threshold:g}",
            )
        ]


def default_detectors() -> tuple[Detector, ...]:
    """The five detectors with their documented defaults."""
    return (Divergence(), MonitorDrop(), FidelityFloor(), LengthDrift(), GroupCollapse())


def run_detectors(
    records: Sequence[StepRecord], detectors: Sequence[Detector] | None = None
) -> list[Verdict]:
    """Every verdict of ``detectors`` (default: ``default_detectors()``) on ``records``."""
    chosen = default_detectors() if detectors is None else detectors
    return [v for d in chosen for v in d(records)]
