"""sentiment: VADER's compound polarity (vaderSentiment), mapped from [-1, 1] to [0, 1].

VADER is a real lexicon-and-rules analyser (7,500 rated words, negation, boosters,
"but", capitals, punctuation, emoticons and emoji). Its stock implementation lowercases
the whole token list once per sentiment word (quadratic in length) and walks every
token in Python. ``_FastVader`` keeps VADER's lexicon and rules but, for ASCII text
(non-ASCII text, which may hold emoji, goes through stock VADER), tokenises and
lowercases once and visits only lexicon words. Its scores are identical to stock
VADER's (the tests compare them on a corpus).
"""

from __future__ import annotations

import string
import threading
from dataclasses import dataclass
from typing import Any

from vaderSentiment import vaderSentiment as _vs

from rlreward.rewards.base import RewardFunction

__all__ = ["SentimentReward", "vader_compound"]

_PUNCT = string.punctuation
_NEGATE = frozenset(_vs.NEGATE)
_BOOSTER = _vs.BOOSTER_DICT
_SPECIAL = _vs.SPECIAL_CASES
_N, _C = _vs.N_SCALAR, _vs.C_INCR


def _negated(word: str) -> bool:
    """``vaderSentiment.negated([word])`` for one lowercase word."""
    return word in _NEGATE or "n't" in word


def _scalar_inc_dec(word: str, low: str, valence: float, is_cap_diff: bool) -> float:
    """``vaderSentiment.scalar_inc_dec`` with the lowercase word passed in."""
    scalar = 0.0
    if low in _BOOSTER:
        scalar = _BOOSTER[low]
        if valence < 0:
            scalar *= -1
        if word.isupper() and is_cap_diff:
            scalar = scalar + _C if valence > 0 else scalar - _C
    return scalar


