import math

import pytest

from rlreward import FunctionGrader, GraderConfig, GradingRunner, WeightedSumAggregator
from rlreward.errors import ConfigError
from rlreward.schema import GraderError, GraderScore


def graders():
    return {
        "harmfulness": FunctionGrader(
            lambda response: 0.1, name="harmfulness", higher_is_better=False
        ),
        "relevance": FunctionGrader(lambda response: 0.8, name="relevance"),
        "stars": FunctionGrader(lambda response: 4.0, name="stars", score_range=(1, 5)),
    }


def run(aggs, gs=None, rows=None):
    runner = GradingRunner(gs or graders(), aggregators=aggs, show_progress=False)
    return runner.run(rows or [{"response": "x"}])


def test_lower_is_better_is_inverted_and_ranges_normalised():
    agg = WeightedSumAggregator(
        name="reward", weights={"harmfulness": 0.4, "relevance": 0.3, "stars": 0.3}
    )
    r = run(agg)["reward"][0]
    # harmfulness 0.1 -> 0.9 ; stars 4 on [1,5] -> 0.75
    assert r.score == pytest.approx(0.4 * 0.9 + 0.3 * 0.8 + 0.3 * 0.75)
    assert r.metadata["components"] == pytest.approx(
        {"harmfulness": 0.9, "relevance": 0.8, "stars": 0.75}
    )


def test_harm_lowers_the_reward():
    def harmful(response):
        return 1.0 if "bomb" in response else 0.0

    gs = {"harmfulness": FunctionGrader(harmful, higher_is_better=False)}
    res = run(WeightedSumAggregator(name="r"), gs, [{"response": "hi"}, {"response": "bomb"}])
    assert res.scores("r") == [1.0, 0.0]


def test_equal_weights_by_default_and_weights_are_normalised():
    res = run(
        [
            WeightedSumAggregator(name="eq"),
            WeightedSumAggregator(name="big", weights={"relevance": 2, "stars": 2}),
        ]
    )
    assert res["eq"][0].score == pytest.approx((0.9 + 0.8 + 0.75) / 3)
    assert res["big"][0].score == pytest.approx((0.8 + 0.75) / 2)
    assert res["big"][0].metadata["used"] == ["relevance", "stars"]


def failing_graders():
    gs = graders()
    gs["relevance"] = FunctionGrader(lambda response: 1 / 0, name="relevance")
    return gs


def test_on_error_error_makes_the_aggregate_an_error():
    r = run(WeightedSumAggregator(name="r"), failing_graders())["r"][0]
    assert isinstance(r, GraderError) and "relevance" in r.error
    assert "ZeroDivisionError" in r.metadata["failed"]["relevance"]


def test_on_error_renormalize_uses_the_remaining_graders():
    agg = WeightedSumAggregator(
        name="r",
        weights={"harmfulness": 0.4, "relevance": 0.3, "stars": 0.3},
        on_error="renormalize",
    )
    r = run(agg, failing_graders())["r"][0]
    assert r.score == pytest.approx((0.4 * 0.9 + 0.3 * 0.75) / 0.7)
    assert r.metadata["used"] == ["harmfulness", "stars"] and "relevance" in r.metadata["failed"]
    assert r.metadata["weights"] == pytest.approx({"harmfulness": 0.4 / 0.7, "stars": 0.3 / 0.7})


def test_on_error_zero_counts_the_failure_as_worst():
    r = run(WeightedSumAggregator(name="r", on_error="zero"), failing_graders())["r"][0]
    assert r.score == pytest.approx((0.9 + 0.0 + 0.75) / 3)


def test_all_failed_is_an_error_even_when_renormalizing():
    gs = {"a": FunctionGrader(lambda response: 1 / 0, name="a")}
    r = run(WeightedSumAggregator(name="r", on_error="renormalize"), gs)["r"][0]
    assert isinstance(r, GraderError) and "every weighted grader failed" in r.error


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({"relevance": 0}, "must be finite and > 0"),
        ({"relevance": -1}, "must be finite and > 0"),
        ({"relevance": math.nan}, "must be finite"),
        ({"relevance": math.inf}, "must be finite"),
        ({"relevance": "1"}, "must be finite"),
        ({}, "non-empty"),
    ],
)
def test_invalid_weights(weights, match):
    with pytest.raises(ConfigError, match=match):
        WeightedSumAggregator(name="r", weights=weights)


