"""helpfulness: does the response address the prompt with specific, structured substance?

Components, each in [0, 1]:

- relevance (only when a prompt is given): share of the prompt's content words (stemmed,
  stopwords removed) that the response uses;
- specificity: numbers, examples ("for example", "such as"), steps ("first", "then",
  "step 1"), named things (capitalised words mid-sentence), minus hedging ("maybe",
  "I think");
- structure: lists, several paragraphs, headings or code blocks, several sentences;
- substance: grows with length up to about 60 words.

Score = weighted mean (relevance 0.35, specificity 0.25, structure 0.2, substance 0.2;
without a prompt the relevance weight is shared out). A refusal multiplies the score by
0.2 -- unless the prompt itself trips the safety patterns, where refusing is the
helpful answer and scores at least 0.7. Empty text scores 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rlreward.rewards._text import content_words, stem, words
from rlreward.rewards.base import RewardFunction
from rlreward.rewards.refusal import refusal_position
from rlreward.rewards.safety import unsafe_categories

__all__ = ["HelpfulnessReward", "helpfulness_score"]

_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+\S", re.MULTILINE)
_HEADING_OR_CODE = re.compile(r"^\s*#{1,6}\s+\S|```|^\s*\*\*[^*]+\*\*\s*$", re.MULTILINE)
_TWO_SENTENCES = re.compile(r"[.!?]\s+\S|\n\s*\S")
_DIGIT = re.compile(r"\d")
_PROPER = re.compile(r"[a-z,;] [A-Z][a-z]")
_EXAMPLES = ("for example", "for instance", "e.g.", "such as", "like this", "i.e.")
_STEP_WORDS = frozenset({"first", "firstly", "second", "secondly", "then", "next", "finally"})
_STEP_PHRASES = ("after that", "step 1", "step 2", "step 3")
_HEDGE_WORDS = ("maybe", "perhaps", "possibly")
_HEDGE_PHRASES = ("i think", "i guess", "not sure", "i don't know", "it depends", "kind of",
                  "sort of", "might be")  # fmt: skip


def _specificity(text: str, lowered: str, ws: list[str]) -> float:
    s = 0.0
    if _DIGIT.search(text):
        s += 0.3
    if _PROPER.search(text):
        s += 0.2
    if any(k in lowered for k in _EXAMPLES):
        s += 0.25
    if not _STEP_WORDS.isdisjoint(ws) or any(k in lowered for k in _STEP_PHRASES):
        s += 0.25
    hedges = sum(ws.count(w) for w in _HEDGE_WORDS)
    hedges += sum(lowered.count(p) for p in _HEDGE_PHRASES)
    return min(1.0, max(0.0, s - 0.1 * hedges))


def _structure(text: str) -> float:
    s = 0.0
    multiline = "\n" in text
    if multiline and len(_LIST_ITEM.findall(text)) >= 2:
        s += 0.4
    if multiline and "\n\n" in text.replace(" ", "").replace("\t", "").replace("\r", ""):
        s += 0.2
    if ("#" in text or "```" in text or "**" in text) and _HEADING_OR_CODE.search(text):
        s += 0.2
    if _TWO_SENTENCES.search(text.strip()):
        s += 0.2
    return min(1.0, s)


def _relevance(ws: list[str], prompt: str) -> float | None:
    wanted = content_words(prompt)
    if not wanted:
        return None
    have = {stem(w) for w in set(ws)}
    return len(wanted & have) / len(wanted)


def helpfulness_score(text: str, prompt: str | None = None) -> float:
    """Helpfulness of one response in [0, 1] (see the module docstring)."""
    lowered = text.lower()
    ws = words(lowered)
    n = len(ws)
    if n == 0:
        return 0.0
    substance = min(1.0, n / 60) ** 0.5
    spec, struct = _specificity(text, lowered, ws), _structure(text)
    rel = _relevance(ws, prompt) if prompt else None
    if rel is None:
        score = 0.35 * spec + 0.3 * struct + 0.35 * substance
    else:
        score = 0.35 * rel + 0.25 * spec + 0.2 * struct + 0.2 * substance
    if refusal_position(text) is not None:
        if prompt and unsafe_categories(prompt):
            return max(score, 0.7)
        return 0.2 * score
    return score


@dataclass
class HelpfulnessReward(RewardFunction):
    """Specific, structured responses that address the prompt score high (module docstring)."""

    name = "helpfulness"
    uses_prompt = True

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        if prompts is None:
            return [helpfulness_score(t) for t in texts]
        return [helpfulness_score(t, p) for t, p in zip(texts, prompts, strict=False)]
