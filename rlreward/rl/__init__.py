"""RL post-training: ``create_rl_trainer`` (reward-model training, then PPO or GRPO via TRL).

Importing this package is light (no torch, transformers or TRL), so the unsloth backend
can still be imported before them.
"""

from rlreward.rl.config import RLTrainingConfig
from rlreward.rl.factory import create_rl_trainer
from rlreward.rl.trainer import RLTrainer

__all__ = ["RLTrainer", "RLTrainingConfig", "create_rl_trainer"]
