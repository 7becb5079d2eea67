"""OpenAIChatModel: chat completions from any OpenAI-compatible endpoint, robust to faults.

One ``openai.AsyncOpenAI`` client per running event loop, created inside that loop on
first use and closed when the loop shuts down (or by ``aclose()``), so one model serves
any number of ``asyncio.run`` calls. The client's own retries are off
(``max_retries=0``): this class retries 429, 408/409, 5xx, timeouts, dropped
connections and unreadable bodies itself, with full-jitter backoff and the server's
``Retry-After``, so every attempt is counted and reported. An HTTP 200 whose body is an
error object or not JSON (a proxy's 502 page) is classified like the status it names.

At most ``max_connections`` requests are in flight per loop; the others wait for a slot
*before* their request starts, so the per-request ``timeout`` counts from the moment a
request is sent, never while it queues for a pooled connection.

The API key lives in a ``_Secret`` that never prints; it is also scrubbed from every
error message, and a pickle carries no key unless ``pickle_api_key=True``: the copy
reads it from the environment variable ``api_key_env`` where it is unpickled.
The library never reads ``.env`` files; recipes and the CLI do (``python-dotenv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import openai

from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.models.base import ChatModelError, ChatReply, ChatStats
from rlreward.models.retry import (
    BadCompletion,
    RequestPacer,
    TokenPacer,
    backoff_delay,
    classify_failure,
    server_message,
    upstream_error,
)

__all__ = ["ChatModelError", "ChatReply", "OpenAIChatModel", "judge_endpoint"]

log = logging.getLogger(__name__)

_SCHEMA_REJECT_STATUSES = frozenset({400, 422})
#: the key of a keyless local server (vLLM, SGLang, Ollama): not a secret
KEYLESS = "EMPTY"
_deadline = getattr(asyncio, "timeout", None)  # Python 3.11+: a deadline without a task


class _Secret:
    """Holds the API key; its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if len(self._value) >= 4 else text

    def __repr__(self) -> str:
        return "'***'"


@dataclass
class _LoopState:
    client: openai.AsyncOpenAI
    pacer: RequestPacer | None
    slots: asyncio.Semaphore
    tokens: TokenPacer | None = None
    closer: Any = None
    closed: bool = False


async def _close_at_loop_shutdown(
    state: _LoopState, states: weakref.ref[weakref.WeakKeyDictionary[Any, _LoopState]]
) -> AsyncIterator[None]:
    """Suspended for the loop's life; ``loop.shutdown_asyncgens()`` (asyncio.run) ends it."""
    try:
        yield
    finally:
        table = states()
        if table is not None and table.get(asyncio.get_running_loop()) is state:
            # drop the entry: a finished generator still references the loop
            del table[asyncio.get_running_loop()]
        if not state.closed:
            state.closed = True
            await state.client.close()


def _positive(
    name: str, value: Any, *, allow_none: bool = False, integer: bool = False, minimum: int = 0
) -> None:
    if value is None and allow_none:
        return
    rule = (
        number_rule(value, integer=True, low=minimum)
        if integer
        else number_rule(value, low=0, low_inclusive=False)
    )
    if rule is not None:
        raise ConfigError(
            f"OpenAIChatModel: {name} must be {rule}{' or None' if allow_none else ''}, "
            f"got {value!r}"
        )


