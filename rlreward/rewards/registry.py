"""RewardRegistry: reward functions by name, built-ins plus the user's own.

This table is where the rule functions of the one grader registry live
(``rlreward.graders.registry.GRADER_TYPES`` lists every grader type: the grader classes
plus every name here), and ``RewardRegistry`` is its seed-compatible view: a name gives a
batch-first ``RewardFunction`` (``get_reward_function("length")``). Every
``RewardRegistry()`` shares one process-wide table, so a function registered anywhere
(``@register_reward_function("mine")``) is visible to every registry, to
``CompositeReward(["mine", ...])``, to reward-model training, to ``create_rl_trainer``
and to reward specs (``{type: mine}``).
``RewardRegistry(shared=False)`` is a private table holding the built-ins only (what
tests use to stay isolated). Built-ins are stored as ``"module:Class"`` strings and
imported on first use, so listing names imports nothing heavy.

Names are matched exactly: an unknown name raises UnknownNameError listing the known
names; there is no prefix or fuzzy guessing.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from rlreward.callables import signature_params
from rlreward.errors import ConfigError, UnknownNameError
from rlreward.rewards.base import RewardFunction
from rlreward.rewards.wrap import REWARD_FIELDS, CallableReward

__all__ = [
    "BUILTIN_REWARD_FUNCTIONS",
    "RewardRegistry",
    "get_reward_function",
    "list_reward_functions",
    "register_reward_function",
]

F = TypeVar("F", bound=Callable[..., Any])

#: name -> "module:Class" of every built-in reward function.
BUILTIN_REWARD_FUNCTIONS: dict[str, str] = {
    "length": "rlreward.rewards.length:LengthReward",
    "sentiment": "rlreward.rewards.sentiment:SentimentReward",
    "safety": "rlreward.rewards.safety:SafetyReward",
    "coherence": "rlreward.rewards.coherence:CoherenceReward",
    "helpfulness": "rlreward.rewards.helpfulness:HelpfulnessReward",
    "refusal": "rlreward.rewards.refusal:RefusalReward",
    "repetition": "rlreward.rewards.diversity:RepetitionReward",
    "distinct_n": "rlreward.rewards.diversity:DistinctNReward",
    "format": "rlreward.rewards.format:FormatReward",
    "exact_match": "rlreward.rewards.reference:ExactMatchReward",
    "math_answer": "rlreward.rewards.reference:MathAnswerReward",
    "bleu": "rlreward.rewards.reference:BleuReward",
    "rouge": "rlreward.rewards.reference:RougeReward",
    "readability": "rlreward.rewards.readability:ReadabilityReward",
    "semantic_relevance": "rlreward.rewards.semantic:SemanticRelevanceReward",
    "semantic_similarity": "rlreward.rewards.semantic:SemanticSimilarityReward",
}

Entry = Any  # "module:Class" | RewardFunction subclass | RewardFunction instance
_DEFAULT_TABLE: dict[str, Entry] = dict(BUILTIN_REWARD_FUNCTIONS)


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _init_params(cls: type) -> list[str] | None:
    """Constructor parameters of a dataclass reward (None when not a dataclass)."""
    if not dataclasses.is_dataclass(cls):
        return None
    return [f.name for f in dataclasses.fields(cls) if f.init]


class RewardRegistry:
    """Look up, list and register reward functions.

    Args:
        shared: use the process-wide table (default). ``False`` gives a private table
            with the built-ins only; registrations on it stay private.
    """

    def __init__(self, *, shared: bool = True) -> None:
        self._table: dict[str, Entry] = _DEFAULT_TABLE if shared else dict(BUILTIN_REWARD_FUNCTIONS)

    def list_reward_functions(self) -> list[str]:
        """Sorted names of every registered reward function."""
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def _entry(self, name: str) -> Entry:
        """The table's entry for ``name``, a built-in's class imported now."""
        if name not in self._table:
            raise UnknownNameError("reward function", name, self._table)
        entry = self._table[name]
        if isinstance(entry, str):
            entry = self._table[name] = _load(entry)
        return entry

    def get_reward_function(self, name: str, **params: Any) -> RewardFunction:
        """A ready reward function; ``params`` configure it (unknown ones are an error)."""
        if not isinstance(name, str):
            raise ConfigError(
                f"reward function name must be a str, got {type(name).__name__} {name!r}"
            )
        entry = self._entry(name)
        if isinstance(entry, type) and issubclass(entry, RewardFunction):
            allowed = _init_params(entry)
            if allowed is not None:
                unknown = sorted(set(params) - set(allowed))
                if unknown:
                    raise ConfigError(
                        f"reward function {name!r} has no parameter(s) {unknown}; its parameters: "
                        f"{', '.join(allowed) or '(none)'}"
                    )
            fn = entry(**params)
            if fn.name != name:
                fn.name = name
            return fn
        if isinstance(entry, CallableReward):
            return (
                dataclasses.replace(entry, params={**entry.params, **params}) if params else entry
            )
        if params:
            raise ConfigError(
                f"reward function {name!r} was registered as a ready instance and takes no "
                f"parameters; got {sorted(params)}"
            )
        return entry

    def register(
        self,
        name: str,
        fn: Any = None,
        *,
        overwrite: bool = False,
        batched: bool | None = None,
        score_range: tuple[float, float] = (0.0, 1.0),
        higher_is_better: bool = True,
        needs_prompt: bool = False,
        needs_reference: bool = False,
    ) -> Any:
        """Register ``fn`` under ``name``; without ``fn``, return a decorator.

        ``fn`` is a RewardFunction subclass (built with the params given to
        ``get_reward_function``), a RewardFunction instance, or a user's function by the
        one calling convention: ``fn(response, query=None, reference_response=None)``
        receiving the fields it names, called once per text unless declared batched
        (``batched=True`` or ``@rlreward.batched``: each field is then a list). The
        keyword options describe a plain function (see ``rlreward.rewards.wrap``).
        """
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ConfigError(
                "reward function name must be a non-empty string without surrounding spaces, "
                f"got {name!r}"
            )
        options: dict[str, Any] = {
            "batched": batched,
            "score_range": score_range,
            "higher_is_better": higher_is_better,
            "needs_prompt": needs_prompt,
            "needs_reference": needs_reference,
        }
        if fn is None:

            def decorator(f: F) -> F:
                self.register(name, f, overwrite=overwrite, **options)
                return f

            return decorator
        if name in self._table and not overwrite:
            raise ConfigError(
                f"reward function {name!r} is already registered; pass overwrite=True to "
                "replace it, or choose another name"
            )
        if isinstance(fn, type) and issubclass(fn, RewardFunction):
            entry: Entry = fn
        elif isinstance(fn, RewardFunction):
            entry = fn
        elif callable(fn):
            entry = CallableReward(fn, name=name, **options)
        else:
            raise ConfigError(
                f"register({name!r}, ...): expected a RewardFunction class or instance or a "
                f"callable, got {type(fn).__name__}"
            )
        self._table[name] = entry
        return fn

    def parameters(self, name: str) -> list[str] | None:
        """The parameters ``get_reward_function(name, **params)`` accepts; None when any
        keyword is accepted (a class or function taking ``**kwargs``)."""
        entry = self._entry(name)
        if isinstance(entry, type):
            sig = signature_params(entry)
        elif isinstance(entry, CallableReward):
            sig = signature_params(entry.fn)
        else:
            return []  # a ready instance
        return None if sig.var_keyword else [n for n in sig.names if n not in REWARD_FIELDS]

    def unregister(self, name: str) -> None:
        """Remove ``name`` (built-ins included); unknown names raise UnknownNameError."""
        if name not in self._table:
            raise UnknownNameError("reward function", name, self._table)
        del self._table[name]

    def __repr__(self) -> str:
        shared = self._table is _DEFAULT_TABLE
        return f"RewardRegistry({len(self._table)} functions, shared={shared})"


def list_reward_functions() -> list[str]:
    """Names in the process-wide registry."""
    return RewardRegistry().list_reward_functions()


def get_reward_function(name: str, **params: Any) -> RewardFunction:
    """``RewardRegistry().get_reward_function(name, **params)``."""
    return RewardRegistry().get_reward_function(name, **params)


def register_reward_function(name: str, fn: Any = None, **options: Any) -> Any:
    """Register in the process-wide registry (decorator when ``fn`` is omitted)."""
    return RewardRegistry().register(name, fn, **options)
