"""Aggregators: many per-row grader results -> one reward per row.

An aggregator is any callable ``{grader name: GraderScore | GraderError} -> result``.
``WeightedSumAggregator`` knows each grader's declared range and direction (it is
*bound* to the runner's graders), so it normalises every score to [0, 1] and turns
lower-is-better graders around before weighting; what happens when a grader failed is
an explicit ``on_error`` policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from rlreward.checks import is_weight
from rlreward.errors import ConfigError
from rlreward.schema import GraderError, GraderResult, GraderScore, normalise_score

__all__ = [
    "Aggregator",
    "AggregatorLike",
    "WeightedSumAggregator",
    "aggregator_name",
    "bind_aggregators",
]

OnError = Literal["error", "renormalize", "zero"]
ON_ERROR_CHOICES: tuple[str, ...] = ("error", "renormalize", "zero")


@runtime_checkable
class Aggregator(Protocol):
    name: str

    def __call__(self, results: Mapping[str, GraderResult]) -> GraderResult: ...


AggregatorLike: TypeAlias = Callable[[Mapping[str, GraderResult]], Any]


def aggregator_name(agg: Any) -> str:
    """Key of an aggregator's results: its ``name`` attribute, else ``__name__``."""
    name = getattr(agg, "name", None) or getattr(agg, "__name__", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"aggregator {agg!r} needs a `name` attribute or a __name__ to key its results"
        )
    return name


@dataclass
class WeightedSumAggregator:
    """Weighted mean of range-normalised, direction-corrected grader scores.

    Args:
        name: key of the aggregate in the results.
        weights: ``{grader name: weight}``; ``None`` = equal weights over all graders.
            Graders not named get no weight. Weights are normalised to sum to 1, so a
            reward of graders on [0, 1] ranges stays in [0, 1].
        on_error: when a weighted grader failed for a row:
            ``"error"`` (default) the aggregate is a GraderError;
            ``"renormalize"`` use the remaining graders, weights rescaled;
            ``"zero"`` count the failed grader as its worst score (0 after normalising).
    """

    name: str = "reward"
    weights: Mapping[str, float] | None = None
    on_error: OnError = "error"
    _specs: dict[str, tuple[float, tuple[float, float] | None, bool]] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(
                f"WeightedSumAggregator.name must be a non-empty string, got {self.name!r}"
            )
        if self.on_error not in ON_ERROR_CHOICES:
            raise ConfigError(
                f"WeightedSumAggregator.on_error={self.on_error!r} is not allowed; "
                f"choose one of {', '.join(ON_ERROR_CHOICES)}"
            )
        if self.weights is not None:
            if not isinstance(self.weights, Mapping) or not self.weights:
                raise ConfigError(
                    "WeightedSumAggregator.weights must be a non-empty dict {grader name: weight} "
                    f"or None for equal weights, got {self.weights!r}"
                )
            for k, w in self.weights.items():
                if not is_weight(w):
                    raise ConfigError(
                        f"WeightedSumAggregator.weights[{k!r}]={w!r}: weights must be finite and "
                        "> 0 (leave a grader out of `weights` to give it no weight)"
                    )
            self.weights = {k: float(v) for k, v in self.weights.items()}

    def bind(self, graders: Mapping[str, Any]) -> WeightedSumAggregator:
        """A copy that knows the graders' ranges and directions; checks weight names."""
        weights = self.weights or {n: 1.0 for n in graders}
        unknown = sorted(set(weights) - set(graders))
        if unknown:
            raise ConfigError(
                f"WeightedSumAggregator {self.name!r}: weights name unknown graders {unknown}; "
                f"graders are {sorted(graders)}"
            )
        total = math.fsum(weights.values())
        specs = {}
        for n, w in weights.items():
            g = graders[n]
            specs[n] = (
                w / total,
                getattr(g, "score_range", (0.0, 1.0)),
                getattr(g, "higher_is_better", True),
            )
        bound = replace(self)
        bound._specs = specs
        return bound

    def __call__(self, results: Mapping[str, GraderResult]) -> GraderResult:
        specs = self._specs
        if specs is None:
            raise ConfigError(
                f"WeightedSumAggregator {self.name!r} is not bound to graders; pass it to "
                "GradingRunner(aggregators=...) or call .bind({name: grader})"
            )
        components: dict[str, float] = {}
        failed: dict[str, str] = {}
        for n, (_, rng, hib) in specs.items():
            r = results.get(n)
            if isinstance(r, GraderScore):
                components[n] = normalise_score(r.score, rng, hib)
            else:
                failed[n] = r.error if isinstance(r, GraderError) else "no result"
        meta: dict[str, Any] = {"components": components, "policy": self.on_error}
        if failed:
            meta["failed"] = failed
            if self.on_error == "error":
                return GraderError(
                    self.name,
                    "graders failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()),
                    meta,
                )
            if self.on_error == "zero":
                components = {**components, **dict.fromkeys(failed, 0.0)}
        if not components:
            return GraderError(self.name, "every weighted grader failed", meta)
        wsum = math.fsum(specs[n][0] for n in components)
        score = math.fsum(specs[n][0] * v for n, v in components.items()) / wsum
        meta["used"] = sorted(components)
        meta["weights"] = {n: specs[n][0] / wsum for n in components}
        reason = ", ".join(f"{n}={v:.3f}" for n, v in components.items())
        return GraderScore(self.name, score, f"weighted mean of {reason}", meta)


def bind_aggregators(
    aggregators: AggregatorLike | Sequence[AggregatorLike] | None, graders: Mapping[str, Any]
) -> dict[str, AggregatorLike]:
    """``{name: callable}``, bound to ``graders`` where the aggregator supports it."""
    if aggregators is None:
        return {}
    items = list(aggregators) if isinstance(aggregators, (list, tuple)) else [aggregators]
    out: dict[str, AggregatorLike] = {}
    for agg in items:
        if not callable(agg):
            raise ConfigError(f"aggregator {agg!r} is not callable")
        name = aggregator_name(agg)
        if name in out:
            raise ConfigError(f"two aggregators are named {name!r}; names must be unique")
        bind = getattr(agg, "bind", None)
        out[name] = bind(graders) if callable(bind) else agg
    return out
