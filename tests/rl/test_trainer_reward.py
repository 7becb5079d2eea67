"""``create_rl_trainer(...).reward`` is the one Reward PPO and GRPO train on.

For each kind of reward (on_error zero with bounds, a callable aggregator, two
aggregators, a nested reward, an abstaining grader, a failing grader, a spec plus rule
functions plus a reward model) the value TRL reads is ``Reward.aevaluate``'s score on
the same rows: PPO through TRL's own ``get_reward`` on the trainer's reward adapter,
GRPO through GRPOTrainer's own ``_calculate_rewards``.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from rlreward.aggregators import WeightedSumAggregator
from rlreward.errors import ConfigError
from rlreward.graders.function import FunctionGrader
from rlreward.reward import Reward
from rlreward.rl import create_rl_trainer
from rlreward.schema import GraderAbstention, GraderError, GraderScore
from tests.rl.conftest import PROMPTS

RESPONSES = [
    " ".join(["word"] * 40),
    "boil the egg for nine minutes then cool it",
    "idk",
    "go to bed at the same time every day",
]
CONTEXT = 16


def words(response: str) -> float:
    return float(len(response.split()))


def chars(response: str) -> float:
    return float(len(response))


def short(response: str) -> float:
    return 1.0 if len(response.split()) <= 3 else 0.0


def picky(response: str) -> float:
    if "idk" in response:
        raise ValueError("cannot grade 'idk'")
    return 0.5


def long_only(response: str) -> float | GraderAbstention:
    if len(response.split()) < 3:
        return GraderAbstention("long_only", "too short to judge")
    return 1.0 if len(response.split()) > 9 else 0.25


class Lowest:
    """A callable aggregator: the lowest of the graders' scores."""

    name = "lowest"
    score_range = (0.0, 1.0)

    def __call__(self, results: Any) -> Any:
        scores = [r.score for r in results.values() if isinstance(r, GraderScore)]
        return GraderScore("lowest", min(scores))


def _fn(fn: Any, **kw: Any) -> FunctionGrader:
    return FunctionGrader(fn, name=fn.__name__, **kw)


def zero_with_bounds() -> Reward:
    """The issue's case: two unbounded graders, bounds [0, 10], on_error zero: 40 words
    score 1.0 (the old rebuilt spec trained on 40.0)."""
    return Reward(
        {"words": _fn(words, score_range=None), "chars": _fn(chars, score_range=None)},
        WeightedSumAggregator(
            "reward", on_error="zero", bounds={"words": [0, 10], "chars": [0, 10]}
        ),
    )


def callable_aggregator() -> Reward:
    return Reward({"short": _fn(short), "long_only": _fn(long_only)}, Lowest())


def two_aggregators() -> Reward:
    return Reward(
        {"short": _fn(short), "long_only": _fn(long_only)},
        [
            WeightedSumAggregator("first", weights={"short": 1.0}),
            WeightedSumAggregator("second", weights={"short": 1.0, "long_only": 3.0}),
        ],
        reward="second",
    )


def nested() -> Reward:
    inner = Reward(
        {"words": _fn(words, score_range=None)},
        WeightedSumAggregator("inner", bounds={"words": [0, 20]}),
    )
    return Reward({"inner": inner, "short": _fn(short)}, WeightedSumAggregator("reward"))


def abstaining() -> Reward:
    return Reward(
        {"short": _fn(short), "long_only": _fn(long_only)},
        WeightedSumAggregator("reward", weights={"short": 1.0, "long_only": 3.0}),
    )


def failing_renormalized() -> Reward:
    return Reward(
        {"short": _fn(short), "picky": _fn(picky)},
        WeightedSumAggregator("reward", on_error="renormalize"),
    )


REWARDS = {
    "zero_with_bounds": zero_with_bounds,
    "callable_aggregator": callable_aggregator,
    "two_aggregators": two_aggregators,
    "nested": nested,
    "abstaining": abstaining,
    "failing_renormalized": failing_renormalized,
}


def _expected(reward: Reward, prompts: list[str], responses: list[str]) -> list[Any]:
    async def run() -> list[Any]:
        return [
            await reward.aevaluate(query=p, response=r)
            for p, r in zip(prompts, responses, strict=True)
        ]

    return asyncio.run(run())


