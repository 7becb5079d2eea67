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
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
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
    return _TAG_RE.sub(r"&lt;\1", text)


def _candidates(text: str) -> tuple[list[dict[str, Any]], bool]:
    """Top-level JSON objects in ``text`` that carry a ``score`` key, and whether some
    object-looking text (``{"...``) failed to parse.

    A broken outer object can hide a quoted ``{"score": ...}`` that would parse on its
    own, so the caller refuses to pick a verdict when anything was broken.
    """
    found: list[dict[str, Any]] = []
    broken = False
    i = text.find("{")
    while i != -1:
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except ValueError:
            broken = broken or text[i + 1 : i + 64].lstrip().startswith('"')
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict) and "score" in obj:
            found.append(obj)
        i = text.find("{", end)  # skip the object's inside: quoted JSON is not a verdict
    return found, broken


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

    Accepts a bare JSON object, one inside a code fence, or one amid prose (after any
    ``<think>`` block). Several verdicts that disagree are an error, not a pick.
    """
    body = _THINK_RE.sub("", text)
    if "</think>" in body:  # reasoning whose opening tag was in the prompt template
        body = body.rsplit("</think>", 1)[1]
    body = body.strip()
    fenced = _FENCE_RE.findall(body)
    sources = [*fenced, body] if fenced else [body]
    objects: list[dict[str, Any]] = []
    broken = False
    for source in sources:
        objects, broken = _candidates(source)
        if objects:
            break
    if broken:
        raise JudgeReplyError("judge reply holds malformed JSON; refusing to guess a verdict")
    if not objects:
        raise JudgeReplyError("judge reply has no JSON object with a 'score'")
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