class OpenAIChatModel:
    """A judge model behind any OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Args:
        model: the model id the server knows (``gpt-4o-mini``, ``qwen3-32b``, ...).
        base_url: the endpoint, e.g. ``http://127.0.0.1:8000/v1`` for vLLM; default
            ``OPENAI_BASE_URL``, else OpenAI.
        api_key: default: the environment variable ``api_key_env``; for a keyless local
            server (only ``base_url`` / ``OPENAI_BASE_URL`` set) it is ``"EMPTY"``.
        api_key_env: the variable the key is read from, here and wherever a pickled
            copy is unpickled (default ``OPENAI_API_KEY``).
        pickle_api_key: carry the key inside pickles (off by default: Ray and TRL pickle
            models, and a pickle is plain text); turn it on only where workers cannot
            see ``api_key_env``.
        timeout: seconds per HTTP attempt, counted from when the request is sent (a
            hung server becomes a retried timeout).
        max_connections: connections (and so requests in flight) per event loop;
            further calls wait for a free one without spending their timeout.
        max_retries: retries after the first attempt on transient faults.
        requests_per_minute: optional client-side pacing, per event loop.
        tokens_per_minute: optional client-side pacing of the tokens the server
            reports (prompt + completion), per event loop; see ``TokenPacer``. Graders
            that share this model object share both limits.
        backoff_base, backoff_max: full-jitter backoff ``U(0, min(max, base*2**n))``.
        max_retry_after: cap on a server's ``Retry-After``.
        structured_output: ``None`` tries json_schema response formats and falls back to
            a plain prompt when the server answers 400 (remembered); ``True``/``False``
            force it on/off.
        temperature, max_tokens, extra_body: sent with every request.
        cache_namespace: what identifies this model in result-cache keys (default the
            model id; the URL is left out so a restarted server keeps its cache).
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        structured_output: bool | None = None,
        max_connections: int = 1000,
        default_headers: Mapping[str, str] | None = None,
        cache_namespace: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        pickle_api_key: bool = False,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"OpenAIChatModel: model must be a non-empty model id, got {model!r}")
        _positive("timeout", timeout)
        _positive("max_retries", max_retries, integer=True)
        _positive("requests_per_minute", requests_per_minute, allow_none=True)
        _positive("tokens_per_minute", tokens_per_minute, allow_none=True)
        _positive("backoff_base", backoff_base)
        _positive("backoff_max", backoff_max)
        _positive("max_retry_after", max_retry_after)
        _positive("max_connections", max_connections, integer=True, minimum=1)
        _positive("max_tokens", max_tokens, allow_none=True, integer=True, minimum=1)
        if not isinstance(api_key_env, str) or not api_key_env.strip():
            raise ConfigError(
                f"OpenAIChatModel: api_key_env must name an environment variable, "
                f"got {api_key_env!r}"
            )
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get(api_key_env) or None
        if key is None:
            if base_url is None:
                raise ConfigError(
                    f"OpenAIChatModel: no API key; set {api_key_env} or pass api_key=...; "
                    "for a keyless local server (vLLM, SGLang, Ollama, llama.cpp) set "
                    "OPENAI_BASE_URL or pass base_url=... instead"
                )
            key = KEYLESS
        self.model = model
        self.base_url = base_url
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body) if extra_body else None
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.structured_output = structured_output
        self.max_connections = max_connections
        self.default_headers = dict(default_headers) if default_headers else None
        self.cache_namespace = cache_namespace or model
        self.stats = ChatStats()
        self.api_key_env = api_key_env
        self.pickle_api_key = bool(pickle_api_key)
        self._key: _Secret | None = _Secret(key)
        self._schema_ok: bool | None = structured_output
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    # -- loop-bound client -------------------------------------------------------------
    def _new_state(self) -> _LoopState:
        try:  # openai >= 3 is built on httpx2, older releases on httpx
            import httpx2 as httpx
        except ImportError:  # pragma: no cover - depends on the installed openai
            import httpx  # type: ignore[no-redef]

        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        http = openai.DefaultAsyncHttpxClient(limits=limits, timeout=self.timeout)
        client = openai.AsyncOpenAI(
            api_key=self._key.get() if self._key is not None else KEYLESS,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,
            http_client=http,
            default_headers=self.default_headers,
        )
        pacer = RequestPacer(self.requests_per_minute) if self.requests_per_minute else None
        tokens = TokenPacer(self.tokens_per_minute) if self.tokens_per_minute else None
        return _LoopState(client, pacer, asyncio.Semaphore(self.max_connections), tokens=tokens)

    def _drop_dead_loops(self) -> None:
        for loop in [lp for lp in self._states if lp.is_closed()]:
            state = self._states.pop(loop)
            # That loop ended without shutdown_asyncgens(); its sockets cannot be closed
            # from here. Finish the closer generator without awaiting, so nothing later
            # tries to schedule work on the dead loop.
            state.closed = True
            if state.closer is not None:
                with contextlib.suppress(StopIteration):
                    state.closer.aclose().send(None)
            log.debug("dropped the client of a closed event loop for model %r", self.model)

    async def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is not None and not state.closed:
            return state
        with self._lock:  # several threads may each run their own loop
            self._drop_dead_loops()
            state = self._states[loop] = self._new_state()
        state.closer = _close_at_loop_shutdown(state, weakref.ref(self._states))
        await state.closer.__anext__()  # runs to its yield; the loop now owns its shutdown
        return state

    async def client(self) -> openai.AsyncOpenAI:
        """The ``openai.AsyncOpenAI`` client of the running loop (for raw calls)."""
        return (await self._state()).client

    async def aclose(self) -> None:
        """Close the running loop's client now (another call makes a fresh one)."""
        loop = asyncio.get_running_loop()
        state = self._states.pop(loop, None)
        if state is not None and not state.closed:
            state.closed = True
            await state.client.close()
            if state.closer is not None:
                await state.closer.aclose()

    # -- calls -------------------------------------------------------------------------
    async def achat(
        self,
        messages: Sequence[Mapping[str, Any]],
        response_format: Mapping[str, Any] | None = None,
    ) -> ChatReply:
        """One chat completion, retried on transient faults; raises ChatModelError."""
        secret = self._key
        if secret is None:
            raise ChatModelError(
                f"OpenAIChatModel {self.model!r}: no API key in this process; this copy was "
                f"unpickled and pickles carry no key by default: set {self.api_key_env} in "
                "this process's environment, or build the model with pickle_api_key=True",
                attempts=0,
                last_status="no_api_key",
                latency_s=0.0,
                retryable=False,
            )
        state = await self._state()
        self.stats.calls += 1
        start = time.perf_counter()
        reasons: list[str] = []
        attempt = fallbacks = 0
        spent: dict[str, int] | None = None  # usage summed over attempts that got a reply
        use_schema = response_format is not None and self._schema_ok is not False
        while True:
            attempt += 1
            self.stats.attempts += 1
            if state.pacer is not None:
                await state.pacer.acquire()
            reserved = await state.tokens.acquire() if state.tokens is not None else 0.0
            try:
                completion = await self._create(
                    state, messages, response_format if use_schema else None
                )
                text, usage = _read_completion(completion)
            except Exception as exc:  # classified below; non-API errors re-raise
                lost = getattr(exc, "usage", None)  # a refusal's tokens are paid for
                spent = _add_usage(spent, lost)
                if state.tokens is not None:
                    state.tokens.settle(reserved, lost["total_tokens"] if lost else 0)
                status, retryable, wait = classify_failure(exc, self.max_retry_after)
                if use_schema and status in _SCHEMA_REJECT_STATUSES and self._schema_ok is None:
                    use_schema = False  # the server may not take json_schema: ask plainly
                    self.stats.schema_fallbacks += 1
                    fallbacks += 1  # a capability probe, not a fault: no retry budget spent
                    log.debug(
                        "model %r: json_schema response_format rejected (%s); plain prompt",
                        self.model,
                        status,
                    )
                    continue
                reasons.append(str(status))
                message = secret.scrub(server_message(exc))
                if not retryable or attempt - fallbacks > self.max_retries:
                    self.stats.failures += 1
                    elapsed = time.perf_counter() - start
                    budget = "retry budget spent" if retryable else "not retryable"
                    log.info(
                        "model %r call failed after %d attempt(s) (%s): %s",
                        self.model,
                        attempt,
                        budget,
                        message,
                    )
                    raise ChatModelError(
                        f"{message} (after {attempt} attempt(s), {budget})",
                        attempts=attempt,
                        last_status=status,
                        latency_s=elapsed,
                        retryable=retryable,
                        retry_reasons=reasons,
                        usage=spent,
                    ) from None
                delay = (
                    wait
                    if wait is not None
                    else backoff_delay(attempt, self.backoff_base, self.backoff_max, self._rng)
                )
                self.stats.retries += 1
                log.debug(
                    "model %r attempt %d failed (%s); retrying in %.2fs",
                    self.model,
                    attempt,
                    status,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if state.tokens is not None:
                state.tokens.settle(reserved, usage["total_tokens"] if usage else 0)
            if spent is not None:
                usage = _add_usage(spent, usage)
            if use_schema and self._schema_ok is None:
                self._schema_ok = True
            elif response_format is not None and not use_schema and self._schema_ok is None:
                self._schema_ok = False  # the plain retry worked: remember for this model
            return ChatReply(
                text, attempt, time.perf_counter() - start, usage, use_schema, tuple(reasons)
            )

    async def _create(
        self,
        state: _LoopState,
        messages: Sequence[Mapping[str, Any]],
        response_format: Mapping[str, Any] | None,
    ) -> Any:
        # The per-request timeout is the client's own (built with self.timeout): passing
        # it again only makes the client build a second timeout object per request.
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages if isinstance(messages, list) else list(messages),
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if response_format is not None:
            kwargs["response_format"] = (
                response_format if isinstance(response_format, dict) else dict(response_format)
            )
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        # Wait for a connection slot first: the timeout starts when the request is sent.
        # The raw response is read as JSON here (``_read_completion``): building the SDK's
        # pydantic ChatCompletion costs more CPU per call than everything else we do, and
        # we read three of its fields.
        async with state.slots:
            request = state.client.chat.completions.with_raw_response.create(**kwargs)
            if _deadline is not None:  # a total deadline even if a server trickles bytes
                async with _deadline(self.timeout + 1.0):
                    return (await request).http_response
            return (await asyncio.wait_for(request, self.timeout + 1.0)).http_response

    # -- identity ----------------------------------------------------------------------
    def cache_identity(self) -> dict[str, Any]:
        """What makes two replies interchangeable (goes into result-cache keys)."""
        return {
            "model": self.cache_namespace,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "extra_body": self.extra_body,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

    def __repr__(self) -> str:
        return (
            f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r}, api_key='***', "
            f"timeout={self.timeout}, max_retries={self.max_retries})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_states"] = None  # clients belong to loops; a copy builds its own
        state["_lock"] = None
        key = self._key.get() if self._key is not None else None
        # No secret in a pickle unless asked for; a keyless server's "EMPTY" is no secret.
        state["_key"] = key if self.pickle_api_key or key == KEYLESS else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        key = state["_key"]
        if key is None:
            key = os.environ.get(state.get("api_key_env", "OPENAI_API_KEY")) or None
            if key is None:
                log.warning(
                    "unpickled OpenAIChatModel %r has no API key: %s is not set here "
                    "(pickles carry no key unless pickle_api_key=True); its calls will fail",
                    state.get("model"),
                    state.get("api_key_env"),
                )
        state["_key"] = _Secret(key) if key is not None else None
        state["_states"] = weakref.WeakKeyDictionary()
        state["_lock"] = threading.Lock()
        self.__dict__.update(state)


def _count(value: Any) -> int:
    """A token count as reported; anything but a non-negative integer counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def read_usage(usage: Any) -> dict[str, int] | None:
    """``{"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens"}`` from a
    completion body's ``usage`` object, or None when the server reported none."""
    if not isinstance(usage, Mapping):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cached_tokens": cached,
    }


