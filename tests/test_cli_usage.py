"""`rlreward grade`: the usage summary (--summary-json) and the spec's budget."""

from __future__ import annotations

import json

import pytest

from rlreward.cli import EXIT_BUDGET, EXIT_OK, main

PRICES = {"judge": {"prompt": 2.0, "completion": 8.0}}


def _spec(tmp_path, server, **extra):
    spec = {
        "judge_model": {
            "model": "judge",
            "base_url": server.url,
            "api_key": "sk-test-key",
            "timeout": 10,
            "max_retries": 0,
        },
        "cache": str(tmp_path / "cache.sqlite"),
        "graders": {
            "rel": {"type": "relevance"},
            "length": {"type": "reward_function", "function": "length"},
        },
        "aggregators": [{"name": "reward"}],
        "runner": {"max_concurrency": 1},
        **extra,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec))
    return path


def _rows(tmp_path, n):
    path = tmp_path / "data.jsonl"
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"query": f"question {i}", "response": f"answer {i}"}) + "\n")
    return path


def _grade(tmp_path, spec, data, *extra):
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    code = main(["grade", "-c", str(spec), str(data), "-o", str(out), "-q", "--summary-json",
                 str(summary), *map(str, extra)])  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return code, rows, json.loads(summary.read_text())


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the CLI reads the working directory's .env


def test_summary_json_counts_what_the_server_reported(tmp_path, openai_server, capsys):
    openai_server.cached_tokens = 5
    spec = _spec(tmp_path, openai_server, prices=PRICES)
    code, rows, summary = _grade(tmp_path, spec, _rows(tmp_path, 12))
    assert code == EXIT_OK and len(rows) == 12
    rel = summary["graders"]["rel"]
    counts = openai_server.counts
    assert set(summary["graders"]) == {"rel"}  # the rule function makes no judge call
    assert rel["calls"] == openai_server.n_requests == 12 and rel["errors"] == 0
    assert rel["prompt_tokens"] == counts["prompt_tokens"] > 0
    assert rel["completion_tokens"] == counts["completion_tokens"] > 0
    assert rel["cached_tokens"] == counts["cached_tokens"] == 60
    uncached = counts["prompt_tokens"] - 60
    expected = (uncached * 2.0 + 60 * 2.0 + counts["completion_tokens"] * 8.0) / 1e6
    assert rel["cost"] == pytest.approx(expected) and summary["totals"]["cost"] == rel["cost"]
    for key in ("latency_p50_s", "latency_p95_s", "latency_max_s"):
        assert rel[key] > 0
    assert [r["row"] for r in rel["slowest"]] and all(0 <= r["row"] < 12 for r in rel["slowest"])
    assert summary["budget"] is None and summary["scores"]["rel"]["count"] == 12
    printed = capsys.readouterr().out
    assert "prompt tok" in printed and "cost $" in printed  # the judges' usage table

    code, _, again = _grade(tmp_path, spec, _rows(tmp_path, 12))
    assert code == EXIT_OK and openai_server.n_requests == 12  # all from the cache
    assert again["graders"]["rel"]["calls"] == 0 and again["graders"]["rel"]["cached_rows"] == 12


def test_budget_stops_the_run_and_a_larger_one_completes_from_the_cache(
    tmp_path, openai_server, capsys
):
    data = _rows(tmp_path, 10)
    code, rows, summary = _grade(
        tmp_path, _spec(tmp_path, openai_server, budget={"max_tokens": 1}), data
    )
    assert code == EXIT_BUDGET
    err = capsys.readouterr().err
    assert "budget exhausted (spec budget: max_tokens=1;" in err
    assert "'rel': 9 rows" in err and "Rerun with a larger budget" in err
    assert openai_server.n_requests == 1  # one call started before the budget was spent
    per_call = openai_server.counts["prompt_tokens"] + openai_server.counts["completion_tokens"]
    assert len(rows) == 10  # every row written; the ungraded ones as errors
    assert "score" in rows[0]["grades"]["rel"]
    for row in rows[1:]:
        assert row["grades"]["rel"]["error"].startswith(
            f"budget exhausted: max_tokens=1 used {per_call}"
        )
        assert "score" in row["grades"]["length"]  # rule functions are not judge calls
    assert summary["budget"]["exhausted"] is True and summary["budget"]["used_tokens"] == per_call
    assert summary["graders"]["rel"]["budget_refused"] == 9

    # every call uses the same tokens: this budget lets exactly 4 more calls start
    spec = _spec(tmp_path, openai_server, budget={"max_tokens": 4 * per_call})
    code, rows, _ = _grade(tmp_path, spec, data)
    assert code == EXIT_BUDGET and openai_server.n_requests == 1 + 4
    assert sum("score" in r["grades"]["rel"] for r in rows) == 5

    spec = _spec(tmp_path, openai_server, budget={"max_tokens": 100 * per_call})
    code, rows, summary = _grade(tmp_path, spec, data)
    assert code == EXIT_OK, capsys.readouterr().err
    assert openai_server.n_requests == 10  # across three runs, no paid call was repeated
    assert all("score" in r["grades"]["rel"] for r in rows)
    assert summary["graders"]["rel"]["calls"] == 5 and summary["graders"]["rel"]["cached_rows"] == 5

    # a budget spent by the last row's call left nothing ungraded: not a failure
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text(
        "".join(json.dumps({"query": f"question {i}", "response": f"answer {i}"}) + "\n"
                for i in (100, 101))
    )  # fmt: skip
    spec = _spec(tmp_path, openai_server, budget={"max_tokens": 2 * per_call})
    code, rows, summary = _grade(tmp_path, spec, fresh)
    assert code == EXIT_OK and all("score" in r["grades"]["rel"] for r in rows)
    assert summary["budget"]["exhausted"] is True and summary["budget"]["refused_calls"] == 0


def test_a_cost_budget_needs_every_judge_priced(tmp_path, openai_server, capsys):
    spec = _spec(
        tmp_path, openai_server, budget={"max_cost": 1.0}, prices={"other": PRICES["judge"]}
    )
    assert main(["grade", "-c", str(spec), str(_rows(tmp_path, 2)), "-q"]) == 2
    err = capsys.readouterr().err
    assert "graders.rel" in err and "model 'judge' has no price" in err
    assert openai_server.n_requests == 0
