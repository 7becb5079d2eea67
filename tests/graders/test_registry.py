"""The one registry of grader types: grader classes and rule functions in one table."""

from __future__ import annotations

import asyncio

import pytest

from rlreward import ConfigError, UnknownNameError, load_spec
from rlreward.graders.function import FunctionGrader
from rlreward.graders.registry import (
    GRADER_CLASSES,
    GRADER_TYPES,
    as_grader,
    is_rule_function,
)
from rlreward.graders.reward_function import RewardFunctionGrader
from rlreward.integrations import spec as spec_module
from rlreward.integrations.spec_schema import GRADER_MODELS, RuleFunctionSpec
from rlreward.rewards import (
    RewardRegistry,
    get_reward_function,
    list_reward_functions,
    register_reward_function,
)
from rlreward.rewards.registry import BUILTIN_REWARD_FUNCTIONS


def exclaims(response: str, scale: float = 1.0) -> float:
    """A user's function (module level, so it pickles)."""
    return scale * min(1.0, response.count("!") / 2)


@pytest.fixture
def registered():
    """``exclaims`` registered process-wide as 'exclaims_test' for one test."""
    register_reward_function("exclaims_test", exclaims)
    yield "exclaims_test"
    RewardRegistry().unregister("exclaims_test")


def test_one_table_holds_grader_classes_and_every_rule_function():
    types = set(GRADER_TYPES)
    assert types == set(GRADER_CLASSES) | set(list_reward_functions())
    assert set(BUILTIN_REWARD_FUNCTIONS) <= types and {"relevance", "reward_model"} <= types
    assert len(GRADER_TYPES) == len(types)  # no name is listed twice
    # the spec reads the same table (one object), and its schema has a model per type
    assert spec_module.GRADER_TYPES is GRADER_TYPES
    assert set(GRADER_MODELS) == types
    assert GRADER_MODELS["length"] is RuleFunctionSpec
    assert GRADER_MODELS["relevance"] is not RuleFunctionSpec
    assert is_rule_function("length") and not is_rule_function("relevance")


def test_a_rule_function_by_type_is_the_same_grader_as_the_long_form():
    spec = load_spec(
        {
            "graders": {
                "short": {"type": "length", "params": {"target_min": 1, "target_max": 3}},
                "long": {
                    "type": "reward_function",
                    "function": "length",
                    "params": {"target_min": 1, "target_max": 3},
                },
            }
        }
    )
    short, long = spec.graders["short"].grader, spec.graders["long"].grader
    assert isinstance(short, RewardFunctionGrader)
    assert {**short.describe(), "name": "long"} == long.describe()
    rows = [{"response": "one two"}, {"response": "one two three four five six"}]
    scores = spec.build_runner().run(rows)
    assert scores.scores("short") == scores.scores("long")
    assert scores.scores("short")[0] == 1.0 and scores.scores("short")[1] < 1.0


def test_a_rule_type_names_its_unknown_options_and_parameters_by_path():
    with pytest.raises(ConfigError) as info:
        load_spec({"graders": {"x": {"type": "length", "target_max": 5}}})
    assert "graders.x: unknown options ['target_max']" in str(info.value)
    assert "allowed: mapper, max_batch_size, params, type" in str(info.value)
    with pytest.raises(ConfigError, match=r"graders\.x\.params\.threshold: .*target_min"):
        load_spec({"graders": {"x": {"type": "length", "params": {"threshold": 3}}}})
    with pytest.raises(UnknownNameError, match=r"graders\.x\.type.*'lenth'; known: .*length"):
        load_spec({"graders": {"x": {"type": "lenth"}}})


def test_a_registered_function_is_a_grader_type_and_stays_in_the_seed_api(registered):
    # the seed's view: a batch-first RewardFunction
    fn = RewardRegistry().get_reward_function(registered)
    assert fn(["hi!!", "hi"]) == [1.0, 0.0]
    assert registered in GRADER_TYPES and is_rule_function(registered)
    # a spec type of its own, built as the FunctionGrader a `callable:` builds
    spec = load_spec(
        {
            "graders": {
                registered: {"type": registered},
                "same": {"callable": exclaims},
                "half": {"type": registered, "params": {"scale": 0.5}},
            }
        }
    )
    grader = spec.graders[registered].grader
    assert isinstance(grader, FunctionGrader)
    expected = {**spec.graders["same"].grader.describe(), "name": registered}
    assert grader.describe() == expected
    # a parameter given in the spec is bound, no longer a field
    half = spec.graders["half"].grader
    assert half.optional_fields == () and half.describe()["params"] == {"scale": 0.5}
    results = spec.build_runner().run([{"response": "wow!!"}])
    assert results.scores(registered) == [1.0] and results.scores("half") == [0.5]
    # its parameters are its function's, named by path
    with pytest.raises(ConfigError, match=r"graders\.x\.params\.colour: .*its parameters: scale"):
        load_spec({"graders": {"x": {"type": registered, "params": {"colour": 1}}}})
    RewardRegistry().unregister(registered)
    assert registered not in GRADER_TYPES
    with pytest.raises(UnknownNameError):
        load_spec({"graders": {"x": {"type": registered}}})
    register_reward_function(registered, exclaims)  # for the fixture's cleanup


def test_a_registered_function_may_not_shadow_a_grader_class():
    register_reward_function("relevance", exclaims)
    try:
        with pytest.raises(ConfigError, match="'relevance' names both a built-in grader type"):
            load_spec({"graders": {"r": {"type": "relevance"}}})
        # the long form is unambiguous
        spec = load_spec({"graders": {"r": {"type": "reward_function", "function": "relevance"}}})
        assert isinstance(spec.graders["r"].grader, FunctionGrader)
    finally:
        RewardRegistry().unregister("relevance")
    assert list(GRADER_TYPES).count("relevance") == 1


def test_as_grader_gives_each_kind_of_reward_function_its_grader(registered):
    assert isinstance(as_grader("length"), RewardFunctionGrader)
    assert isinstance(as_grader(get_reward_function("safety")), RewardFunctionGrader)
    # a user's function, directly or through the registry, is a FunctionGrader
    direct, by_name = as_grader(exclaims), as_grader(registered)
    assert isinstance(direct, FunctionGrader) and isinstance(by_name, FunctionGrader)
    assert {**direct.describe(), "name": registered} == by_name.describe()
    assert isinstance(as_grader(get_reward_function(registered)), FunctionGrader)
    grader = FunctionGrader(exclaims)
    assert as_grader(grader) is grader
    with pytest.raises(ConfigError, match="expected a reward function name"):
        as_grader(42)
    result = asyncio.run(as_grader(exclaims, name="e").aevaluate(response="!!"))
    assert result.name == "e" and result.score == 1.0


def test_a_floor_above_adds_its_grader_class_once():
    from rlreward.graders.registry import register_grader_class

    # the spec registers its nested reward type; it is one more type of the same table
    assert GRADER_TYPES["reward"] == "rlreward.reward:Reward" and "reward" in GRADER_MODELS
    register_grader_class("reward", "rlreward.reward:Reward")  # the same again: a no-op
    with pytest.raises(ConfigError, match="'length' is already registered"):
        register_grader_class("length", "my_pkg:Length")
    with pytest.raises(ConfigError, match="'relevance' is already registered"):
        register_grader_class("relevance", "my_pkg:Other")