def _ppo_trainer(policy_dir: Path, tmp_path: Path, **kwargs: Any) -> Any:
    return create_rl_trainer(
        str(policy_dir),
        PROMPTS[:4],
        batch_size=2,
        max_new_tokens=6,
        max_prompt_length=CONTEXT,
        output_dir=str(tmp_path / "ppo"),
        ppo_options={"total_episodes": 4, "num_ppo_epochs": 1},
        show_progress=False,
        **kwargs,
    )


def _ppo_scores(trainer: Any, responses: list[str]) -> tuple[list[float], list[str]]:
    """What TRL's PPO reads: ``get_reward`` on the trainer's own reward model, for the
    trainer's queries followed by ``responses``; and the response texts it decoded."""
    from trl.experimental.utils import get_reward

    from rlreward.rl.ppo import build_ppo_dataset

    trl_trainer = trainer.prepare()
    assert trl_trainer.reward_model is trainer.reward_adapter
    tok = trainer.tokenizer
    queries, _ = build_ppo_dataset(PROMPTS[:4], tok, CONTEXT)
    resp = [tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for r in responses]
    width = max(len(r) for r in resp) + 2
    rows = [
        q + r + [tok.pad_token_id] * (width - len(r))
        for q, r in zip(queries["input_ids"], resp, strict=True)
    ]
    with torch.no_grad():
        _, scores, _ = get_reward(
            trl_trainer.reward_model, torch.tensor(rows), tok.pad_token_id, CONTEXT
        )
    decoded = [tok.decode(tok(r, add_special_tokens=False)["input_ids"]) for r in responses]
    return scores.tolist(), decoded


@pytest.mark.parametrize("case", sorted(REWARDS))
def test_the_spec_alone_is_the_trainers_reward(case: str) -> None:
    reward = REWARDS[case]()
    for algorithm in ("ppo", "grpo"):
        trainer = create_rl_trainer(
            "embedded", algorithm=algorithm, reward_spec=reward, batch_size=4
        )
        assert trainer.reward is reward  # held as it is: nothing re-derived


def test_on_error_zero_with_bounds_trains_on_the_specs_value() -> None:
    """The old rebuild trained this 40-word response on 40.0; the spec says 1.0."""
    trainer = create_rl_trainer("embedded", reward_spec=zero_with_bounds())
    result = asyncio.run(trainer.reward.aevaluate(response=RESPONSES[0]))
    assert result.score == pytest.approx(1.0)


@pytest.mark.parametrize("case", sorted(REWARDS))
def test_ppo_trains_on_the_rewards_value(case: str, policy_dir: Path, tmp_path: Path) -> None:
    trainer = _ppo_trainer(policy_dir, tmp_path, reward_spec=REWARDS[case]())
    scores, texts = _ppo_scores(trainer, RESPONSES)
    expected = _expected(trainer.reward, PROMPTS[:4], texts)
    assert all(isinstance(e, GraderScore) for e in expected)
    assert scores == pytest.approx([e.score for e in expected], abs=1e-6)
    assert len({round(e.score, 6) for e in expected}) > 1  # the rows really differ


def test_ppo_stops_on_a_failing_grader_with_the_reason(policy_dir: Path, tmp_path: Path) -> None:
    reward = Reward({"short": _fn(short), "picky": _fn(picky)})  # on_error="error"
    trainer = _ppo_trainer(policy_dir, tmp_path, reward_spec=reward)
    assert isinstance(_expected(reward, PROMPTS[:4], RESPONSES)[2], GraderError)
    with pytest.raises(RuntimeError, match=r"failed for 1 of 4 responses \(row 2: .*idk"):
        _ppo_scores(trainer, RESPONSES)


def _grpo_rewards(trainer: Any, responses: list[str]) -> list[float]:
    """Per completion, the reward GRPOTrainer computes with its own code (NaN for None)."""
    grpo = trainer.prepare()
    prompts = [PROMPTS[i % 2] for i in range(len(responses))]
    inputs = [{"prompt": p} for p in prompts]
    ids = [trainer.tokenizer(r, add_special_tokens=False)["input_ids"] for r in responses]
    per_func = grpo._calculate_rewards(inputs, prompts, list(responses), ids)
    assert per_func.shape == (len(responses), 1)  # one combined function: the reward
    return per_func[:, 0].tolist()


