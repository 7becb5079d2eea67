"""Models below the graders: chat clients for LLM judges (any OpenAI-compatible endpoint)
and the reward-model IO shared by ``RewardModelGrader`` and reward-model training.

Names load lazily, so ``rlreward.models.reward_model_io`` does not import the HTTP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ChatModel": "rlreward.models.base",
    "ChatModelError": "rlreward.errors",
    "ChatReply": "rlreward.models.base",
    "ChatStats": "rlreward.models.base",
    "OpenAIChatModel": "rlreward.models.openai",
}

__all__ = ["ChatModel", "ChatModelError", "ChatReply", "ChatStats", "OpenAIChatModel"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlreward.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:  # pragma: no cover
    from rlreward.errors import ChatModelError
    from rlreward.models.base import ChatModel, ChatReply, ChatStats
    from rlreward.models.openai import OpenAIChatModel