def _add_usage(a: dict[str, int] | None, b: dict[str, int] | None) -> dict[str, int] | None:
    if a is None or b is None:
        return b if a is None else a
    return {k: a[k] + b[k] for k in a}


def _read_completion(response: Any) -> tuple[str, dict[str, int] | None]:
    """The reply text and usage of an HTTP 200 chat completion (an ``httpx`` response).

    A body that is not JSON (a proxy's page) or that is an error object is an
    UpstreamError, classified like the status it names; a completion without text (no
    choices, a refusal) is a BadCompletion carrying the usage the server reported.
    """
    try:
        body = json.loads(response.content)
    except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too)
        raise upstream_error(response.text) from None
    if not isinstance(body, Mapping):
        raise BadCompletion(f"completion is not a JSON object: {str(body)[:200]!r}")
    choices = body.get("choices")
    error = body.get("error")
    if not choices and error is not None:  # HTTP 200 carrying {"error": ...}
        raise upstream_error(error if isinstance(error, Mapping) else {"message": str(error)})
    usage = read_usage(body.get("usage"))
    if not choices or not isinstance(choices, list):
        raise BadCompletion(f"completion has no choices: {str(body)[:200]!r}", usage)
    first = choices[0]
    message = first.get("message") if isinstance(first, Mapping) else None
    if not isinstance(message, Mapping):
        raise BadCompletion(f"completion choice has no message: {str(first)[:200]!r}", usage)
    text = message.get("content")
    if not isinstance(text, str):
        refusal = message.get("refusal")
        raise BadCompletion(f"completion has no content (refusal: {refusal!r})", usage)
    return text, usage


def judge_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """Where an OpenAIChatModel built from the environment would send its calls, in words,
    or None when neither ``OPENAI_API_KEY`` nor ``OPENAI_BASE_URL`` is set.

    A base URL alone is enough: local vLLM / SGLang / Ollama servers need no key.
    """
    env = os.environ if environ is None else environ
    key = env.get("OPENAI_API_KEY") or None
    url = env.get("OPENAI_BASE_URL") or None
    if key is not None:
        return f"OPENAI_API_KEY is set ({url or 'the OpenAI API'})"
    if url is not None:
        return f"OPENAI_BASE_URL is set, no key (a keyless server at {url})"
    return None