@pytest.mark.parametrize("case", [*sorted(REWARDS), "failing"])
def test_grpo_trains_on_the_rewards_value(case: str, policy_dir: Path, tmp_path: Path) -> None:
    reward = (
        Reward({"short": _fn(short), "picky": _fn(picky)}) if case == "failing" else REWARDS[case]()
    )
    trainer = create_rl_trainer(
        str(policy_dir),
        PROMPTS[:2],
        algorithm="grpo",
        reward_spec=reward,
        batch_size=4,
        max_new_tokens=6,
        output_dir=str(tmp_path / "grpo"),
        grpo_options={"num_generations": 2, "max_steps": 1},
        show_progress=False,
    )
    got = _grpo_rewards(trainer, RESPONSES)
    prompts = [PROMPTS[i % 2] for i in range(len(RESPONSES))]
    for value, want in zip(got, _expected(reward, prompts, RESPONSES), strict=True):
        if isinstance(want, GraderScore):
            assert value == pytest.approx(want.score, abs=1e-6)
        else:  # failed: TRL gets None (NaN), never a made-up score
            assert math.isnan(value)


# -- a spec plus rule functions plus a reward model ----------------------------------------


def judge_like() -> Reward:
    """A spec's reward with a monitor: the monitor is lifted, never weighed."""
    return Reward(
        {"short": _fn(short), "long_only": _fn(long_only)},
        WeightedSumAggregator("judges", weights={"short": 1.0, "long_only": 1.0}),
        monitors={"words": _fn(words, score_range=None)},
    )


def test_spec_functions_and_reward_model_join_by_the_rule(
    minilm_reward_dir: Path, policy_dir: Path, tmp_path: Path
) -> None:
    spec = judge_like()
    kwargs: dict[str, Any] = {
        "reward_spec": spec,
        "reward_spec_weight": 2.0,
        "reward_functions": ["safety"],
        "reward_function_weights": [1.0],
        "reward_model_path": str(minilm_reward_dir),
        "reward_model_weight": 1.0,
    }
    # a raw reward model beside [0, 1] graders: refused, with the fix, before any load
    with pytest.raises(ConfigError, match="reward_model_normalize='sigmoid'") as info:
        _ppo_trainer(policy_dir, tmp_path, **kwargs)
    assert "reward_model_bounds=(low, high)" in str(info.value)

    trainer = _ppo_trainer(policy_dir, tmp_path, reward_model_normalize="sigmoid", **kwargs)
    reward = trainer.reward
    assert list(reward.graders) == ["spec", "safety", "reward_model"]
    assert list(reward.monitors) == ["words"]  # the spec's monitor, reported beside
    assert dict(reward.weighted_sum().grader_weights) == pytest.approx(
        {"spec": 0.5, "safety": 0.25, "reward_model": 0.25}
    )
    assert reward.weighted_sum().on_error == "error"  # a made-up score is never trained on
    assert not reward.graders["reward_model"].grader.loaded  # built before any model loads
    nested_spec = reward.graders["spec"].grader
    assert nested_spec.name == "judges" and list(nested_spec.graders) == ["short", "long_only"]

    scores, texts = _ppo_scores(trainer, RESPONSES)
    expected = _expected(reward, PROMPTS[:4], texts)
    assert scores == pytest.approx([e.score for e in expected], abs=1e-6)
    for e, prompt, text in zip(expected, PROMPTS[:4], texts, strict=True):
        # the spec's value inside is the spec's own reward for the row, nested intact
        inner = asyncio.run(spec.aevaluate(query=prompt, response=text))
        assert e.metadata["graders"]["spec"] == pytest.approx(inner.score)
        assert e.metadata["monitors"]["words"] == words(text)
        assert "words" not in e.metadata["components"]


