"""Aggregators: many per-row grader results -> one reward per row.

An aggregator is any callable ``{grader name: GraderScore | GraderError} -> result``.
``WeightedSumAggregator`` knows each grader's declared range and direction (it is
*bound* to the runner's graders), so it normalises every score to [0, 1] and turns
lower-is-better graders around before weighting; what happens when a grader failed is
an explicit ``on_error`` policy.

This is the only place a composite reward is computed. Adapters read a bound
aggregator's public view (``grader_weights``, ``score_ranges``, ``aligned``) and each
row's published ``metadata["components"]``; they never re-derive normalisation.
Naming rule for anything logged or written (``aligned_key``): a grader's bare name
carries its raw score, ``<grader>__aligned`` the value this module weighs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from rlreward.checks import is_weight
from rlreward.errors import ConfigError
from rlreward.schema import (
    GraderAbstention,
    GraderError,
    GraderResult,
    GraderScore,
    ScoreRange,
    normalise_score,
)

__all__ = [
    "ABSTAINED_SUFFIX",
    "ALIGNED_SUFFIX",
    "ERROR_SUFFIX",
    "GATE_MODES",
    "AggregatorLike",
    "Gate",
    "WeightedSumAggregator",
    "aggregator_name",
    "aligned_key",
    "bind_aggregators",
]

#: The naming rule for every logged or written value: a grader's bare name carries its
#: RAW score (its own range and direction); ``<grader>__aligned`` carries the value the
#: aggregator weighs (on [0, 1], higher = better); ``<name>__error`` flags a failure and
#: ``<name>__abstained`` a row the grader did not apply to (VERL's columns). The one home
#: of these suffixes: names ending so are reserved.
ALIGNED_SUFFIX = "__aligned"
ERROR_SUFFIX = "__error"
ABSTAINED_SUFFIX = "__abstained"

OnError = Literal["error", "renormalize", "zero"]
ON_ERROR_CHOICES: tuple[str, ...] = ("error", "renormalize", "zero")


AggregatorLike: TypeAlias = Callable[[Mapping[str, GraderResult]], Any]


def aggregator_name(agg: Any) -> str:
    """Key of an aggregator's results: its ``name`` attribute, else ``__name__``."""
    name = getattr(agg, "name", None) or getattr(agg, "__name__", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"aggregator {agg!r} needs a `name` attribute or a __name__ to key its results"
        )
    return name


def aligned_key(grader: str) -> str:
    """The key of a grader's aligned value in logs and columns: ``<grader>__aligned``."""
    return grader + ALIGNED_SUFFIX


@dataclass(frozen=True)
class _Term:
    """How one bound grader's raw score becomes its aligned value."""

    score_range: tuple[float, float] | None
    higher_is_better: bool
    clip: bool  # explicit ``bounds``: scores outside them are clipped to them


GateMode = Literal["cap", "multiply", "floor"]
GATE_MODES: tuple[str, ...] = ("cap", "multiply", "floor")


@dataclass(frozen=True)
class Gate:
    """A constraint the weighted sum cannot trade away (see ``WeightedSumAggregator``).

    - ``"cap"``: the reward is at most the gate grader's aligned value;
    - ``"multiply"``: the reward is multiplied by it;
    - ``"floor"``: the reward is the worst value (0) when the gate's aligned value is
      below ``floor``, and unchanged otherwise.
    """

    mode: GateMode = "cap"
    floor: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in GATE_MODES:
            raise ConfigError(
                f"Gate.mode={self.mode!r} is not allowed; choose one of {', '.join(GATE_MODES)}"
            )
        if self.mode == "floor":
            ok = isinstance(self.floor, (int, float)) and not isinstance(self.floor, bool)
            if not ok or not 0.0 <= float(self.floor) <= 1.0:  # type: ignore[arg-type]
                raise ConfigError(
                    f"Gate(mode='floor') needs floor=<number in [0, 1]> (the gate grader's "
                    f"aligned value below which the reward is the worst), got {self.floor!r}"
                )
        elif self.floor is not None:
            raise ConfigError(
                f"Gate(mode={self.mode!r}) takes no floor (got {self.floor!r}); "
                "use mode='floor' for a threshold"
            )

    def apply(self, score: float, value: float) -> tuple[float, bool]:
        """(the gated score, whether the gate changed it)."""
        if self.mode == "cap":
            return (value, True) if value < score else (score, False)
        if self.mode == "multiply":
            return score * value, value != 1.0
        assert self.floor is not None
        return (0.0, True) if value < self.floor else (score, False)


