"""Judge prompt data in, judge verdict out: neutralising delimiters and parsing replies.

Both directions are where LLM judges get gamed: a response that closes the
``</response>`` tag itself can smuggle instructions, and a reply that quotes the
response's ``{"score": 5}`` can fool a greedy parser. ``neutralise`` escapes our tags
inside data; ``parse_judgement`` takes only top-level JSON objects and refuses
ambiguous or out-of-range verdicts instead of guessing. The group judges' replies
(``parse_scores``: one score per shown id; ``parse_pairwise``: a winner) follow the same
rules through ``find_verdicts``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from rlreward.errors import JudgeReplyError
from rlreward.messages import field_text, is_text

__all__ = [
    "DATA_TAGS",
    "JudgeReplyError",
    "as_text",
    "find_verdicts",
    "neutralise",
    "parse_judgement",
    "parse_pairwise",
    "parse_scores",
]

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
    if is_text(value):
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
    return _verdict(find_verdicts(text, "score"), scale)


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
    return obj if _has(obj, "score") else None


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


def find_verdicts(text: str, key: str) -> list[dict[str, Any]]:
    """The reply's top-level JSON objects holding ``key``, after any reasoning; objects
    inside a code fence are preferred over ones amid prose. JudgeReplyError when there is
    none, or when malformed JSON could hide one (the rules of ``parse_judgement``)."""
    spans, broken = _objects(text)
    begin = _verdict_start(text, spans)
    spans = [s for s in spans if s[0] >= begin]
    broken = [b for b in broken if b >= begin and _outside(spans, b)]
    fences = [m.span(1) for m in _FENCE_RE.finditer(text, begin) if _outside(spans, m.start())]
    fenced = [s for s in spans if any(lo <= s[0] < hi for lo, hi in fences)]
    chosen = fenced if any(_has(s[2], key) for s in fenced) else spans
    objects = [obj for _, _, obj in chosen if _has(obj, key)]
    if broken:
        raise JudgeReplyError("judge reply holds malformed JSON; refusing to guess a verdict")
    if not objects:
        raise JudgeReplyError(f"judge reply has no JSON object with a {key!r}")
    return objects


def _has(value: Any, key: str) -> bool:
    return isinstance(value, dict) and key in value


# -- group judges' replies ------------------------------------------------------------
def _one(objects: list[dict[str, Any]]) -> dict[str, Any]:
    if any(o != objects[0] for o in objects[1:]):
        raise JudgeReplyError(f"judge reply holds {len(objects)} verdicts that disagree")
    return objects[0]


def _int_id(value: Any) -> int | None:
    got = _number(value)
    return int(got) if got is not None and got.is_integer() else None


def parse_scores(text: str, ids: Sequence[int]) -> dict[int, tuple[float, str]]:
    """``{id: (score, reason)}`` from a listwise reply: exactly one score in [0, 1] for
    every id in ``ids`` and no other id, or JudgeReplyError."""
    entries = _one(find_verdicts(text, "scores"))["scores"]
    if not isinstance(entries, list):
        raise JudgeReplyError(f"'scores' must be a list, got {type(entries).__name__}")
    shown = set(ids)
    out: dict[int, tuple[float, str]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise JudgeReplyError(f"each score must be an object, got {entry!r:.60}")
        cid = _int_id(entry.get("id"))
        if cid not in shown:
            raise JudgeReplyError(
                f"score for id {entry.get('id')!r}, but the ids shown are {sorted(shown)}"
            )
        if cid in out:
            raise JudgeReplyError(f"id {cid} is scored twice")
        score = _number(entry.get("score"))
        if score is None or not 0.0 <= score <= 1.0:
            raise JudgeReplyError(f"score {entry.get('score')!r} for id {cid} is not in [0, 1]")
        reason = entry.get("reason", "")
        out[cid] = (score, reason if isinstance(reason, str) else str(reason))
    missing = sorted(shown - set(out))
    if missing:
        raise JudgeReplyError(f"no score for ids {missing} (the reply scored {sorted(out)})")
    return out


def parse_pairwise(text: str) -> tuple[int, str]:
    """``(winner, reason)`` from a pairwise reply (winner 1 or 2), or JudgeReplyError."""
    verdict = _one(find_verdicts(text, "winner"))
    winner = _int_id(verdict.get("winner"))
    if winner not in (1, 2):
        raise JudgeReplyError(f"winner must be 1 or 2, got {verdict.get('winner')!r}")
    reason = verdict.get("reason", "")
    return winner, reason if isinstance(reason, str) else str(reason)