def test_weights_naming_unknown_graders_fail_at_runner_construction():
    with pytest.raises(ConfigError, match=r"unknown graders \['relevnce'\]"):
        GradingRunner(
            graders(), aggregators=WeightedSumAggregator(name="r", weights={"relevnce": 1.0})
        )


def test_bad_on_error_policy():
    with pytest.raises(ConfigError, match="renormalize"):
        WeightedSumAggregator(name="r", on_error="ignore")


def test_unbound_aggregator_says_how_to_bind():
    with pytest.raises(ConfigError, match="not bound"):
        WeightedSumAggregator(name="r")({"a": GraderScore("a", 1.0)})


def test_one_aggregator_object_serves_two_runners():
    agg = WeightedSumAggregator(name="r")
    a = GradingRunner({"x": lambda response: 1.0}, aggregators=agg, show_progress=False).run(
        [{"response": ""}]
    )
    b = GradingRunner({"y": lambda response: 0.0}, aggregators=agg, show_progress=False).run(
        [{"response": ""}]
    )
    assert a.scores("r") == [1.0] and b.scores("r") == [0.0]


def test_custom_aggregators_are_keyed_by_name_or_dunder_name():
    def min_aggregator(results):
        scores = [r.score for r in results.values() if hasattr(r, "score")]
        return GraderScore(name="min_reward", score=min(scores), reason=f"min of {len(scores)}")

    class Named:
        name = "mean_reward"

        def __call__(self, results):
            scores = [r.score for r in results.values() if r.ok]
            return sum(scores) / len(scores)

    res = run([min_aggregator, Named()])
    assert res["min_aggregator"][0].score == pytest.approx(0.1)
    assert res["mean_reward"][0].score == pytest.approx((0.1 + 0.8 + 4.0) / 3)


def test_a_raising_custom_aggregator_fails_its_rows_only():
    def picky(results):
        raise ValueError("no")

    res = run([picky, WeightedSumAggregator(name="r")])
    assert isinstance(res["picky"][0], GraderError) and "ValueError" in res["picky"][0].error
    assert res["r"][0].ok


def test_aggregator_and_grader_names_must_not_clash():
    with pytest.raises(ConfigError, match="clash"):
        GradingRunner(graders(), aggregators=WeightedSumAggregator(name="relevance"))


def test_seed_workflow_rewards_safety_not_harm():
    """The seed's weights {'harmfulness': 0.4, ...} with function graders standing in for judges."""

    def harmfulness(query, response):
        return 1.0 if "poison" in response else 0.0

    def relevance(query, response):
        return 1.0 if query.split()[-1].strip("?").lower() in response.lower() else 0.2

    def correctness(query, response, reference_response):
        return 1.0 if reference_response.lower() in response.lower() else 0.0

    configs = {
        "harmfulness": GraderConfig(FunctionGrader(harmfulness, higher_is_better=False)),
        "relevance": GraderConfig(relevance),
        "correctness": GraderConfig(correctness, mapper={"reference_response": "ground_truth"}),
    }
    agg = WeightedSumAggregator(
        name="reward", weights={"harmfulness": 0.4, "relevance": 0.3, "correctness": 0.3}
    )
    rows = [
        {
            "query": "What is the capital of France?",
            "response": "Paris is the capital of France.",
            "ground_truth": "Paris",
        },
        {
            "query": "What is the capital of France?",
            "response": "Drink poison, France.",
            "ground_truth": "Paris",
        },
    ]
    res = GradingRunner(configs, aggregators=agg, show_progress=False).run(rows)
    good, bad = res.scores("reward")
    assert good == pytest.approx(1.0) and bad < good


def test_zero_publishes_the_failed_grader_as_worst_in_components():
    r = run(WeightedSumAggregator(name="r", on_error="zero"), failing_graders())["r"][0]
    assert r.metadata["components"] == pytest.approx(
        {"harmfulness": 0.9, "relevance": 0.0, "stars": 0.75}
    )
    assert r.metadata["failed"].keys() == {"relevance"}


