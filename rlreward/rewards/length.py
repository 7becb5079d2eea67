"""length: 1.0 inside a target word range, a smooth Gaussian fall-off outside it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rlreward.errors import ConfigError
from rlreward.rewards.base import RewardFunction, check_param

__all__ = ["LengthReward"]


@dataclass
class LengthReward(RewardFunction):
    """Reward a response whose word count lies in ``[target_min, target_max]``.

    Outside the range the score is ``exp(-d**2)`` where ``d`` is the distance to the
    nearest bound in units of ``tolerance * bound`` words (at least one word): with the
    defaults, 10 words scores 0.37 and 300 words 0.37, an empty text 0.02.
    """

    name = "length"
    target_min: int = 20
    target_max: int = 200
    tolerance: float = 0.5

    def __post_init__(self) -> None:
        check_param(self.name, "target_min", self.target_min, low=0, integer=True)
        check_param(self.name, "target_max", self.target_max, low=1, integer=True)
        if self.target_max < self.target_min:
            raise ConfigError(
                f"reward function 'length': target_max={self.target_max!r} is below "
                f"target_min={self.target_min!r}; use target_max >= target_min"
            )
        check_param(self.name, "tolerance", self.tolerance, low=0.0, low_inclusive=False)
        self._lo_scale = max(1.0, self.tolerance * self.target_min)
        self._hi_scale = max(1.0, self.tolerance * self.target_max)

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        lo, hi = self.target_min, self.target_max
        los, his = self._lo_scale, self._hi_scale
        exp = math.exp
        out = []
        for t in texts:
            n = len(t.split())
            if n < lo:
                d = (lo - n) / los
                out.append(exp(-d * d))
            elif n > hi:
                d = (n - hi) / his
                out.append(exp(-d * d))
            else:
                out.append(1.0)
        return out
