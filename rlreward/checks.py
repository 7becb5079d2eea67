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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "RunningStats",
    "is_number",
    "is_weight",
    "mean_std",
    "number_rule",
    "short_repr",
    "weight_count_rule",
    "weight_list_rule",
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
    high_inclusive: bool = True,
) -> str | None:
    """None when ``value`` is allowed, else what is: ``"an integer >= 1"``, ``"a number > 0"``."""
    ok = is_number(value, integer=integer)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if ok:
        return None
    bounds = []
    if low is not None:
        bounds.append(f"{'>=' if low_inclusive else '>'} {low:g}")
    if high is not None:
        bounds.append(f"{'<=' if high_inclusive else '<'} {high:g}")
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


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def weight_list_rule(
    weights: Any, functions: int | Sequence[str], field: str = "weights"
) -> str | None:
    """None when ``weights`` is a list of one weight (``is_weight``) per reward function,
    else the message, naming ``field``, the value and the fix; ``functions`` is their
    count or their names (then the message names the function too)."""
    names = [] if isinstance(functions, int) else [str(n) for n in functions]
    count = functions if isinstance(functions, int) else len(names)
    if isinstance(weights, (str, bytes, Mapping)) or not isinstance(weights, Sequence):
        return (
            f"{field} must be a list of numbers, one per reward function, got {short_repr(weights)}"
        )
    wrong_count = weight_count_rule(len(weights), count)
    if wrong_count is not None:
        listed = f" ({', '.join(names)})" if names else ""
        return (
            f"{field}: {wrong_count}{listed}; give one weight per function, or None for "
            "equal weights"
        )
    for i, w in enumerate(weights):
        if not is_weight(w):
            which = f" (reward function {names[i]!r})" if names else ""
            return (
                f"{field}[{i}] = {short_repr(w)}{which} is not allowed; weights must be "
                "positive finite numbers (drop a function instead of giving it weight 0)"
            )
    return None


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
