"""The one place a user's callable is inspected: its parameters, whether it is async, and
whether it is batched.

The calling convention of a user's function (docs/grading.md, "Your own function"): it
receives row fields by name (``response``, ``query``, ``reference_response`` or any
mapped field) and returns a score; whether it is batched is DECLARED, with ``@batched``
or a ``batched=`` argument, never guessed from a parameter name. A batched function
receives each field as a list (one item per row) and returns one score per row.

``FunctionGrader`` reads a callable's parameters as the fields it needs and
``CallableReward`` (the same function seen as a RewardFunction) passes it the same
fields; both ask this module, so a callable is understood the same way by both. The
functions of the convention before this one (``fn(text)``, ``fn(texts, *, prompts=None,
references=None)``, TRL's ``completions``) are refused with the renames that fix them
(``legacy_parameters``), never reinterpreted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rlreward.errors import ConfigError

__all__ = [
    "LEGACY_PARAMETERS",
    "SignatureParams",
    "batched",
    "declared_batched",
    "is_async_callable",
    "legacy_parameters",
    "resolve_batched",
    "signature_annotations",
    "signature_params",
]

F = TypeVar("F", bound=Callable[..., Any])

#: the attribute ``@batched`` sets on a function
_BATCHED_ATTR = "__rlreward_batched__"

#: parameter names of the old reward-function convention -> the field that replaced them
LEGACY_PARAMETERS: dict[str, str] = {
    "text": "response",
    "texts": "response",
    "completions": "response",
    "prompt": "query",
    "prompts": "query",
    "reference": "reference_response",
    "references": "reference_response",
}


@dataclass(frozen=True)
class SignatureParams:
    """The keyword-passable parameters of a callable.

    ``known`` is False for a callable without an inspectable signature (some builtins);
    then ``var_keyword`` is True, since nothing can be ruled out.
    """

    #: every named parameter in declared order (positional-only ones included)
    names: tuple[str, ...]
    #: keyword-passable parameters without / with a default
    required: tuple[str, ...]
    optional: tuple[str, ...]
    var_keyword: bool
    known: bool = True


def signature_params(fn: Callable[..., Any]) -> SignatureParams:
    """The parameters of ``fn``: required (no default), optional, and ``**kwargs``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return SignatureParams((), (), (), True, known=False)
    names: list[str] = []
    required: list[str] = []
    optional: list[str] = []
    var_kw = False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is not p.VAR_POSITIONAL:
            names.append(p.name)
            if p.kind is not p.POSITIONAL_ONLY:
                (required if p.default is p.empty else optional).append(p.name)
    return SignatureParams(tuple(names), tuple(required), tuple(optional), var_kw)


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for an ``async def`` function or an object whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)


def signature_annotations(fn: Callable[..., Any]) -> dict[str, Any]:
    """``{parameter: annotation}`` of ``fn``, string annotations resolved; ``{}`` when they
    cannot be resolved (or there is no signature)."""
    try:
        params = inspect.signature(fn, eval_str=True).parameters.values()
    except (TypeError, ValueError, NameError, SyntaxError):
        return {}
    return {p.name: p.annotation for p in params if p.annotation is not p.empty}


def batched(fn: F) -> F:
    """Declare ``fn`` batched: it receives each field as a list, one item per row, and
    returns one score per row (``@rlreward.batched``). Returns ``fn`` itself, marked."""
    if not callable(fn):
        raise ConfigError(f"@batched decorates a function, got {type(fn).__name__}")
    try:
        setattr(fn, _BATCHED_ATTR, True)
    except (AttributeError, TypeError):
        raise ConfigError(
            f"@batched cannot mark {fn!r} (it takes no attributes); wrap it in a def, or pass "
            "batched=True where the function is given (FunctionGrader, register_reward_function, "
            "a spec's `batched: true`)"
        ) from None
    return fn


def declared_batched(fn: Callable[..., Any]) -> bool | None:
    """True when ``fn`` was marked with ``@batched``, else None (nothing declared)."""
    return True if getattr(fn, _BATCHED_ATTR, False) is True else None


def resolve_batched(
    fn: Callable[..., Any], batched: bool | None, owner: str, *, fields_declared: bool = False
) -> bool:
    """Whether ``fn`` is batched: the ``batched=`` argument, else its ``@batched`` mark,
    else not batched.

    A function that declares nothing (no argument, no mark, no explicit field list)
    and has a parameter of the old convention (``text``, ``texts``, ``completions``,
    ``prompt(s)``, ``reference(s)``) is a ConfigError naming the renames: those names no
    longer mean the response, the prompt or the reference, and guessing would silently
    pass it something else.
    """
    if batched is not None and not isinstance(batched, bool):
        raise ConfigError(f"{owner}: batched must be true or false, got {batched!r}")
    mark = declared_batched(fn)
    if batched is False and mark:
        raise ConfigError(f"{owner}: batched=False contradicts the function's @batched mark")
    if batched is None and mark is None and not fields_declared:
        fix = legacy_parameters(fn, owner)
        if fix is not None:
            raise ConfigError(fix)
    return bool(batched if batched is not None else mark)


def legacy_parameters(fn: Callable[..., Any], owner: str) -> str | None:
    """The fix for a function written for the old convention (see ``resolve_batched``)."""
    old = [n for n in signature_params(fn).names if n in LEGACY_PARAMETERS]
    if not old:
        return None
    renames = ", ".join(f"{n!r} -> {LEGACY_PARAMETERS[n]!r}" for n in old)
    return (
        f"{owner}: parameter(s) {old} follow the old reward-function convention; a user "
        f"function receives row fields by name: rename {renames}, and mark a function that "
        "scores a whole batch with @rlreward.batched (it then receives each field as a list "
        "and returns one score per row); see docs/grading.md, 'Your own function'. To read a "
        "row field that really is named like that, declare batched=False where the function "
        "is given"
    )
