"""Retry policy for OpenAI-compatible calls: what to retry, how long to wait, pacing.

Kept apart from the client so each piece is small and testable on its own.
"""

from __future__ import annotations

import asyncio
import email.utils
import html
import math
import random
import re
import time
from collections.abc import Mapping
from typing import Any

import openai

from rlreward.errors import BadCompletion, UpstreamError

__all__ = [
    "MAX_SERVER_MESSAGE",
    "RETRY_STATUSES",
    "BadCompletion",
    "RequestPacer",
    "TokenPacer",
    "UpstreamError",
    "backoff_delay",
    "cap_message",
    "classify_failure",
    "parse_retry_after",
    "server_message",
    "upstream_error",
]

#: HTTP statuses worth another attempt besides 5xx (timeout, conflict, too early, 429).
RETRY_STATUSES = frozenset({408, 409, 425, 429})


#: how much of a server's own error message is kept in error texts
MAX_SERVER_MESSAGE = 1000

#: error ``type`` / ``code`` words of OpenAI-style error objects -> the status they mean
_ERROR_WORDS = (
    ("rate_limit", 429),
    ("quota", 429),
    ("overloaded", 503),
    ("unavailable", 503),
    ("timeout", 504),
    ("upstream", 502),
    ("server_error", 500),
    ("internal", 500),
    ("authentication", 401),
    ("invalid_api_key", 401),
    ("permission", 403),
    ("not_found", 404),
    ("invalid_request", 400),
)
_STATUS_RE = re.compile(r"\b([45]\d\d)\b")
_TAG_RE = re.compile(r"<[^>]*>")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def cap_message(text: str, limit: int = MAX_SERVER_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def _status_of_error(error: Any) -> int | None:
    """The HTTP status an error object names: a numeric ``code``/``status``, else its words."""
    if not isinstance(error, Mapping):
        return None
    for key in ("status", "code", "status_code"):
        value = error.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
            return value
        if isinstance(value, str) and value.strip().isdigit() and 400 <= int(value) <= 599:
            return int(value)
    words = " ".join(str(error.get(k, "")) for k in ("type", "code")).lower()
    for word, status in _ERROR_WORDS:
        if word in words:
            return status
    return None


def upstream_error(body: Any) -> UpstreamError:
    """The UpstreamError for a 200 body that is an error object or not JSON (``str``)."""
    if isinstance(body, str):
        title = _TITLE_RE.search(body)
        text = html.unescape(_TAG_RE.sub(" ", body))
        text = " ".join(text.split())
        match = _STATUS_RE.search(title.group(1) if title else text[:200])
        status = int(match.group(1)) if match else None
        return UpstreamError(
            f"HTTP 200 with a body that is not JSON (a proxy page?): {cap_message(text)}", status
        )
    error = body
    message = error.get("message") if isinstance(error, Mapping) else None
    shown = message if isinstance(message, str) else str(error)
    status = _status_of_error(error)
    named = f" (names status {status})" if status is not None else ""
    return UpstreamError(f"HTTP 200 with an error object{named}: {cap_message(shown)}", status)


def server_message(exc: Exception) -> str:
    """The server's own words for a failed attempt, capped (``Error code: ...`` is noise)."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        if isinstance(body, Mapping):
            inner = body.get("error", body)
            message = inner.get("message") if isinstance(inner, Mapping) else inner
            text = message if isinstance(message, str) else str(body)
        elif isinstance(body, str):
            text = body
        else:
            text = exc.response.text
        return f"HTTP {exc.status_code}: {cap_message(text)}"
    return cap_message(f"{type(exc).__name__}: {exc}")


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


class TokenPacer:
    """Client-side tokens-per-minute limit, counted from the usage the server reports.

    A request's tokens are known only from its reply, so each start reserves the mean
    tokens per call seen so far, and its reply settles the difference; starts are spaced
    so that the reserved tokens flow at ``tokens_per_minute``. Until the first reply
    reports usage nothing is reserved: the first calls in flight (at most the model's
    ``max_connections``) start at once. One pacer belongs to one event loop.
    """

    def __init__(self, tokens_per_minute: float) -> None:
        self.seconds_per_token = 60.0 / tokens_per_minute
        self._next = 0.0
        self._tokens = 0
        self._calls = 0

    async def acquire(self) -> float:
        """Wait for this request's turn; returns the tokens reserved for it."""
        reserved = self._tokens / self._calls if self._calls else 0.0
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + reserved * self.seconds_per_token
        if slot > now:
            await asyncio.sleep(slot - now)
        return reserved

    def settle(self, reserved: float, used: int) -> None:
        """A request ended having used ``used`` tokens (0 for a failed attempt)."""
        if used > 0:
            self._tokens += used
            self._calls += 1
        self._next += (used - reserved) * self.seconds_per_token


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
    if isinstance(exc, UpstreamError):
        if exc.status is None:  # an unreadable or unrecognised failure: worth another try
            return "bad_response", True, None
        return exc.status, exc.status in RETRY_STATUSES or exc.status >= 500, None
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, TimeoutError)):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", True, None
    if isinstance(exc, BadCompletion):
        return "bad_response", False, None  # e.g. a refusal: asking again gets the same
    if isinstance(exc, (openai.APIError, ValueError)):
        return "bad_response", True, None  # an unreadable body, e.g. from a proxy
    raise exc
