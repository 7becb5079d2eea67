"""VERL adapter: one reward spec behind VERL's three reward entrances.

- ``compute_score``: the ``reward.custom_reward_function`` for any VERL manager
  (``path=pkg://rlreward.integrations.verl``, ``name=compute_score``).
- ``RLRewardManager``: a verl 0.9 reward-loop manager (``reward.reward_manager.source=importlib``)
  that also decodes the prompt from the batch.
- ``LegacyRLRewardManager``: ``reward_fn=`` for verl < 0.7.

All three go through ``score_rows`` (rows -> one ``runner.arun`` -> score dicts with the
same keys for every sample) on the process's one runner per spec. The managers are
imported on first access, so ``compute_score`` works without importing VERL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rlreward.integrations.verl._score import ENV_SPEC, compute_score, resolve_source, score_rows

__all__ = [
    "ENV_SPEC",
    "LegacyRLRewardManager",
    "RLRewardManager",
    "compute_score",
    "resolve_source",
    "score_rows",
]

_LAZY = {
    "RLRewardManager": "rlreward.integrations.verl._manager",
    "LegacyRLRewardManager": "rlreward.integrations.verl._legacy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:  # pragma: no cover
    from rlreward.integrations.verl._legacy import LegacyRLRewardManager
    from rlreward.integrations.verl._manager import RLRewardManager
