"""The one home of the TrainingArguments every trainer here starts from.

Reward-model training (``training/settings.py``) and the RL trainers (``rl/ppo.py``,
``rl/grpo.py``) all build their ``TrainingArguments`` / TRL configs on ``run_args``, so
the CPU-safe precision settings are decided in one place. It lives in ``training/``
(below ``rl/``) because both layers use it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_args"]


def run_args(*, use_cpu: bool, bf16: bool, seed: int) -> dict[str, Any]:
    """TrainingArguments every trainer here gets: the CPU-safe precision settings
    (TRL's configs default to bf16 and gradient checkpointing, which fail or crawl on
    CPU), no reporting integrations, no checkpoints, a log line per step."""
    return {
        "use_cpu": use_cpu,
        "bf16": bf16 and not use_cpu,
        "fp16": False,
        "gradient_checkpointing": False,
        "report_to": [],
        "save_strategy": "no",
        "logging_steps": 1,
        "seed": seed,
    }
