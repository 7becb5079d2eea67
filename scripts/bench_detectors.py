"""False-positive and detection rates of the reward-hacking detectors on synthetic runs.

The runs are ``rlreward.monitoring.synthetic.synthetic_run``'s (its docstring has every
scenario): 60 checked steps by default; clean ones (``clean`` improvement, ``flat``
noise, ``clean_ar1``: autocorrelated noise) and ones hacked after step 31.

A detector's false-positive rate is the share of clean runs where it fires at all; its
detection rate the share of hacked runs where it fires at or after the onset (a firing
before it counts as early, not as detected); the delay is steps from onset to alert.

    python scripts/bench_detectors.py            # 1000 seeded runs per scenario
    python scripts/bench_detectors.py --runs 200 --no-append
    # a short run: 20 checks, hacked after check 8, twice as fast; smaller windows
    python scripts/bench_detectors.py --steps 20 --onset 8 --strength 2 \
        --set monitor_drop.baseline=6 --set monitor_drop.window=4 --no-append
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import append_section, machine, table

from rlreward.monitoring.detectors import Detector, default_detectors
from rlreward.monitoring.records import StepRecord
from rlreward.monitoring.synthetic import SCENARIOS, synthetic_run


def _setting(text: str) -> tuple[str, str, float]:
    """``detector.field=value`` (e.g. ``monitor_drop.window=4``)."""
    try:
        target, value = text.split("=", 1)
        name, field = target.split(".", 1)
        return name, field, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"use DETECTOR.FIELD=VALUE, got {text!r}") from None


def detectors_with(settings: Sequence[tuple[str, str, float]]) -> dict[str, Detector]:
    """The default detectors with ``settings`` applied."""
    chosen: dict[str, Any] = {d.name: d for d in default_detectors()}
    for name, field, value in settings:
        if name not in chosen or field not in {f.name for f in dataclasses.fields(chosen[name])}:
            raise SystemExit(
                f"--set: no field {field!r} in detector {name!r} ({', '.join(chosen)})"
            )
        number = int(value) if value.is_integer() and field != "z" else value
        chosen[name] = dataclasses.replace(chosen[name], **{field: number})
    return chosen


def first_fire(records: Sequence[StepRecord], detector: Detector) -> int | None:
    steps = [v.step for v in detector(records) if v.fired and v.step is not None]
    return min(steps) if steps else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="seeded runs per scenario")
    parser.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    parser.add_argument("--steps", type=int, default=60, help="checked steps per run")
    parser.add_argument(
        "--onset", type=int, default=31, help="the last step before the hacked signal turns"
    )
    parser.add_argument(
        "--strength", type=float, default=1.0, help="speed of the hacks (synthetic_run)"
    )
    parser.add_argument(
        "--set",
        dest="settings",
        type=_setting,
        action="append",
        default=[],
        metavar="DETECTOR.FIELD=VALUE",
        help="change a default, e.g. --set monitor_drop.window=4 (repeatable)",
    )
    args = parser.parse_args(argv)
    detectors = detectors_with(args.settings)
    steps, onset = args.steps, args.onset
    started = time.perf_counter()

    labels = {"clean": "clean improvement", "flat": "flat noise", "clean_ar1": "clean, AR(1)"}
    clean_kinds = {k: labels[k] for k in SCENARIOS}
    fp: dict[str, dict[str, int]] = {k: dict.fromkeys([*detectors, "any"], 0) for k in clean_kinds}
    for kind in clean_kinds:
        for seed in range(args.runs):
            records = synthetic_run(seed, kind, steps=steps, onset=onset - 1)
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
            run = synthetic_run(
                10_000 + seed,
                "clean",
                hack=name,
                steps=steps,
                onset=onset - 1,
                strength=args.strength,
            )
            step = first_fire(run, det)
            if step is None:
                continue
            if step < onset:
                early += 1
            else:
                detected += 1
                delays.append(step - onset)
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
        "detector (settings)",
        *(f"false alarms: {label}" for label in clean_kinds.values()),
        f"detected (hacked after step {onset})",
        "fired before onset",
        "median delay, steps",
    ]
    body = (
        f"{args.runs} seeded synthetic runs of {steps} steps per scenario, hack speed "
        f"x{args.strength:g} "
        f"(scenarios: rlreward/monitoring/synthetic.py); {wall:.0f} s.\n\n" + table(headers, rows)
    )
    print(f"machine: {machine()}\n")
    print(body)
    if not args.no_append:
        title = "reward-hacking detectors: false alarms and detection (scripts/bench_detectors.py)"
        append_section(title if steps == 60 else f"{title}, {steps}-step runs", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