def test_bound_aggregator_publishes_weights_ranges_and_aligned_values():
    agg = WeightedSumAggregator(name="r", weights={"harmfulness": 3, "stars": 1})
    with pytest.raises(ConfigError, match="not bound"):
        agg.grader_weights  # noqa: B018
    bound = agg.bind(graders())
    assert bound.is_bound and not agg.is_bound
    assert dict(bound.grader_weights) == {"harmfulness": 0.75, "stars": 0.25}
    assert dict(bound.score_ranges) == {
        "harmfulness": (0.0, 1.0),
        "relevance": (0.0, 1.0),
        "stars": (1.0, 5.0),
    }
    with pytest.raises(TypeError):
        bound.grader_weights["stars"] = 1.0  # type: ignore[index]
    assert bound.aligned("harmfulness", GraderScore("harmfulness", 0.25)) == 0.75
    assert bound.aligned("relevance", GraderScore("relevance", 0.5)) == 0.5  # unweighted too
    assert bound.aligned("stars", GraderError("stars", "boom")) is None
    with pytest.raises(ConfigError, match="no grader 'star'; graders are"):
        bound.aligned("star", GraderScore("star", 1.0))
    # the published components are exactly the aligned values
    r = run(agg)["r"][0]
    assert r.metadata["components"] == {
        "harmfulness": bound.aligned("harmfulness", GraderScore("harmfulness", 0.1)),
        "stars": bound.aligned("stars", GraderScore("stars", 4.0)),
    }


def unbounded_graders():
    """The issue's case: a raw reward model (no score_range) scoring -2.49, and a judge."""

    def rm(response):
        if response == "fail":
            raise RuntimeError("model crashed")
        return -2.49

    return {
        "rm": FunctionGrader(rm, name="rm", score_range=None),
        "judge": FunctionGrader(lambda response: 0.5, name="judge"),
    }


def test_zero_refuses_unbounded_graders_at_bind_time():
    with pytest.raises(ConfigError, match=r"\['rm'\] have no score_range") as exc:
        GradingRunner(unbounded_graders(), aggregators=WeightedSumAggregator("r", on_error="zero"))
    assert "bounds=" in str(exc.value) and "on_error='renormalize'" in str(exc.value)
    # an unbounded grader the sum does not weigh is fine
    agg = WeightedSumAggregator("r", weights={"judge": 1}, on_error="zero")
    assert GradingRunner(unbounded_graders(), aggregators=agg).aggregators["r"].is_bound


def test_zero_with_explicit_bounds_makes_a_failure_the_worst_score():
    agg = WeightedSumAggregator("r", on_error="zero", bounds={"rm": (-5, 5)})
    res = run(agg, unbounded_graders(), [{"response": "ok"}, {"response": "fail"}])
    good, failed = res.scores("r")
    assert good == pytest.approx((0.251 + 0.5) / 2)  # -2.49 on [-5, 5] -> 0.251
    assert failed == pytest.approx((0.0 + 0.5) / 2) and failed < good
    bound = GradingRunner(unbounded_graders(), aggregators=agg).aggregators["r"]
    assert bound.score_ranges["rm"] == (-5.0, 5.0)
    # scores outside explicit bounds are clipped to them: still in [0, 1]
    assert bound.aligned("rm", GraderScore("rm", -40.0)) == 0.0
    assert bound.aligned("rm", GraderScore("rm", 40.0)) == 1.0


def test_bounds_come_from_a_spec_and_are_checked():
    from rlreward.integrations.spec import RewardSpec

    h = "tests.integrations.adapter_helpers"
    spec = {
        "graders": {"rm": {"callable": f"{h}:brevity", "score_range": None}},
        "aggregators": [{"name": "r", "on_error": "zero", "bounds": {"rm": [0, 2]}}],
    }
    runner = RewardSpec.from_dict(spec).build_runner()
    assert runner.run([{"response": ""}]).scores("r") == [0.5]  # brevity 1.0 on [0, 2]
    with pytest.raises(ConfigError, match=r"bounds name unknown graders \['nope'\]"):
        GradingRunner(graders(), aggregators=WeightedSumAggregator("r", bounds={"nope": (0, 1)}))
    for bad in ({"rm": (1, 1)}, {"rm": (0, math.inf)}, {"rm": [0]}, {"rm": ("0", 1)}, {}):
        with pytest.raises(ConfigError, match="bounds"):
            WeightedSumAggregator("r", bounds=bad)


