"""Chat models that LLM judges call (any OpenAI-compatible endpoint)."""

from rlreward.models.base import ChatModel, ChatModelError, ChatReply, ChatStats
from rlreward.models.openai import OpenAIChatModel

__all__ = ["ChatModel", "ChatModelError", "ChatReply", "ChatStats", "OpenAIChatModel"]
