"""RewardFunctionGrader: reward functions inside GradingRunner, specs and aggregators."""

from __future__ import annotations

import asyncio
import pickle
import threading

import pytest

from rlreward import (
    ConfigError,
    GraderConfig,
    GradingRunner,
    MissingFieldsError,
    RewardFunctionGrader,
    UnknownNameError,
    WeightedSumAggregator,
    get_reward_function,
    load_spec,
)
from rlreward.rewards import RewardRegistry
from rlreward.schema import GraderError, GraderScore

ROWS = [
    {"query": "What is 1/2 + 1/4?", "response": "It is \\boxed{3/4}.", "ground_truth": "0.75"},
    {
        "query": "What is 2 + 2?",
        "response": "I'm sorry, but I can't help with that.",
        "ground_truth": "4",
    },
    {
        "query": "What is 3 * 3?",
        "response": "<think>3*3</think><answer>9</answer>",
        "ground_truth": "9",
    },
]


def test_fields_follow_what_the_function_needs():
    assert RewardFunctionGrader("length").required_fields == ("response",)
    g = RewardFunctionGrader("helpfulness")
    assert g.required_fields == ("response",) and g.optional_fields == ("query",)
    m = RewardFunctionGrader("math_answer")
    assert m.required_fields == ("response", "reference_response")
    r = RewardFunctionGrader("refusal")
    assert r.higher_is_better is False and r.score_range == (0.0, 1.0)
    s = RewardFunctionGrader("semantic_relevance")
    assert s.required_fields == ("response", "query")
    assert RewardFunctionGrader("length", name="short", target_min=1, target_max=5).name == "short"


def test_bad_construction_is_a_config_error():
    with pytest.raises(UnknownNameError, match="known: .*length"):
        RewardFunctionGrader("lenght")
    with pytest.raises(ConfigError, match="no parameter"):
        RewardFunctionGrader("length", colour="red")
    with pytest.raises(ConfigError, match="only to a function given by name"):
        RewardFunctionGrader(get_reward_function("length"), target_min=3)


def test_in_grading_runner_with_a_mapper_and_aggregator():
    runner = GradingRunner(
        {
            "math": GraderConfig(
                RewardFunctionGrader("math_answer"), mapper={"reference_response": "ground_truth"}
            ),
            "refusal": RewardFunctionGrader("refusal"),
            "helpful": RewardFunctionGrader("helpfulness", name="helpful"),
        },
        aggregators=WeightedSumAggregator("reward", {"math": 2.0, "refusal": 1.0}),
        show_progress=False,
    )
    results = runner.run(ROWS)
    assert results.scores("math") == [1.0, 0.0, 1.0]
    assert results.scores("refusal") == [0.0, 1.0, 0.0]
    # the grader scored exactly what the function scores (with the query as prompt)
    direct = get_reward_function("helpfulness")(
        [r["response"] for r in ROWS], prompts=[r["query"] for r in ROWS]
    )
    assert results.scores("helpful") == direct
    # refusal is lower-is-better: the aggregate turns it around
    assert results.scores("reward") == pytest.approx([1.0, 0.0, 1.0])


def test_missing_reference_is_reported_before_grading():
    runner = GradingRunner([RewardFunctionGrader("exact_match")], show_progress=False)
    with pytest.raises(MissingFieldsError, match="reference_response"):
        runner.run([{"response": "Paris"}])


def test_cheap_functions_run_inline_on_the_event_loop_thread():
    seen: list[int] = []

    def where(response: str) -> float:
        seen.append(threading.get_ident())
        return 0.5

    reg = RewardRegistry(shared=False)
    reg.register("where", where)
    g = RewardFunctionGrader("where", registry=reg)

    async def main():
        await asyncio.gather(*(g.aevaluate(response=str(i)) for i in range(5)))
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert seen == [loop_thread] * 5


def test_function_errors_become_grader_errors():
    def boom(response: str) -> float:
        raise RuntimeError("broken rule")

    g = RewardFunctionGrader(boom)
    r = asyncio.run(g.aevaluate(response="x"))
    assert isinstance(r, GraderError) and "broken rule" in r.error


def test_chat_format_fields_are_accepted():
    g = RewardFunctionGrader("helpfulness")
    msgs = [{"role": "assistant", "content": "Paris is the capital of France."}]
    query = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    r = asyncio.run(g.aevaluate(response=msgs, query=query))
    expected = get_reward_function("helpfulness").score(
        "Paris is the capital of France.", prompt="What is the capital of France?"
    )
    assert isinstance(r, GraderScore) and r.score == expected
    bad = asyncio.run(g.aevaluate(response=42))
    assert (
        isinstance(bad, GraderError)
        and "must be a str, a chat message or a list of chat messages" in bad.error
    )


def test_spec_type_reward_function():
    spec = load_spec(
        {
            "graders": {
                "short": {
                    "type": "reward_function",
                    "function": "length",
                    "params": {"target_min": 1, "target_max": 5},
                },
                "correct": {
                    "type": "reward_function",
                    "function": "math_answer",
                    "mapper": {"reference_response": "ground_truth"},
                },
            },
            "aggregators": [{"type": "weighted_sum", "name": "reward"}],
        }
    )
    results = spec.build_runner().run(ROWS)
    assert results.scores("correct") == [1.0, 0.0, 1.0]
    assert spec.graders["short"].grader.function.target_max == 5
    with pytest.raises(ConfigError, match="unknown options"):
        load_spec(
            {"graders": {"x": {"type": "reward_function", "function": "length", "target_max": 5}}}
        )
    with pytest.raises(ConfigError, match="needs 'function: <name>'"):
        load_spec({"graders": {"x": {"type": "reward_function"}}})
    with pytest.raises(UnknownNameError, match="known:"):
        load_spec({"graders": {"x": {"type": "reward_function", "function": "nope"}}})


def test_grader_pickles():
    g = RewardFunctionGrader("length", target_min=2)
    clone = pickle.loads(pickle.dumps(g))
    r = asyncio.run(clone.aevaluate(response="two words"))
    assert r.score == 1.0 and clone.name == "length"