# -- gates: constraints the weighted sum cannot trade away -------------------------------
def _gated(gates, on_topic=0.2, on_error="error"):
    gs = {
        "quality": FunctionGrader(lambda response: 0.9, name="quality"),
        "style": FunctionGrader(lambda response: 0.7, name="style"),
        "on_topic": FunctionGrader(lambda response: on_topic, name="on_topic"),
    }
    agg = WeightedSumAggregator(
        "reward", {"quality": 1, "style": 1}, on_error=on_error, gates=gates
    )
    return run(agg, gs)["reward"][0]


def test_gate_cap_multiply_floor():
    mean = (0.9 + 0.7) / 2
    capped = _gated({"on_topic": "cap"})
    assert capped.score == pytest.approx(0.2)
    assert capped.metadata["ungated"] == pytest.approx(mean)
    assert capped.metadata["gates"]["on_topic"] == {"mode": "cap", "value": 0.2, "applied": True}
    assert "on_topic" not in capped.metadata["components"]  # a gate is not a weight
    assert _gated({"on_topic": "multiply"}).score == pytest.approx(mean * 0.2)
    assert _gated({"on_topic": {"mode": "floor", "floor": 0.5}}).score == 0.0
    assert _gated({"on_topic": {"mode": "floor", "floor": 0.1}}).score == pytest.approx(mean)
    # a gate that holds changes nothing
    assert _gated({"on_topic": "cap"}, on_topic=1.0).score == pytest.approx(mean)


def test_gate_cannot_be_traded_away_unlike_a_weight():
    gs = {
        "quality": FunctionGrader(lambda response: 1.0, name="quality"),
        "on_topic": FunctionGrader(lambda response: 0.0, name="on_topic"),
    }
    weighted = run(WeightedSumAggregator("r", {"quality": 0.8, "on_topic": 0.2}), gs)["r"][0]
    gated = run(WeightedSumAggregator("r", {"quality": 1}, gates={"on_topic": "cap"}), gs)["r"][0]
    assert weighted.score == pytest.approx(0.8) and gated.score == 0.0


def test_failed_gate_is_an_error_unless_zero():
    gs = {
        "quality": FunctionGrader(lambda response: 0.9, name="quality"),
        "on_topic": FunctionGrader(lambda response: 1 / 0, name="on_topic"),
    }
    err = run(WeightedSumAggregator("r", {"quality": 1}, gates={"on_topic": "cap"}), gs)["r"][0]
    assert isinstance(err, GraderError) and "gate 'on_topic' failed" in err.error
    zero = run(
        WeightedSumAggregator("r", {"quality": 1}, on_error="zero", gates={"on_topic": "cap"}), gs
    )["r"][0]
    assert zero.score == 0.0


def test_gate_validation_names_the_fix():
    with pytest.raises(ConfigError, match="floor"):
        WeightedSumAggregator("r", gates={"g": {"mode": "floor"}})
    with pytest.raises(ConfigError, match="cap, multiply, floor"):
        WeightedSumAggregator("r", gates={"g": "clip"})
    with pytest.raises(ConfigError, match="unknown graders"):
        run(WeightedSumAggregator("r", gates={"nope": "cap"}))
    unbounded = {
        "q": FunctionGrader(lambda response: 3.0, name="q", score_range=None),
        "g": FunctionGrader(lambda response: 0.5, name="g"),
    }
    with pytest.raises(ConfigError, match="bounded"):
        run(WeightedSumAggregator("r", {"q": 1}, gates={"g": "cap"}), unbounded)


def test_gates_in_a_spec():
    from rlreward.integrations.spec import load_spec

    spec = {
        "graders": {
            "length": {
                "type": "reward_function",
                "function": "length",
                "params": {"target_min": 1, "target_max": 50},
            },
            "on_topic": {"type": "function", "callable": "tests.test_aggregators:quarter"},
        },
        "aggregators": [
            {"type": "weighted_sum", "name": "reward", "gates": {"on_topic": {"mode": "cap"}}}
        ],
    }
    reward = load_spec(spec).reward
    assert reward.weighted_sum().grader_weights == {"length": 1.0}
    assert reward.values(reward.grade([{"response": "a fine answer"}])) == [0.25]


def quarter(response: str) -> float:
    return 0.25
