"""Every registered reward function on edge-case inputs: in range, finite, deterministic."""

from __future__ import annotations

import math
import pickle

import pytest

from rlreward.rewards import RewardRegistry
from rlreward.rewards.registry import BUILTIN_REWARD_FUNCTIONS
from tests.rewards.conftest import EDGE_TEXTS, EXPENSIVE

NAMES = sorted(BUILTIN_REWARD_FUNCTIONS)
CHEAP = [n for n in NAMES if n not in EXPENSIVE]


def _inputs(fn):
    texts = list(EDGE_TEXTS.values())
    prompts = list(reversed(texts))  # edge cases in the prompt and reference slots too
    refs = texts[1:] + texts[:1]
    return texts, prompts, refs


def test_every_issue_function_is_registered():
    required = {
        "length", "sentiment", "safety", "coherence", "helpfulness", "repetition",
        "distinct_n", "refusal", "format", "exact_match", "math_answer", "bleu", "rouge",
        "readability", "semantic_relevance", "semantic_similarity",
    }  # fmt: skip
    assert required <= set(RewardRegistry().list_reward_functions())


@pytest.mark.parametrize("name", CHEAP)
def test_edge_cases_in_range_finite_deterministic(name, no_network):
    fn = RewardRegistry(shared=False).get_reward_function(name)
    texts, prompts, refs = _inputs(fn)
    scores = fn(texts, prompts=prompts, references=refs)
    again = fn(texts, prompts=prompts, references=refs)
    low, high = fn.score_range
    assert len(scores) == len(texts)
    for label, s in zip(EDGE_TEXTS, scores, strict=True):
        assert isinstance(s, float), (name, label, s)
        assert math.isfinite(s) and low <= s <= high, (name, label, s)
    assert scores == again
    # the single-text call agrees with the batch call
    for i in (0, 3, 4):
        single = fn.score(
            texts[i],
            prompt=prompts[i] if (fn.needs_prompt or fn.uses_prompt) else None,
            reference=refs[i] if fn.needs_reference else None,
        )
        assert single == scores[i], (name, i)


@pytest.mark.parametrize("name", CHEAP)
def test_pickle_round_trip_scores_the_same(name):
    fn = RewardRegistry(shared=False).get_reward_function(name)
    clone = pickle.loads(pickle.dumps(fn))
    texts, prompts, refs = _inputs(fn)
    assert type(clone) is type(fn) and clone.name == fn.name
    assert clone(texts, prompts=prompts, references=refs) == fn(
        texts, prompts=prompts, references=refs
    )


@pytest.mark.parametrize("name", NAMES)
def test_declares_range_and_direction(name):
    fn = RewardRegistry(shared=False).get_reward_function(name)
    assert fn.name == name
    low, high = fn.score_range
    assert low < high
    assert isinstance(fn.higher_is_better, bool)
    d = fn.describe()
    assert d["name"] == name and d["score_range"] == [low, high]


@pytest.mark.parametrize("name", [n for n in NAMES if n not in EXPENSIVE])
def test_needed_inputs_are_enforced(name):
    from rlreward.errors import ConfigError

    fn = RewardRegistry(shared=False).get_reward_function(name)
    if fn.needs_reference:
        with pytest.raises(ConfigError, match="needs references"):
            fn(["a text"])
    with pytest.raises(ConfigError, match="list of strings"):
        fn("a bare string")
    with pytest.raises(ConfigError, match=r"texts\[1\] must be a str"):
        fn(["ok", None])
    with pytest.raises(ConfigError, match="got 1 references for 2 texts"):
        fn(["a", "b"], references=["x"])
