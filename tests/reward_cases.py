"""Reward definitions every entrance is checked against (the issue's list of hard cases).

Each case is a spec dict (module-level callables, so it pickles and loads in any process)
and the same ROWS; an entrance is right when what it writes or trains equals
``Reward.aevaluate`` on each row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rlreward.schema import GraderResult, GraderScore

ROWS: list[dict[str, Any]] = [
    {
        "query": "What is 6 x 7?",
        "response": "6 x 7 = 42, so the answer is 42.",
        "ground_truth": "42",
    },
    {"query": "What is 2 + 2?", "response": "It is 5. It is 5. It is 5.", "ground_truth": "4"},
    {"query": "Name a colour.", "response": "Blue is a colour people like a lot."},
    {"query": "Say fail.", "response": "fail: this row makes the flaky grader raise"},
]


def word_count(response: str) -> float:
    """Unbounded: the number of words (a raw, reward-model-like scale)."""
    return float(len(response.split()))


def char_count(response: str) -> float:
    return float(len(response))


def flaky(response: str) -> float:
    if response.startswith("fail"):
        raise RuntimeError("flaky grader failed on purpose")
    return 0.75


def lowest(results: Mapping[str, GraderResult]) -> float:
    """A callable aggregator: the lowest score among the graders that scored."""
    scores = [r.score for r in results.values() if isinstance(r, GraderScore)]
    if not scores:
        raise ValueError("no grader scored")
    return min(scores)


_HERE = "tests.reward_cases"
_LENGTH = {
    "type": "reward_function",
    "function": "length",
    "params": {"target_min": 3, "target_max": 10},
}
_CORRECT = {
    "type": "reward_function",
    "function": "math_answer",
    "mapper": {"reference_response": "ground_truth"},
}

CASES: dict[str, dict[str, Any]] = {
    # the 1.0-vs-40.0 case: two unbounded graders, bounds [0, 10], on_error zero
    "zero_with_bounds": {
        "graders": {
            "words": {"callable": f"{_HERE}:word_count", "score_range": None},
            "chars": {"callable": f"{_HERE}:char_count", "score_range": None},
        },
        "aggregators": [
            {
                "type": "weighted_sum",
                "name": "reward",
                "on_error": "zero",
                "bounds": {"words": [0, 10], "chars": [0, 10]},
            }
        ],
    },
    "callable_aggregator": {
        "graders": {
            "length": _LENGTH,
            "repetition": {"type": "reward_function", "function": "repetition"},
        },
        "aggregators": [{"callable": f"{_HERE}:lowest"}],
    },
    "two_aggregators": {
        "graders": {"length": _LENGTH, "correct": _CORRECT},
        "aggregators": [
            {"type": "weighted_sum", "name": "reward", "weights": {"length": 1, "correct": 3}},
            {"type": "weighted_sum", "name": "length_only", "weights": {"length": 1}},
        ],
    },
    "abstaining_grader": {
        "graders": {"length": _LENGTH, "correct": _CORRECT},
        "aggregators": [
            {
                "type": "weighted_sum",
                "name": "reward",
                "weights": {"length": 1, "correct": 3},
                "on_error": "zero",
            }
        ],
    },
    "failing_grader": {
        "graders": {"length": _LENGTH, "flaky": {"callable": f"{_HERE}:flaky"}},
        "aggregators": [{"type": "weighted_sum", "name": "reward", "on_error": "renormalize"}],
    },
    "with_monitor": {
        "graders": {"length": _LENGTH},
        "monitors": {"repetition": {"type": "reward_function", "function": "repetition"}},
    },
}


def write_case(name: str, folder: Path) -> Path:
    """The case as a YAML file in ``folder``; ``nested`` writes its inner spec beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    if name == "nested":
        (folder / "inner.yaml").write_text(yaml.safe_dump(CASES["zero_with_bounds"]))
        spec = {
            "graders": {"inner": {"type": "reward", "spec": "inner.yaml"}, "length": _LENGTH},
            "aggregators": [
                {"type": "weighted_sum", "name": "reward", "weights": {"inner": 3, "length": 1}}
            ],
        }
    else:
        spec = CASES[name]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


CASE_NAMES = [*CASES, "nested"]