def test_grpo_trains_on_spec_functions_and_reward_model(
    minilm_reward_dir: Path, policy_dir: Path, tmp_path: Path
) -> None:
    trainer = create_rl_trainer(
        str(policy_dir),
        PROMPTS[:2],
        algorithm="grpo",
        reward_spec=judge_like(),
        reward_functions=["safety"],
        reward_model_path=str(minilm_reward_dir),
        reward_model_normalize="sigmoid",
        batch_size=4,
        max_new_tokens=6,
        output_dir=str(tmp_path / "grpo"),
        grpo_options={"num_generations": 2, "max_steps": 1},
        show_progress=False,
    )
    assert list(trainer.reward.graders) == ["spec", "safety", "reward_model"]
    got = _grpo_rewards(trainer, RESPONSES)
    prompts = [PROMPTS[i % 2] for i in range(len(RESPONSES))]
    expected = _expected(trainer.reward, prompts, RESPONSES)
    assert got == pytest.approx([e.score for e in expected], abs=1e-6)


def _rlreward_model_dir(path: Path, meta: dict[str, Any]) -> Path:
    from rlreward.models.reward_model_io import write_metadata

    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    write_metadata(path, meta)
    return path


def test_a_model_trained_by_rlreward_joins_on_its_label_range(tmp_path: Path) -> None:
    model = _rlreward_model_dir(tmp_path / "rm", {"label_range": [0.0, 1.0]})
    trainer = create_rl_trainer(
        "embedded",
        algorithm="grpo",
        reward_functions=["length"],
        reward_model_path=str(model),
    )
    agg = trainer.reward.weighted_sum()
    assert agg.score_ranges["reward_model"] == (0.0, 1.0)
    old = _rlreward_model_dir(
        tmp_path / "old", {"label_stats": {"min": 0.2, "max": 0.8, "mean": 0.5, "std": 0.1}}
    )
    trainer = create_rl_trainer(
        "embedded", algorithm="grpo", reward_functions=["length"], reward_model_path=str(old)
    )
    assert trainer.reward.weighted_sum().score_ranges["reward_model"] == (0.2, 0.8)
    # declared bounds win; alone, a reward model keeps its raw score
    trainer = create_rl_trainer(
        "embedded",
        algorithm="grpo",
        reward_functions=["length"],
        reward_model_path=str(old),
        reward_model_bounds=(-3, 3),
    )
    assert trainer.reward.weighted_sum().score_ranges["reward_model"] == (-3.0, 3.0)
    alone = create_rl_trainer("embedded", algorithm="grpo", reward_model_path=str(old))
    assert alone.reward.weighted_sum().score_ranges["reward_model"] is None


def test_a_reward_model_trained_here_joins_on_the_label_rewards_range(tmp_path: Path) -> None:
    trainer = create_rl_trainer(
        "embedded",
        algorithm="grpo",
        train_custom_reward_model=True,
        reward_training_texts=[f"answer number {i} is clear" for i in range(12)],
        reward_functions=["length", "safety"],
        reward_spec=abstaining(),
        reward_training_output_dir=str(tmp_path / "rm"),
    )
    assert trainer.label_reward is not None and trainer.label_reward.score_range == (0.0, 1.0)
    assert list(trainer.reward.graders) == ["spec", "reward_model"]  # functions only label
    assert trainer.reward.weighted_sum().score_ranges["reward_model"] == (0.0, 1.0)


# -- reward-model labels ---------------------------------------------------------------


def test_labels_are_the_label_rewards_values() -> None:
    from rlreward.training.labels import label_reward

    trainer = create_rl_trainer(
        "embedded",
        algorithm="grpo",
        reward_functions=["length", "safety", "math_answer"],
        reward_function_weights=[1.0, 2.0, 1.0],
    )
    texts = [*RESPONSES, "I will kill you."]
    labels = trainer.label_texts(texts, ["q"] * len(texts))
    reward = label_reward(["length", "safety", "math_answer"], [1.0, 2.0, 1.0])
    expected = _expected(reward, ["q"] * len(texts), texts)
    assert labels == pytest.approx([e.score for e in expected])
    # math_answer needs a reference: it abstains, the others are weighed (rescaled)
    assert all(e.metadata["abstained"] == ["math_answer"] for e in expected)
    assert len(set(labels)) > 1


