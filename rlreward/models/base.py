"""What any chat model offers an LLM judge: ``achat`` -> ChatReply, or ChatModelError."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rlreward.errors import ChatModelError

__all__ = ["ChatModel", "ChatModelError", "ChatReply", "ChatStats"]


@dataclass(frozen=True)
class ChatReply:
    """One completed chat call: the text and what it took to get it.

    ``usage`` is what the server reported, summed over the call's attempts that got a
    completion: ``{"prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens"}`` (``cached_tokens`` from ``prompt_tokens_details``, 0 when not
    reported), or None when the server reported no usage.
    """

    text: str
    attempts: int
    latency_s: float
    usage: dict[str, int] | None = None
    structured: bool = False
    retry_reasons: tuple[str, ...] = ()


@dataclass
class ChatStats:
    """Counters over the life of one model object (all loops)."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0
    schema_fallbacks: int = 0


@runtime_checkable
class ChatModel(Protocol):
    """The interface LLM graders use; ``OpenAIChatModel`` is the built-in one."""

    model: str

    async def achat(
        self,
        messages: Sequence[Mapping[str, Any]],
        response_format: Mapping[str, Any] | None = None,
    ) -> ChatReply: ...

    def cache_identity(self) -> dict[str, Any]: ...
