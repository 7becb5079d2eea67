"""rlreward: one composite reward from LLM judges, rule functions and reward models.

``import rlreward`` is light: names are imported on first use, so torch, transformers,
trl and verl load only when a feature that needs them is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rlreward._version import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # core
    "GraderScore": "rlreward.schema",
    "GraderError": "rlreward.schema",
    "GraderResult": "rlreward.schema",
    "GraderAbstention": "rlreward.schema",
    "Reward": "rlreward.reward",
    "Grader": "rlreward.graders.base",
    "BaseGrader": "rlreward.graders.base",
    "FunctionGrader": "rlreward.graders.function",
    "batched": "rlreward.callables",
    "GraderConfig": "rlreward.runner",
    "GradingRunner": "rlreward.runner",
    "GradingResults": "rlreward.results",
    "WeightedSumAggregator": "rlreward.aggregators",
    "RewardSpec": "rlreward.integrations.spec",
    "load_spec": "rlreward.integrations.spec",
    "ConfigError": "rlreward.errors",
    "MissingFieldsError": "rlreward.errors",
    "UnknownNameError": "rlreward.errors",
    "DatasetError": "rlreward.errors",
    "DependencyError": "rlreward.errors",
    "RLRewardError": "rlreward.errors",
    # rule-based reward functions (issue 4)
    "RewardRegistry": "rlreward.rewards.registry",
    "RewardFunction": "rlreward.rewards.base",
    "CompositeReward": "rlreward.training.composite",
    "RewardFunctionGrader": "rlreward.graders.reward_function",
    "get_reward_function": "rlreward.rewards.registry",
    "list_reward_functions": "rlreward.rewards.registry",
    # LLM judges (issue 3)
    "OpenAIChatModel": "rlreward.models.openai",
    "ChatModelError": "rlreward.errors",
    "LLMGrader": "rlreward.graders.llm",
    "HarmfulnessGrader": "rlreward.graders.judges",
    "RelevanceGrader": "rlreward.graders.judges",
    "CorrectnessGrader": "rlreward.graders.judges",
    "InstructionFollowingGrader": "rlreward.graders.judges",
    "HallucinationGrader": "rlreward.graders.judges",
    "RubricGrader": "rlreward.graders.judges",
    "ResultCache": "rlreward.cache",
    # tokens, cost and budgets of judge calls (issue 19)
    "UsageBudget": "rlreward.usage",
    "UsageSummary": "rlreward.usage",
    # trainer adapters (issue 6)
    "make_reward_funcs": "rlreward.integrations.trl",
    "RewardFuncs": "rlreward.integrations.trl",
    "RewardLoggingCallback": "rlreward.integrations.trl",
    "RLRewardManager": "rlreward.integrations.verl",
    "LegacyRLRewardManager": "rlreward.integrations.verl",
    # reward-model training (issue 5)
    "RewardModelTrainer": "rlreward.training.trainer",
    "RewardModelTrainingConfig": "rlreward.training.config",
    "RewardModelSourceConfig": "rlreward.training.config",
    "RewardModelGrader": "rlreward.graders.reward_model",
    "check_model_family": "rlreward.training.family",
    "FamilyMismatchError": "rlreward.errors",
    # RL trainer factory (issue 7)
    "create_rl_trainer": "rlreward.rl.factory",
    "RLTrainer": "rlreward.rl.trainer",
    "RLTrainingConfig": "rlreward.rl.config",
    "BackendUnavailableError": "rlreward.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlreward' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - static import view for type checkers
    from rlreward.aggregators import WeightedSumAggregator
    from rlreward.cache import ResultCache
    from rlreward.callables import batched
    from rlreward.errors import (
        BackendUnavailableError,
        ChatModelError,
        ConfigError,
        DatasetError,
        DependencyError,
        FamilyMismatchError,
        MissingFieldsError,
        RLRewardError,
        UnknownNameError,
    )
    from rlreward.graders.base import BaseGrader, Grader
    from rlreward.graders.function import FunctionGrader
    from rlreward.graders.judges import (
        CorrectnessGrader,
        HallucinationGrader,
        HarmfulnessGrader,
        InstructionFollowingGrader,
        RelevanceGrader,
        RubricGrader,
    )
    from rlreward.graders.llm import LLMGrader
    from rlreward.graders.reward_function import RewardFunctionGrader
    from rlreward.graders.reward_model import RewardModelGrader
    from rlreward.integrations.spec import RewardSpec, load_spec
    from rlreward.integrations.trl import RewardFuncs, RewardLoggingCallback, make_reward_funcs
    from rlreward.integrations.verl import LegacyRLRewardManager, RLRewardManager
    from rlreward.models.openai import OpenAIChatModel
    from rlreward.results import GradingResults
    from rlreward.reward import Reward
    from rlreward.rewards.base import RewardFunction
    from rlreward.rewards.registry import RewardRegistry, get_reward_function, list_reward_functions
    from rlreward.rl.config import RLTrainingConfig
    from rlreward.rl.factory import create_rl_trainer
    from rlreward.rl.trainer import RLTrainer
    from rlreward.runner import GraderConfig, GradingRunner
    from rlreward.schema import GraderAbstention, GraderError, GraderResult, GraderScore
    from rlreward.training.composite import CompositeReward
    from rlreward.training.config import RewardModelSourceConfig, RewardModelTrainingConfig
    from rlreward.training.family import check_model_family
    from rlreward.training.trainer import RewardModelTrainer
    from rlreward.usage import UsageBudget, UsageSummary
