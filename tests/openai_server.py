"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

It speaks ``POST /v1/chat/completions`` over real HTTP (aiohttp) so that the real
``openai`` client is exercised end to end. What it answers is scriptable per request:

- ``server.script(Action.status(429, retry_after="0.2"), Action.reply(...))`` queues
  actions for the next requests (FIFO); then ``server.responder`` decides, which by
  default answers ``{"reason": ..., "score": default_score}``;
- ``server.fail_first(n, action)`` fails the first ``n`` requests, then succeeds;
- ``reject_json_schema`` answers 400 to any ``response_format`` of type json_schema;
- ``latency`` delays every answer; ``rate_429`` answers that fraction of requests 429;
- ``responder=RankingJudge(bias=...)`` acts as a judge with a KNOWN ranking and a KNOWN
  position bias (per-row, listwise and pairwise requests; see its docstring).

Every answer carries a ``usage`` block with deterministic counts: ``prompt_tokens`` is
the number of whitespace-separated words in the request's messages, ``completion_tokens``
the words of the reply; with ``cached_tokens`` set, ``prompt_tokens_details.cached_tokens``
reports that many of the prompt's tokens as cached. ``counts["prompt_tokens"]`` and
``counts["completion_tokens"]`` sum what was reported, so tests compare totals.

``OpenAIServer`` runs in a background thread (tests); ``ServerProcess`` runs the same
server in a separate process (benchmarks, so the server does not share the client's
CPU and GIL). ``GET /stats`` returns the request counters as JSON; ``POST /config``
changes latency and the 429 rate of a running server. ``counts`` holds in-flight
counters (``in_flight``, ``max_in_flight``, ``hanging``) so tests check concurrency
and timeouts by what the server saw, not by wall-clock bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import random
import re
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "Action",
    "OpenAIServer",
    "RankingJudge",
    "ServerProcess",
    "local_model",
    "prompt_words",
    "word_count",
]


@dataclass(frozen=True)
class Action:
    """What the server does with one request."""

    kind: str  # reply | status | hang | drop | bad_body | raw
    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"
    usage: dict[str, int] | None = None  # the completion's usage (default: word counts)

    @classmethod
    def reply(
        cls, content: str | dict[str, Any], delay: float = 0.0, usage: dict[str, int] | None = None
    ) -> Action:
        """Answer 200 with this assistant message (a dict is sent as JSON text)."""
        text = content if isinstance(content, str) else json.dumps(content)
        return cls("reply", content=text, delay=delay, usage=usage)

    @classmethod
    def judge(cls, score: Any, reason: str = "judged", delay: float = 0.0) -> Action:
        return cls.reply({"reason": reason, "score": score}, delay=delay)

    @classmethod
    def error(cls, status: int, retry_after: str | None = None, message: str = "") -> Action:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(
            "status", content=message or f"simulated {status}", status=status, headers=headers
        )

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Action:
        """Accept the request and answer nothing for ``seconds`` (past any client timeout)."""
        return cls("hang", delay=seconds)

    @classmethod
    def drop(cls) -> Action:
        """Close the connection without an HTTP answer."""
        return cls("drop")

    @classmethod
    def bad_body(cls) -> Action:
        """Answer 200 with a body that is not JSON at all."""
        return cls("bad_body", content="<html>this is not json")

    @classmethod
    def raw(cls, body: str, status: int = 200, content_type: str = "application/json") -> Action:
        """Answer ``status`` with exactly this body (a proxy's page, an error object...)."""
        return cls("raw", content=body, status=status, content_type=content_type)

    @classmethod
    def error_200(cls, message: str, code: Any = None, type_: str | None = None) -> Action:
        """HTTP 200 whose JSON body is an error object, as some gateways answer."""
        err: dict[str, Any] = {"message": message}
        if code is not None:
            err["code"] = code
        if type_ is not None:
            err["type"] = type_
        return cls.raw(json.dumps({"error": err}))

    @classmethod
    def html_200(cls, status: int = 502, detail: str = "Bad Gateway") -> Action:
        """HTTP 200 with a proxy's HTML error page (not JSON at all)."""
        page = (
            f"<html><head><title>{status} {detail}</title></head><body>"
            f"<center><h1>{status} {detail}</h1></center><hr><center>nginx</center>"
            "</body></html>"
        )
        return cls.raw(page, content_type="text/html")


def word_count(text: Any) -> int:
    """Whitespace-separated words: the test server's deterministic token count."""
    return len(text.split()) if isinstance(text, str) else 0


