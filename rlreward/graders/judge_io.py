"""Judge prompt data in, judge verdict out: neutralising delimiters and parsing replies.

Both directions are where LLM judges get gamed: a response that closes the
``</response>`` tag itself can smuggle instructions, and a reply that quotes the
response's ``{"score": 5}`` can fool a greedy parser. ``neutralise`` escapes our tags
inside data; ``parse_judgement`` takes only top-level JSON objects and refuses
ambiguous or out-of-range verdicts instead of guessing.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from rlreward.errors import JudgeReplyError
from rlreward.messages import field_text, is_message, is_messages

__all__ = ["DATA_TAGS", "JudgeReplyError", "as_text", "neutralise", "parse_judgement"]

#: Tags that delimit data in our prompts; occurrences inside data are escaped.
DATA_TAGS = ("query", "response", "reference_response", "context", "instruction")
_TAG_RE = re.compile(r"<(\s*/?\s*(?:" + "|".join(DATA_TAGS) + r")\b)", re.IGNORECASE)
_THINK_TAG_RE = re.compile(r"<(/?)think>", re.IGNORECASE)
_FENCE_RE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_DECODER = json.JSONDecoder()


def as_text(value: Any, field: str = "response") -> str:
    """A field value as prompt text: text and chat messages by the rule of
    ``rlreward.messages`` (the same text a rule function or reward model sees), any
    other value as JSON."""
    if isinstance(value, str) or is_message(value) or is_messages(value):
        return field_text(value, field)
    return json.dumps(value, ensure_ascii=False, default=str)


def neutralise(text: str) -> str:
    """Escape our delimiter tags inside data (``</response>`` -> ``&lt;/response>``)."""
    if "<" not in text:  # no tag can hide here: skip the regex (most data, every call)
        return text
    return _TAG_RE.sub(r"&lt;\1", text)


def _objects(text: str) -> tuple[list[tuple[int, int, Any]], list[int]]:
    """Every top-level JSON value that starts with ``{`` in ``text`` as ``(start, end,
    value)``, and the offsets of object-looking text (``{"...``) that failed to parse.

    Scanning skips over a parsed object, so JSON quoted inside a JSON string (a verdict
    the judge cites from the response) is never a top-level object.
    """
    spans: list[tuple[int, int, Any]] = []
    broken: list[int] = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except ValueError:
            if text[i + 1 : i + 64].lstrip().startswith('"'):
                broken.append(i)
            i = text.find("{", i + 1)
            continue
        spans.append((i, end, obj))
        i = text.find("{", end)
    return spans, broken


def _outside(spans: list[tuple[int, int, Any]], pos: int) -> bool:
    return not any(start <= pos < end for start, end, _ in spans)


def _verdict_start(text: str, spans: list[tuple[int, int, Any]]) -> int:
    """Where the verdict part of a reply begins: after the last reasoning tag that sits
    outside JSON (``</think>`` inside a JSON string is the reason's text, not a tag).

    A ``<think>`` that is never closed means the reply stopped while reasoning.
    """
    start = 0
    open_at: int | None = None
    for m in _THINK_TAG_RE.finditer(text):
        if not _outside(spans, m.start()):
            continue
        if m.group(1):  # </think>: the reasoning (opened here or in the prompt) ends
            start, open_at = m.end(), None
        elif open_at is None:
            open_at = m.start()
    if open_at is not None:
        raise JudgeReplyError(
            "judge reply ends inside a <think> block (no verdict after it); "
            "raise max_tokens or turn the judge's reasoning off"
        )
    return start


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def parse_judgement(text: str, scale: tuple[float, float]) -> tuple[float, str]:
    """``(judge score, reason)`` from a judge reply, or JudgeReplyError.

    JSON is read first: the reply's top-level JSON objects are located before anything
    else, so reasoning tags (``<think>``, ``</think>``) count only outside JSON strings.
    The verdict is the object(s) with a ``score`` after the reasoning; objects inside a
    code fence are preferred over ones amid prose. Several verdicts that disagree, or
    malformed JSON where a verdict could hide, are an error, not a pick.
    """
    whole = _whole_object(text)
    if whole is not None:  # the usual structured reply: one object, nothing around it
        return _verdict([whole], scale)
    spans, broken = _objects(text)
    begin = _verdict_start(text, spans)
    spans = [s for s in spans if s[0] >= begin]
    broken = [b for b in broken if b >= begin and _outside(spans, b)]
    fences = [m.span(1) for m in _FENCE_RE.finditer(text, begin) if _outside(spans, m.start())]
    fenced = [s for s in spans if any(lo <= s[0] < hi for lo, hi in fences)]
    chosen = fenced if any(_has_score(s[2]) for s in fenced) else spans
    objects = [obj for _, _, obj in chosen if _has_score(obj)]
    if broken:
        raise JudgeReplyError("judge reply holds malformed JSON; refusing to guess a verdict")
    if not objects:
        raise JudgeReplyError("judge reply has no JSON object with a 'score'")
    return _verdict(objects, scale)


def _whole_object(text: str) -> dict[str, Any] | None:
    """The reply parsed as one JSON object with a ``score`` when that is all it is, else
    None. Then the general scan finds the same single object and nothing else (no tag
    or fence outside it, no other object), so this is only a shortcut."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        obj = json.loads(stripped)
    except ValueError:
        return None
    return obj if _has_score(obj) else None


def _verdict(objects: list[dict[str, Any]], scale: tuple[float, float]) -> tuple[float, str]:
    """The one score the verdict objects agree on, range-checked, and its reason."""
    scores = [_number(o.get("score")) for o in objects]
    for obj, number in zip(objects, scores, strict=True):
        if number is None:
            raise JudgeReplyError(f"judge score {obj.get('score')!r} is not a finite number")
    if len(set(scores)) > 1:
        raise JudgeReplyError(f"judge reply holds {len(objects)} verdicts that disagree: {scores}")
    score = float(scores[0])  # type: ignore[arg-type]
    low, high = scale
    if not low <= score <= high:
        raise JudgeReplyError(
            f"judge score {score:g} is outside the scale [{low:g}, {high:g}]", judge_score=score
        )
    reason = objects[-1].get("reason", "")
    return score, reason if isinstance(reason, str) else json.dumps(reason, ensure_ascii=False)


def _has_score(value: Any) -> bool:
    return isinstance(value, dict) and "score" in value
