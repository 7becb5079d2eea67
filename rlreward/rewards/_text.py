"""Small text helpers shared by the rule-based reward functions (precompiled, fast)."""

from __future__ import annotations

import re

__all__ = ["SENTENCE_SPLIT", "STOPWORDS", "WORD", "content_words", "stem"]

#: a word: letters/digits/underscore, with an inner apostrophe ("don't")
WORD = re.compile(r"\w+(?:'\w+)?")
#: sentence boundaries: end punctuation followed by space, or line breaks
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")

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

_SUFFIXES = ("ingly", "edly", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s")


def stem(word: str) -> str:
    """A crude suffix-stripping stem, enough to match "baking" with "bake(s)"."""
    if len(word) > 4:
        for suf in _SUFFIXES:
            if word.endswith(suf) and len(word) - len(suf) >= 3:
                return word[: -len(suf)].rstrip("e")
    return word.rstrip("e") if len(word) > 3 else word


def content_words(text: str) -> set[str]:
    """Stemmed lowercase words of ``text`` that are not stopwords (length > 2)."""
    return {stem(w) for w in WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS}
