"""The Reward value: one definition, itself a grader; abstentions, monitors, nesting, pickling."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import pickle

import pytest

from rlreward import FunctionGrader, GraderConfig, RewardFunctionGrader, WeightedSumAggregator
from rlreward.errors import ConfigError
from rlreward.integrations.spec import load_reward, load_spec
from rlreward.reward import Reward
from rlreward.schema import GraderAbstention, GraderError, GraderScore

SPEC = {
    "graders": {
        "length": {
            "type": "reward_function",
            "function": "length",
            "params": {"target_min": 2, "target_max": 8},
        },
        "correct": {
            "type": "reward_function",
            "function": "math_answer",
            "mapper": {"reference_response": "ground_truth"},
        },
    },
    "monitors": {"repetition": {"type": "reward_function", "function": "repetition"}},
    "aggregators": [
        {
            "type": "weighted_sum",
            "name": "reward",
            "weights": {"length": 1, "correct": 3},
            "on_error": "zero",
        },
        {"type": "weighted_sum", "name": "length_only", "weights": {"length": 1}},
    ],
}
ROWS = [
    {"response": "6 x 7 = 42, so 42.", "ground_truth": "42"},
    {"response": "It is 21. It is 21. It is 21. It is 21.", "ground_truth": "19"},
    {"response": "No reference for this one at all."},
]


def half(response: str) -> float:
    return 0.5


def boom(response: str) -> float:
    raise RuntimeError("judge down")


def test_reward_value_equals_its_aggregator_per_row():
    reward = load_spec(SPEC).reward
    results = reward.grade(ROWS)
    agg = reward.weighted_sum()
    for i, r in enumerate(results["reward"]):
        single = asyncio.run(reward.aevaluate(**ROWS[i]))
        assert type(single) is type(r)
        if isinstance(r, GraderScore):
            assert single.score == r.score
            parts = {n: agg.aligned(n, results[n][i]) for n in ("length", "correct")}
            used = {n: v for n, v in parts.items() if v is not None}
            w = {n: agg.grader_weights[n] for n in used}
            assert r.score == pytest.approx(sum(w[n] * used[n] for n in used) / sum(w.values()))
    assert reward.values(results) == [
        r.score if isinstance(r, GraderScore) else None for r in results["reward"]
    ]


def test_abstention_is_neither_failure_nor_zero():
    reward = load_spec(SPEC).reward
    results = reward.grade(ROWS)
    third = results["correct"][2]
    assert isinstance(third, GraderAbstention)
    assert "ground_truth" in third.reason or "reference_response" in third.reason
    r = results["reward"][2]
    assert isinstance(r, GraderScore)  # on_error: zero does not turn an abstention into 0
    assert r.score == pytest.approx(results["length"][2].score)
    assert r.metadata["abstained"] == ["correct"]
    summary = results.summary()["correct"]
    assert summary["abstained"] == 1 and summary["errors"] == 0


def test_every_weighted_grader_abstaining_makes_the_row_not_applicable():
    reward = Reward(
        {
            "correct": GraderConfig(
                RewardFunctionGrader("math_answer"), mapper={"reference_response": "ground_truth"}
            )
        }
    )
    res = asyncio.run(reward.aevaluate(response="42"))
    assert isinstance(res, GraderAbstention)


def test_monitors_are_reported_and_never_weighed():
    reward = load_spec(SPEC).reward
    results = reward.grade(ROWS)
    assert "repetition" in results and "repetition" in reward.monitors
    assert "repetition" not in reward.weighted_sum().grader_weights
    row = asyncio.run(reward.aevaluate(**ROWS[1]))
    assert "repetition" in row.metadata["monitors"]
    assert "repetition" not in row.metadata["components"]
    # the same spec without the monitor gives the same reward
    plain = load_spec({k: v for k, v in SPEC.items() if k != "monitors"}).reward
    assert plain.values(plain.grade(ROWS)) == reward.values(results)


def test_second_aggregator_is_reported_beside_the_reward():
    reward = load_spec(SPEC).reward
    row = asyncio.run(reward.aevaluate(**ROWS[0]))
    assert set(row.metadata["aggregates"]) == {"length_only"}
    other = load_spec({**SPEC, "reward": "length_only"}).reward
    assert other.name == "length_only"
    with pytest.raises(ConfigError, match="reward"):
        load_spec({**SPEC, "reward": "nope"})


def test_callable_aggregator_is_the_reward():
    def lowest(results):
        return min(r.score for r in results.values() if isinstance(r, GraderScore))

    reward = Reward(
        {"a": FunctionGrader(half, name="a"), "b": FunctionGrader(lambda response: 0.25, name="b")},
        lowest,
    )
    assert reward.name == "lowest"
    assert reward.values(reward.grade([{"response": "x"}])) == [0.25]
    with pytest.raises(ConfigError, match="WeightedSumAggregator"):
        reward.weighted_sum()


def test_default_aggregation_is_equal_weights_and_failures_are_errors():
    reward = Reward({"a": FunctionGrader(half, name="a"), "b": FunctionGrader(boom, name="b")})
    r = asyncio.run(reward.aevaluate(response="x"))
    assert isinstance(r, GraderError) and "judge down" in r.error
    assert reward.weighted_sum().grader_weights == {"a": 0.5, "b": 0.5}


def test_nested_reward_keeps_its_own_aggregation():
    inner = load_spec(SPEC).reward
    outer = Reward(
        {"spec": inner, "half": FunctionGrader(half, name="half")},
        WeightedSumAggregator("total", weights={"spec": 3, "half": 1}),
    )
    results = outer.grade(ROWS)
    inner_values = inner.values(inner.grade(ROWS))
    for i, r in enumerate(results["total"]):
        assert r.score == pytest.approx(0.75 * inner_values[i] + 0.25 * 0.5)
    assert outer.score_range == (0.0, 1.0)


def test_reward_pickles_and_gives_the_same_values():
    reward = load_spec(SPEC).reward
    copy = pickle.loads(pickle.dumps(reward))
    assert copy.values(copy.grade(ROWS)) == reward.values(reward.grade(ROWS))


def _grade_in_child(blob: bytes, queue) -> None:
    reward = pickle.loads(blob)
    queue.put(reward.values(reward.grade(ROWS)))


def test_pickled_reward_in_a_spawned_process():
    reward = load_reward(SPEC)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_grade_in_child, args=(pickle.dumps(reward), queue))
    proc.start()
    got = queue.get(timeout=120)
    proc.join(60)
    assert got == reward.values(reward.grade(ROWS))


def test_monitor_name_clash_is_refused():
    with pytest.raises(ConfigError, match="monitor"):
        Reward({"a": FunctionGrader(half, name="a")}, monitors={"a": FunctionGrader(half)})
