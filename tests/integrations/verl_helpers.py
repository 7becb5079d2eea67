"""Graders and builders for the VERL tests (importable by name, so they pickle)."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from rlreward.schema import GraderError

H = "tests.integrations.adapter_helpers"
V = "tests.integrations.verl_helpers"

#: the gate judge's shared state (reset with ``reset_gate``)
GATE: dict[str, Any] = {}


def reset_gate(target: int) -> None:
    GATE.clear()
    GATE.update(target=target, now=0, max=0, open=False, gave_up=False)


async def gate_judge(response: str) -> float:
    """Holds every call until ``target`` calls are in flight at once (then lets all pass).

    An adapter that grades fewer than ``target`` samples concurrently never opens the
    gate: after 5 s the judge gives up (so the test fails fast, not slowly).
    """
    GATE["now"] += 1
    GATE["max"] = max(GATE["max"], GATE["now"])
    try:
        deadline = time.monotonic() + 5.0
        while not (GATE["open"] or GATE["gave_up"]):
            if GATE["now"] >= GATE["target"]:
                GATE["open"] = True
            elif time.monotonic() > deadline:
                GATE["gave_up"] = True
            else:
                await asyncio.sleep(0.002)
    finally:
        GATE["now"] -= 1
    return 0.5


async def sleepy_judge(response: str) -> float:
    """0.5, after 3 s when the response contains "slow" (a hung judge), else at once."""
    if "slow" in response:
        await asyncio.sleep(3.0)
    return 0.5


def broken(response: str) -> Any:
    """Always fails (a judge that is down)."""
    return GraderError("broken", "the judge is down")


def needs_reference(response: str, reference_response: str) -> float:
    """1.0 when the response contains the reference answer."""
    return float(reference_response.strip().lower() in response.lower())


def rules_spec(on_error: str = "renormalize", *, tox_weight: float = 1.0) -> dict[str, Any]:
    """match (weight 2), brevity (1), tox (lower is better, [0, 10], weight ``tox_weight``),
    flaky (fails on "fail", weight 1) and an unweighted ``extra`` grader."""
    return {
        "graders": {
            "match": {"callable": f"{H}:exact_match"},
            "brevity": {"callable": f"{H}:brevity"},
            "tox": {"callable": f"{H}:toxicity", "score_range": [0, 10], "higher_is_better": False},
            "flaky": {"callable": f"{H}:flaky"},
            "extra": {"callable": f"{H}:brevity"},
        },
        "aggregators": [
            {
                "type": "weighted_sum",
                "name": "reward",
                "weights": {"match": 2, "brevity": 1, "tox": tox_weight, "flaky": 1},
                "on_error": on_error,
            },
            {"type": "weighted_sum", "name": "style", "weights": {"brevity": 1}},
        ],
        "runner": {"max_concurrency": 16},
    }


def one_grader_spec(callable_name: str, concurrency: int = 64, **grader: Any) -> dict[str, Any]:
    return {
        "graders": {"judge": {"callable": callable_name, **grader}},
        "aggregators": [{"type": "weighted_sum", "name": "reward", "on_error": "renormalize"}],
        "runner": {"max_concurrency": concurrency},
    }


def reward_fn_config(spec: Any, name: str = "compute_score", **kwargs: Any) -> Any:
    """The slice of VERL's config ``get_custom_reward_fn`` reads."""
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://rlreward.integrations.verl",
                    "name": name,
                    "reward_kwargs": {"spec": spec, **kwargs},
                }
            }
        }
    )


def reward_loop(config: Any, data: Any) -> tuple[Any, Any, list[dict[str, Any]], dict[str, Any]]:
    """Run verl's own RewardLoopWorker on ``data``: (worker, rm scores, per-sample infos,
    infos stacked per key as verl's RewardLoopManager.compute_rm_score does next: a
    KeyError there if keys differ across samples)."""
    import numpy as np
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    async def main() -> tuple[Any, Any]:
        worker = RewardLoopWorker(config)
        return worker, await worker.compute_score_batch(data)

    worker, outputs = asyncio.run(main())
    rm = worker.reward_manager.assemble_rm_scores(data, [o["reward_score"] for o in outputs])
    infos = [o["reward_extra_info"] for o in outputs]
    stacked = {k: np.array([info[k] for info in infos]) for k in infos[0]}
    return worker, rm, infos, stacked


# -- one Reward behind every entry point (test_verl_reward.py) ------------------------


def word_count(response: str) -> float:
    """An unbounded score: the number of words."""
    return float(len(response.split()))


def wordy_flaky(response: str) -> Any:
    """The word count too, but fails (a GraderError value) when the response says "fail"."""
    if "fail" in response.lower():
        return GraderError("wordy_flaky", "the judge refused")
    return float(len(response.split()))


