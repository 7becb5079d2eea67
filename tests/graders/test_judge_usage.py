"""Judge usage against the local OpenAI server: tokens as reported, cache, budget, pacing."""

from __future__ import annotations

import json
import time

from rlreward import (
    CorrectnessGrader,
    GraderError,
    GraderScore,
    GradingRunner,
    RelevanceGrader,
    ResultCache,
    RewardSpec,
)
from rlreward.usage import USAGE_KEY, UsageBudget
from tests.openai_server import Action, OpenAIServer, local_model, prompt_words, word_count

KEY = "sk-usage-test-0123456789"


def rows(n: int) -> list[dict[str, str]]:
    return [
        {"query": f"question {i}", "response": f"answer {i}", "reference_response": f"{i}"}
        for i in range(n)
    ]


def runner_for(*graders, concurrency: int = 4) -> GradingRunner:
    return GradingRunner(list(graders), max_concurrency=concurrency, show_progress=False)


def test_summary_tokens_equal_what_the_server_reported(openai_server: OpenAIServer):
    openai_server.cached_tokens = 7
    model = local_model(openai_server, KEY)
    runner = runner_for(RelevanceGrader(model=model), CorrectnessGrader(model=model))
    results = runner.run(rows(6))
    summary = results.usage_summary()
    counts = openai_server.counts
    assert set(summary) == {"relevance", "correctness"}
    assert sum(s["calls"] for s in summary.values()) == openai_server.n_requests == 12
    assert sum(s["prompt_tokens"] for s in summary.values()) == counts["prompt_tokens"] > 0
    assert sum(s["completion_tokens"] for s in summary.values()) == counts["completion_tokens"]
    assert sum(s["cached_tokens"] for s in summary.values()) == counts["cached_tokens"] == 12 * 7
    # per row: the record holds exactly the words of that row's request and reply
    sent = {body["messages"][-1]["content"]: prompt_words(body) for body in openai_server.requests}
    grader = runner.graders["relevance"]
    for i, row in enumerate(rows(6)):
        record = results["relevance"][i].metadata[USAGE_KEY]
        user = grader.build_messages(grader.select_fields(row))[-1]["content"]
        assert record["prompt_tokens"] == sent[user]
        assert record["completion_tokens"] == word_count(
            json.dumps({"reason": "judged", "score": 4})
        )
        assert record["calls"] == 1 and record["model"] == "judge" and record["retries"] == 0
        assert record["latency_s"] > 0 and record["cached"] is False
    for s in summary.values():
        assert 0 < s["latency_p50_s"] <= s["latency_p95_s"] <= s["latency_max_s"]
        assert len(s["slowest"]) == 5 and s["errors"] == 0


def test_cached_and_shared_grades_count_no_call(openai_server: OpenAIServer):
    cache = ResultCache(None)
    model = local_model(openai_server, KEY)
    data = rows(4) + rows(4)  # each row twice: the second copy shares the first one's call
    first = runner_for(RelevanceGrader(model=model, cache=cache), concurrency=8).run(data)
    s = first.usage_summary()["relevance"]
    assert s["calls"] == openai_server.n_requests == 4 and s["cached_rows"] == 4
    assert s["prompt_tokens"] == openai_server.counts["prompt_tokens"]
    again = runner_for(RelevanceGrader(model=model, cache=cache)).run(data)
    s = again.usage_summary()["relevance"]
    assert openai_server.n_requests == 4  # no new request
    assert s["calls"] == 0 and s["cached_rows"] == 8 and s["prompt_tokens"] == 0
    assert s["latency_p50_s"] is None and s["slowest"] == []
    record = again["relevance"][0].metadata[USAGE_KEY]
    assert record == {**record, "calls": 0, "prompt_tokens": 0, "cached": True}


def test_retries_failed_calls_and_unusable_replies_are_counted(openai_server: OpenAIServer):
    openai_server.script(Action.error(500), Action.judge(3))  # row 0: one retry
    model = local_model(openai_server, KEY, max_retries=1)
    results = runner_for(RelevanceGrader(model=model), concurrency=1).run(rows(3))
    assert results["relevance"][0].metadata[USAGE_KEY]["retries"] == 1
    openai_server.reset()
    openai_server.script(Action.error(401), Action.reply("no verdict here at all"))
    results = runner_for(RelevanceGrader(model=model), concurrency=1).run(rows(3))
    failed, unusable, good = results["relevance"]
    assert isinstance(failed, GraderError) and isinstance(unusable, GraderError)
    assert failed.metadata[USAGE_KEY]["calls"] == 1
    assert failed.metadata[USAGE_KEY]["reported"] is False  # an HTTP 401 reports no tokens
    assert unusable.metadata[USAGE_KEY]["completion_tokens"] == 5  # the reply was paid for
    s = results.usage_summary()["relevance"]
    assert s["errors"] == 2 and s["calls"] == 3 and s["calls_without_usage"] == 1
    assert s["prompt_tokens"] == openai_server.counts["prompt_tokens"]
    assert isinstance(good, GraderScore)


