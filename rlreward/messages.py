"""Chat messages -> text: the one rule every grader and trainer adapter applies.

A field may hold a plain string, one message (``{"role", "content"}``) or a list of
messages (what TRL passes for conversational datasets, what VERL's ``raw_prompt`` holds).
The rule:

- a string is used as is;
- a message's text is its ``content``: a string, or the ``text`` parts of a parts list
  (``[{"type": "text", "text": ...}, {"type": "image", ...}]``), joined;
- a list of messages in a *prompt* field (``query``, ``prompt``: ``PROMPT_FIELDS``) is
  its last ``user`` message; in any other field (``response``, ``reference_response``,
  ...) its last ``assistant`` message; the last message when no message has that role.

So a completion ``[{"role": "assistant", "content": "Paris."}]`` is ``"Paris."`` for a
rule function, a reward model and an LLM judge alike, and a prompt ending in the user's
question is that question.

What a grader accepts as a text field is ``is_text`` (the ``TEXT`` field type asks it,
``field_text`` refuses anything else): a string, or messages whose every ``content`` is
a string or a parts list. The trainer adapters' ``prompt_text`` / ``response_text`` are
more lenient (a tool-call message without content reads as ``""``): they turn whatever
a trainer hands over into a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "PROMPT_FIELDS",
    "content_text",
    "field_text",
    "is_message",
    "is_messages",
    "is_text",
    "prompt_text",
    "response_text",
]

#: fields read as a prompt (the last user turn of a conversation).
PROMPT_FIELDS: frozenset[str] = frozenset({"query", "prompt"})


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [
            p.get("text", "")
            for p in content
            if isinstance(p, Mapping) and p.get("type", "text") == "text"
        ]
        return "".join(parts)
    return "" if content is None else str(content)


def is_message(value: Any) -> bool:
    """True for one chat message: a mapping with a ``content`` key."""
    return isinstance(value, Mapping) and "content" in value


def is_messages(value: Any) -> bool:
    """True for a non-empty list of chat messages."""
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(is_message(m) for m in value)
    )


def _has_text(message: Any) -> bool:
    """A message whose ``content`` is text: a string or a parts list (of mappings)."""
    if not is_message(message):
        return False
    content = message["content"]
    if isinstance(content, str):
        return True
    return (
        isinstance(content, Sequence)
        and not isinstance(content, (str, bytes))
        and all(isinstance(p, Mapping) for p in content)
    )


def is_text(value: Any) -> bool:
    """True for a grader text field: a string, one message with text ``content`` (a
    string or a parts list), or a non-empty list of such messages."""
    if isinstance(value, str):
        return True
    if isinstance(value, Mapping):
        return _has_text(value)
    return is_messages(value) and all(_has_text(m) for m in value)


def _last(messages: Sequence[Mapping[str, Any]], role: str) -> str:
    for m in reversed(messages):
        if m.get("role") == role:
            return content_text(m.get("content"))
    return content_text(messages[-1].get("content"))


def prompt_text(prompt: Any) -> str | None:
    """A prompt's text: a string as is; for chat messages, the last user message."""
    if isinstance(prompt, str):
        return prompt
    if is_messages(prompt):
        return _last(list(prompt), "user")
    return None


def response_text(completion: Any) -> str:
    """A completion's text: a string as is; for chat messages, the last assistant message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return content_text(completion.get("content"))
    if is_messages(completion):
        return _last(list(completion), "assistant")
    return "" if completion is None else str(completion)


def field_text(value: Any, field: str) -> str:
    """A grader field as text by the module's rule; TypeError when not ``is_text``."""
    if not is_text(value):
        raise TypeError(
            f"field {field!r} must be a str, a chat message or a list of chat messages "
            f"(each 'content' a str or a list of parts), got {type(value).__name__}"
        )
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return content_text(value["content"])
    return _last(list(value), "user" if field in PROMPT_FIELDS else "assistant")