def zero_bounds_reward() -> Any:
    """Two unbounded graders under ``bounds [0, 10]`` with ``on_error="zero"`` (the
    issue's example: a 40-word response is 1.0, not 40), a toxicity monitor beside."""
    from rlreward import FunctionGrader, WeightedSumAggregator
    from rlreward.reward import Reward
    from tests.integrations.adapter_helpers import toxicity

    return Reward(
        {
            "words": FunctionGrader(word_count, name="words", score_range=None),
            "wordy": FunctionGrader(wordy_flaky, name="wordy", score_range=None),
        },
        WeightedSumAggregator(
            "reward", on_error="zero", bounds={"words": (0, 10), "wordy": (0, 10)}
        ),
        monitors={
            "tox_watch": FunctionGrader(
                toxicity, name="tox_watch", score_range=(0, 10), higher_is_better=False
            )
        },
    )


def nested_reward() -> Any:
    """A reward whose grader is another reward (the rules spec's, renormalize) plus brevity."""
    from rlreward import FunctionGrader, WeightedSumAggregator
    from rlreward.integrations.spec import load_spec
    from rlreward.reward import Reward
    from tests.integrations.adapter_helpers import brevity

    return Reward(
        {
            "inner": load_spec(rules_spec("renormalize")).reward,
            "brev": FunctionGrader(brevity, name="brev"),
        },
        WeightedSumAggregator("total", weights={"inner": 3, "brev": 1}, on_error="renormalize"),
    )


def callable_spec() -> dict[str, Any]:
    """A callable aggregator (``min_reward``) over three graders."""
    return {
        "graders": {
            "match": {"callable": f"{H}:exact_match"},
            "brevity": {"callable": f"{H}:brevity"},
            "tox": {"callable": f"{H}:toxicity", "score_range": [0, 10], "higher_is_better": False},
        },
        "aggregators": [{"callable": f"{H}:min_reward"}],
    }


def two_aggregators_spec() -> dict[str, Any]:
    """Aggregators ``main`` and ``style``: the adapter is told ``aggregator=style``."""
    return {
        "graders": {
            "match": {"callable": f"{H}:exact_match"},
            "brevity": {"callable": f"{H}:brevity"},
            "flaky": {"callable": f"{H}:flaky"},
        },
        "aggregators": [
            {
                "type": "weighted_sum",
                "name": "main",
                "weights": {"match": 2, "flaky": 1},
                "on_error": "renormalize",
            },
            {"type": "weighted_sum", "name": "style", "weights": {"brevity": 1, "flaky": 1}},
        ],
    }


def abstaining_spec(*, only_reference: bool = False) -> dict[str, Any]:
    """``match`` needs a reference (abstains on a sample without one), brevity does not;
    with ``only_reference`` the reward weighs ``match`` alone, so the reward abstains too.
    A toxicity monitor is reported beside."""
    weights = {"match": 1} if only_reference else {"match": 2, "brevity": 1}
    return {
        "graders": {
            "match": {"callable": f"{H}:exact_match"},
            "brevity": {"callable": f"{H}:brevity"},
        },
        "monitors": {
            "tox_watch": {
                "callable": f"{H}:toxicity",
                "score_range": [0, 10],
                "higher_is_better": False,
            }
        },
        "aggregators": [
            {"type": "weighted_sum", "name": "reward", "weights": weights, "on_error": "zero"}
        ],
    }


def failing_monitor_spec() -> dict[str, Any]:
    """The abstaining spec with a monitor that fails on "fail" (the reward never sees it)."""
    spec = abstaining_spec()
    spec["monitors"]["watch_flaky"] = {"callable": f"{H}:flaky"}
    return spec


def comparable(value: Any) -> Any:
    """``value`` with every NaN as the string "nan" (NaN != NaN would fail an equality)."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [comparable(v) for v in value]
    return value


def grade_with(calls: dict[str, Any], samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Call verl-wrapped entry points (``sync``, ``scalar``, ``async``, ``batch``) on samples."""
    args = [("unit", s["response"], s["ground_truth"], {}) for s in samples]
    out: dict[str, Any] = {}
    for name, fn in calls.items():
        if name == "batch":
            got: Any = fn(
                data_sources=[a[0] for a in args],
                solution_strs=[a[1] for a in args],
                ground_truths=[a[2] for a in args],
                extra_infos=[a[3] for a in args],
            )
        elif name == "async":

            async def main(fn: Any = fn) -> list[Any]:
                return list(await asyncio.gather(*(fn(*a) for a in args)))

            got = asyncio.run(main())
        else:
            got = [fn(*a) for a in args]
        out[name] = comparable(got)
    return out


def grade_in_child(blob: bytes, samples: list[dict[str, Any]], queue: Any) -> None:
    """A spawned process: unpickle the entry points and grade ``samples`` with them."""
    import pickle

    queue.put(grade_with(pickle.loads(blob), samples))
