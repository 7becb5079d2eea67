"""The ground-floor value rules: RunningStats and mean_std."""

from __future__ import annotations

import math
import statistics

import pytest

from rlreward.checks import RunningStats, mean_std


def test_running_stats_match_the_statistics_module() -> None:
    values = [0.25, 3.0, -1.5, 7.75, 2.0, 2.0, 1e-3]
    stats = RunningStats()
    for v in values:
        stats.add(v)
    assert stats.count == len(values)
    assert stats.mean == pytest.approx(statistics.fmean(values), abs=1e-12)
    assert stats.std == pytest.approx(statistics.pstdev(values), abs=1e-12)
    assert (stats.min, stats.max) == (-1.5, 7.75)
    assert stats.as_dict() == {
        "mean": stats.mean,
        "std": stats.std,
        "min": -1.5,
        "max": 7.75,
        "n": len(values),
    }


def test_running_stats_are_nan_until_the_first_value() -> None:
    stats = RunningStats()
    assert stats.count == 0
    assert all(math.isnan(x) for x in (stats.mean, stats.std, stats.min, stats.max))
    stats.add(4.0)
    assert (stats.mean, stats.std, stats.min, stats.max) == (4.0, 0.0, 4.0, 4.0)


def test_running_stats_stay_accurate_on_a_large_offset() -> None:
    # a naive sum-of-squares variance loses every digit here; Welford keeps them
    values = [1e9 + x for x in (4.0, 7.0, 13.0, 16.0)]
    assert RunningStats(values).std == pytest.approx(statistics.pstdev(values), rel=1e-9)


def test_mean_std_is_running_stats_on_a_list() -> None:
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    mean, std = mean_std([])
    assert math.isnan(mean) and math.isnan(std)
