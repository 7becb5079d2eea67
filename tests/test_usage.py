"""rlreward.usage: usage records, the per-grader summary, prices and the budget."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from rlreward.errors import ConfigError
from rlreward.results import GradingResults
from rlreward.schema import GraderError, GraderScore
from rlreward.usage import (
    USAGE_KEY,
    Price,
    UsageBudget,
    UsageSummary,
    call_usage,
    check_prices,
)

TOKENS = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110, "cached_tokens": 40}


def graded(latency: float, *, model: str = "m", calls: int = 1, ok: bool = True, **usage):
    record = call_usage(model, calls=calls, usage=usage or TOKENS, latency_s=latency)
    if ok:
        return GraderScore("j", 0.5, "", {USAGE_KEY: record})
    return GraderError("j", "boom", {USAGE_KEY: record})


def test_price_counts_cached_prompt_tokens_at_their_own_price():
    price = Price(prompt=2.0, completion=8.0, cached=0.5)
    assert price.cost(1_000_000, 0) == pytest.approx(2.0)
    assert price.cost(100, 10, 40) == pytest.approx((60 * 2 + 40 * 0.5 + 10 * 8) / 1e6)
    assert Price(1.0, 1.0).cost(100, 0, 40) == pytest.approx(100 / 1e6)  # default: prompt price


@pytest.mark.parametrize(
    ("prices", "words"),
    [
        ({"m": {"prompt": 1}}, "missing 'completion'"),
        ({"m": {"prompt": -1, "completion": 1}}, "prices.m.prompt must be a number >= 0"),
        ({"m": {"prompt": 1, "completion": 1, "input": 2}}, "unknown keys ['input']"),
        ({"m": 3}, "prices.m must be"),
        ([1], "must be a mapping"),
    ],
)
def test_bad_price_tables_name_the_entry(prices, words):
    with pytest.raises(ConfigError) as info:
        check_prices(prices)
    assert words in str(info.value)


def test_call_usage_of_a_cached_grade_and_of_a_server_without_usage():
    cached = call_usage("m", calls=0, usage=None, latency_s=0.001, cached=True)
    assert cached["calls"] == 0 and cached["prompt_tokens"] == 0 and cached["cached"] is True
    assert cached["reported"] is True  # nothing was called, nothing is missing
    silent = call_usage("m", calls=1, usage=None, latency_s=0.2)
    assert silent["reported"] is False and silent["prompt_tokens"] == 0
    partial = call_usage("m", calls=1, usage={"prompt_tokens": 7, "total_tokens": 7}, latency_s=1)
    assert (partial["prompt_tokens"], partial["completion_tokens"], partial["cached_tokens"]) == (
        7,
        0,
        0,
    )


def test_summary_counts_tokens_latency_percentiles_and_slowest_rows():
    latencies = [0.05 * (i % 7) + 0.01 * i for i in range(40)]
    column = [graded(lat) for lat in latencies]
    column[3] = graded(0.0, calls=0)  # a cache hit: no call, no latency sample
    column[5] = graded(2.0, ok=False)  # a failed call still took time and tokens
    summary = UsageSummary()
    summary.add_results({"j": column[:20]})
    summary.add_results({"j": column[20:]}, offset=20)
    s = summary.summary()["j"]
    made = [c.metadata[USAGE_KEY]["latency_s"] for i, c in enumerate(column) if i != 3]
    assert s["rows"] == 40 and s["calls"] == 39 and s["errors"] == 1
    assert s["prompt_tokens"] == 39 * 100 and s["completion_tokens"] == 390
    assert s["cached_tokens"] == 39 * 40 and s["total_tokens"] == 39 * 110
    assert s["latency_p50_s"] == pytest.approx(float(np.percentile(made, 50)))
    assert s["latency_p95_s"] == pytest.approx(float(np.percentile(made, 95)))
    assert s["latency_max_s"] == 2.0
    order = sorted(((lat, i) for i, lat in enumerate(made_by_row(column))), reverse=True)[:5]
    assert [(r["row"], r["latency_s"]) for r in s["slowest"]] == [(i, lat) for lat, i in order]
    assert "cost" not in s


def made_by_row(column):
    return [
        c.metadata[USAGE_KEY]["latency_s"] if c.metadata[USAGE_KEY]["calls"] else -1.0
        for c in column
    ]


def test_summary_prices_each_grader_by_its_model_and_reports_only_judges():
    results = GradingResults(
        priced=[graded(0.1, model="a"), graded(0.2, model="a")],
        unpriced=[graded(0.1, model="b")],
        rule=[GraderScore("rule", 1.0)],
    )
    s = results.usage_summary(prices={"a": {"prompt": 1.0, "completion": 2.0}})
    assert set(s) == {"priced", "unpriced"}  # the rule function has no usage record
    assert s["priced"]["cost"] == pytest.approx(2 * (100 * 1.0 + 10 * 2.0) / 1e6)
    assert s["unpriced"]["cost"] is None
    summary = UsageSummary({"a": Price(1.0, 2.0)})
    summary.add_results(results)
    assert summary.totals()["calls"] == 3 and summary.totals()["cost"] is None
    assert "unpriced" in summary.format() and "priced" in summary.format()


def test_budget_needs_a_limit_and_prices_for_a_cost_limit():
    with pytest.raises(ConfigError, match="give max_tokens and/or max_cost"):
        UsageBudget()
    with pytest.raises(ConfigError, match="max_cost needs a price table"):
        UsageBudget(max_cost=1.0)
    with pytest.raises(ConfigError, match="max_tokens must be a whole number >= 1, got 0"):
        UsageBudget(max_tokens=0)
    budget = UsageBudget(max_cost=1.0, prices={"a": {"prompt": 1, "completion": 1}})
    budget.check_model("a", "judge")
    with pytest.raises(ConfigError, match="model 'b' has no price; add it to prices"):
        budget.check_model("b", "judge")
    UsageBudget(max_tokens=5).check_model("b", "judge")  # a token limit needs no price


def test_budget_refuses_once_spent_and_survives_pickling():
    budget = UsageBudget(max_tokens=200)
    record = call_usage("m", calls=1, usage=TOKENS, latency_s=0.1)
    budget.spend(record)
    assert budget.exhausted() is None and not budget.is_exhausted
    budget.spend(call_usage("m", calls=0, usage=None, latency_s=0, cached=True))  # free
    assert budget.used_tokens == 110
    budget.spend(record)
    reason = budget.exhausted()
    assert reason is not None and reason.startswith("budget exhausted: max_tokens=200 used 220")
    assert budget.state()["refused_calls"] == 1 and budget.state()["exhausted"] is True
    copy = pickle.loads(pickle.dumps(budget))
    assert copy.used_tokens == 220 and copy.exhausted() is not None


def test_cost_budget_counts_dollars():
    budget = UsageBudget(max_cost=0.0003, prices={"m": {"prompt": 2.0, "completion": 8.0}})
    one = call_usage("m", calls=1, usage=TOKENS, latency_s=0.1)
    budget.spend(one)  # (100 * 2 + 10 * 8) / 1e6 = 0.00028
    assert budget.used_cost == pytest.approx(0.00028) and budget.exhausted() is None
    budget.spend(one)
    assert "max_cost=0.0003 used 0.00056" in (budget.exhausted() or "")
