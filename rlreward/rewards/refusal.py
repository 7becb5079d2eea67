"""refusal: how much a response refuses (1.0 = refuses outright), lower is better.

A refusal phrase ("I can't help with that", "As an AI language model", "I must
decline", ...) in the opening 200 characters scores 1.0; one only later in the text (a
partial refusal or a caveat) scores 0.5; none scores 0.0. Composites and aggregators
turn the direction around, so a positive weight rewards answering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rlreward.rewards.base import RewardFunction

__all__ = ["RefusalReward", "refusal_position"]

_REFUSAL = re.compile(
    r"\b(?:"
    r"i(?:'m| am)? (?:so |very |really )?sorry,? (?:but )?(?:i|we) (?:can(?:'|no)t|can ?not|won't|"
    r"will not|am unable|'m unable|am not able|'m not able)"
    r"|i (?:can(?:'|no)t|can ?not|won't|will not|am unable to|'m unable to|am not able to|"
    r"'m not able to|must decline to|have to decline to) (?:help|assist|provide|comply|support|"
    r"fulfill|do that|answer|engage|create|write|generate|give|share|discuss)"
    r"|i must (?:respectfully )?decline"
    r"|as an ai(?: language model| assistant| model)?,? i (?:can(?:'|no)t|don't|do not|am not|"
    r"'m not|am unable)"
    r"|i(?:'m| am) not (?:able|allowed|permitted|comfortable) to (?:help|assist|provide|answer|"
    r"discuss|do)"
    r"|(?:it|this) (?:is|would be) (?:not appropriate|inappropriate) for me to"
    r"|i (?:can(?:'|no)t|won't) (?:help|assist) (?:you )?with (?:that|this|your request)"
    r"|(?:that|this) request (?:is|goes) against"
    r"|i(?:'m| am) (?:afraid|sorry) (?:that )?i (?:can(?:'|no)t|cannot)"
    r")",
)
_OPENING = 200


# Every refusal phrase contains one of these; texts without any skip the regex.
_KEYS = ("sorry", "can't", "cannot", "can not", "won't", "will not", "unable", "not able",
         "decline", "as an ai", "not allowed", "not permitted", "not comfortable",
         "appropriate", "against", "afraid")  # fmt: skip


def refusal_position(text: str) -> int | None:
    """Character offset of the first refusal phrase in ``text``, or None."""
    low = text.lower()
    if not low.isascii():
        low = low.replace("’", "'")
    if not any(k in low for k in _KEYS):
        return None
    m = _REFUSAL.search(low)
    return None if m is None else m.start()


@dataclass
class RefusalReward(RewardFunction):
    """1.0 when the response opens with a refusal, 0.5 for a later one, 0.0 for none."""

    name = "refusal"
    higher_is_better = False

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        out = []
        for t in texts:
            pos = refusal_position(t)
            out.append(0.0 if pos is None else (1.0 if pos < _OPENING else 0.5))
        return out
