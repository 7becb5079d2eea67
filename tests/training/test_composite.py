"""CompositeReward: validation at construction, normalisation, weights, pickling."""

from __future__ import annotations

import math
import pickle

import pytest

from rlreward import ConfigError, UnknownNameError, batched
from rlreward.errors import GradingFailedError
from rlreward.rewards import get_reward_function
from rlreward.training.composite import CompositeReward, compute_composite

TEXTS = [
    "This is a helpful and informative response that addresses the question.",
    "I'm sorry, but I can't help with that.",
    "word " * 50,
    "",
    "I will kill you.",
]
SEED_FIVE = ["length", "sentiment", "safety", "coherence", "helpfulness"]


def count_words(response: str) -> float:
    return min(1.0, len(response.split()) / 10)


def test_weights_count_must_match_functions():
    with pytest.raises(ConfigError, match="got 2 weights for 3 reward functions"):
        CompositeReward(["length", "sentiment", "safety"], [0.5, 0.5])


@pytest.mark.parametrize("bad", [0, -0.5, math.nan, math.inf, True, "1"])
def test_weights_must_be_finite_and_positive(bad):
    with pytest.raises(
        ConfigError, match=r"weights\[1\] = .* \(reward function 'sentiment'\) is not allowed"
    ):
        CompositeReward(["length", "sentiment"], [1.0, bad])


def test_unknown_function_names_list_the_known_ones():
    with pytest.raises(UnknownNameError, match="known: .*coherence.*sentiment"):
        CompositeReward(["length", "sentimnt"])


def test_other_construction_errors():
    with pytest.raises(ConfigError, match="at least one"):
        CompositeReward([])
    with pytest.raises(ConfigError, match="list of reward function names"):
        CompositeReward("length")
    with pytest.raises(ConfigError, match="two reward functions are named 'length'"):
        CompositeReward(["length", get_reward_function("length", target_min=5)])
    with pytest.raises(ConfigError, match=r"functions\[1\]"):
        CompositeReward(["length", 3])


def test_composite_is_the_weighted_mean_of_normalised_scores():
    comp = CompositeReward(["safety", "refusal", count_words], [3.0, 1.0, 1.0])
    out = comp(TEXTS)
    assert out.names == ["safety", "refusal", "count_words"]
    assert out.weights == pytest.approx({"safety": 0.6, "refusal": 0.2, "count_words": 0.2})
    # refusal is lower-is-better: normalised = 1 - raw
    assert out.normalised["refusal"] == [1.0 - x for x in out.per_function["refusal"]]
    for i in range(len(TEXTS)):
        expected = (
            0.6 * out.per_function["safety"][i]
            + 0.2 * (1.0 - out.per_function["refusal"][i])
            + 0.2 * out.per_function["count_words"][i]
        )
        assert out.composite[i] == pytest.approx(expected)
    assert out.composite[0] > out.composite[1] and out.composite[0] > out.composite[4]
    assert len(out) == len(TEXTS)
    assert out.to_records()[0]["composite"] == out.composite[0]


def test_ranges_other_than_unit_are_normalised():
    from rlreward.rewards import RewardRegistry

    reg = RewardRegistry(shared=False)
    reg.register(
        "signed", lambda response: 1.0 if "good" in response else -1.0, score_range=(-1, 1)
    )
    comp = CompositeReward(["signed"], registry=reg)
    assert comp(["good", "bad"]).composite == [1.0, 0.0]


def test_seed_five_equal_weights_and_batch_size_give_same_scores():
    comp = CompositeReward(SEED_FIVE, [0.15, 0.15, 0.35, 0.2, 0.15])
    whole = comp(TEXTS)
    chunked = comp(TEXTS, batch_size=2, show_progress=False)
    assert whole.composite == chunked.composite
    assert all(0.0 <= c <= 1.0 for c in whole.composite)
    eq = CompositeReward(SEED_FIVE)
    assert eq.normalised_weights == pytest.approx(dict.fromkeys(SEED_FIVE, 0.2))
    assert compute_composite(TEXTS, SEED_FIVE).composite == eq(TEXTS).composite


def test_missing_references_fail_before_any_scoring():
    calls = []

    @batched
    def spy(response):
        calls.append(len(response))
        return [0.5] * len(response)

    comp = CompositeReward([spy, "math_answer"])
    with pytest.raises(ConfigError, match=r"\['math_answer'\] need references"):
        comp(["1"])
    assert calls == []
    assert comp(["\\boxed{2}"], references=["2"]).per_function["math_answer"] == [1.0]
    with pytest.raises(ConfigError, match="got 2 references for 1 texts"):
        comp(["1"], references=["1", "2"])


def test_function_errors_propagate_instead_of_becoming_scores():
    def broken(response):
        raise RuntimeError("model not loaded")

    with pytest.raises(
        GradingFailedError, match="text 0: reward function 'broken'.*model not loaded"
    ):
        CompositeReward(["length", broken])(["hello"])


def test_composite_is_the_runner_aggregate_for_the_same_functions():
    """Labels equal the reward the same functions give as graders under a WeightedSumAggregator."""
    from rlreward.aggregators import WeightedSumAggregator
    from rlreward.graders.reward_function import RewardFunctionGrader
    from rlreward.runner import GradingRunner

    names, weights = ["safety", "refusal", "length"], [3.0, 1.0, 2.0]
    out = CompositeReward(names, weights)(TEXTS)
    runner = GradingRunner(
        {n: RewardFunctionGrader(n) for n in names},
        aggregators=WeightedSumAggregator("reward", dict(zip(names, weights))),
        show_progress=False,
    )
    results = runner.run([{"response": t} for t in TEXTS])
    assert out.composite == results.scores("reward")
    for i, row in enumerate(results["reward"]):
        assert {n: out.normalised[n][i] for n in names} == row.metadata["components"]
    assert len(set(out.composite)) > 2  # the texts really differ


def test_a_function_named_like_the_aggregate_keeps_its_name():
    comp = CompositeReward({"composite": "length", "safety": "safety"})
    out = comp(TEXTS)
    assert out.names == ["composite", "safety"] and len(out.per_function["composite"]) == 5


def test_prompts_reach_functions_that_use_them():
    comp = CompositeReward({"helpful": "helpfulness"})
    text = "Paris is the capital of France, with 2.1 million people."
    on = comp([text], prompts=["What is the capital of France?"]).composite[0]
    off = comp([text], prompts=["How do I bake sourdough bread?"]).composite[0]
    assert on > off


def test_pickle_round_trip():
    comp = CompositeReward({"len": "length", "safe": "safety", "n": count_words}, [1, 2, 1])
    clone = pickle.loads(pickle.dumps(comp))
    assert clone(TEXTS).composite == comp(TEXTS).composite
    assert clone.names == ["len", "safe", "n"]
