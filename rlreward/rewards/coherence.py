"""coherence: does the text read as connected prose rather than degenerate output?

Three signals, each in [0, 1]:

- repetition: 1 minus the larger of the share of repeated word trigrams and the excess
  share of the most frequent word (above 20 %, texts of 10+ words);
- flow: sentence-level checks -- ends with terminal punctuation, sentence lengths in a
  readable band (no 200-word run-ons, no strings of one-word fragments), no duplicated
  sentences, sentences start with a capital where the script has case;
- cleanliness: few garbage tokens (30+ character "words", a character repeated 5+
  times) and mostly letters among the non-space characters.

Score = sqrt(repetition) * (0.6 * flow + 0.4 * cleanliness), scaled down for texts of
fewer than five words; a text with no words scores 0. The same word repeated 200 times
scores 0, an ordinary paragraph close to 1.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rlreward.rewards._text import SENTENCE_SPLIT, WORD
from rlreward.rewards.base import RewardFunction

__all__ = ["CoherenceReward", "coherence_score"]

_GARBAGE = re.compile(r"\S{30,}|(\S)\1{4,}")
_LETTER = re.compile(r"[^\W\d_]")
_TERMINAL = frozenset(".!?:;)\"'`*]}…。！？")


def _repetition(words: list[str]) -> float:
    n = len(words)
    rep3 = 0.0
    if n >= 6:
        trigrams = list(zip(words, words[1:], words[2:], strict=False))
        rep3 = 1.0 - len(set(trigrams)) / len(trigrams)
    excess = 0.0
    if n >= 10:
        top = Counter(words).most_common(1)[0][1] / n
        excess = max(0.0, (top - 0.2) / 0.8)
    elif n >= 3 and len(set(words)) == 1:
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
        seen = Counter(s.strip().lower() for s in sentences)
        dup = sum(c - 1 for c in seen.values()) / len(sentences)
        penalty += 0.5 * dup
        cased = [s.lstrip()[0] for s in sentences if s.lstrip()[:1].isalpha()]
        cased = [c for c in cased if c.lower() != c.upper()]
        if cased:
            penalty += 0.1 * sum(1 for c in cased if not c.isupper()) / len(cased)
    return max(0.0, 1.0 - penalty)


def _cleanliness(text: str) -> float:
    tokens = text.split()
    if not tokens:
        return 0.0
    garbage = sum(1 for t in tokens if _GARBAGE.search(t)) / len(tokens)
    visible = len(text) - text.count(" ") - text.count("\n")
    letters = len(_LETTER.findall(text)) / visible if visible else 0.0
    letter_score = min(1.0, letters / 0.6)
    return max(0.0, 1.0 - 2.0 * garbage) * letter_score


def coherence_score(text: str) -> float:
    """Coherence of one text in [0, 1] (see the module docstring)."""
    words = WORD.findall(text.lower())
    n = len(words)
    if n == 0:
        return 0.0
    base = 0.6 * _flow(text, n) + 0.4 * _cleanliness(text)
    short = 1.0 if n >= 5 else 0.5 + 0.1 * n
    return math.sqrt(_repetition(words)) * base * short


@dataclass
class CoherenceReward(RewardFunction):
    """Connected, non-repetitive, non-degenerate prose scores high (see module docstring)."""

    name = "coherence"

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        return [coherence_score(t) for t in texts]