def prompt_words(body: dict[str, Any]) -> int:
    """The prompt tokens the server reports for a request: words of every message."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    return sum(word_count(m.get("content")) for m in messages if isinstance(m, dict))


def _usage(prompt: int, content: str, cached: int | None) -> dict[str, Any]:
    completion = word_count(content)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": min(cached, prompt)}
    return usage


def _completion(
    model: str, content: str, n: int, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-test-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage if usage is not None else _usage(0, content, None),
    }


_QUALITY_RE = re.compile(r"\bq=([0-9]*\.?[0-9]+)")
_BLOCK_RE = re.compile(r'<response(?: id="(\d+)")?>\n(.*?)\n</response>', re.DOTALL)


def _tokens(text: str) -> int:
    return -(-len(text) // 4)  # ceil(characters / 4): an estimate, no tokenizer


class RankingJudge:
    """A judge with a KNOWN ranking and a KNOWN position bias, for group-judge tests.

    Each response carries its true quality as ``q=0.42`` in its text. The judge answers:

    - a per-row request (``<response>``): ``{"score": 1 + 4q}`` on the 1..5 scale;
    - a listwise request (``<response id="K">``, several): ``score = q``, plus ``bias``
      for the response in position 1 (clipped to 1);
    - a pairwise request (two responses, asks for ``"winner"``): the higher quality
      wins, but position 1 wins whenever ``q1 + bias >= q2``.

    ``usage`` is ``ceil(characters / 4)`` of the request's messages and of the reply:
    an estimate (no tokenizer), sent back as the completion's usage. Picklable, so it
    serves from a ``ServerProcess`` too.
    """

    def __init__(self, bias: float = 0.0, default: float = 0.5) -> None:
        self.bias = bias
        self.default = default

    def quality(self, text: str) -> float:
        m = _QUALITY_RE.search(text)
        return float(m.group(1)) if m else self.default

    def __call__(self, body: dict[str, Any]) -> Action:
        messages = body.get("messages") or []
        user = str(messages[-1].get("content", "")) if messages else ""
        blocks = _BLOCK_RE.findall(user)
        qs = [self.quality(text) for _, text in blocks]
        verdict: dict[str, Any]
        if blocks and not blocks[0][0]:
            verdict = {"reason": "per-row", "score": 1 + 4 * qs[0]}
        elif '"winner"' in user:
            win = 1 if qs[0] + self.bias >= qs[1] else 2
            verdict = {"reason": f"{qs[0]:.2f} vs {qs[1]:.2f}", "winner": win}
        else:
            scores = [min(1.0, q + (self.bias if k == 0 else 0.0)) for k, q in enumerate(qs)]
            verdict = {
                "scores": [
                    {"id": int(cid), "reason": f"q {q:.2f}", "score": round(s, 6)}
                    for (cid, _), q, s in zip(blocks, qs, scores, strict=True)
                ]
            }
        content = json.dumps(verdict)
        prompt = sum(_tokens(str(m.get("content", ""))) for m in messages)
        return Action.reply(
            content, usage={"prompt_tokens": prompt, "completion_tokens": _tokens(content)}
        )


class OpenAIServer:
    """The server; ``start()`` runs it in a daemon thread, ``url`` is its ``/v1`` base."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        rate_429: float = 0.0,
        default_score: Any = 4,
        record: bool = True,
        seed: int = 0,
        responder: Callable[[dict[str, Any]], Action] | None = None,
    ) -> None:
        self.latency = latency
        self.rate_429 = rate_429
        self.default_score = default_score
        self.record = record
        self.reject_json_schema = False
        #: prompt tokens reported as cached per reply (``None``: no prompt_tokens_details)
        self.cached_tokens: int | None = None
        self.responder: Callable[[dict[str, Any]], Action] | None = responder
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.counts: Counter[str] = Counter()
        self._script: deque[Action] = deque()
        self._fail_first: tuple[int, Action] | None = None
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._hangs: asyncio.Event | None = None  # set to end every hanging request
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting (called from the test thread) ------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def n_requests(self) -> int:
        return self.counts["chat"]

    def script(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    def fail_first(self, n: int, action: Action) -> None:
        with self._lock:
            self._fail_first = (n, action)

    def _release_hangs(self) -> None:
        assert self._hangs is not None
        self._hangs.set()
        self._hangs = asyncio.Event()

    def reset(self) -> None:
        """Forget scripts and counters; requests still hanging from a test end first."""
        if self._loop is not None and self._hangs is not None:
            self._loop.call_soon_threadsafe(self._release_hangs)
            deadline = time.monotonic() + 10
            while self.counts["in_flight"] > 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        with self._lock:
            self._script.clear()
            self._fail_first = None
            self.requests.clear()
            self.headers.clear()
            self.counts.clear()
        self.responder = None
        self.reject_json_schema = False
        self.cached_tokens = None
        self.latency = 0.0
        self.rate_429 = 0.0
        self.default_score = 4

    # -- request handling (server thread) --------------------------------------------
    def _choose(self, body: dict[str, Any]) -> Action:
        with self._lock:
            n = self.counts["chat"]
            if self._fail_first is not None and n <= self._fail_first[0]:
                return self._fail_first[1]
            if self._script:
                return self._script.popleft()
            if self.rate_429 and self._rng.random() < self.rate_429:
                self.counts["injected_429"] += 1
                return Action.error(429, retry_after="0")
        if self.responder is not None:
            return self.responder(body)
        return Action.judge(self.default_score)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        with self._lock:
            self.counts["chat"] += 1
            self.counts["in_flight"] += 1
            self.counts["max_in_flight"] = max(
                self.counts["max_in_flight"], self.counts["in_flight"]
            )
        try:
            return await self._answer(request, raw)
        finally:
            with self._lock:
                self.counts["in_flight"] -= 1

    async def _answer(self, request: web.Request, raw: bytes) -> web.StreamResponse:
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"error": {"message": "request is not JSON"}}, status=400)
        if self.record:
            with self._lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
        rf = body.get("response_format") or {}
        if self.reject_json_schema and rf.get("type") == "json_schema":
            with self._lock:
                self.counts["rejected_schema"] += 1
            err = {
                "message": "response_format json_schema is not supported",
                "type": "invalid_request_error",
            }
            return web.json_response({"error": err}, status=400)
        action = self._choose(body)
        delay = action.delay or self.latency
        if action.kind == "hang":
            assert self._hangs is not None
            release = self._hangs
            with self._lock:
                self.counts["hanging"] += 1
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(release.wait(), action.delay)
            finally:
                with self._lock:
                    self.counts["hanging"] -= 1
            usage = self._count_usage(body, "{}")
            return web.json_response(_completion(body.get("model", "?"), "{}", 0, usage))
        if delay:
            await asyncio.sleep(delay)
        if action.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # aiohttp stops handling this request quietly
        if action.kind == "status":
            err = {"message": action.content, "type": "simulated", "code": action.status}
            return web.json_response({"error": err}, status=action.status, headers=action.headers)
        if action.kind == "bad_body":
            return web.Response(text=action.content, content_type="application/json")
        if action.kind == "raw":
            return web.Response(
                text=action.content, status=action.status, content_type=action.content_type
            )
        usage = self._count_usage(body, action.content, action.usage)
        with self._lock:
            self.counts["ok"] += 1
            n = self.counts["chat"]
        return web.json_response(_completion(body.get("model", "?"), action.content, n, usage))

    def _count_usage(
        self, body: dict[str, Any], content: str, given: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """The usage block of a reply (a responder's own counts when it gives them, else
        word counts), added to ``counts``."""
        if given is not None:
            usage: dict[str, Any] = {
                **given,
                "total_tokens": given["prompt_tokens"] + given["completion_tokens"],
            }
        else:
            usage = _usage(prompt_words(body), content, self.cached_tokens)
        with self._lock:
            self.counts["prompt_tokens"] += usage["prompt_tokens"]
            self.counts["completion_tokens"] += usage["completion_tokens"]
            details = usage.get("prompt_tokens_details")
            if details is not None:
                self.counts["cached_tokens"] += details["cached_tokens"]
        return usage

    async def _stats(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response(dict(self.counts))

    async def _config(self, request: web.Request) -> web.Response:
        """``POST /config {"latency": s, "rate_429": p, "reset_counts": true}`` (benchmarks)."""
        body = await request.json()
        for name in ("latency", "rate_429", "default_score"):
            if name in body:
                setattr(self, name, body[name])
        if body.get("reset_counts"):
            with self._lock:
                self.counts.clear()
        return web.json_response({"ok": True})

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/config", self._config)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        self._hangs = asyncio.Event()
        ready.set()
        await self._stop.wait()
        self._hangs.set()
        await runner.cleanup()

    def start(self) -> OpenAIServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve(ready))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="openai-test-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test OpenAI server did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_in_process(conn: Any, kwargs: dict[str, Any]) -> None:
    server = OpenAIServer(record=False, **kwargs).start()
    conn.send(server.port)
    conn.recv()  # any message (or EOF) means stop
    server.stop()


class ServerProcess:
    """The same server in a child process; ``stats()`` fetches its counters."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.port = 0
        self._proc: Any = None
        self._conn: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            return dict(json.loads(r.read()))

    def configure(self, **settings: Any) -> None:
        """Change latency / rate_429 / default_score, or ``reset_counts=True``."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/config",
            data=json.dumps(settings).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def start(self) -> ServerProcess:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_in_process, args=(child, self.kwargs), daemon=True)
        self._proc.start()
        if not self._conn.poll(30):
            raise RuntimeError("server process did not start within 30 s")
        self.port = self._conn.recv()
        return self

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.send("stop")
        if self._proc is not None:
            self._proc.join(10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_model(server: OpenAIServer, api_key: str, model: str = "judge", **kwargs: Any) -> Any:
    """An OpenAIChatModel for ``server`` with test-friendly retry timing."""
    from rlreward.models.openai import OpenAIChatModel

    opts: dict[str, Any] = {"timeout": 1.0, "backoff_base": 0.01, "max_retries": 3, **kwargs}
    return OpenAIChatModel(model, base_url=server.url, api_key=api_key, **opts)
