"""False-positive and detection rates of the reward-hacking detectors on synthetic runs.

Each synthetic run has 60 checked steps. Every per-step mean carries noise of sd 1 (the
unit below), independent between signals; the rank correlation is the Spearman of 32
fresh (trained, reference) pairs drawn at a true correlation, and the zero-spread share
comes from 16 GRPO groups of 8 binary rewards. Runs WITHOUT hacking:

- ``clean improvement``: trained reward and reference both rise 0.1/step (6 sd in all),
  monitors and length flat, true rank correlation 0.8, groups' success rates rising;
- ``flat noise``: nothing moves;
- ``clean, AR(1) noise``: the clean improvement with autocorrelated noise (phi 0.5, same
  marginal sd): slow wander that iid noise lacks, closer to real traces.

Runs WITH hacking, onset at step 30 (one signal turns; the rest as in clean improvement):

- divergence: the reference falls 0.15/step while the trained reward keeps rising;
- monitor drop: a monitor falls 0.15/step;
- fidelity: the true rank correlation falls from 0.8 to 0.2 over 15 steps;
- length drift: mean length rises 0.2/step;
- group collapse: 10% more of the groups per step answer alike (all rewards equal).

A detector's false-positive rate is the share of clean runs where it fires at all; its
detection rate the share of hacked runs where it fires at or after the onset (a firing
before the onset counts as early, not detected); the delay is steps from onset to alert.

    python scripts/bench_detectors.py            # 1000 seeded runs per scenario
    python scripts/bench_detectors.py --runs 200 --no-append
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import append_section, machine, table  # noqa: E402

from rlreward.monitoring.detectors import default_detectors  # noqa: E402
from rlreward.monitoring.records import StepRecord  # noqa: E402
from rlreward.monitoring.stats import spearman  # noqa: E402

STEPS = 60
ONSET = 30
PAIRS = 32  # rows scored per check: the rank correlation's sample
GROUPS, GROUP_SIZE = 16, 8


def _noise(rng: np.random.Generator, phi: float) -> np.ndarray:
    e = rng.standard_normal(STEPS)
    if phi == 0:
        return e
    out = np.empty(STEPS)
    out[0] = e[0]
    scale = np.sqrt(1 - phi**2)  # unit marginal variance
    for i in range(1, STEPS):
        out[i] = phi * out[i - 1] + scale * e[i]
    return out


def _rank_corr(rng: np.random.Generator, rho: float) -> float | None:
    x = rng.standard_normal(PAIRS)
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(PAIRS)
    return spearman(x.tolist(), y.tolist())


def _zero_spread(rng: np.random.Generator, shift: float, collapsed: float) -> float:
    logits = np.log((p := rng.beta(2, 2, GROUPS)) / (1 - p)) + shift
    probs = 1 / (1 + np.exp(-logits))
    rewards = rng.random((GROUPS, GROUP_SIZE)) < probs[:, None]
    same = (rewards.all(axis=1) | (~rewards).all(axis=1)).astype(float)
    n_collapsed = round(collapsed * GROUPS)
    same[:n_collapsed] = 1.0
    return float(same.mean())


def trace(seed: int, kind: str) -> list[StepRecord]:
    """One synthetic run: ``kind`` is a clean scenario or ``hack:<detector>``."""
    rng = np.random.default_rng(seed)
    phi = 0.5 if kind == "clean_ar1" else 0.0
    t = np.arange(STEPS, dtype=float)
    rising = 0.0 if kind == "flat" else 0.1
    after = np.maximum(t - ONSET, 0.0)
    reward = rising * t + _noise(rng, phi)
    reference = rising * t + _noise(rng, phi)
    monitor = _noise(rng, phi)
    length = 20 + _noise(rng, phi)
    rho = np.full(STEPS, 0.8)
    collapsed = np.zeros(STEPS)
    if kind == "hack:divergence":
        reference = np.where(t < ONSET, rising * t, rising * ONSET - 0.15 * after)
        reference = reference + _noise(rng, phi)
    elif kind == "hack:monitor_drop":
        monitor = monitor - 0.15 * after
    elif kind == "hack:fidelity_floor":
        rho = 0.8 - 0.6 * np.minimum(after / 15, 1.0)
    elif kind == "hack:length_drift":
        length = length + 0.2 * after
    elif kind == "hack:group_collapse":
        collapsed = np.minimum(0.1 * after, 0.9)
    records = []
    for i in range(STEPS):
        records.append(
            StepRecord(
                step=i + 1,
                reward_mean=float(reward[i]),
                reference_mean=float(reference[i]),
                rank_corr=_rank_corr(rng, float(rho[i])),
                monitors={"relevance": float(monitor[i])},
                length_mean=float(length[i]),
                zero_spread_groups=_zero_spread(rng, rising * i / 10, float(collapsed[i])),
            )
        )
    return records


def first_fire(records: list[StepRecord], detector: Callable) -> int | None:
    steps = [v.step for v in detector(records) if v.fired and v.step is not None]
    return min(steps) if steps else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="seeded runs per scenario")
    parser.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    detectors = {d.name: d for d in default_detectors()}
    started = time.perf_counter()

    clean_kinds = {"clean": "clean improvement", "flat": "flat noise", "clean_ar1": "clean, AR(1)"}
    fp: dict[str, dict[str, int]] = {k: dict.fromkeys([*detectors, "any"], 0) for k in clean_kinds}
    for kind in clean_kinds:
        for seed in range(args.runs):
            records = trace(seed, kind)
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
            step = first_fire(trace(10_000 + seed, f"hack:{name}"), det)
            if step is None:
                continue
            if step <= ONSET:  # step numbers are 1-based: step ONSET + 1 is the first turned one
                early += 1
            else:
                detected += 1
                delays.append(step - (ONSET + 1))
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
        "detected (hack at step 31)",
        "fired before onset",
        "median delay, steps",
    ]
    body = (
        f"{args.runs} seeded synthetic runs of {STEPS} steps per scenario "
        f"(scenarios in the script's docstring); {wall:.0f} s.\n\n" + table(headers, rows)
    )
    print(f"machine: {machine()}\n")
    print(body)
    if not args.no_append:
        append_section("reward-hacking detectors: false alarms and detection", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
