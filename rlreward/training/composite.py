"""CompositeReward: several reward functions and positive weights -> one score per text.

The composite is not computed here: each function becomes the grader a reward spec
builds from it (``rlreward.graders.registry.as_grader``: a RewardFunctionGrader for a
rule function, a FunctionGrader for a user's function), a ``GradingRunner`` grades the
texts, and the composite is the value of its ``WeightedSumAggregator``
(range-normalised, lower-is-better functions turned around, weights normalised to sum
1), so reward-model labels are exactly what the same functions give as a reward spec.
The normalised scores are the aggregator's published components. This is what
reward-model training labels its texts with. Everything is validated at construction;
a function that fails on a text raises ``GradingFailedError`` naming the function, the
text and the error (offline data generation must not invent scores).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from rlreward.aggregators import WeightedSumAggregator
from rlreward.checks import number_rule, weight_list_rule
from rlreward.errors import ConfigError, GradingFailedError
from rlreward.graders.registry import as_grader
from rlreward.rewards.base import RewardFunction, as_text_batch
from rlreward.rewards.registry import RewardRegistry
from rlreward.rewards.wrap import as_reward_function
from rlreward.runner import GradingRunner
from rlreward.schema import GraderScore

__all__ = ["CompositeReward", "CompositeScores", "compute_composite"]

FunctionLike = str | RewardFunction | Callable[..., Any]
#: grader calls in flight per chunk: lets expensive functions batch, costs nothing for cheap ones
_CONCURRENCY = 256


@dataclass(frozen=True)
class CompositeScores:
    """Per-function raw scores, their normalised form, and the weighted composite."""

    names: list[str]
    weights: dict[str, float]
    per_function: dict[str, list[float]]
    normalised: dict[str, list[float]]
    composite: list[float]

    def __len__(self) -> int:
        return len(self.composite)

    def to_records(self) -> list[dict[str, float]]:
        """One dict per text: ``{name: raw score, ..., "composite": value}``."""
        cols = [(n, self.per_function[n]) for n in self.names]
        return [
            {**{n: col[i] for n, col in cols}, "composite": c} for i, c in enumerate(self.composite)
        ]


def _resolve(fn: FunctionLike, registry: RewardRegistry, index: int) -> RewardFunction:
    if isinstance(fn, str):
        return registry.get_reward_function(fn)
    try:
        return as_reward_function(fn)
    except ConfigError as exc:
        raise ConfigError(f"functions[{index}]: {exc}") from None


def _check_weights(weights: Sequence[float] | None, names: list[str]) -> dict[str, float]:
    if weights is None:
        return {n: 1.0 / len(names) for n in names}
    problem = weight_list_rule(weights, names)
    if problem is not None:
        raise ConfigError(problem)
    total = math.fsum(weights)
    return {n: float(w) / total for n, w in zip(names, weights, strict=False)}


@dataclass
class CompositeReward:
    """Weighted mean of range-normalised reward functions.

    Args:
        functions: registry names, RewardFunction instances or a user's functions (by the
            one calling convention, docs/grading.md), or a ``{name: function}`` dict to
            choose result keys (e.g. two differently configured ``length`` functions).
        weights: one positive weight per function; ``None`` = equal weights.
        registry: where names are looked up (default: the process-wide registry).
    """

    functions: Sequence[FunctionLike] | Mapping[str, FunctionLike]
    weights: Sequence[float] | None = None
    registry: RewardRegistry | None = field(default=None, repr=False, compare=False)
    _fns: dict[str, RewardFunction] = field(init=False, repr=False, compare=False)
    _weights: dict[str, float] = field(init=False, repr=False, compare=False)
    _runner: GradingRunner = field(init=False, repr=False, compare=False)
    _key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        registry = self.registry or RewardRegistry()
        funcs = self.functions
        items: list[tuple[str | None, RewardFunction]]
        if isinstance(funcs, Mapping):
            items = [(str(k), _resolve(v, registry, i)) for i, (k, v) in enumerate(funcs.items())]
        elif isinstance(funcs, (str, bytes)) or not isinstance(funcs, Sequence):
            raise ConfigError(
                f"functions must be a list of reward function names/callables, got {funcs!r}; "
                "e.g. CompositeReward(['length', 'safety'])"
            )
        else:
            items = [(None, _resolve(f, registry, i)) for i, f in enumerate(funcs)]
        if not items:
            raise ConfigError("CompositeReward needs at least one reward function")
        fns: dict[str, RewardFunction] = {}
        for key, fn in items:
            name = key or fn.name
            if name in fns:
                raise ConfigError(
                    f"two reward functions are named {name!r}; pass a dict {{name: function}} "
                    "to give them distinct names"
                )
            rng = getattr(fn, "score_range", None)
            if rng is None or len(rng) != 2 or not rng[0] < rng[1]:
                raise ConfigError(
                    f"reward function {name!r} needs a bounded score_range to be combined, "
                    f"got {rng!r}"
                )
            fns[name] = fn
        self._fns = fns
        self._weights = _check_weights(self.weights, list(fns))
        self._key = "composite"  # the aggregate's result key; grader keys are the names
        while self._key in fns:
            self._key = f"_{self._key}"
        graders = {k: as_grader(fn, name=k) for k, fn in fns.items()}
        aggregator = WeightedSumAggregator(self._key, weights=self._weights, on_error="error")
        self._runner = GradingRunner(
            graders, aggregators=aggregator, max_concurrency=_CONCURRENCY, show_progress=False
        )
        self.registry = None  # resolved; keep the object small and picklable

    @property
    def names(self) -> list[str]:
        return list(self._fns)

    @property
    def reward_functions(self) -> dict[str, RewardFunction]:
        return dict(self._fns)

    @property
    def normalised_weights(self) -> dict[str, float]:
        return dict(self._weights)

    @property
    def needs_prompt(self) -> bool:
        return any(f.needs_prompt for f in self._fns.values())

    @property
    def needs_reference(self) -> bool:
        return any(f.needs_reference for f in self._fns.values())

    def _check_inputs(self, n: int, prompts: Any, references: Any) -> None:
        for what, values, flag in (
            ("prompts", prompts, "needs_prompt"),
            ("references", references, "needs_reference"),
        ):
            needing = [k for k, f in self._fns.items() if getattr(f, flag)]
            if values is None and needing:
                raise ConfigError(
                    f"reward functions {needing} need {what}; pass {what}=[...] (one per text)"
                )
            if values is not None and len(values) != n:
                raise ConfigError(f"got {len(values)} {what} for {n} texts; give one per text")

    def __call__(
        self,
        texts: Sequence[str],
        *,
        prompts: Sequence[str] | None = None,
        references: Sequence[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> CompositeScores:
        """Score ``texts`` with every function (in chunks of ``batch_size``) and combine."""
        batch = as_text_batch(texts, "composite")
        n = len(batch)
        p = None if prompts is None else as_text_batch(prompts, "composite", "prompts")
        r = None if references is None else as_text_batch(references, "composite", "references")
        self._check_inputs(n, p, r)
        if batch_size is not None and number_rule(batch_size, integer=True, low=1) is not None:
            raise ConfigError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
        step = batch_size or max(n, 1)
        raw: dict[str, list[float]] = {k: [] for k in self._fns}
        normalised: dict[str, list[float]] = {k: [] for k in self._fns}
        composite: list[float] = []
        starts = range(0, n, step)
        for s in tqdm(starts, desc="reward functions", unit="batch", disable=not show_progress):
            rows: list[dict[str, str]] = [{"response": t} for t in batch[s : s + step]]
            for field_name, values in (("query", p), ("reference_response", r)):
                if values is not None:
                    for row, value in zip(rows, values[s : s + step], strict=True):
                        row[field_name] = value
            results = self._runner.run(rows)
            for i, agg in enumerate(results[self._key]):
                if not isinstance(agg, GraderScore):
                    raise GradingFailedError(self._failure(results, s + i, s))
                components = agg.metadata["components"]
                for k in self._fns:
                    raw[k].append(results[k][i].score)  # type: ignore[union-attr]
                    normalised[k].append(components[k])
                composite.append(agg.score)
        return CompositeScores(self.names, dict(self._weights), raw, normalised, composite)

    def _failure(self, results: Any, index: int, start: int) -> str:
        failed = {
            k: results[k][index - start].error
            for k in self._fns
            if not isinstance(results[k][index - start], GraderScore)
        }
        detail = "; ".join(f"reward function {k!r}: {e}" for k, e in failed.items())
        return f"text {index}: {detail or results[self._key][index - start].error}"

    def score(self, text: str, *, prompt: str | None = None, reference: str | None = None) -> float:
        """The composite score of one text."""
        return self(
            [text],
            prompts=None if prompt is None else [prompt],
            references=None if reference is None else [reference],
        ).composite[0]


def compute_composite(
    texts: Sequence[str],
    functions: Sequence[FunctionLike] | Mapping[str, FunctionLike],
    weights: Sequence[float] | None = None,
    **call_options: Any,
) -> CompositeScores:
    """``CompositeReward(functions, weights)(texts, **call_options)`` in one call."""
    return CompositeReward(functions, weights)(texts, **call_options)
