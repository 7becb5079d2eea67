"""readability: is the text's reading grade inside a target band? (textstat)

The grade is the mean of textstat's Automated Readability Index and Coleman-Liau index
(both from character, word and sentence counts). Flesch-style scores are not used:
textstat needs the CMU pronouncing dictionary for them and downloads it through NLTK
when missing, which an offline reward must never do.

Score: 1.0 for a grade in ``[target_min_grade, target_max_grade]``, ``exp(-(d / 4)**2)``
at ``d`` grades outside it (4 grades out: 0.37). Text without words scores 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import textstat

from rlreward.rewards._text import WORD
from rlreward.rewards.base import RewardFunction, check_param

__all__ = ["ReadabilityReward", "reading_grade"]


def reading_grade(text: str) -> float:
    """US school grade level: mean of ARI and Coleman-Liau (textstat)."""
    ari = textstat.automated_readability_index(text)
    cli = textstat.coleman_liau_index(text)
    return (float(ari) + float(cli)) / 2.0


@dataclass
class ReadabilityReward(RewardFunction):
    """1.0 inside the target grade band, smooth fall-off outside (see module docstring)."""

    name = "readability"
    target_min_grade: float = 6.0
    target_max_grade: float = 12.0
    tolerance: float = 4.0

    def __post_init__(self) -> None:
        check_param(self.name, "target_min_grade", self.target_min_grade, low=-5, high=30)
        check_param(
            self.name, "target_max_grade", self.target_max_grade, low=self.target_min_grade, high=30
        )
        check_param(self.name, "tolerance", self.tolerance, low=0.0, low_inclusive=False)

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        lo, hi, tol = self.target_min_grade, self.target_max_grade, self.tolerance
        out = []
        for t in texts:
            if WORD.search(t) is None:
                out.append(0.0)
                continue
            g = reading_grade(t)
            d = (lo - g) if g < lo else (g - hi) if g > hi else 0.0
            out.append(math.exp(-((d / tol) ** 2)) if math.isfinite(g) else 0.0)
        return out
