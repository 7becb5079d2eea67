"""A user's function given to create_rl_trainer is the grader a spec builds from it.

The one calling convention (docs/grading.md, "Your own function"): the same function,
by ``reward_functions=[fn]`` or by a spec's ``callable:``, becomes the same
FunctionGrader; batched is declared; the old convention is refused before any model
loads. Checked by the reward the trainer builds, without loading a model.
"""

from __future__ import annotations

import pytest

import rlreward
from rlreward import load_spec
from rlreward.errors import ConfigError
from rlreward.graders.function import FunctionGrader
from rlreward.rewards import RewardRegistry, register_reward_function
from rlreward.rl import create_rl_trainer


def on_topic(response: str, query: str = "") -> float:
    words = {w for w in query.lower().split() if len(w) > 3}
    return len(words & set(response.lower().split())) / max(len(words), 1)


@rlreward.batched
def brevity(response: list[str]) -> list[float]:
    return [1.0 if len(r.split()) <= 20 else 0.5 for r in response]


@pytest.mark.parametrize("fn", [on_topic, brevity], ids=["per_row", "batched"])
def test_reward_list_and_spec_callable_build_the_same_grader(fn) -> None:
    name = fn.__name__
    trainer = create_rl_trainer("embedded", algorithm="grpo", reward_functions=["length", fn])
    built = trainer.reward.graders[name].grader
    by_object = load_spec({"graders": {name: {"callable": fn}}}).graders[name].grader
    by_ref = load_spec({"graders": {name: {"callable": f"{__name__}:{name}"}}})
    assert type(built) is type(by_object) is FunctionGrader
    assert built.describe() == by_object.describe() == by_ref.graders[name].grader.describe()
    assert built.batched is (fn is brevity) and built.fn is fn
    # the reward-model labels of the same request are graded by the same grader
    labels = create_rl_trainer(
        "embedded",
        reward_functions=["length", fn],
        train_custom_reward_model=True,
        reward_training_texts=[f"text {i}" for i in range(10)],
    ).label_reward
    assert labels is not None
    assert labels.graders[name].grader.describe() == built.describe()


def test_a_registered_function_by_name_is_the_same_grader_as_the_function() -> None:
    register_reward_function("on_topic_test", on_topic)
    try:
        trainer = create_rl_trainer(
            "embedded", algorithm="grpo", reward_functions=["on_topic_test"]
        )
        by_name = trainer.reward.graders["on_topic_test"].grader
        direct = (
            create_rl_trainer("embedded", algorithm="grpo", reward_functions=[on_topic])
            .reward.graders["on_topic"]
            .grader
        )
        assert isinstance(by_name, FunctionGrader)
        assert by_name.describe() == {**direct.describe(), "name": "on_topic_test"}
    finally:
        RewardRegistry().unregister("on_topic_test")


def test_an_old_style_function_is_refused_before_any_model_loads() -> None:
    def shout(texts, *, prompts=None, references=None):
        return [float(t.isupper()) for t in texts]

    with pytest.raises(ConfigError) as info:
        create_rl_trainer("embedded", algorithm="grpo", reward_functions=["length", shout])
    message = str(info.value)
    assert "reward_functions[1]" in message and "'texts' -> 'response'" in message
    assert "@rlreward.batched" in message
