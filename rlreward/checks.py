"""The one home of the small value rules: what counts as a number, a weight, mean/std.

Every config check in the package (reward-function parameters, training and RL configs,
aggregator weights, composite weights) asks these functions, so "a number" means the
same everywhere: a real ``int``/``float`` (``bool`` is not a number here), finite, and
inside the stated bounds. Callers put the answer into their own ConfigError, which
names their field; ``number_rule`` returns the "use ..." part of that message.

``RunningStats`` is the one count/mean/std/min/max in the package (the CLI summary, the
TRL logs and callback, the PPO reward's history all keep one); ``mean_std`` is it
applied to a finished list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "RunningStats",
    "is_number",
    "is_weight",
    "mean_std",
    "number_rule",
    "weight_count_rule",
]


def is_number(value: Any, *, integer: bool = False) -> bool:
    """A finite real number (an ``int`` when ``integer``); ``bool`` is not a number."""
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def number_rule(
    value: Any,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> str | None:
    """None when ``value`` is allowed, else what is: ``"an integer >= 1"``, ``"a number > 0"``."""
    ok = is_number(value, integer=integer)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high
    if ok:
        return None
    bounds = []
    if low is not None:
        bounds.append(f"{'>=' if low_inclusive else '>'} {low:g}")
    if high is not None:
        bounds.append(f"<= {high:g}")
    kind = "an integer" if integer else "a number"
    return " ".join([kind, " and ".join(bounds)]) if bounds else kind


def is_weight(value: Any) -> bool:
    """A weight: a finite number > 0 (leave a component out instead of weighting it 0)."""
    return is_number(value) and value > 0


def weight_count_rule(n_weights: int, n_functions: int) -> str | None:
    """None when there is one weight per reward function, else the message's first part."""
    if n_weights == n_functions:
        return None
    return f"got {n_weights} weights for {n_functions} reward functions"


class RunningStats:
    """Count, mean, population std, min and max of a stream in O(1) memory (Welford).

    Mean, std, min and max are NaN until the first value.
    """

    __slots__ = ("_high", "_low", "_m2", "_mean", "count")

    def __init__(self, values: Iterable[float] = ()) -> None:
        self.count = 0
        self._mean = self._m2 = 0.0
        self._low, self._high = math.inf, -math.inf
        self.extend(values)

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (value - self._mean)
        self._low, self._high = min(self._low, value), max(self._high, value)

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    @property
    def mean(self) -> float:
        return self._mean if self.count else math.nan

    @property
    def std(self) -> float:
        return math.sqrt(max(self._m2, 0.0) / self.count) if self.count else math.nan

    @property
    def min(self) -> float:
        return self._low if self.count else math.nan

    @property
    def max(self) -> float:
        return self._high if self.count else math.nan

    def as_dict(self) -> dict[str, float]:
        """``{"mean", "std", "min", "max", "n"}`` (``n`` the count)."""
        return {
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "n": self.count,
        }

    def __repr__(self) -> str:
        return f"RunningStats(n={self.count}, mean={self.mean:g}, std={self.std:g})"


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and population standard deviation of ``values``; NaN, NaN when empty."""
    stats = RunningStats(values)
    return stats.mean, stats.std
