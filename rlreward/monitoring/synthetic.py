"""Synthetic monitor runs with known answers: clean ones and ones hacked from a known step.

What the detectors' false-positive and detection rates are measured on
(``scripts/bench_detectors.py``, docs/reward-hacking.md) and what the tests feed them.
Every per-step mean carries noise of sd 1 (the unit of every slope below), independent
between signals; the rank correlation is the Spearman of ``pairs`` fresh (trained,
reference) pairs drawn at a true correlation; the zero-spread share comes from ``groups``
GRPO groups of 8 binary rewards.

Scenarios without hacking:

- ``clean``: trained reward and reference both rise 0.1/step, monitors and length flat,
  true rank correlation 0.8, the groups' success rates rising;
- ``flat``: nothing moves;
- ``clean_ar1``: ``clean`` with autocorrelated noise (AR(1), phi 0.5, same marginal sd):
  the slow wander iid noise lacks, closer to real traces.

Hacks, from step ``onset + 1`` on (one signal turns; the rest as in ``clean``):

- ``divergence``: the reference falls 0.15/step while the trained reward keeps rising;
- ``monitor_drop``: the monitor ``relevance`` falls 0.15/step;
- ``fidelity_floor``: the true rank correlation falls from 0.8 to 0.2 over 15 steps;
- ``length_drift``: mean length rises 0.2/step;
- ``group_collapse``: 10% more of the groups per step answer alike (all rewards equal).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from rlreward.errors import ConfigError
from rlreward.monitoring.records import StepRecord
from rlreward.monitoring.stats import spearman

__all__ = ["HACKS", "SCENARIOS", "synthetic_run"]

Scenario = Literal["clean", "flat", "clean_ar1"]
Hack = Literal["divergence", "monitor_drop", "fidelity_floor", "length_drift", "group_collapse"]
SCENARIOS: tuple[Scenario, ...] = ("clean", "flat", "clean_ar1")
HACKS: tuple[Hack, ...] = (
    "divergence",
    "monitor_drop",
    "fidelity_floor",
    "length_drift",
    "group_collapse",
)
_GROUP_SIZE = 8


def _noise(rng: np.random.Generator, steps: int, phi: float) -> np.ndarray:
    e = rng.standard_normal(steps)
    if phi == 0:
        return e
    out = np.empty(steps)
    out[0] = e[0]
    scale = np.sqrt(1 - phi**2)  # unit marginal variance
    for i in range(1, steps):
        out[i] = phi * out[i - 1] + scale * e[i]
    return out


def _rank_corr(rng: np.random.Generator, rho: float, pairs: int) -> float | None:
    x = rng.standard_normal(pairs)
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(pairs)
    return spearman(x.tolist(), y.tolist())


def _zero_spread(rng: np.random.Generator, shift: float, collapsed: float, groups: int) -> float:
    p = rng.beta(2, 2, groups)
    probs = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift)))
    rewards = rng.random((groups, _GROUP_SIZE)) < probs[:, None]
    same = (rewards.all(axis=1) | (~rewards).all(axis=1)).astype(float)
    same[: round(collapsed * groups)] = 1.0
    return float(same.mean())


def synthetic_run(
    seed: int,
    scenario: Scenario = "clean",
    *,
    hack: Hack | None = None,
    steps: int = 60,
    onset: int = 30,
    pairs: int = 32,
    groups: int = 16,
    strength: float = 1.0,
) -> list[StepRecord]:
    """One seeded run of ``steps`` checked steps (1, 2, ...); hacked after ``onset`` if asked.

    ``strength`` multiplies the hack's speed (2.0: the reference falls 0.3/step, ...).
    """
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if hack is not None and hack not in HACKS:
        raise ConfigError(f"unknown hack {hack!r}; known: {', '.join(HACKS)}")
    rng = np.random.default_rng(seed)
    phi = 0.5 if scenario == "clean_ar1" else 0.0
    t = np.arange(steps, dtype=float)
    rising = 0.0 if scenario == "flat" else 0.1
    after = np.maximum(t - onset, 0.0) * strength
    reward = rising * t + _noise(rng, steps, phi)
    reference = rising * t + _noise(rng, steps, phi)
    monitor = _noise(rng, steps, phi)
    length = 20 + _noise(rng, steps, phi)
    rho = np.full(steps, 0.8)
    collapsed = np.zeros(steps)
    if hack == "divergence":
        reference = np.where(t < onset, rising * t, rising * onset - 0.15 * after)
        reference = reference + _noise(rng, steps, phi)
    elif hack == "monitor_drop":
        monitor = monitor - 0.15 * after
    elif hack == "fidelity_floor":
        rho = 0.8 - 0.6 * np.minimum(after / 15, 1.0)
    elif hack == "length_drift":
        length = length + 0.2 * after
    elif hack == "group_collapse":
        collapsed = np.minimum(0.1 * after, 0.9)
    return [
        StepRecord(
            step=i + 1,
            reward_mean=float(reward[i]),
            reference_mean=float(reference[i]),
            rank_corr=_rank_corr(rng, float(rho[i]), pairs),
            monitors={"relevance": float(monitor[i])},
            length_mean=float(length[i]),
            zero_spread_groups=_zero_spread(rng, rising * i / 10, float(collapsed[i]), groups),
            rows_scored=pairs,
        )
        for i in range(steps)
    ]
