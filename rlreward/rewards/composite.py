"""CompositeReward: several reward functions and positive weights -> one score per text.

Each function's raw score is normalised to [0, 1] by its declared range and direction
(``rlreward.aggregators.normalise_score``: lower-is-better functions are turned
around), then the weighted mean is taken with weights normalised to sum 1. This is what
reward-model training labels its texts with. Everything is validated at construction;
a function that raises during a call propagates its exception (offline data generation
must not invent scores).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from rlreward.aggregators import normalise_score
from rlreward.errors import ConfigError
from rlreward.rewards.base import RewardFunction, as_text_batch
from rlreward.rewards.registry import RewardRegistry
from rlreward.rewards.wrap import as_reward_function

__all__ = ["CompositeReward", "CompositeScores", "compute_composite"]

FunctionLike = str | RewardFunction | Callable[..., Any]


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
    if isinstance(weights, (str, bytes, Mapping)) or not isinstance(weights, Sequence):
        raise ConfigError(
            f"weights must be a list of numbers, one per reward function, got {weights!r}"
        )
    if len(weights) != len(names):
        raise ConfigError(
            f"got {len(weights)} weights for {len(names)} reward functions ({', '.join(names)}); "
            "give one weight per function, or none for equal weights"
        )
    for i, (n, w) in enumerate(zip(names, weights, strict=False)):
        ok = isinstance(w, (int, float)) and not isinstance(w, bool)
        if not ok or not math.isfinite(w) or w <= 0:
            raise ConfigError(
                f"weights[{i}]={w!r} for reward function {n!r}: weights must be finite "
                "numbers > 0 (drop a function instead of giving it weight 0)"
            )
    total = math.fsum(weights)
    return {n: float(w) / total for n, w in zip(names, weights, strict=False)}


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
    _fns: dict[str, RewardFunction] = field(init=False, repr=False, compare=False)
    _weights: dict[str, float] = field(init=False, repr=False, compare=False)

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
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ConfigError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
        step = batch_size or max(n, 1)
        raw: dict[str, list[float]] = {k: [] for k in self._fns}
        starts = range(0, n, step)
        for s in tqdm(starts, desc="reward functions", unit="batch", disable=not show_progress):
            chunk = batch[s : s + step]
            pc = None if p is None else p[s : s + step]
            rc = None if r is None else r[s : s + step]
            for k, fn in self._fns.items():
                kw: dict[str, Any] = {}
                if pc is not None and (fn.needs_prompt or fn.uses_prompt):
                    kw["prompts"] = pc
                if rc is not None and (fn.needs_reference or fn.uses_reference):
                    kw["references"] = rc
                raw[k].extend(fn(chunk, **kw))
        normalised = {
            k: [normalise_score(x, fn.score_range, fn.higher_is_better) for x in raw[k]]
            for k, fn in self._fns.items()
        }
        w = self._weights
        cols = [(w[k], normalised[k]) for k in self._fns]
        composite = [math.fsum(wk * col[i] for wk, col in cols) for i in range(n)]
        return CompositeScores(self.names, dict(w), raw, normalised, composite)

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
