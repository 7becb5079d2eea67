"""Rule-based reward functions: a registry of batch-first scorers and a composite helper.

Built-in functions are imported on first use; ``list_reward_functions()`` lists them.
"""

from rlreward.rewards.base import RewardFunction
from rlreward.rewards.composite import CompositeReward, CompositeScores, compute_composite
from rlreward.rewards.registry import (
    RewardRegistry,
    get_reward_function,
    list_reward_functions,
    register_reward_function,
)
from rlreward.rewards.wrap import CallableReward

__all__ = [
    "CallableReward",
    "CompositeReward",
    "CompositeScores",
    "RewardFunction",
    "RewardRegistry",
    "compute_composite",
    "get_reward_function",
    "list_reward_functions",
    "register_reward_function",
]
