"""The detectors on runs with known answers: hacked from a known step, clean, flat."""

import re

import numpy as np
import pytest

from rlreward.errors import ConfigError
from rlreward.monitoring.detectors import (
    Divergence,
    FidelityFloor,
    GroupCollapse,
    LengthDrift,
    MonitorDrop,
    default_detectors,
    run_detectors,
)
from rlreward.monitoring.records import StepRecord
from rlreward.monitoring.synthetic import HACKS, synthetic_run

ONSET = 30  # the last step before the hacked signal turns
DETECTOR = {
    "divergence": Divergence,
    "monitor_drop": MonitorDrop,
    "fidelity_floor": FidelityFloor,
    "length_drift": LengthDrift,
    "group_collapse": GroupCollapse,
}


def run(n=60, sd=0.3, seed=0, **curves):
    """Records whose named signals follow ``curve(step)`` plus Gaussian noise of ``sd``."""
    rng = np.random.default_rng(seed)
    records = [StepRecord(step=s) for s in range(1, n + 1)]
    for name, curve in curves.items():
        for r in records:
            value = float(curve(r.step) + sd * rng.standard_normal())
            if name.startswith("monitor_"):
                r.monitors[name[len("monitor_") :]] = value
            else:
                setattr(r, name, value)
    return records


def rising(s):
    return 0.1 * s


def falls_after_onset(s):
    return 0.1 * min(s, ONSET) - 0.15 * max(s - ONSET, 0)


def fired(verdicts):
    return [v for v in verdicts if v.fired]


# -- hacked runs: fires at or after the onset, with the evidence ----------------------------
def test_divergence_fires_after_the_reference_turns_and_says_why():
    records = run(reward_mean=rising, reference_mean=falls_after_onset)
    (v,) = Divergence()(records)
    assert v.fired and v.name == "divergence:reference"
    assert ONSET < v.step <= ONSET + 20
    assert f"at step {v.step}:" in v.evidence
    r_se, o_se = map(float, re.findall(r"\(([+-][\d.]+) SE\)", v.evidence))
    assert r_se > 2.0 and o_se < -2.5  # the numbers behind the verdict


def test_divergence_watches_monitors_too():
    records = run(reward_mean=rising, reference_mean=rising, monitor_relevance=falls_after_onset)
    verdicts = {v.name: v for v in Divergence()(records)}
    assert not verdicts["divergence:reference"].fired
    assert verdicts["divergence:monitor/relevance"].fired
    assert verdicts["divergence:monitor/relevance"].step > ONSET


def test_monitor_drop_fires_after_the_monitor_falls():
    records = run(monitor_relevance=lambda s: 0.5 - 0.05 * max(s - ONSET, 0))
    (v,) = MonitorDrop()(records)
    assert v.fired and ONSET < v.step <= ONSET + 16, v
    assert "below baseline" in v.evidence and "over the first 8 steps (1-8)" in v.evidence


def test_length_drift_fires_either_way():
    for sign in (1, -1):
        records = run(length_mean=lambda s, k=sign: 20 + k * 0.3 * max(s - ONSET, 0))
        (v,) = LengthDrift()(records)
        assert v.fired and v.step > ONSET, v
        assert ("+" if sign > 0 else "-") in re.search(r": ([+-][\d.]+) SE", v.evidence)[1]


def test_fidelity_floor_needs_consecutive_checks_below_the_floor():
    values = [0.9, 0.4, 0.9, 0.4, 0.4, 0.9, 0.45, 0.3, 0.2, 0.9]
    records = [StepRecord(step=10 * (i + 1), rank_corr=v) for i, v in enumerate(values)]
    (v,) = FidelityFloor()(records)
    assert v.fired and v.step == 90  # the third check in a row below 0.5
    assert "0.45, 0.3, 0.2 at steps 70-90" in v.evidence
    (v,) = FidelityFloor(floor=0.5, consecutive=4)(records)
    assert not v.fired and "0.2 to 0.9 over 10 checks" in v.evidence


def test_group_collapse_fires_on_a_lasting_share():
    shares = [0.1, 0.6, 0.2, 0.6, 0.7, 0.8, 0.9]
    records = [StepRecord(step=i + 1, zero_spread_groups=v) for i, v in enumerate(shares)]
    (v,) = GroupCollapse()(records)
    assert v.fired and v.step == 6 and "above 0.5" in v.evidence


@pytest.mark.parametrize("hack", HACKS)
def test_each_synthetic_hack_is_caught_by_its_detector(hack):
    caught = 0
    for seed in range(10):
        records = synthetic_run(seed, "clean", hack=hack, onset=ONSET)
        first = min((v.step for v in DETECTOR[hack]()(records) if v.fired), default=None)
        if first is not None:
            assert first > ONSET, f"{hack} fired before the onset at step {first} (seed {seed})"
            caught += 1
    # the benchmark measures 86% for divergence over 1000 runs and 100% for the others
    assert caught >= (6 if hack == "divergence" else 10), caught


# -- runs without hacking: no alert --------------------------------------------------------
def test_a_clean_improvement_raises_no_alert():
    records = run(
        reward_mean=rising,
        reference_mean=rising,
        monitor_relevance=lambda s: 0.6,
        length_mean=lambda s: 20,
        rank_corr=lambda s: 0.8,
        zero_spread_groups=lambda s: 0.1,
        sd=0.05,
    )
    verdicts = run_detectors(records)
    assert len(verdicts) == 6 and all(v.checked for v in verdicts)
    assert not fired(verdicts), fired(verdicts)


@pytest.mark.parametrize("scenario", ["clean", "flat"])
def test_false_alarm_rate_on_clean_runs_is_at_most_5_percent(scenario):
    runs = [synthetic_run(seed, scenario) for seed in range(100, 200)]
    for detector in default_detectors():
        alarms = sum(any(v.fired for v in detector(r)) for r in runs)
        assert alarms <= 5, f"{detector.name}: {alarms} of 100 clean runs"


# -- causal: the alert step does not depend on what came after ------------------------------
def test_verdicts_are_causal():
    records = synthetic_run(3, "clean", hack="monitor_drop", onset=ONSET)
    (v,) = MonitorDrop()(records)
    assert v.fired
    end = next(i for i, r in enumerate(records) if r.step == v.step)
    (same,) = MonitorDrop()(records[: end + 1])
    assert same.fired and same.step == v.step
    (before,) = MonitorDrop()(records[:end])
    assert not before.fired


# -- what cannot be judged says so ----------------------------------------------------------
def test_missing_or_short_signals_are_not_checked_and_say_why():
    records = run(n=12, reward_mean=rising)
    verdicts = {v.name: v for v in run_detectors(records)}
    v = verdicts["divergence:reference"]
    assert not v.checked and not v.fired and "no step has both" in v.evidence
    assert "n/a" in v.format()
    assert "no monitor values" in verdicts["monitor_drop:monitor/*"].evidence
    records = run(n=12, length_mean=lambda s: 20)
    (v,) = LengthDrift()(records)
    assert not v.checked and "12 steps with a value; needs 16" in v.evidence


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Divergence(window=2),
            r"Divergence: window = 2 is not allowed; use an integer >= 4",
        ),
        (lambda: Divergence(z=0), r"Divergence: z = 0 .*> 0"),
        (lambda: MonitorDrop(persist=0), r"MonitorDrop: persist = 0"),
        (lambda: FidelityFloor(floor=1.5), r"FidelityFloor: floor = 1.5 .*<= 1"),
        (lambda: GroupCollapse(threshold=True), r"GroupCollapse: threshold = True"),
    ],
)
def test_bad_settings_name_the_field(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
