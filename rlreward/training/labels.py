"""Reward-model labels: the rule functions' ``Reward``, and its values as labels.

The one place where rule functions and their weights become a reward:
``function_graders`` makes each function the grader a spec builds from it
(``graders.registry.as_grader``; the RL trainer's reward uses it too), ``label_reward``
puts them under one ``WeightedSumAggregator`` (range-normalised, lower-is-better
turned around, weights normalised to sum 1, ``on_error="error"``), and
``label_values`` grades rows with that ``Reward`` and returns its value per row.
``CompositeReward``, ``RewardModelTrainer.generate_training_data`` and
``RLTrainer.label_texts`` all label through these, so a label is exactly
``label_reward(...).aevaluate(**row)``'s score.

A label is never made up: a row whose reward failed raises ``GradingFailedError``
naming the function, the text and the error; a row where every function abstained
(none applies to it) raises too, with its own message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rlreward.aggregators import WeightedSumAggregator
from rlreward.checks import weight_list_rule
from rlreward.errors import ConfigError, GradingFailedError, UnknownNameError
from rlreward.graders.registry import as_grader
from rlreward.reward import Reward
from rlreward.rewards.base import RewardFunction
from rlreward.rewards.registry import RewardRegistry
from rlreward.schema import GraderAbstention, GraderScore

__all__ = [
    "LABEL_NAME",
    "FunctionLike",
    "check_weights",
    "function_graders",
    "gate_graders",
    "label_reward",
    "label_rows",
    "label_values",
]

FunctionLike = str | RewardFunction | Callable[..., Any]
#: the label reward's aggregator, and the training dataset's label column
LABEL_NAME = "composite"
#: grader calls in flight: lets expensive functions batch, costs nothing for cheap ones
LABEL_CONCURRENCY = 256


def function_graders(
    functions: Sequence[FunctionLike] | Mapping[str, FunctionLike],
    *,
    registry: RewardRegistry | None = None,
) -> dict[str, Any]:
    """``{name: grader}`` of registry names, RewardFunctions or a user's functions: the
    grader a spec builds from each (``graders.registry.as_grader``); a ``{name:
    function}`` dict chooses the names."""
    items: list[tuple[str | None, FunctionLike]]
    if isinstance(functions, Mapping):
        items = [(str(k), v) for k, v in functions.items()]
    elif isinstance(functions, (str, bytes)) or not isinstance(functions, Sequence):
        raise ConfigError(
            f"functions must be a list of reward function names/callables, got {functions!r}; "
            "e.g. ['length', 'safety']"
        )
    else:
        items = [(None, f) for f in functions]
    if not items:
        raise ConfigError("at least one reward function is needed, e.g. ['length', 'safety']")
    out: dict[str, Any] = {}
    for i, (key, fn) in enumerate(items):
        try:
            grader = as_grader(fn, name=key, registry=registry)
        except UnknownNameError:
            raise  # names the function and lists the known ones
        except ConfigError as exc:
            raise ConfigError(f"functions[{i}]: {exc}") from None
        if grader.name in out:
            raise ConfigError(
                f"two reward functions are named {grader.name!r}; pass a dict "
                "{name: function} to give them distinct names"
            )
        out[grader.name] = grader
    return out


def check_weights(weights: Sequence[float] | None, names: Sequence[str]) -> dict[str, float]:
    """``{name: weight}`` normalised to sum 1 (None: equal weights); a ConfigError naming
    the weight and its function otherwise."""
    names = list(names)
    if weights is None:
        return {n: 1.0 / len(names) for n in names}
    problem = weight_list_rule(weights, names)
    if problem is not None:
        raise ConfigError(problem)
    total = math.fsum(weights)
    return {n: float(w) / total for n, w in zip(names, weights, strict=False)}


def label_reward(
    functions: Sequence[FunctionLike] | Mapping[str, FunctionLike],
    weights: Sequence[float] | None = None,
    *,
    gates: Mapping[str, Mapping[str, Any]] | None = None,
    registry: RewardRegistry | None = None,
) -> Reward:
    """The rule functions' weighted sum as one ``Reward`` (named ``"composite"``, or
    ``"_composite"`` when a function has that name).

    ``weights``: one positive weight per function (None: equal). Every function must be
    bounded (a label is a weighted mean of [0, 1] values, so the reward's range is
    (0, 1)); a failed function fails the row (``on_error="error"``).
    ``gates``: ``{rule function name: {"mode": "cap"|"multiply"|"floor", "floor": x,
    "bounds": [low, high]}}``: graders the weighted sum cannot trade away (see
    ``WeightedSumAggregator(gates=...)``), e.g. ``{"semantic_relevance": {"mode": "cap",
    "bounds": [0.3, 0.6]}}`` keeps off-topic answers low whatever else they do well.
    """
    graders = function_graders(functions, registry=registry)
    gate_members, gate_specs, gate_bounds = gate_graders(gates, registry=registry)
    for name in gate_members:
        if name in graders:
            raise ConfigError(
                f"gates[{name!r}]: {name!r} is also a weighted function; a gate is not weighed"
            )
    graders.update(gate_members)
    for name, g in graders.items():
        if name in gate_specs:
            continue
        rng = g.score_range
        if rng is None or not rng[0] < rng[1]:
            raise ConfigError(
                f"reward function {name!r} needs a bounded score_range to be combined, got {rng!r}"
            )
    named = check_weights(weights, [n for n in graders if n not in gate_specs])
    key = LABEL_NAME
    while key in graders:
        key = f"_{key}"
    aggregator = WeightedSumAggregator(
        key,
        weights=named,
        on_error="error",
        gates=gate_specs or None,
        bounds=gate_bounds or None,
    )
    return Reward(graders, aggregator, max_concurrency=LABEL_CONCURRENCY)


def gate_graders(
    gates: Mapping[str, Mapping[str, Any]] | None,
    *,
    registry: RewardRegistry | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, tuple[float, ...]]]:
    """(graders, gate options, bounds) of ``{rule function name: {"mode": ..., "floor":
    x, "bounds": [low, high]}}``: what a ``WeightedSumAggregator`` takes as the gate
    members, its ``gates=`` and its ``bounds=`` (the label reward and the RL trainer's
    reward read a gate the same way)."""
    members: dict[str, Any] = {}
    specs: dict[str, dict[str, Any]] = {}
    bounds: dict[str, tuple[float, ...]] = {}
    for name, options in (gates or {}).items():
        if not isinstance(options, Mapping):
            raise ConfigError(
                f"gates[{name!r}] must be a dict {{mode: cap|multiply|floor, floor: x, bounds: "
                f"[low, high]}}, got {options!r}"
            )
        opts = dict(options)
        if "bounds" in opts:
            bounds[name] = tuple(opts.pop("bounds"))
        specs[name] = opts
        members.update(function_graders([name], registry=registry))
    return members, specs, bounds


def label_rows(
    texts: Sequence[str],
    prompts: Sequence[str] | None = None,
    references: Sequence[str] | None = None,
) -> list[dict[str, str]]:
    """The rows a label reward grades: ``response`` plus ``query`` / ``reference_response``."""
    rows: list[dict[str, str]] = [{"response": t} for t in texts]
    for field, values in (("query", prompts), ("reference_response", references)):
        if values is not None:
            if len(values) != len(rows):
                raise ConfigError(
                    f"got {len(values)} {field} values for {len(rows)} texts; give one per text"
                )
            for row, value in zip(rows, values, strict=True):
                row[field] = value
    return rows


def label_values(reward: Reward, rows: Sequence[Mapping[str, Any]], *, offset: int = 0) -> Any:
    """(results, labels): ``reward`` graded on ``rows`` and its value per row.

    Raises GradingFailedError for a row whose reward failed (naming each failed function,
    the text and the error) or did not apply (every function abstained). ``offset``
    numbers the rows in messages (the position of ``rows[0]`` in a longer list).
    """
    results = reward.grade(list(rows))
    labels: list[float] = []
    for i, value in enumerate(reward.results(results)):
        if isinstance(value, GraderScore):
            labels.append(float(value.score))
            continue
        text = _short(rows[i].get("response"))
        graders = [n for n in reward.graders if n in results]
        if isinstance(value, GraderAbstention):
            raise GradingFailedError(
                f"text {offset + i}: no reward function applies to it ({value.reason}; "
                f"text: {text}); a label cannot be made up: give the fields the functions "
                "need (e.g. references) or drop the text"
            )
        failed = [
            f"reward function {n!r}: {results[n][i].error}"  # type: ignore[union-attr]
            for n in graders
            if not isinstance(results[n][i], (GraderScore, GraderAbstention))
        ]
        detail = "; ".join(failed) or value.error
        raise GradingFailedError(f"text {offset + i}: {detail} (text: {text})")
    return results, labels


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"
