"""format: does the response follow a required output format?

``style`` chooses the check:

- ``"think_answer"`` (default): ``<think>...</think>`` then ``<answer>...</answer>``
  (tag names configurable). 1.0 when the text is exactly those two non-empty blocks
  (whitespace around allowed), 0.5 when both blocks appear in order with other text
  around them, 0.25 when only a non-empty answer block appears, else 0.0.
- ``"answer"``: 1.0 when a non-empty ``<answer>...</answer>`` block appears, else 0.0.
- ``"json"``: 1.0 when the text (optionally inside a ```json fence) parses as JSON and,
  if ``json_keys`` are given, is an object with all of them; 0.5 when it parses but
  lacks keys or is not an object; 0.0 otherwise.
- ``"regex"``: 1.0 when ``pattern`` matches the whole stripped text, else 0.0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rlreward.errors import ConfigError
from rlreward.rewards.base import RewardFunction, check_choice

__all__ = ["FormatReward", "extract_tag"]

STYLES = ("think_answer", "answer", "json", "regex")
_TAG_NAME = re.compile(r"^[A-Za-z][\w\-]*$")
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.S | re.I)


def extract_tag(text: str, tag: str = "answer") -> str | None:
    """Content of the last ``<tag>...</tag>`` block in ``text`` (stripped), or None."""
    close = f"</{tag}>"
    end = text.rfind(close)
    if end < 0:
        return None
    start = text.rfind(f"<{tag}>", 0, end)
    if start < 0:
        return None
    return text[start + len(tag) + 2 : end].strip()


@dataclass
class FormatReward(RewardFunction):
    """Score adherence to a format (see module docstring for each ``style``)."""

    name = "format"
    style: str = "think_answer"
    think_tag: str = "think"
    answer_tag: str = "answer"
    json_keys: tuple[str, ...] = ()
    pattern: str | None = None

    def __post_init__(self) -> None:
        check_choice(self.name, "style", self.style, STYLES)
        for p in ("think_tag", "answer_tag"):
            v = getattr(self, p)
            if not isinstance(v, str) or not _TAG_NAME.match(v):
                raise ConfigError(
                    f"reward function 'format': {p}={v!r} is not allowed; "
                    "use a tag name like 'answer'"
                )
        if isinstance(self.json_keys, str) or not all(isinstance(k, str) for k in self.json_keys):
            raise ConfigError(
                f"reward function 'format': json_keys={self.json_keys!r} is not allowed; "
                "use a list of key names"
            )
        self.json_keys = tuple(self.json_keys)
        if self.style == "regex":
            if not isinstance(self.pattern, str) or not self.pattern:
                raise ConfigError(
                    "reward function 'format': style='regex' needs pattern=<regex>, "
                    f"got {self.pattern!r}"
                )
            try:
                self._regex = re.compile(self.pattern, re.S)
            except re.error as exc:
                raise ConfigError(
                    f"reward function 'format': pattern={self.pattern!r} is not a valid "
                    f"regex ({exc})"
                ) from None
        elif self.pattern is not None:
            raise ConfigError(
                "reward function 'format': pattern is only used with style='regex' "
                f"(style={self.style!r})"
            )
        t, a = re.escape(self.think_tag), re.escape(self.answer_tag)
        self._strict = re.compile(rf"^\s*<{t}>(.*?)</{t}>\s*<{a}>(.*?)</{a}>\s*$", re.S)
        self._loose = re.compile(rf"<{t}>(.*?)</{t}>.*?<{a}>(.*?)</{a}>", re.S)

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        check = {
            "think_answer": self._think_answer,
            "answer": self._answer,
            "json": self._json,
            "regex": self._regex_match,
        }[self.style]
        return [check(t) for t in texts]

    def _think_answer(self, text: str) -> float:
        m = self._strict.match(text)
        if m and m.group(1).strip() and m.group(2).strip():
            return 1.0
        m = self._loose.search(text)
        if m and m.group(1).strip() and m.group(2).strip():
            return 0.5
        return 0.25 if self._answer(text) else 0.0

    def _answer(self, text: str) -> float:
        return 1.0 if extract_tag(text, self.answer_tag) else 0.0

    def _json(self, text: str) -> float:
        body = text.strip()
        fence = _FENCE.match(body)
        if fence:
            body = fence.group(1).strip()
        if not body:
            return 0.0
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return 0.0
        if not self.json_keys:
            return 1.0
        if isinstance(value, dict) and all(k in value for k in self.json_keys):
            return 1.0
        return 0.5

    def _regex_match(self, text: str) -> float:
        return 1.0 if self._regex.fullmatch(text.strip()) else 0.0
