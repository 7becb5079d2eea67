"""repetition and distinct_n: n-gram diversity of a single response.

- ``repetition``: share of the text's word n-grams that repeat an earlier one (0 = no
  repetition, 1 = the same n-gram over and over); lower is better.
- ``distinct_n``: distinct n-grams / all n-grams (Li et al., 2016); higher is better.

Texts with fewer than ``n`` words have no n-grams: repetition 0.0, distinct_n 0.0
(nothing repeated, nothing diverse either).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlreward.rewards._text import words
from rlreward.rewards.base import RewardFunction, check_param

__all__ = ["DistinctNReward", "RepetitionReward", "ngram_stats"]


def ngram_stats(text: str, n: int) -> tuple[int, int]:
    """(number of word n-grams, number of distinct ones) of ``text``, lowercased."""
    ws = words(text.lower())
    total = len(ws) - n + 1
    if total <= 0:
        return 0, 0
    grams = ws if n == 1 else zip(*(ws[i:] for i in range(n)), strict=False)
    return total, len(set(grams))


@dataclass
class _NGramReward(RewardFunction):
    n: int = 2

    def __post_init__(self) -> None:
        check_param(self.name, "n", self.n, low=1, high=10, integer=True)

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        out = []
        for t in texts:
            total, distinct = ngram_stats(t, self.n)
            out.append(self._from_counts(total, distinct) if total else 0.0)
        return out

    def _from_counts(self, total: int, distinct: int) -> float:
        raise NotImplementedError


@dataclass
class RepetitionReward(_NGramReward):
    """Share of repeated word ``n``-grams; 0 = none repeated (lower is better)."""

    name = "repetition"
    higher_is_better = False
    n: int = 3

    def _from_counts(self, total: int, distinct: int) -> float:
        return 1.0 - distinct / total


@dataclass
class DistinctNReward(_NGramReward):
    """Distinct word ``n``-grams over all ``n``-grams (higher = more diverse)."""

    name = "distinct_n"
    n: int = 2

    def _from_counts(self, total: int, distinct: int) -> float:
        return distinct / total
