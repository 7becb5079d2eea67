"""coherence: does the text read as connected prose rather than degenerate output?

Three signals, each in [0, 1]:

- repetition: 1 minus the larger of the share of repeated word trigrams and the excess
  share of the most frequent word (above 20 %, texts of 10+ words);
- flow: sentence-level checks -- ends with terminal punctuation, sentence lengths in a
  readable band (no 200-word run-ons, no strings of one-word fragments), no duplicated
  sentences, sentences start with a capital where the script has case;
- cleanliness: few garbage tokens (over 30 characters and not a URL or path) and mostly
  letters among the non-space characters.

Score = sqrt(repetition) * (0.6 * flow + 0.4 * cleanliness), scaled down for texts of
fewer than five words; a text with no words scores 0. The same word repeated 200 times
scores 0, an ordinary paragraph close to 1.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rlreward.rewards._text import SENTENCE_SPLIT, words
from rlreward.rewards.base import RewardFunction

__all__ = ["CoherenceReward", "coherence_score"]

_LETTER = re.compile(r"[^\W\d_]")
_ASCII_LETTERS = string.ascii_letters.encode()
_TERMINAL = frozenset(".!?:;)\"'`*]}…。！？")
_GARBAGE_LEN = 30


def _repetition(ws: list[str]) -> float:
    n = len(ws)
    rep3 = 0.0
    if n >= 6:
        rep3 = 1.0 - len(set(zip(ws, ws[1:], ws[2:], strict=False))) / (n - 2)
    excess = 0.0
    if n >= 10:
        top = max(Counter(ws).values()) / n
        excess = max(0.0, (top - 0.2) / 0.8)
    elif n >= 3 and len(set(ws)) == 1:
        excess = 1.0
    return 1.0 - max(rep3, excess)


def _flow(text: str, n_words: int) -> float:
    sentences = [s for s in SENTENCE_SPLIT.split(text) if s.strip()]
    if not sentences:
        return 0.0
    penalty = 0.0
    if n_words >= 8 and text.rstrip()[-1] not in _TERMINAL:
        penalty += 0.15
    mean_len = n_words / len(sentences)
    if mean_len > 40:
        penalty += min(0.4, (mean_len - 40) / 100)
    elif n_words >= 10 and mean_len < 2.5:
        penalty += 0.25
    if len(sentences) > 1:
        stripped = [s.strip() for s in sentences]
        distinct = len(set(map(str.lower, stripped)))
        penalty += 0.5 * (len(stripped) - distinct) / len(stripped)
        firsts = [s[0] for s in stripped if s[0].isalpha() and s[0].lower() != s[0].upper()]
        if firsts:
            penalty += 0.1 * sum(1 for c in firsts if not c.isupper()) / len(firsts)
    return max(0.0, 1.0 - penalty)


def _cleanliness(text: str) -> float:
    tokens = text.split()
    if not tokens:
        return 0.0
    garbage = 0.0
    if max(map(len, tokens)) > _GARBAGE_LEN:
        bad = sum(1 for t in tokens if len(t) > _GARBAGE_LEN and "/" not in t)
        garbage = bad / len(tokens)
    visible = sum(map(len, tokens))  # non-whitespace characters
    if text.isascii():
        whitespace = len(text) - visible
        letters = visible - (len(text.encode().translate(None, _ASCII_LETTERS)) - whitespace)
    else:
        letters = len(_LETTER.findall(text))
    letter_score = min(1.0, letters / visible / 0.6)
    return max(0.0, 1.0 - 2.0 * garbage) * letter_score


def coherence_score(text: str) -> float:
    """Coherence of one text in [0, 1] (see the module docstring)."""
    ws = words(text.lower())
    n = len(ws)
    if n == 0:
        return 0.0
    base = 0.6 * _flow(text, n) + 0.4 * _cleanliness(text)
    short = 1.0 if n >= 5 else 0.5 + 0.1 * n
    return math.sqrt(_repetition(ws)) * base * short


@dataclass
class CoherenceReward(RewardFunction):
    """Connected, non-repetitive, non-degenerate prose scores high (see module docstring)."""

    name = "coherence"

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        return [coherence_score(t) for t in texts]
