"""sentiment: VADER's compound polarity (vaderSentiment), mapped from [-1, 1] to [0, 1].

VADER is a real lexicon-and-rules analyser (7,500 rated words, negation, boosters,
"but", capitals, punctuation, emoticons and emoji). Its stock implementation lowercases
the whole text once per sentiment word (quadratic in length); ``_FastVader`` computes
that lowercase list once per text and skips the emoji pass for ASCII text. Its scores
are identical to stock VADER's (checked by the tests on a corpus).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from vaderSentiment import vaderSentiment as _vs

from rlreward.rewards.base import RewardFunction

__all__ = ["SentimentReward", "vader_compound"]


class _Words(list):  # type: ignore[type-arg]
    """VADER's token list plus its lowercase form, computed once per text."""

    __slots__ = ("lower",)


class _FastVader(_vs.SentimentIntensityAnalyzer):
    """SentimentIntensityAnalyzer with the per-word re-lowercasing removed."""

    def __init__(self) -> None:
        super().__init__()
        self._ascii_emoji = any(k.isascii() for k in self.emojis)

    def polarity_scores(self, text: str) -> dict[str, float]:
        if self._ascii_emoji or not text.isascii():
            return super().polarity_scores(text)
        return self._scores(text.strip())

    def _scores(self, text: str) -> dict[str, float]:
        sentitext = _vs.SentiText(text)
        words = _Words(sentitext.words_and_emoticons)
        words.lower = [w.lower() for w in words]
        sentitext.words_and_emoticons = words
        lower = words.lower
        booster = _vs.BOOSTER_DICT
        lexicon = self.lexicon
        sentiments: list[float] = []
        last = len(words) - 1
        for i, item in enumerate(words):
            low = lower[i]
            if low in booster:
                sentiments.append(0)
                continue
            if i < last and low == "kind" and lower[i + 1] == "of":
                sentiments.append(0)
                continue
            if low not in lexicon:  # sentiment_valence appends 0 for these
                sentiments.append(0)
                continue
            sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        if "but" in lower:
            sentiments = self._but_check(words, sentiments)
        return self.score_valence(sentiments, text)

    @staticmethod
    def _lower(words: list[str]) -> list[str]:
        low = getattr(words, "lower", None)
        return low if low is not None else [str(w).lower() for w in words]

    # The two methods below are VADER's own logic, reading the cached lowercase list.
    def _negation_check(self, valence: float, words: list[str], start_i: int, i: int) -> float:  # type: ignore[override]
        wl = self._lower(words)
        if start_i == 0:
            if _negated(wl[i - 1]):
                valence = valence * _vs.N_SCALAR
        elif start_i == 1:
            if wl[i - 2] == "never" and (wl[i - 1] == "so" or wl[i - 1] == "this"):
                valence = valence * 1.25
            elif wl[i - 2] == "without" and wl[i - 1] == "doubt":
                pass
            elif _negated(wl[i - 2]):
                valence = valence * _vs.N_SCALAR
        elif start_i == 2:
            if (wl[i - 3] == "never" and (wl[i - 2] == "so" or wl[i - 2] == "this")) or (
                wl[i - 1] == "so" or wl[i - 1] == "this"
            ):
                valence = valence * 1.25
            elif wl[i - 3] == "without" and (wl[i - 2] == "doubt" or wl[i - 1] == "doubt"):
                pass
            elif _negated(wl[i - 3]):
                valence = valence * _vs.N_SCALAR
        return valence

    def _special_idioms_check(self, valence: float, words: list[str], i: int) -> float:  # type: ignore[override]
        wl = self._lower(words)
        special, booster = _vs.SPECIAL_CASES, _vs.BOOSTER_DICT
        onezero = f"{wl[i - 1]} {wl[i]}"
        twoonezero = f"{wl[i - 2]} {wl[i - 1]} {wl[i]}"
        twoone = f"{wl[i - 2]} {wl[i - 1]}"
        threetwoone = f"{wl[i - 3]} {wl[i - 2]} {wl[i - 1]}"
        threetwo = f"{wl[i - 3]} {wl[i - 2]}"
        for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if seq in special:
                valence = special[seq]
                break
        if len(wl) - 1 > i:
            zeroone = f"{wl[i]} {wl[i + 1]}"
            if zeroone in special:
                valence = special[zeroone]
        if len(wl) - 1 > i + 1:
            zeroonetwo = f"{wl[i]} {wl[i + 1]} {wl[i + 2]}"
            if zeroonetwo in special:
                valence = special[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in booster:
                valence = valence + booster[n_gram]
        return valence


_NEGATE = frozenset(_vs.NEGATE)


def _negated(word: str) -> bool:
    """``vaderSentiment.negated([word])`` for one lowercase word."""
    return word in _NEGATE or "n't" in word


_ANALYSER: _FastVader | None = None
_LOCK = threading.Lock()


def _analyser() -> _FastVader:
    global _ANALYSER
    if _ANALYSER is None:
        with _LOCK:
            if _ANALYSER is None:
                _ANALYSER = _FastVader()
    return _ANALYSER


def vader_compound(text: str) -> float:
    """VADER's compound score of ``text`` in [-1, 1]."""
    return float(_analyser().polarity_scores(text)["compound"])


@dataclass
class SentimentReward(RewardFunction):
    """Positive sentiment: ``(VADER compound + 1) / 2``; 0.5 is neutral (or empty)."""

    name = "sentiment"

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        scores = _analyser().polarity_scores
        return [(scores(t)["compound"] + 1.0) * 0.5 for t in texts]
