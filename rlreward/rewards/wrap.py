"""CallableReward: a plain user function as a RewardFunction.

Two shapes are accepted:

- batched: ``fn(texts, *, prompts=None, references=None) -> list[float]``;
- single-text: ``fn(text) -> float`` (optionally ``fn(text, prompt=..., reference=...)``),
  called once per text.

Which one a function is comes from ``batched=True/False`` when given; otherwise from its
signature: it is batched when its first parameter is named ``texts`` / ``completions``
or it has a ``prompts`` or ``references`` parameter, and single-text otherwise. Scores
a user function returns are checked (count, finite, inside the declared range).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rlreward.callables import signature_params
from rlreward.errors import ConfigError
from rlreward.rewards.base import RewardFunction
from rlreward.schema import check_score_range

__all__ = ["CallableReward", "as_reward_function"]

_BATCH_FIRST = ("texts", "completions")


def _params(fn: Callable[..., Any]) -> tuple[list[str], bool]:
    """(parameter names, accepts **kwargs), by ``rlreward.callables``."""
    sig = signature_params(fn)
    return list(sig.names), sig.var_keyword


def detect_batched(fn: Callable[..., Any]) -> bool:
    """True if ``fn`` looks like ``fn(texts, *, prompts=None, references=None)``."""
    names, _ = _params(fn)
    return bool(names) and (names[0] in _BATCH_FIRST or "prompts" in names or "references" in names)


@dataclass
class CallableReward(RewardFunction):
    """Wrap ``fn`` (batched or single-text, see the module docstring) as a RewardFunction.

    ``params`` are passed to ``fn`` as keyword arguments on every call. The wrapper
    pickles when ``fn`` does (a module-level function does; a lambda does not).
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
        rng = check_score_range(self.score_range, f"reward function {self.name!r}")
        if rng is None:
            raise ConfigError(
                f"reward function {self.name!r}: score_range must be a bounded (low, high) "
                "pair (composites normalise by it)"
            )
        self.score_range = rng
        if self.batched is None:
            self.batched = detect_batched(self.fn)
        names, var_kw = _params(self.fn)
        unknown = sorted(k for k in self.params if k not in names)
        if unknown and not var_kw:
            raise ConfigError(
                f"reward function {self.name!r}: unknown parameters {unknown}; "
                f"{getattr(self.fn, '__name__', 'the function')} takes {names}"
            )
        self._accepts = {
            k: var_kw or k in names for k in ("prompts", "references", "prompt", "reference")
        }
        self.uses_prompt = (
            self.needs_prompt or self._accepts["prompts" if self.batched else "prompt"]
        )
        self.uses_reference = (
            self.needs_reference or self._accepts["references" if self.batched else "reference"]
        )

    def _score_batch(
        self, texts: list[str], prompts: list[str] | None, references: list[str] | None
    ) -> list[float]:
        kw = dict(self.params)
        acc = self._accepts
        if self.batched:
            if prompts is not None and acc["prompts"]:
                kw["prompts"] = prompts
            if references is not None and acc["references"]:
                kw["references"] = references
            out = self.fn(texts, **kw)
        else:
            fn = self.fn
            use_p = prompts is not None and acc["prompt"]
            use_r = references is not None and acc["reference"]
            if not (use_p or use_r):
                out = [fn(t, **kw) for t in texts]
            else:
                out = []
                for i, t in enumerate(texts):
                    if use_p:
                        kw["prompt"] = prompts[i]  # type: ignore[index]
                    if use_r:
                        kw["reference"] = references[i]  # type: ignore[index]
                    out.append(fn(t, **kw))
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
