"""False-positive and detection rates of the reward-hacking detectors on synthetic runs.

The runs are ``rlreward.monitoring.synthetic.synthetic_run``'s (its docstring has every
scenario): 60 checked steps; clean ones (``clean`` improvement, ``flat`` noise,
``clean_ar1``: autocorrelated noise) and ones hacked from step 31 on.

A detector's false-positive rate is the share of clean runs where it fires at all; its
detection rate the share of hacked runs where it fires at or after the onset (a firing
before it counts as early, not as detected); the delay is steps from onset to alert.

    python scripts/bench_detectors.py            # 1000 seeded runs per scenario
    python scripts/bench_detectors.py --runs 200 --no-append
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import append_section, machine, table

from rlreward.monitoring.detectors import Detector, default_detectors
from rlreward.monitoring.records import StepRecord
from rlreward.monitoring.synthetic import SCENARIOS, synthetic_run

STEPS = 60
ONSET = 31  # the last step before the hacked signal turns


def first_fire(records: Sequence[StepRecord], detector: Detector) -> int | None:
    steps = [v.step for v in detector(records) if v.fired and v.step is not None]
    return min(steps) if steps else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="seeded runs per scenario")
    parser.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    detectors = {d.name: d for d in default_detectors()}
    started = time.perf_counter()

    labels = {"clean": "clean improvement", "flat": "flat noise", "clean_ar1": "clean, AR(1)"}
    clean_kinds = {k: labels[k] for k in SCENARIOS}
    fp: dict[str, dict[str, int]] = {k: dict.fromkeys([*detectors, "any"], 0) for k in clean_kinds}
    for kind in clean_kinds:
        for seed in range(args.runs):
            records = synthetic_run(seed, kind, steps=STEPS, onset=ONSET - 1)
            fired_any = False
            for name, det in detectors.items():
                if first_fire(records, det) is not None:
                    fp[kind][name] += 1
                    fired_any = True
            fp[kind]["any"] += fired_any

    detection: dict[str, tuple[int, int, list[int]]] = {}
    for name, det in detectors.items():
        detected, early, delays = 0, 0, []
        for seed in range(args.runs):
            run = synthetic_run(10_000 + seed, "clean", hack=name, steps=STEPS, onset=ONSET - 1)
            step = first_fire(run, det)
            if step is None:
                continue
            if step < ONSET:
                early += 1
            else:
                detected += 1
                delays.append(step - ONSET)
        detection[name] = (detected, early, delays)
    wall = time.perf_counter() - started

    pct = lambda k: f"{100 * k / args.runs:.1f}%"  # noqa: E731
    rows = []
    for name, det in detectors.items():
        detected, early, delays = detection[name]
        delay = f"{statistics.median(delays):g}" if delays else "-"
        rows.append(
            [
                f"`{det!r}`".replace("name=", "").replace(f", '{name}'", ""),
                *(pct(fp[k][name]) for k in clean_kinds),
                pct(detected),
                pct(early),
                delay,
            ]
        )
    rows.append(["any of the five", *(pct(fp[k]["any"]) for k in clean_kinds), "", "", ""])
    headers = [
        "detector (defaults)",
        *(f"false alarms: {label}" for label in clean_kinds.values()),
        f"detected (hack turns at step {ONSET})",
        "fired before onset",
        "median delay, steps",
    ]
    body = (
        f"{args.runs} seeded synthetic runs of {STEPS} steps per scenario "
        f"(scenarios: rlreward/monitoring/synthetic.py); {wall:.0f} s.\n\n" + table(headers, rows)
    )
    print(f"machine: {machine()}\n")
    print(body)
    if not args.no_append:
        append_section("reward-hacking detectors: false alarms and detection", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