def test_a_failing_label_function_raises_grading_failed_error() -> None:
    from rlreward.errors import GradingFailedError

    def broken(response: str) -> float:
        raise RuntimeError("model not loaded")

    trainer = create_rl_trainer("embedded", algorithm="grpo", reward_functions=["length", broken])
    with pytest.raises(GradingFailedError, match=r"text 0: reward function 'broken'.*not loaded"):
        trainer.label_texts(["hello there"])


def test_grpo_option_typos_are_refused_before_any_model_loads() -> None:
    with pytest.raises(ConfigError, match=r"'num_generationz' \(did you mean 'num_generations'"):
        create_rl_trainer(
            "embedded",
            algorithm="grpo",
            reward_functions=["length"],
            grpo_options={"num_generationz": 2},
        )
    with pytest.raises(ConfigError, match=r"'kl_coeff' \(did you mean 'kl_coef'"):
        create_rl_trainer("embedded", reward_functions=["length"], ppo_options={"kl_coeff": 1})
    # a PPOConfig field that PPOSettings does not name is accepted (it goes to ``extra``)
    create_rl_trainer("embedded", reward_functions=["length"], ppo_options={"whiten_rewards": True})


def test_gates_are_graded_at_rl_time_and_the_model_learns_the_ungated_sum(
    minilm_reward_dir: Path, tmp_path: Path
) -> None:
    """``reward_function_gates`` with a model trained here: the model learns the ungated
    weighted sum, and the trainer's reward applies the gate to its score exactly (a
    learned gate is one more thing a policy can game)."""
    import shutil

    rm_dir = tmp_path / "rm"
    shutil.copytree(minilm_reward_dir, rm_dir)  # stands for the model stage 1 writes
    gates = {"semantic_relevance": {"mode": "cap", "bounds": [0.3, 0.6]}}
    trainer = create_rl_trainer(
        "embedded",
        algorithm="grpo",
        train_custom_reward_model=True,
        reward_training_texts=[f"answer number {i} is clear" for i in range(12)],
        reward_functions=["length", "coherence"],
        reward_function_weights=[1.0, 1.0],
        reward_function_gates=gates,
        reward_training_output_dir=str(rm_dir),
    )
    # the true composite is gated; what the model learns is not
    assert trainer.label_reward is not None and trainer.model_label_reward is not None
    assert trainer.label_reward.weighted_sum().gates is not None
    assert trainer.model_label_reward.weighted_sum().gates is None
    assert list(trainer.model_label_reward.graders) == ["length", "coherence"]
    prompts = ["How do I boil an egg?", "How do I boil an egg?"]
    texts = ["Boil the egg for nine minutes, then cool it.", "The stock market rose today."]
    gated = trainer.label_texts(texts, prompts)
    ungated = trainer.label_texts(texts, prompts, reward=trainer.model_label_reward)
    assert gated[0] == pytest.approx(ungated[0])  # on topic: not capped
    assert gated[1] < ungated[1]  # off topic: capped by its relevance

    # the RL reward: the model's score (on the label range) capped by the gate, graded here
    reward = trainer.reward
    assert list(reward.graders) == ["semantic_relevance", "reward_model"]
    agg = reward.weighted_sum()
    assert dict(agg.grader_weights) == {"reward_model": 1.0}  # a gate is never weighed
    assert agg.score_ranges["reward_model"] == (0.0, 1.0)
    expected = _expected(reward, prompts, texts)
    for e in expected:
        assert isinstance(e, GraderScore)
        rm = min(1.0, max(0.0, e.metadata["graders"]["reward_model"]))
        rel = e.metadata["gates"]["semantic_relevance"]["value"]
        assert rel == pytest.approx(
            min(1.0, max(0.0, (e.metadata["graders"]["semantic_relevance"] - 0.3) / 0.3))
        )
        assert e.score == pytest.approx(min(rm, rel))
    # a gate that is also a weighted member is refused
    from rlreward.rl.reward import build_reward

    with pytest.raises(ConfigError, match="gate 'length' is also a member"):
        build_reward(functions=["length"], gates={"length": {"mode": "cap"}})
