"""CompositeReward: several reward functions and positive weights -> one score per text.

The composite is not computed here: it is the value of the rule functions' ``Reward``
(``rlreward.training.labels.label_reward``: each function the grader a spec builds from
it, under one ``WeightedSumAggregator``, range-normalised, lower-is-better functions turned
around, weights normalised to sum 1), so reward-model labels are exactly what
``label_reward(functions, weights).aevaluate(response=text)`` gives. The normalised
scores are the aggregator's published components. Everything is validated at
construction; a function that fails on a text raises ``GradingFailedError`` naming the
function, the text and the error (offline data generation must not invent scores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.reward import Reward
from rlreward.rewards.base import as_text_batch
from rlreward.rewards.registry import RewardRegistry
from rlreward.training.labels import FunctionLike, label_reward, label_rows, label_values

__all__ = ["CompositeReward", "CompositeScores", "compute_composite"]


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


@dataclass
class CompositeReward:
    """Weighted mean of range-normalised reward functions.

    Args:
        functions: registry names, RewardFunction instances or plain callables (see
            ``rlreward.rewards.wrap`` for callables), or a ``{name: function}`` dict to
            choose result keys (e.g. two differently configured ``length`` functions).
        weights: one positive weight per function; ``None`` = equal weights.
        registry: where names are looked up (default: the process-wide registry).
    """

    functions: Sequence[FunctionLike] | Mapping[str, FunctionLike]
    weights: Sequence[float] | None = None
    registry: RewardRegistry | None = field(default=None, repr=False, compare=False)
    _reward: Reward = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        funcs = self.functions
        if not isinstance(funcs, Mapping) and (
            isinstance(funcs, (str, bytes)) or not isinstance(funcs, Sequence)
        ):
            raise ConfigError(
                f"functions must be a list of reward function names/callables, got {funcs!r}; "
                "e.g. CompositeReward(['length', 'safety'])"
            )
        if not funcs:
            raise ConfigError("CompositeReward needs at least one reward function")
        self._reward = label_reward(funcs, self.weights, registry=self.registry)
        self.registry = None  # resolved; keep the object small and picklable

    @property
    def reward(self) -> Reward:
        """The rule functions' Reward: its value is the composite (the label)."""
        return self._reward

    @property
    def graders(self) -> dict[str, Any]:
        """``{name: grader}``: each function as the grader a spec builds from it."""
        return dict(self._reward.runner.graders)

    @property
    def names(self) -> list[str]:
        return list(self._reward.runner.graders)

    @property
    def reward_functions(self) -> dict[str, Any]:
        """``{name: function}``: the RewardFunction (rule functions) or the user's function."""
        return {n: getattr(g, "function", getattr(g, "fn", g)) for n, g in self.graders.items()}

    @property
    def normalised_weights(self) -> dict[str, float]:
        return dict(self._reward.weighted_sum().grader_weights)

    def needing(self, field_name: str) -> list[str]:
        """The functions that need ``field_name`` (``query``, ``reference_response``)."""
        return [n for n, g in self.graders.items() if field_name in g.required_fields]

    @property
    def needs_prompt(self) -> bool:
        return bool(self.needing("query"))

    @property
    def needs_reference(self) -> bool:
        return bool(self.needing("reference_response"))

    def _check_inputs(self, n: int, prompts: Any, references: Any) -> None:
        for what, values, field_name in (
            ("prompts", prompts, "query"),
            ("references", references, "reference_response"),
        ):
            needing = self.needing(field_name)
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
        raw: dict[str, list[float]] = {k: [] for k in self.names}
        normalised: dict[str, list[float]] = {k: [] for k in self.names}
        composite: list[float] = []
        rows = label_rows(batch, p, r)
        starts = range(0, n, step)
        for s in tqdm(starts, desc="reward functions", unit="batch", disable=not show_progress):
            results, labels = label_values(self._reward, rows[s : s + step], offset=s)
            for i, agg in enumerate(self._reward.results(results)):
                components = agg.metadata["components"]
                for k in self.names:
                    raw[k].append(results[k][i].score)
                    normalised[k].append(components[k])
            composite.extend(labels)
        return CompositeScores(self.names, self.normalised_weights, raw, normalised, composite)

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
