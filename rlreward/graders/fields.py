"""Field types: what a grader accepts in each field, checked before it does any work.

A grader declares ``field_types = {"response": TEXT, ...}``; ``BaseGrader.aevaluate``
checks every given field against it and turns a mismatch into a GraderError for that
row, so a ``None``, a number, a dict or a NaN never reaches a judge's prompt. A field
without a declared type gets ``ANY``, which still refuses NaN and infinities: no
grader can score a value that is not a number. ``Unusable`` stands in a row for a
value an entrance refused (a NaN ground truth): every field type refuses it, and the
error says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlreward.messages import is_text

__all__ = [
    "ANY",
    "NUMBER",
    "STR",
    "TEXT",
    "TEXT_OR_NUMBER",
    "FieldType",
    "Unusable",
    "field_problem",
    "from_annotation",
]

_SHOWN = 80


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _non_finite(value: Any) -> bool:
    """NaN or infinity as a Python, numpy or other real scalar."""
    if isinstance(value, (bool, int, str, bytes)) or not hasattr(value, "__float__"):
        return False
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):  # e.g. a multi-element array: not a scalar at all
        return False


def _number(value: Any) -> bool:
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _text_or_number(value: Any) -> bool:
    return is_text(value) or _number(value)


def _finite_or_other(value: Any) -> bool:
    return not _non_finite(value)


@dataclass(frozen=True)
class FieldType:
    """A named check on one field's value; ``describe`` is what the error asks for.

    ``accepts`` must be a module-level function so graders stay picklable.
    """

    name: str
    describe: str
    accepts: Callable[[Any], bool]

    def __repr__(self) -> str:
        return self.name


#: a str, one chat message or a non-empty list of them, each ``content`` a str or a
#: parts list (``rlreward.messages.is_text``: the rule every grader reads text by)
TEXT = FieldType(
    "TEXT", "text (a str, or chat messages whose 'content' is a str or a list of parts)", is_text
)
#: a plain str
STR = FieldType("STR", "a str", _str)
#: a finite real number (int, float, numpy scalar); not bool
NUMBER = FieldType("NUMBER", "a finite number (not bool)", _number)
#: text, or a finite number shown as text (reference answers such as 42)
TEXT_OR_NUMBER = FieldType(
    "TEXT_OR_NUMBER",
    "text or a finite number (not bool)",
    _text_or_number,
)
#: anything except NaN / infinity
ANY = FieldType("ANY", "any value except NaN or infinity", _finite_or_other)


def from_annotation(annotation: Any) -> FieldType:
    """The field type a plain annotation asks for: ``str`` -> STR, ``float``/``int`` ->
    NUMBER, anything else (including no annotation) -> ANY."""
    if annotation is str:
        return STR
    if annotation in (float, int):
        return NUMBER
    return ANY


@dataclass(frozen=True)
class Unusable:
    """A field value an entrance refused, with why; a grader given it fails for the row.

    Unlike a missing field (the grader does not apply to the row), the row has the
    field but its value is broken (``ground_truth`` NaN): the graders that read it get
    an error value naming ``reason``, the others grade the row.
    """

    reason: str

    def __str__(self) -> str:
        return f"<unusable: {self.reason}>"


def field_problem(name: str, value: Any, kind: FieldType) -> str | None:
    """Why ``value`` cannot be field ``name`` of type ``kind``, or None when it can."""
    if isinstance(value, Unusable):
        return f"field {name!r} is unusable: {value.reason}"
    if kind.accepts(value):
        return None
    return (
        f"field {name!r} must be {kind.describe}, got {type(value).__name__} {_show(value)}; "
        "fix the row, or map the field from another column with "
        "GraderConfig(grader, mapper={" + repr(name) + ": '<column>'})"
    )