def _check_gates(gates: Any) -> dict[str, Gate]:
    if not isinstance(gates, Mapping) or not gates:
        raise ConfigError(
            "WeightedSumAggregator.gates must be a non-empty dict {grader name: Gate | "
            f"{{mode: cap|multiply|floor, floor: x}}}} or None, got {gates!r}"
        )
    out: dict[str, Gate] = {}
    for k, g in gates.items():
        if isinstance(g, Gate):
            out[str(k)] = g
        elif isinstance(g, str):
            out[str(k)] = Gate(g)  # type: ignore[arg-type]
        elif isinstance(g, Mapping):
            unknown = sorted(set(g) - {"mode", "floor"})
            if unknown:
                raise ConfigError(
                    f"WeightedSumAggregator.gates[{k!r}]: unknown keys {unknown}; "
                    "allowed: mode, floor"
                )
            try:
                out[str(k)] = Gate(**g)
            except ConfigError as exc:
                raise ConfigError(f"WeightedSumAggregator.gates[{k!r}]: {exc}") from None
        else:
            raise ConfigError(
                f"WeightedSumAggregator.gates[{k!r}]={g!r}: give a Gate, a mode name or "
                "{mode: ..., floor: ...}"
            )
    return out


def _check_bounds(bounds: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(bounds, Mapping) or not bounds:
        raise ConfigError(
            "WeightedSumAggregator.bounds must be a non-empty dict {grader name: [low, high]} "
            f"or None, got {bounds!r}"
        )
    out: dict[str, tuple[float, float]] = {}
    for k, pair in bounds.items():
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
        if not ok or not all(math.isfinite(v) for v in pair) or not pair[0] < pair[1]:
            raise ConfigError(
                f"WeightedSumAggregator.bounds[{k!r}]={pair!r}: give [low, high], two finite "
                "numbers with low < high (the scores that count as worst and best)"
            )
        out[str(k)] = (float(pair[0]), float(pair[1]))
    return out


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
            ``"zero"`` needs every weighted grader bounded (a ``score_range``, or
            ``bounds`` here): on an unbounded scale 0 is not the worst score, so binding
            refuses it.
        bounds: ``{grader name: (low, high)}``, the range to normalise a grader by in
            place of its own ``score_range`` (for unbounded graders such as raw reward
            models); scores outside it are clipped to it.
        gates: ``{grader name: Gate | "cap" | "multiply" | {"mode": "floor", "floor":
            0.5}}``: constraints applied to the weighted mean, in order, from each gate
            grader's aligned value (on [0, 1]): ``cap`` (reward <= gate), ``multiply``
            (reward x gate), ``floor`` (reward = 0 when gate < floor). Unlike a weight, a
            gate cannot be traded away: with ``on_topic`` at weight 0.2 a policy that
            drops relevance to 0 still keeps 0.8 of the reward from the other graders;
            with ``gates={"on_topic": "cap"}`` it keeps at most 0. A gate grader needs no
            weight (with ``weights=None`` the equal weights leave the gates out); it must
            be bounded, and so must the reward. A gate grader that failed makes the row's
            reward a GraderError (under ``on_error="zero"`` it counts as 0); one that
            abstained applies no gate (listed in ``metadata["gates"]``).

    Bound (``bind``, done by ``GradingRunner``), it publishes what adapters need, so
    nothing outside this module re-derives normalisation: ``grader_weights`` (the
    normalised weights), ``score_ranges`` (the range each grader is normalised by) and
    ``aligned(grader, result)`` (a grader's value as this aggregator weighs it).
    Every result carries ``metadata["components"]``: ``{grader: aligned value}`` for
    each weighted grader that scored (failed ones as 0.0 under ``"zero"``).

    Abstentions (a grader that does not apply to the row, ``GraderAbstention``) are
    neither failures nor zeros: the row's reward is the weighted mean over the graders
    that applied, their weights rescaled to sum 1, whatever ``on_error`` says; they are
    listed in ``metadata["abstained"]``. A row where every weighted grader abstains is
    itself an abstention.
    """

    name: str = "reward"
    weights: Mapping[str, float] | None = None
    on_error: OnError = "error"
    bounds: Mapping[str, Sequence[float]] | None = None
    gates: Mapping[str, Any] | None = None
    _terms: dict[str, _Term] | None = field(default=None, init=False, repr=False)
    _weights: dict[str, float] = field(default_factory=dict, init=False, repr=False)

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
        if self.bounds is not None:
            self.bounds = _check_bounds(self.bounds)
        if self.gates is not None:
            self.gates = _check_gates(self.gates)

    def bind(self, graders: Mapping[str, Any]) -> WeightedSumAggregator:
        """A copy that knows the graders' ranges and directions; checks the names it is given."""
        gates = dict(self.gates or {})
        weights = self.weights or {n: 1.0 for n in graders if n not in gates}
        if not weights:
            raise ConfigError(
                f"WeightedSumAggregator {self.name!r}: every grader is a gate; weigh at least "
                "one grader (a gate only constrains the weighted mean)"
            )
        bounds = {k: (float(v[0]), float(v[1])) for k, v in (self.bounds or {}).items()}
        for what, names in (("weights", weights), ("bounds", bounds), ("gates", gates)):
            unknown = sorted(set(names) - set(graders))
            if unknown:
                raise ConfigError(
                    f"WeightedSumAggregator {self.name!r}: {what} name unknown graders "
                    f"{unknown}; graders are {sorted(graders)}"
                )
        terms: dict[str, _Term] = {}
        for n, g in graders.items():
            rng = getattr(g, "score_range", (0.0, 1.0))
            terms[n] = _Term(
                bounds.get(n, None if rng is None else (float(rng[0]), float(rng[1]))),
                bool(getattr(g, "higher_is_better", True)),
                n in bounds,
            )
        unbounded = sorted(n for n in weights if terms[n].score_range is None)
        if unbounded and self.on_error == "zero":
            raise ConfigError(
                f"WeightedSumAggregator {self.name!r}: on_error='zero' counts a failed grader "
                f"as its worst score, but {unbounded} have no score_range (unbounded), so 0 is "
                "not their worst; give them bounds, e.g. WeightedSumAggregator(bounds="
                f"{{{unbounded[0]!r}: (low, high)}}) (spec: `bounds: {{{unbounded[0]}: "
                "[low, high]}`), a bounded grader (a reward model with normalize='sigmoid'), "
                "or on_error='renormalize'/'error'"
            )
        open_gates = sorted(n for n in gates if terms[n].score_range is None)
        open_weights = sorted(n for n in weights if terms[n].score_range is None)
        if gates and (open_gates or open_weights):
            raise ConfigError(
                f"WeightedSumAggregator {self.name!r}: gates need bounded graders (a gate "
                "compares aligned values on [0, 1]), but "
                f"{open_gates + open_weights} have no score_range; give them bounds "
                "(`bounds: {name: [low, high]}`) or use a bounded grader"
            )
        total = math.fsum(weights.values())
        bound = replace(self)
        bound._terms = terms
        bound._weights = {n: w / total for n, w in weights.items()}
        return bound

    def _bound_terms(self) -> dict[str, _Term]:
        if self._terms is None:
            raise ConfigError(
                f"WeightedSumAggregator {self.name!r} is not bound to graders; pass it to "
                "GradingRunner(aggregators=...) or call .bind({name: grader})"
            )
        return self._terms

    @property
    def is_bound(self) -> bool:
        return self._terms is not None

    @property
    def grader_weights(self) -> Mapping[str, float]:
        """``{grader: weight}`` of the weighted graders, normalised to sum 1 (read-only)."""
        self._bound_terms()
        return MappingProxyType(self._weights)

    @property
    def score_ranges(self) -> Mapping[str, tuple[float, float] | None]:
        """``{grader: (low, high)}`` each bound grader is normalised by (None: unbounded)."""
        return MappingProxyType({n: t.score_range for n, t in self._bound_terms().items()})

    def aligned(self, grader: str, result: GraderResult | None) -> float | None:
        """``grader``'s value as this aggregator weighs it (None when it did not score).

        On [0, 1] with higher = better for bounded graders; an unbounded grader's raw
        score, sign-flipped when lower is better.
        """
        terms = self._bound_terms()
        term = terms.get(grader)
        if term is None:
            raise ConfigError(
                f"WeightedSumAggregator {self.name!r} has no grader {grader!r}; "
                f"graders are {sorted(terms)}"
            )
        if not isinstance(result, GraderScore):
            return None
        score = result.score
        if term.clip and term.score_range is not None:
            score = min(max(score, term.score_range[0]), term.score_range[1])
        return normalise_score(score, term.score_range, term.higher_is_better)

    @property
    def score_range(self) -> ScoreRange | None:
        """(0, 1) when every weighted grader is bounded (the weighted mean of [0, 1] values),
        else None: an unbounded grader's raw score passes through."""
        terms = self._bound_terms()
        if any(terms[n].score_range is None for n in self._weights):
            return None
        return (0.0, 1.0)

    higher_is_better = True

    def __call__(self, results: Mapping[str, GraderResult]) -> GraderResult:
        self._bound_terms()
        weights = self._weights
        components: dict[str, float] = {}
        failed: dict[str, str] = {}
        abstained: list[str] = []
        for n in weights:
            r = results.get(n)
            if isinstance(r, GraderAbstention):
                abstained.append(n)
                continue
            value = self.aligned(n, r)
            if value is not None:
                components[n] = value
            else:
                failed[n] = r.error if isinstance(r, GraderError) else "no result"
        meta: dict[str, Any] = {"components": components, "policy": self.on_error}
        if abstained:
            meta["abstained"] = abstained
        if failed:
            meta["failed"] = failed
            if self.on_error == "error":
                return GraderError(
                    self.name,
                    "graders failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()),
                    meta,
                )
            if self.on_error == "zero":  # published too: the worst score is what counted
                components.update(dict.fromkeys(failed, 0.0))
        if not components:
            if not failed:
                return GraderAbstention(
                    self.name, "every weighted grader abstained: " + ", ".join(abstained), meta
                )
            return GraderError(self.name, "every weighted grader failed", meta)
        wsum = math.fsum(weights[n] for n in components)
        score = math.fsum(weights[n] * v for n, v in components.items()) / wsum
        meta["used"] = sorted(components)
        meta["weights"] = {n: weights[n] / wsum for n in components}
        reason = "weighted mean of " + ", ".join(f"{n}={v:.3f}" for n, v in components.items())
        if self.gates:
            gated = self._apply_gates(score, results, meta)
            if isinstance(gated, GraderError):
                return gated
            if gated != score:
                reason += f"; gated {score:.3f} -> {gated:.3f}"
            score = gated
        return GraderScore(self.name, score, reason, meta)

    def _apply_gates(
        self, score: float, results: Mapping[str, GraderResult], meta: dict[str, Any]
    ) -> float | GraderError:
        """The weighted mean after every gate, in order (``metadata["gates"]`` says how)."""
        report: dict[str, dict[str, Any]] = {}
        meta["gates"] = report
        meta["ungated"] = score
        for n, gate in (self.gates or {}).items():
            r = results.get(n)
            if isinstance(r, GraderAbstention):
                report[n] = {"mode": gate.mode, "abstained": True, "applied": False}
                continue
            value = self.aligned(n, r)
            if value is None:
                if self.on_error != "zero":
                    why = r.error if isinstance(r, GraderError) else "no result"
                    return GraderError(self.name, f"gate {n!r} failed: {why}", meta)
                value = 0.0
            score, applied = gate.apply(score, value)
            report[n] = {"mode": gate.mode, "value": value, "applied": applied}
        return score


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
