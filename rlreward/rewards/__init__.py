"""Rule-based reward functions: a registry of batch-first scorers.

Built-in functions are imported on first use; ``list_reward_functions()`` lists them.
Their weighted combination is ``rlreward.CompositeReward`` (``rlreward.training.composite``):
the aggregator's value, computed by the runner, as every composite reward is.
"""

from rlreward.rewards.base import RewardFunction
from rlreward.rewards.registry import (
    RewardRegistry,
    get_reward_function,
    list_reward_functions,
    register_reward_function,
)
from rlreward.rewards.wrap import CallableReward

__all__ = [
    "CallableReward",
    "RewardFunction",
    "RewardRegistry",
    "get_reward_function",
    "list_reward_functions",
    "register_reward_function",
]
