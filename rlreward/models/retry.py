"""Retry policy for OpenAI-compatible calls: what to retry, how long to wait, pacing.

Kept apart from the client so each piece is small and testable on its own.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Mapping

import openai

from rlreward.errors import BadCompletion

__all__ = [
    "RETRY_STATUSES",
    "BadCompletion",
    "RequestPacer",
    "backoff_delay",
    "classify_failure",
    "parse_retry_after",
]

#: HTTP statuses worth another attempt besides 5xx (timeout, conflict, too early, 429).
RETRY_STATUSES = frozenset({408, 409, 425, 429})


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**(attempt-1))].

    Full jitter (rather than a fixed doubling) spreads the retries of many concurrent
    calls that failed together, so they do not hit the server again in one burst.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(headers: Mapping[str, str] | None, cap: float) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date).

    Returns ``None`` when the server gave no usable hint; the value is capped at ``cap``
    so a misbehaving server cannot park a training step for an hour.
    """
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return min(value, cap)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        value = when.timestamp() - time.time()
    if not math.isfinite(value):
        return None
    return min(max(value, 0.0), cap)


class RequestPacer:
    """Client-side requests-per-minute limit: request starts are spaced ``60/rpm`` apart.

    Spacing (rather than a per-minute window) never sends a burst that a provider's
    sliding window would reject. One pacer belongs to one event loop.
    """

    def __init__(self, requests_per_minute: float) -> None:
        self.interval = 60.0 / requests_per_minute
        self._next = 0.0

    async def acquire(self) -> None:
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def classify_failure(
    exc: Exception, max_retry_after: float
) -> tuple[int | str, bool, float | None]:
    """``(status label, retryable, server-requested wait)`` for a failed attempt.

    Exceptions that are not about the HTTP exchange (programming errors) re-raise.
    """
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in RETRY_STATUSES or status >= 500
        wait = parse_retry_after(exc.response.headers, max_retry_after) if retryable else None
        return status, retryable, wait
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, TimeoutError)):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", True, None
    if isinstance(exc, BadCompletion):
        return "bad_response", False, None  # e.g. a refusal: asking again gets the same
    if isinstance(exc, (openai.APIError, ValueError)):
        return "bad_response", True, None  # an unreadable body, e.g. from a proxy
    raise exc