def test_a_refusal_is_an_error_whose_tokens_count(openai_server: OpenAIServer):
    refusal = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "judge",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "I cannot."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33},
    }
    openai_server.script(Action.raw(json.dumps(refusal)))
    model = local_model(openai_server, KEY)
    results = runner_for(RelevanceGrader(model=model), concurrency=1).run(rows(1))
    error = results["relevance"][0]
    assert isinstance(error, GraderError) and "refusal" in error.error
    usage = error.metadata[USAGE_KEY]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["reported"]) == (30, 3, True)


def test_a_budget_stops_new_calls_and_a_larger_one_resumes_from_the_cache(openai_server):
    cache = ResultCache(None)
    model = local_model(openai_server, KEY)
    budget = UsageBudget(max_tokens=1)
    grader = RelevanceGrader(model=model, cache=cache, budget=budget)
    first = runner_for(grader, concurrency=1).run(rows(5))
    assert openai_server.n_requests == 1  # the first call starts, then the budget is spent
    per_call = openai_server.counts["prompt_tokens"] + openai_server.counts["completion_tokens"]
    assert budget.used_tokens == per_call
    assert isinstance(first["relevance"][0], GraderScore)
    for error in first["relevance"][1:]:
        assert isinstance(error, GraderError)
        assert error.error.startswith(f"budget exhausted: max_tokens=1 used {per_call}")
        assert error.metadata["budget_exhausted"] is True
        assert error.metadata[USAGE_KEY]["calls"] == 0
    s = first.usage_summary()["relevance"]
    assert s["calls"] == 1 and s["errors"] == 4 and s["budget_refused"] == 4
    assert len(cache) == 1  # errors are never cached

    grader.set_budget(UsageBudget(max_tokens=3 * per_call))
    second = runner_for(grader, concurrency=1).run(rows(5))
    # row 0 from the cache; rows 1-3 called (each call's tokens are the same); row 4 refused
    assert openai_server.n_requests == 1 + 3
    assert [r.ok for r in second["relevance"]] == [True, True, True, True, False]
    grader.set_budget(None)
    third = runner_for(grader, concurrency=1).run(rows(5))
    assert openai_server.n_requests == 5  # no paid call made twice across the three runs
    assert all(r.ok for r in third["relevance"])


def test_tokens_per_minute_is_shared_by_the_graders_of_one_model(openai_server):
    probe = runner_for(RelevanceGrader(model=local_model(openai_server, KEY))).run(rows(1))
    per_call = probe["relevance"][0].metadata[USAGE_KEY]
    tokens = per_call["prompt_tokens"] + per_call["completion_tokens"]
    # 10 calls' worth of tokens per second: 8 calls need at least ~0.6 s after the first
    model = local_model(openai_server, KEY, tokens_per_minute=tokens * 600)
    graders = (RelevanceGrader(model=model), RelevanceGrader(model=model, name="again"))
    start = time.perf_counter()
    results = runner_for(*graders, concurrency=2).run(rows(4))
    elapsed = time.perf_counter() - start
    assert all(r.ok for col in results.values() for r in col)
    # one pacer for both graders: each alone would need only ~0.3 s for its 4 calls
    assert elapsed >= 0.5, f"8 calls at 10 calls' tokens per second took only {elapsed:.2f} s"


def test_a_spec_gives_its_judges_one_model_and_so_one_set_of_limits(openai_server):
    spec = RewardSpec.from_dict(
        {
            "judge_model": {
                "model": "judge",
                "base_url": openai_server.url,
                "tokens_per_minute": 90_000,
                "requests_per_minute": 600,
            },
            "cache": False,
            "graders": {"a": {"type": "relevance"}, "b": {"type": "harmfulness"}},
        }
    )
    a, b = (spec.graders[n].grader.model for n in ("a", "b"))
    assert a is b and a.tokens_per_minute == 90_000 and a.requests_per_minute == 600
