"""The one place a user's callable is inspected: its parameters and whether it is async.

``FunctionGrader`` reads a callable's parameters as the fields it needs, and
``CallableReward`` reads them to tell a batched reward function from a single-text one;
both ask ``signature_params`` so a callable is understood the same way by both.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SignatureParams", "is_async_callable", "signature_annotations", "signature_params"]


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
