"""Validators shared by the training configs, the trainer and its settings.

Each raises a ConfigError naming the owner and field, the offending value, and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rlreward.checks import number_rule, short_repr, weight_list_rule
from rlreward.errors import ConfigError

__all__ = [
    "MIN_TRAINING_TEXTS",
    "OBJECTIVES",
    "SEED_HYPERPARAMETERS",
    "check_hyperparameters",
    "check_number",
    "nonempty_str",
    "validate_reward_functions",
    "validate_texts",
    "validate_weights",
]

MIN_TRAINING_TEXTS = 10
OBJECTIVES = ("regression", "pairwise")
#: the seed's training hyperparameters (config fields and train_reward_model arguments)
SEED_HYPERPARAMETERS = (
    "num_epochs",
    "learning_rate",
    "batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "eval_fraction",
)

RewardFunctionRef = Any  # a registry name, a RewardFunction, or a batch callable


def nonempty_str(owner: str, name: str, value: Any, fix: str) -> str:
    """A required string (or path) field; empty or missing is a ConfigError with ``fix``."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
        raise ConfigError(
            f"{owner}.{name} is required and must be a non-empty string, got "
            f"{short_repr(value)}; {fix}"
        )
    return os.fspath(value)


def validate_texts(owner: str, name: str, texts: Any, *, min_count: int = 0) -> list[str]:
    """A list of str with at least ``min_count`` items, else a ConfigError saying which."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ConfigError(
            f"{owner}.{name} must be a list of strings, got {type(texts).__name__} "
            f"{short_repr(texts)}"
        )
    out = list(texts)
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        i = bad[0]
        raise ConfigError(
            f"{owner}.{name}[{i}] must be a str, got {type(out[i]).__name__} {short_repr(out[i])}"
            f" ({len(bad)} non-str item(s)); convert them to text"
        )
    if not out and min_count:
        raise ConfigError(f"{owner}.{name} is empty; give at least {min_count} texts")
    if len(out) < min_count:
        raise ConfigError(
            f"{owner}.{name} has {len(out)} texts; at least {min_count} are needed "
            "(100+ recommended): add more texts, e.g. rlreward.data.load_reward_texts()"
        )
    return out


def validate_reward_functions(owner: str, name: str, functions: Any) -> list[RewardFunctionRef]:
    """Names must exist in the RewardRegistry (the error lists them); objects must be callable."""
    if isinstance(functions, str) or callable(functions) or not isinstance(functions, Sequence):
        raise ConfigError(
            f"{owner}.{name} must be a list of reward-function names or callables, "
            f"got {short_repr(functions)}; e.g. {name}=['length', 'sentiment']"
        )
    funcs = list(functions)
    if not funcs:
        raise ConfigError(
            f"{owner}.{name} is empty; give at least one, e.g. ['length', 'sentiment']"
        )
    from rlreward.rewards.registry import RewardRegistry

    registry = RewardRegistry()
    known = registry.list_reward_functions()
    for i, fn in enumerate(funcs):
        if isinstance(fn, str):
            if fn not in known:
                raise ConfigError(
                    f"{owner}.{name}[{i}]: unknown reward function {fn!r}; known: "
                    f"{', '.join(known)} "
                    "(or register your own with rlreward.rewards.registry.register_reward_function)"
                )
        elif not callable(fn):
            raise ConfigError(
                f"{owner}.{name}[{i}] must be a registry name or a callable "
                "fn(response, ...) -> float (see docs/grading.md, 'Your own function'), got "
                f"{type(fn).__name__}"
            )
        else:  # the grader every entrance builds from it: its convention is checked now
            from rlreward.graders.registry import as_grader

            try:
                as_grader(fn)
            except ConfigError as exc:
                raise ConfigError(f"{owner}.{name}[{i}]: {exc}") from None
    names = [
        fn if isinstance(fn, str) else getattr(fn, "name", getattr(fn, "__name__", ""))
        for fn in funcs
    ]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{owner}.{name} lists {dupes} more than once; give each function once")
    return funcs


def validate_weights(owner: str, name: str, weights: Any, n_functions: int) -> list[float] | None:
    """None (equal weights) or one positive finite number per function."""
    if weights is None:
        return None
    problem = weight_list_rule(weights, n_functions, f"{owner}.{name}")
    if problem is not None:
        raise ConfigError(problem)
    return [float(w) for w in weights]


def check_number(
    owner: str, name: str, value: Any, *, integer: bool, low: float, low_ok: bool
) -> None:
    """A finite number (an int when ``integer``) above ``low`` (or equal when ``low_ok``)."""
    allowed = number_rule(value, integer=integer, low=low, low_inclusive=low_ok)
    if allowed is not None:
        raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; use {allowed}")


def check_fraction(owner: str, name: str, value: Any) -> None:
    """A number in [0, 1)."""
    allowed = number_rule(value, low=0, high=1, high_inclusive=False)
    if allowed is not None:
        raise ConfigError(f"{owner}.{name} = {short_repr(value)} is not allowed; use {allowed}")


def check_hyperparameters(owner: str, values: dict[str, Any]) -> None:
    """Check the training hyperparameters present in ``values`` (None learning rates are ok:
    they mean the default)."""
    positive = ("num_epochs", "learning_rate", "head_learning_rate")
    at_least_one = ("batch_size", "gradient_accumulation_steps", "logging_steps")
    for name, value in values.items():
        if name == "head_learning_rate" and value is not None:
            allowed = number_rule(value, low=0, low_inclusive=False)
            if allowed is not None:
                raise ConfigError(
                    f"{owner}.head_learning_rate = {value!r} is not allowed; use {allowed} "
                    "(the reward head's learning rate, e.g. 1e-3) or None for the default"
                )
        elif name in positive and not (name.endswith("learning_rate") and value is None):
            check_number(owner, name, value, integer=False, low=0, low_ok=False)
        elif name in at_least_one:
            check_number(owner, name, value, integer=True, low=1, low_ok=True)
        elif name == "max_length":
            check_number(owner, name, value, integer=True, low=8, low_ok=True)
        elif name == "weight_decay":
            check_number(owner, name, value, integer=False, low=0, low_ok=True)
        elif name in ("eval_fraction", "warmup_ratio"):
            check_fraction(owner, name, value)
        elif name == "objective" and value not in OBJECTIVES:
            raise ConfigError(
                f"{owner}.objective = {value!r} is not allowed; use one of {list(OBJECTIVES)}"
            )
        elif name == "min_spearman" and value is not None:
            allowed = number_rule(value, low=-1, high=1)
            if allowed is not None:
                raise ConfigError(
                    f"{owner}.min_spearman = {short_repr(value)} is not allowed; use {allowed} "
                    "(a held-out Spearman to require) or None"
                )
