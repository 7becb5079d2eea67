"""VERL adapter: one ``Reward`` behind every reward entrance verl 0.9.1 ships.

Every entry point holds the Reward of ``as_reward(spec, aggregator)`` (``spec``: a YAML
path, a spec dict or a Reward object) and writes its values: ``score`` is
``Reward.aevaluate`` of the same row. Which entry point for which VERL manager (all
share ``score_rows``: rows -> one ``Reward.agrade`` -> score dicts with the same keys
for every sample, see ``_columns``):

- reward-loop managers (verl >= 0.7: naive, dapo, rate_limited, gdpo):
  ``reward.custom_reward_function.name=compute_score`` (async);
- pre-reward-loop managers (``verl.workers.reward_manager`` naive, dapo):
  ``compute_score_sync``; prime: ``compute_score_scalar``; batch: ``compute_score_batch``;
- ``RLRewardManager``: our reward-loop manager (``reward.reward_manager.source=importlib``),
  which also decodes the prompt and grades a tick's samples in one ``Reward.agrade``;
- ``LegacyRLRewardManager``: ``reward_fn=`` for verl < 0.7 trainers.

Score-dict columns: ``score`` (the reward) with ``score__error`` / ``score__abstained``,
``<grader>`` (raw) with ``<grader>__error`` / ``<grader>__abstained``,
``<grader>__aligned`` (on [0, 1], higher = better: the columns for GDPO's
``gdpo_reward_keys``), each monitor (reported, never in ``score``) and each other
aggregator with the same two flags. The managers are imported on first access, so the
functions work without importing VERL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rlreward.aggregators import ABSTAINED_SUFFIX, ALIGNED_SUFFIX, ERROR_SUFFIX
from rlreward.integrations.verl._columns import SCORE, SCORE_ABSTAINED, SCORE_ERROR
from rlreward.integrations.verl._score import (
    DEFAULT_SAMPLE_TIMEOUT,
    ENV_SPEC,
    compute_score,
    compute_score_batch,
    compute_score_scalar,
    compute_score_sync,
    resolve_reward,
    score_rows,
)

__all__ = [
    "ABSTAINED_SUFFIX",
    "ALIGNED_SUFFIX",
    "DEFAULT_SAMPLE_TIMEOUT",
    "ENV_SPEC",
    "ERROR_SUFFIX",
    "SCORE",
    "SCORE_ABSTAINED",
    "SCORE_ERROR",
    "LegacyRLRewardManager",
    "RLRewardManager",
    "compute_score",
    "compute_score_batch",
    "compute_score_scalar",
    "compute_score_sync",
    "resolve_reward",
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
