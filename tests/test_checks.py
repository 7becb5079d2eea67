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


def test_number_rule_bounds_say_what_is_allowed():
    from rlreward.checks import number_rule

    assert number_rule(0.5, low=0, high=1, high_inclusive=False) is None
    assert number_rule(1.0, low=0, high=1, high_inclusive=False) == "a number >= 0 and < 1"
    assert number_rule(1.0, low=-1, high=1) is None
    assert number_rule(True, integer=True) == "an integer"  # bool is not a number here
    assert number_rule(float("nan"), low=0, low_inclusive=False) == "a number > 0"


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ("0.5,0.5", "w must be a list of numbers, one per reward function, got '0.5,0.5'"),
        ({"a": 1}, "w must be a list of numbers"),
        ([1.0], "w: got 1 weights for 2 reward functions (a, b); give one weight per function"),
        ([1.0, 0], "w[1] = 0 (reward function 'b') is not allowed; weights must be positive"),
        ([math.nan, 1], "w[0] = nan (reward function 'a') is not allowed"),
        ([True, 1], "w[0] = True (reward function 'a') is not allowed"),
    ],
)
def test_one_weight_list_rule_names_the_field_the_value_and_the_fix(weights, message):
    from rlreward.checks import weight_list_rule

    problem = weight_list_rule(weights, ["a", "b"], "w")
    assert problem is not None and problem.startswith(message)
    assert weight_list_rule([2, 0.5], ["a", "b"]) is None
    assert weight_list_rule([1.0, -1], 2, "w") == (
        "w[1] = -1 is not allowed; weights must be positive finite numbers "
        "(drop a function instead of giving it weight 0)"
    )


@pytest.mark.parametrize("bad", [0, True, 2.5, "8", None])
def test_hand_checked_numbers_now_follow_the_one_rule(bad):
    from rlreward.cache import ResultCache
    from rlreward.errors import ConfigError

    with pytest.raises(ConfigError, match=r"ResultCache.max_entries=.* use an integer >= 1"):
        ResultCache(max_entries=bad)
