"""CallableReward: a user's function, written by the one calling convention, seen as a
RewardFunction (the batch-first ``fn(texts, *, prompts=None, references=None)`` API
that reward-model training and the seed's ``RewardRegistry`` hand out).

The convention is the one every entrance uses (``rlreward.callables``; docs/grading.md,
"Your own function"): the function receives the fields ``response`` (the text),
``query`` (its prompt) and ``reference_response`` (its reference) by name, the ones its
signature names; a function declared batched (``@rlreward.batched`` or
``batched=True``) receives each as a list and returns one score per text, any other is
called once per text. A parameter of the old convention (``text``, ``texts``,
``prompts``...) in an undeclared function is a ConfigError naming the renames. Scores
the function returns are checked (count, finite, inside the declared range).

As a grader the same function is a ``FunctionGrader`` (``rlreward.graders.registry``
builds one from a CallableReward), so a spec, ``create_rl_trainer`` and a registry name
all grade with the same object.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rlreward.callables import resolve_batched, signature_params
from rlreward.errors import ConfigError
from rlreward.rewards.base import RewardFunction
from rlreward.schema import check_score_range

__all__ = ["REWARD_FIELDS", "CallableReward", "as_reward_function"]

#: the fields a reward function receives: (text, prompt, reference) by their row names
REWARD_FIELDS = ("response", "query", "reference_response")


@dataclass
class CallableReward(RewardFunction):
    """Wrap a user's function (see the module docstring) as a RewardFunction.

    ``params`` are passed to ``fn`` as keyword arguments on every call. The wrapper
    pickles when ``fn`` does (a module-level function does; a lambda does not).
    ``needs_prompt`` / ``needs_reference`` make an optional ``query`` /
    ``reference_response`` parameter required.
    """

    fn: Callable[..., Any]
    name: str = ""
    batched: bool | None = None
    score_range: tuple[float, float] = (0.0, 1.0)
    higher_is_better: bool = True
    needs_prompt: bool = False
    needs_reference: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(f"reward function must be callable, got {type(self.fn).__name__}")
        if not self.name:
            self.name = getattr(self.fn, "__name__", None) or type(self.fn).__name__
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"reward function name must be a non-empty string, got {self.name!r}")
        owner = f"reward function {self.name!r}"
        rng = check_score_range(self.score_range, owner)
        if rng is None:
            raise ConfigError(
                f"{owner}: score_range must be a bounded (low, high) pair (composites "
                "normalise by it)"
            )
        self.score_range = rng
        self.batched = resolve_batched(self.fn, self.batched, owner)
        sig = signature_params(self.fn)
        names, var_kw = set(sig.names), sig.var_keyword
        fields = sorted(k for k in self.params if k in REWARD_FIELDS)
        unknown = sorted(k for k in self.params if k not in names and not var_kw)
        if fields or unknown:
            what = (
                f"fields {fields} come from each row" if fields else f"unknown parameters {unknown}"
            )
            takes = [n for n in sig.names if n not in REWARD_FIELDS]
            raise ConfigError(
                f"{owner}: {what}; {getattr(self.fn, '__name__', 'the function')} takes the "
                f"parameters {takes}"
            )
        others = [n for n in sig.required if n not in REWARD_FIELDS and n not in self.params]
        if others:
            raise ConfigError(
                f"{owner}: required parameter(s) {others} are not fields a reward function "
                f"receives ({', '.join(REWARD_FIELDS)}); give them a default, pass them as "
                "params, or grade other row fields with a FunctionGrader and a mapper"
            )
        if "response" not in names and not var_kw:
            raise ConfigError(
                f"{owner}: the function must take the text as its `response` parameter "
                f"(it takes {list(sig.names)})"
            )
        self._accepts = {f: var_kw or f in names for f in REWARD_FIELDS}
        self.needs_prompt = self.needs_prompt or "query" in sig.required
        self.needs_reference = self.needs_reference or "reference_response" in sig.required
        self.uses_prompt = self.needs_prompt or self._accepts["query"]
        self.uses_reference = self.needs_reference or self._accepts["reference_response"]

    def _score_batch(
        self, texts: list[str], prompts: list[str] | None, references: list[str] | None
    ) -> list[float]:
        columns: dict[str, list[str]] = {"response": texts}
        for key, values in (("query", prompts), ("reference_response", references)):
            if values is not None and self._accepts[key]:
                columns[key] = values
        if self.batched:
            out = self.fn(**columns, **self.params)
        else:
            out = [
                self.fn(**{k: v[i] for k, v in columns.items()}, **self.params)
                for i in range(len(texts))
            ]
        return self._check(out, len(texts))

    def _check(self, out: Any, n: int) -> list[float]:
        try:
            scores = [float(s) for s in out]
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"reward function {self.name!r} must return numbers, got {out!r:.80} ({exc})"
            ) from None
        if len(scores) != n:
            raise ValueError(
                f"reward function {self.name!r} returned {len(scores)} scores for {n} texts"
            )
        low, high = self.score_range
        for i, s in enumerate(scores):
            if not (math.isfinite(s) and low <= s <= high):
                raise ValueError(
                    f"reward function {self.name!r}: score {s!r} for text {i} is not finite or "
                    f"outside its declared range [{low}, {high}]"
                )
        return scores


def as_reward_function(obj: Any, name: str | None = None) -> RewardFunction:
    """A RewardFunction instance from an instance, a RewardFunction class or a callable."""
    if isinstance(obj, RewardFunction):
        return obj
    if isinstance(obj, type) and issubclass(obj, RewardFunction):
        return obj()
    if callable(obj):
        return CallableReward(obj, name=name or "")
    raise ConfigError(
        "expected a reward function name, RewardFunction or callable, "
        f"got {type(obj).__name__} {obj!r:.60}"
    )
