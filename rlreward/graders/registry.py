"""The one registry of grader types: every ``type:`` a reward spec may name.

One table (``GRADER_TYPES``, read-only), two kinds of entries:

- grader classes (``GRADER_CLASSES``): ``function`` (a user's function), the LLM judges,
  ``rubric``, ``reward_model``, and ``reward_function`` (a rule function named by
  ``function:``), as ``"module:attr"`` strings imported on use, so listing types imports
  nothing heavy; a floor above adds the types it builds with ``register_grader_class``
  (the spec's nested ``reward``);
- every rule function of the process-wide ``RewardRegistry`` by its own name: the
  built-ins and whatever ``register_reward_function`` added
  (``{type: length, params: {target_min: 20}}``). Their names are read from
  rewards/registry.py's table at each lookup: it is the one source of truth for rule
  functions, and ``RewardRegistry().get_reward_function("length")`` (the seed's API) is
  the view of the same functions as batch-first ``RewardFunction`` objects.

A rule function's grader comes from ``rule_function_grader``: a RewardFunctionGrader for
a RewardFunction, and for a user's plain function the FunctionGrader that every other
entrance builds from it too (a spec's ``callable:``, ``GraderConfig(fn)``,
``create_rl_trainer(reward_functions=[fn])``). ``as_grader`` is what a list of "reward
functions" (names, RewardFunction objects, plain functions) turns each item into.

A registered rule function may not take the name of a grader class: that name would
mean two graders, and ``check_type`` refuses it where a spec uses it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from rlreward.callables import signature_params
from rlreward.errors import ConfigError, UnknownNameError
from rlreward.graders.function import FunctionGrader
from rlreward.graders.reward_function import RewardFunctionGrader
from rlreward.rewards.base import RewardFunction
from rlreward.rewards.registry import RewardRegistry
from rlreward.rewards.wrap import CallableReward

__all__ = [
    "GRADER_CLASSES",
    "GRADER_TYPES",
    "RULE_FUNCTION_BUILDER",
    "as_grader",
    "check_type",
    "function_grader",
    "grader_class",
    "is_rule_function",
    "register_grader_class",
    "rule_function_grader",
]

#: grader ``type`` -> "module:attr" of its class, for every type that is not a rule function
GRADER_CLASSES: dict[str, str] = {
    "function": "rlreward.graders.function:FunctionGrader",
    "reward_function": "rlreward.graders.reward_function:RewardFunctionGrader",
    "reward_model": "rlreward.graders.reward_model:RewardModelGrader",
    "harmfulness": "rlreward.graders.judges:HarmfulnessGrader",
    "relevance": "rlreward.graders.judges:RelevanceGrader",
    "correctness": "rlreward.graders.judges:CorrectnessGrader",
    "instruction_following": "rlreward.graders.judges:InstructionFollowingGrader",
    "hallucination": "rlreward.graders.judges:HallucinationGrader",
    "rubric": "rlreward.graders.judges:RubricGrader",
    # group judges (issue 19): one group of rollouts per call
    "listwise_judge": "rlreward.graders.group_judges:ListwiseJudgeGrader",
    "pairwise_judge": "rlreward.graders.group_judges:PairwiseJudgeGrader",
}
_REF = "reference_response"
#: what builds a rule-function type (``rule_function_grader`` below)
RULE_FUNCTION_BUILDER = "rlreward.graders.registry:rule_function_grader"


class _GraderTypes(Mapping[str, str]):
    """grader type -> "module:attr" of what builds it; rule functions read live."""

    def __getitem__(self, kind: str) -> str:
        if kind in GRADER_CLASSES:
            return GRADER_CLASSES[kind]
        if isinstance(kind, str) and kind in RewardRegistry():
            return RULE_FUNCTION_BUILDER
        raise KeyError(kind)

    def __iter__(self) -> Iterator[str]:
        yield from GRADER_CLASSES
        yield from (n for n in RewardRegistry().list_reward_functions() if n not in GRADER_CLASSES)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, kind: object) -> bool:
        return kind in GRADER_CLASSES or kind in RewardRegistry()

    def __repr__(self) -> str:
        return f"GRADER_TYPES({', '.join(sorted(self))})"


#: the one table of grader types (read-only; rule functions join by registration)
GRADER_TYPES: Mapping[str, str] = _GraderTypes()


def register_grader_class(kind: str, ref: str) -> None:
    """Add a grader class to the table by ``"module:attr"``: how a floor above graders adds
    a type it builds (the spec's nested ``{type: reward, spec: ...}``). A name that is
    taken, by a class or a rule function, is a ConfigError; registering the same ref
    again is a no-op."""
    if GRADER_CLASSES.get(kind) == ref:
        return
    if kind in GRADER_TYPES:
        raise ConfigError(f"grader type {kind!r} is already registered; choose another name")
    if ":" not in ref:
        raise ConfigError(f"grader type {kind!r}: ref must look like 'package.module:Class'")
    GRADER_CLASSES[kind] = ref


def is_rule_function(kind: str) -> bool:
    """True when ``kind`` names a rule function (not a grader class)."""
    return kind not in GRADER_CLASSES and kind in RewardRegistry()


def check_type(kind: Any, where: str) -> str:
    """``kind`` if it names exactly one grader type; else UnknownNameError / ConfigError."""
    if not isinstance(kind, str) or kind not in GRADER_TYPES:
        raise UnknownNameError(f"grader type (in {where})", str(kind), sorted(GRADER_TYPES))
    if kind in GRADER_CLASSES and kind in RewardRegistry():
        raise ConfigError(
            f"{where}: {kind!r} names both a built-in grader type and a reward function "
            "registered under that name; register the function under another name"
        )
    return kind


def grader_class(kind: str) -> Callable[..., Any]:
    """The class (or builder) of a grader type, imported now."""
    module, _, attr = GRADER_TYPES[kind].partition(":")
    builder: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return builder


def function_grader(
    reward: CallableReward, name: str | None = None, max_batch_size: int | None = None
) -> FunctionGrader:
    """The FunctionGrader of a user's function registered as a reward function: the grader
    ``FunctionGrader(fn)`` is (the same fields, from its signature), with the registered
    range, direction and batching; ``params`` are bound with ``partial`` (they are no
    longer fields), and ``needs_prompt`` / ``needs_reference`` make ``query`` /
    ``reference_response`` required."""
    sig = signature_params(reward.fn)
    bound = set(reward.params)
    required = [f for f in sig.required if f not in bound]
    optional = [f for f in sig.optional if f not in bound]
    for needed, field in ((reward.needs_prompt, "query"), (reward.needs_reference, _REF)):
        if needed and field not in required:
            required.append(field)
            optional = [f for f in optional if f != field]
    fields: dict[str, Any] = {}
    if bound or (required, optional) != (list(sig.required), list(sig.optional)):
        fields = {"required_fields": required, "optional_fields": optional}
    if max_batch_size is not None:
        fields["max_batch_size"] = max_batch_size
    grader = FunctionGrader(
        partial(reward.fn, **reward.params) if bound else reward.fn,
        name=name or reward.name,
        score_range=reward.score_range,
        higher_is_better=reward.higher_is_better,
        batched=bool(reward.batched),
        **fields,
    )
    grader.accepts_any_fields = sig.var_keyword
    return grader


def rule_function_grader(
    function: str,
    name: str | None = None,
    *,
    registry: RewardRegistry | None = None,
    max_batch_size: int | None = None,
    **params: Any,
) -> Any:
    """The grader of the rule function registered as ``function``, configured by ``params``."""
    fn = (registry or RewardRegistry()).get_reward_function(function, **params)
    return _reward_grader(fn, name, max_batch_size)


def _reward_grader(fn: RewardFunction, name: str | None, max_batch_size: int | None) -> Any:
    if isinstance(fn, CallableReward):
        return function_grader(fn, name, max_batch_size)
    options: dict[str, Any] = {} if max_batch_size is None else {"max_batch_size": max_batch_size}
    return RewardFunctionGrader(fn, name=name or fn.name, **options)


def as_grader(obj: Any, name: str | None = None, registry: RewardRegistry | None = None) -> Any:
    """The grader of one item of a reward-function list.

    A registry name -> its rule function's grader; a RewardFunction (class or instance)
    -> RewardFunctionGrader; a user's function -> FunctionGrader (the grader a spec's
    ``callable:`` builds from it); a grader -> itself.
    """
    if isinstance(obj, str):
        return rule_function_grader(obj, name, registry=registry)
    if isinstance(obj, RewardFunction):
        return _reward_grader(obj, name, None)
    if isinstance(obj, type) and issubclass(obj, RewardFunction):
        return _reward_grader(obj(), name, None)
    if hasattr(obj, "aevaluate") and hasattr(obj, "score_range"):
        return obj
    if callable(obj):
        return FunctionGrader(obj, name=name)
    raise ConfigError(
        "expected a reward function name, a RewardFunction, a grader or a function "
        f"fn(response, ...) -> float, got {type(obj).__name__} {obj!r:.60}"
    )
