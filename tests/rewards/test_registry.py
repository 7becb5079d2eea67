"""RewardRegistry: exact names, listed errors, parameters, user registration, isolation."""

from __future__ import annotations

import pickle

import pytest

from rlreward import ConfigError, UnknownNameError, batched
from rlreward.rewards import (
    CallableReward,
    RewardFunction,
    RewardRegistry,
    get_reward_function,
    list_reward_functions,
    register_reward_function,
)


def shouty(response: str) -> float:
    """A per-row user function (module level, so it pickles)."""
    return 1.0 if response.isupper() else 0.0


@batched
def batch_len(response: list[str]) -> list[float]:
    return [min(1.0, len(t) / 10) for t in response]


def test_unknown_name_lists_known_names_and_does_not_guess():
    reg = RewardRegistry(shared=False)
    with pytest.raises(UnknownNameError) as info:
        reg.get_reward_function("sentimnt")
    msg = str(info.value)
    assert "unknown reward function 'sentimnt'" in msg
    for name in ("coherence", "helpfulness", "length", "safety", "sentiment"):
        assert name in msg
    with pytest.raises(UnknownNameError):
        reg.get_reward_function("sent")  # a prefix is not a name
    with pytest.raises(UnknownNameError):
        reg.get_reward_function("Length")  # nor is another case


def test_parameters_are_validated_with_the_allowed_values():
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['target'\].*target_min"):
        get_reward_function("length", target=3)
    with pytest.raises(ConfigError, match=r"target_min=-3 is not allowed; use an integer >= 0"):
        get_reward_function("length", target_min=-3)
    with pytest.raises(ConfigError, match=r"target_max=5 is below target_min=10"):
        get_reward_function("length", target_min=10, target_max=5)
    with pytest.raises(ConfigError, match="style='xml' is not allowed; choose one of"):
        get_reward_function("format", style="xml")
    with pytest.raises(ConfigError, match="variant='rougeX'"):
        get_reward_function("rouge", variant="rougeX")
    with pytest.raises(ConfigError, match="needs pattern"):
        get_reward_function("format", style="regex")
    fn = get_reward_function("length", target_min=1, target_max=3)
    assert fn.score("one two") == 1.0 and fn.target_max == 3
    assert get_reward_function("length").target_max == 200  # a fresh instance each time


def test_register_per_row_and_declared_batched_functions():
    reg = RewardRegistry(shared=False)
    reg.register("shouty", shouty)
    reg.register("batch_len", batch_len)
    s = reg.get_reward_function("shouty")
    b = reg.get_reward_function("batch_len")
    assert isinstance(s, CallableReward) and s.batched is False
    assert b.batched is True
    assert s(["HEY", "hey"]) == [1.0, 0.0]
    assert b(["12345", "1234567890abc"]) == [0.5, 1.0]
    assert pickle.loads(pickle.dumps(s))(["HEY"]) == [1.0]
    # declared where it is registered instead of by the decorator
    reg.register("declared", lambda response: [0.25] * len(response), batched=True)
    assert reg.get_reward_function("declared")(["a", "b"]) == [0.25, 0.25]


def test_register_decorator_overwrite_and_duplicate_error():
    reg = RewardRegistry(shared=False)

    @reg.register("polite", score_range=(-1.0, 1.0))
    def polite(response: str) -> float:
        return 1.0 if "please" in response.lower() else -1.0

    assert polite("please") == 1.0  # the decorator returns the function unchanged
    fn = reg.get_reward_function("polite")
    assert fn.score_range == (-1.0, 1.0) and fn(["Please", "no"]) == [1.0, -1.0]
    with pytest.raises(ConfigError, match="'polite' is already registered; pass overwrite=True"):
        reg.register("polite", shouty)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("length", shouty)  # built-ins are protected the same way
    reg.register("polite", shouty, overwrite=True)
    assert reg.get_reward_function("polite")(["HI"]) == [1.0]
    with pytest.raises(ConfigError, match="non-empty string"):
        reg.register(" ", shouty)
    with pytest.raises(
        ConfigError, match="expected a RewardFunction class or instance or a callable"
    ):
        reg.register("bad", 42)


def test_register_reward_function_classes_and_instances():
    from dataclasses import dataclass

    reg = RewardRegistry(shared=False)

    @dataclass
    class Exclaim(RewardFunction):
        name = "exclaim"
        bonus: float = 1.0

        def _score_one(self, text, prompt, reference):
            return self.bonus if text.endswith("!") else 0.0

    reg.register("exclaim", Exclaim)
    assert reg.get_reward_function("exclaim", bonus=0.5)(["hi!"]) == [0.5]
    with pytest.raises(ConfigError, match="no parameter"):
        reg.get_reward_function("exclaim", nope=1)
    reg.register("exclaim_ready", Exclaim(bonus=0.25))
    assert reg.get_reward_function("exclaim_ready")(["yo!"]) == [0.25]
    with pytest.raises(ConfigError, match="takes no parameters"):
        reg.get_reward_function("exclaim_ready", bonus=1.0)


def test_user_function_output_is_checked():
    reg = RewardRegistry(shared=False)
    reg.register("short", lambda response: [0.5], batched=True)
    reg.register("too_high", lambda response: 2.0)
    reg.register("nan", lambda response: float("nan"))
    with pytest.raises(ValueError, match="returned 1 scores for 2 texts"):
        reg.get_reward_function("short")(["a", "b"])
    with pytest.raises(ValueError, match=r"outside its declared range \[0.0, 1.0\]"):
        reg.get_reward_function("too_high")(["a"])
    with pytest.raises(ValueError, match="not finite"):
        reg.get_reward_function("nan")(["a"])


def test_callable_params_and_prompt_reference_passing():
    def overlap(response, reference_response=None, scale=1.0):
        return scale * float(reference_response is not None and reference_response in response)

    reg = RewardRegistry(shared=False)
    reg.register("overlap", overlap, needs_reference=True)
    fn = reg.get_reward_function("overlap", scale=0.5)
    assert fn(["abc", "xyz"], references=["b", "b"]) == [0.5, 0.0]
    with pytest.raises(ConfigError, match="needs references"):
        fn(["abc"])
    with pytest.raises(ConfigError, match=r"unknown parameters \['nope'\]"):
        reg.get_reward_function("overlap", nope=1)


def test_shared_registrations_are_process_wide_and_private_ones_are_not():
    private = RewardRegistry(shared=False)
    private.register("only_here", shouty)
    assert "only_here" not in RewardRegistry()
    register_reward_function("everywhere_test", shouty)
    try:
        assert "everywhere_test" in RewardRegistry().list_reward_functions()
        assert "everywhere_test" in list_reward_functions()
        assert "everywhere_test" not in RewardRegistry(shared=False)
        assert get_reward_function("everywhere_test")(["A"]) == [1.0]
    finally:
        RewardRegistry().unregister("everywhere_test")
    assert "everywhere_test" not in list_reward_functions()
    with pytest.raises(UnknownNameError):
        RewardRegistry().unregister("everywhere_test")
