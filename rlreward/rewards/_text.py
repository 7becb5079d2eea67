"""Small text helpers shared by the rule-based reward functions (precompiled, fast)."""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["SENTENCE_SPLIT", "STOPWORDS", "WORD", "content_words", "stem", "words"]

#: a word: letters/digits/underscore, with an inner apostrophe ("don't")
WORD = re.compile(r"\w+(?:'\w+)?")
_WORD_ASCII = re.compile(r"[a-z0-9_]+(?:'[a-z0-9_]+)?")  # WORD on lowercase ASCII, faster
#: sentence boundaries: end punctuation (consumed) followed by space, or line breaks
SENTENCE_SPLIT = re.compile(r"[.!?]+\s+|\n\s*")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves please tell explain give me show describe know want need like get make also
    one would could thing things way something anything""".split()  # noqa: SIM905
)


def words(lowered: str) -> list[str]:
    """``WORD`` tokens of an already-lowercased text."""
    return (_WORD_ASCII if lowered.isascii() else WORD).findall(lowered)


_SUFFIXES = ("ingly", "edly", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s")


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A crude suffix-stripping stem, enough to match "baking" with "bake(s)"."""
    if len(word) > 4:
        for suf in _SUFFIXES:
            if word.endswith(suf) and len(word) - len(suf) >= 3:
                return word[: -len(suf)].rstrip("e")
    return word.rstrip("e") if len(word) > 3 else word


@lru_cache(maxsize=4096)
def content_words(text: str) -> frozenset[str]:
    """Stemmed lowercase words of ``text`` that are not stopwords (length > 2), cached:
    prompts repeat across a batch (GRPO groups)."""
    return frozenset(stem(w) for w in set(words(text.lower())) if len(w) > 2 and w not in STOPWORDS)
