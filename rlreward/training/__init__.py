"""Reward-model training from rule-based rewards, reward-model sources, family matching.

Names load lazily, so importing this package (or validating a config) imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RewardModelTrainer": "rlreward.training.trainer",
    "RewardModelFidelityError": "rlreward.errors",
    "RewardModelTrainingConfig": "rlreward.training.config",
    "RewardModelHyperparameters": "rlreward.training.settings",
    "RewardModelSourceConfig": "rlreward.training.config",
    "check_model_family": "rlreward.training.family",
    "require_same_family": "rlreward.training.family",
    "FamilyMismatchError": "rlreward.errors",
    "FamilyReport": "rlreward.training.family",
    "METADATA_FILE": "rlreward.models.reward_model_io",
    "read_metadata": "rlreward.models.reward_model_io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlreward.training' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