class _FastVader(_vs.SentimentIntensityAnalyzer):
    """SentimentIntensityAnalyzer computing VADER's scores with less Python work."""

    def __init__(self) -> None:
        super().__init__()
        self._ascii_emoji = any(k.isascii() for k in self.emojis)

    def _fast(self, text: str) -> bool:
        return not self._ascii_emoji and text.isascii()

    def polarity_scores(self, text: str) -> dict[str, float]:
        if not self._fast(text):
            return super().polarity_scores(text)
        text = text.strip()
        return self.score_valence(self._sentiments(text), text)

    def compound(self, text: str) -> float:
        """VADER's compound score (the same value as ``polarity_scores(text)["compound"]``)."""
        if not self._fast(text):
            return float(super().polarity_scores(text)["compound"])
        text = text.strip()
        sentiments = self._sentiments(text)
        if not sentiments:
            return 0.0
        sum_s = float(sum(sentiments))
        amp = self._punctuation_emphasis(text)
        if sum_s > 0:
            sum_s += amp
        elif sum_s < 0:
            sum_s -= amp
        return round(_vs.normalize(sum_s), 4)

    def _sentiments(self, text: str) -> list[float]:
        """Per-token valences, as ``polarity_scores`` computes them (ASCII text)."""
        # SentiText: tokens stripped of surrounding punctuation unless that leaves two
        # characters or fewer (emoticons); "some but not all words in CAPS".
        words = [s if len(s := t.strip(_PUNCT)) > 2 else t for t in text.split()]
        if not words:
            return []
        lower = " ".join(words).lower().split(" ")
        n = len(words)
        n_upper = sum(map(str.isupper, words))
        is_cap_diff = 0 < n - n_upper < n
        lexicon = self.lexicon
        sentiments: list[float] = [0] * n  # non-lexicon tokens have valence 0
        for i in [i for i, low in enumerate(lower) if low in lexicon]:
            low = lower[i]
            if low in _BOOSTER or (i < n - 1 and low == "kind" and lower[i + 1] == "of"):
                continue
            sentiments[i] = self._valence(words, lower, i, is_cap_diff)
        if "but" in lower:
            sentiments = self._but_check(words, sentiments)
        return sentiments

    def _valence(self, words: list[str], lower: list[str], i: int, is_cap_diff: bool) -> float:
        """VADER's ``sentiment_valence`` for lexicon word ``i``, reading ``lower``."""
        lexicon = self.lexicon
        low = lower[i]
        valence = lexicon[low]
        if low == "no" and i != len(words) - 1 and lower[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lower[i - 1] == "no")
            or (i > 1 and lower[i - 2] == "no")
            or (i > 2 and lower[i - 3] == "no" and lower[i - 1] in ("or", "nor"))
        ):
            valence = lexicon[low] * _N
        if words[i].isupper() and is_cap_diff:
            valence = valence + _C if valence > 0 else valence - _C
        for start_i in range(3):
            j = i - (start_i + 1)
            if i > start_i and lower[j] not in lexicon:
                s = _scalar_inc_dec(words[j], lower[j], valence, is_cap_diff)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = self._negation(valence, lower, start_i, i)
                if start_i == 2:
                    valence = self._idioms(valence, lower, i)
        # _least_check
        if i > 1 and lower[i - 1] not in lexicon and lower[i - 1] == "least":
            if lower[i - 2] != "at" and lower[i - 2] != "very":
                valence = valence * _N
        elif i > 0 and lower[i - 1] not in lexicon and lower[i - 1] == "least":
            valence = valence * _N
        return valence

    @staticmethod
    def _negation(valence: float, wl: list[str], start_i: int, i: int) -> float:
        """VADER's ``_negation_check`` on the lowercase tokens."""
        if start_i == 0:
            if _negated(wl[i - 1]):
                valence = valence * _N
        elif start_i == 1:
            if wl[i - 2] == "never" and (wl[i - 1] == "so" or wl[i - 1] == "this"):
                valence = valence * 1.25
            elif wl[i - 2] == "without" and wl[i - 1] == "doubt":
                pass
            elif _negated(wl[i - 2]):
                valence = valence * _N
        elif start_i == 2:
            if (wl[i - 3] == "never" and (wl[i - 2] == "so" or wl[i - 2] == "this")) or (
                wl[i - 1] == "so" or wl[i - 1] == "this"
            ):
                valence = valence * 1.25
            elif wl[i - 3] == "without" and (wl[i - 2] == "doubt" or wl[i - 1] == "doubt"):
                pass
            elif _negated(wl[i - 3]):
                valence = valence * _N
        return valence

    @staticmethod
    def _idioms(valence: float, wl: list[str], i: int) -> float:
        """VADER's ``_special_idioms_check`` on the lowercase tokens."""
        onezero = f"{wl[i - 1]} {wl[i]}"
        twoonezero = f"{wl[i - 2]} {wl[i - 1]} {wl[i]}"
        twoone = f"{wl[i - 2]} {wl[i - 1]}"
        threetwoone = f"{wl[i - 3]} {wl[i - 2]} {wl[i - 1]}"
        threetwo = f"{wl[i - 3]} {wl[i - 2]}"
        for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if seq in _SPECIAL:
                valence = _SPECIAL[seq]
                break
        if len(wl) - 1 > i:
            zeroone = f"{wl[i]} {wl[i + 1]}"
            if zeroone in _SPECIAL:
                valence = _SPECIAL[zeroone]
        if len(wl) - 1 > i + 1:
            zeroonetwo = f"{wl[i]} {wl[i + 1]} {wl[i + 2]}"
            if zeroonetwo in _SPECIAL:
                valence = _SPECIAL[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in _BOOSTER:
                valence = valence + _BOOSTER[n_gram]
        return valence


_ANALYSER: _FastVader | None = None
_LOCK = threading.Lock()


def _analyser() -> _FastVader:
    """The process-wide analyser (the lexicon is read once)."""
    global _ANALYSER
    if _ANALYSER is None:
        with _LOCK:
            if _ANALYSER is None:
                _ANALYSER = _FastVader()
    return _ANALYSER


def vader_compound(text: str) -> float:
    """VADER's compound score of ``text`` in [-1, 1]."""
    return _analyser().compound(text)


@dataclass
class SentimentReward(RewardFunction):
    """Positive sentiment: ``(VADER compound + 1) / 2``; 0.5 is neutral (or empty)."""

    name = "sentiment"

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        compound = _analyser().compound
        return [(compound(t) + 1.0) * 0.5 for t in texts]
