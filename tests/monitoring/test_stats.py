"""The monitor's small statistics against scipy and against known series."""

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from rlreward.monitoring.stats import StepNoise, ols_slope, spearman


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, 40).astype(float).tolist()  # many ties
    b = (np.array(a) + rng.normal(0, 2, 40)).round().tolist()
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)


def test_spearman_is_none_when_undefined():
    assert spearman([1.0, 2.0], [2.0, 1.0]) is None  # fewer than 3 pairs
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None  # a constant side
    assert spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == -1.0
    with pytest.raises(ValueError, match="3 values against 2"):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0])


def test_ols_slope():
    slope, sxx = ols_slope([1, 2, 3, 4], [1.0, 3.0, 5.0, 7.0])
    assert slope == pytest.approx(2.0) and sxx == pytest.approx(5.0)
    with pytest.raises(ValueError, match="all x are equal"):
        ols_slope([2, 2], [1.0, 3.0])


def _ar1(phi, n, seed):
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    y = np.empty(n)
    y[0] = e[0]
    for i in range(1, n):
        y[i] = phi * y[i - 1] + math.sqrt(1 - phi**2) * e[i]
    return y


@pytest.mark.parametrize("phi", [0.0, 0.5])
def test_step_noise_finds_sd_and_autocorrelation_under_a_trend(phi):
    y = _ar1(phi, 20_000, seed=1) * 2.0 + 0.05 * np.arange(20_000)  # sd 2, a steep trend
    noise = StepNoise()
    for v in y:
        noise.add(float(v))
    assert noise.sd == pytest.approx(2.0, rel=0.05)
    assert noise.phi == pytest.approx(phi, abs=0.05)
    assert noise.inflation == pytest.approx(math.sqrt((1 + noise.phi) / (1 - noise.phi)))


def test_step_noise_needs_four_values_and_caps_phi():
    noise = StepNoise(max_phi=0.8)
    for v in (0.0, 1.0, 2.0):
        noise.add(v)
    assert not noise.ready
    with pytest.raises(ValueError, match="4\\+ values"):
        _ = noise.sd
    for v in np.cumsum(np.random.default_rng(0).standard_normal(500)):  # a random walk
        noise.add(float(v))
    assert noise.phi == 0.8  # clamped: a random walk has no finite sd
