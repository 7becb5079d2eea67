"""The few statistics the monitor and its detectors need, in plain Python (no numpy/scipy).

- ``spearman``: rank correlation with average ranks for ties;
- ``ols_slope``: OLS slope of y on x (its SE is the step noise's sd / sqrt(sxx));
- ``StepNoise``: the step-to-step noise of a series (sd and autocorrelation), kept
  running, measured so that a trend barely moves it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["StepNoise", "mean", "ols_slope", "spearman"]


def mean(values: Sequence[float]) -> float:
    """``math.fsum`` mean; a ValueError on an empty sequence."""
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        average = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = average
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None with fewer than 3 pairs or a constant side."""
    if len(a) != len(b):
        raise ValueError(f"spearman: {len(a)} values against {len(b)}")
    if len(a) < 3:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = mean(ra), mean(rb)
    sab = math.fsum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    saa = math.fsum((x - ma) ** 2 for x in ra)
    sbb = math.fsum((y - mb) ** 2 for y in rb)
    if saa == 0 or sbb == 0:
        return None
    return max(-1.0, min(1.0, sab / math.sqrt(saa * sbb)))


def ols_slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """``(slope, sxx)``: the OLS slope of y on x and the sum of squares of x about its mean.

    The slope's standard error is ``sd / sqrt(sxx)`` for step noise of sd ``sd``.
    """
    n = len(x)
    if n != len(y) or n < 2:
        raise ValueError(f"ols_slope needs 2+ paired points, got {n} x and {len(y)} y")
    mx, my = mean(x), mean(y)
    sxx = math.fsum((xi - mx) ** 2 for xi in x)
    if sxx == 0:
        raise ValueError("ols_slope: all x are equal")
    return math.fsum((xi - mx) * (yi - my) for xi, yi in zip(x, y, strict=True)) / sxx, sxx


class StepNoise:
    """The step-to-step noise of a series seen so far, measured so a trend barely moves it.

    From the successive differences d[i] = y[i+1] - y[i] (a linear trend only shifts their
    mean, which is removed): with noise that is AR(1) with coefficient phi around a smooth
    curve, var(d) = 2 sd^2 (1 - phi) and the lag-1 autocorrelation of d is -(1 - phi) / 2.
    So ``phi = 1 + 2 r_d`` (clamped to [0, ``max_phi``]) and ``sd^2 = var(d) / (2 (1 - phi))``.
    Independent noise gives phi near 0; slowly wandering noise a larger phi, which widens
    every standard error by ``inflation = sqrt((1 + phi) / (1 - phi))`` (the variance of a
    mean of autocorrelated values). Constant memory: ``add`` one value at a time.
    """

    def __init__(self, max_phi: float = 0.8) -> None:
        self.max_phi = max_phi
        self._last: float | None = None
        self._first_d: float | None = None
        self._last_d: float | None = None
        self._m = 0  # differences seen
        self._s1 = self._s2 = self._lag = 0.0

    def add(self, value: float) -> None:
        if self._last is not None:
            d = value - self._last
            if self._last_d is not None:
                self._lag += self._last_d * d
            else:
                self._first_d = d
            self._m += 1
            self._s1 += d
            self._s2 += d * d
            self._last_d = d
        self._last = value

    @property
    def ready(self) -> bool:
        """At least 3 differences (4 values): enough for a first estimate."""
        return self._m >= 3

    def _moments(self) -> tuple[float, float]:
        """(variance of d, lag-1 autocorrelation of d)."""
        m, dbar = self._m, self._s1 / self._m
        var_sum = max(self._s2 - m * dbar * dbar, 0.0)
        assert self._first_d is not None and self._last_d is not None
        cov_sum = (
            self._lag
            - dbar * (self._s1 - self._last_d)
            - dbar * (self._s1 - self._first_d)
            + (m - 1) * dbar * dbar
        )
        return var_sum / m, (cov_sum / var_sum if var_sum > 0 else -0.5)

    @property
    def phi(self) -> float:
        """Lag-1 autocorrelation of the noise, clamped to [0, max_phi]."""
        if not self.ready:
            raise ValueError("StepNoise needs 4+ values")
        _, r = self._moments()
        return min(max(1 + 2 * r, 0.0), self.max_phi)

    @property
    def sd(self) -> float:
        """Standard deviation of the noise around the series' smooth course."""
        if not self.ready:
            raise ValueError("StepNoise needs 4+ values")
        var_d, _ = self._moments()
        return math.sqrt(var_d / (2 * (1 - self.phi)))

    @property
    def inflation(self) -> float:
        """sqrt((1 + phi) / (1 - phi)): how much autocorrelation widens an SE."""
        phi = self.phi
        return math.sqrt((1 + phi) / (1 - phi))
