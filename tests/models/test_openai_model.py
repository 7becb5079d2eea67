"""OpenAIChatModel against a real HTTP server on 127.0.0.1 with the real openai client."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import pickle
import time

import pytest

from rlreward.errors import ConfigError
from rlreward.models import ChatModelError, ChatReply, OpenAIChatModel
from rlreward.models.retry import backoff_delay, parse_retry_after
from tests.openai_server import Action, OpenAIServer, local_model

KEY = "sk-test-SECRET-0123456789abcdef"
MESSAGES = [{"role": "user", "content": "hello"}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "v", "schema": {"type": "object"}}}


def make_model(server: OpenAIServer, **kwargs: object) -> OpenAIChatModel:
    return local_model(server, KEY, model="judge-model", **{"timeout": 2.0, **kwargs})


def chat(model: OpenAIChatModel, response_format: object = None) -> ChatReply:
    return asyncio.run(model.achat(MESSAGES, response_format=response_format))  # type: ignore[arg-type]


def test_plain_call_reports_text_attempts_latency_usage(openai_server):
    openai_server.script(Action.reply("hi there"))
    reply = chat(make_model(openai_server))
    assert reply.text == "hi there"
    assert reply.attempts == 1 and reply.latency_s > 0
    # the server counts words: "hello" in, "hi there" out
    assert reply.usage == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "cached_tokens": 0,
    }
    sent = openai_server.requests[0]
    assert sent["model"] == "judge-model" and sent["temperature"] == 0.0
    assert openai_server.headers[0]["Authorization"] == f"Bearer {KEY}"  # the key is really sent


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Action.error(429, retry_after="0"), "429"),
        (Action.error(500), "500"),
        (Action.error(503), "503"),
        (Action.drop(), "connection"),
        (Action.bad_body(), "bad_response"),
    ],
)
def test_transient_faults_are_retried_and_recorded(openai_server, fault, reason):
    openai_server.script(fault, fault, Action.reply("ok"))
    reply = chat(make_model(openai_server))
    assert reply.text == "ok"
    assert reply.attempts == 3
    assert reply.retry_reasons == (reason, reason)
    assert openai_server.n_requests == 3


def test_hung_server_times_out_and_is_retried(openai_server):
    openai_server.script(Action.hang(60))
    reply = chat(make_model(openai_server, timeout=0.3))
    assert reply.text and reply.attempts == 2 and reply.retry_reasons == ("timeout",)
    # the client gave up while the server was still holding the first request
    assert openai_server.counts["hanging"] == 1
    assert openai_server.counts["ok"] == 1 and openai_server.n_requests == 2


def test_retry_after_is_honoured(openai_server):
    openai_server.script(Action.error(429, retry_after="0.4"))
    start = time.perf_counter()
    reply = chat(make_model(openai_server, backoff_base=0.001))
    assert reply.attempts == 2
    assert time.perf_counter() - start >= 0.4  # backoff alone would wait <= 1 ms


def test_exhausted_retry_budget_is_an_error_with_attempts_and_status(openai_server):
    openai_server.fail_first(100, Action.error(500))
    model = make_model(openai_server, max_retries=2)
    with pytest.raises(ChatModelError) as info:
        chat(model)
    err = info.value
    assert err.attempts == 3 and err.last_status == 500 and err.retryable
    assert err.retry_reasons == ("500", "500", "500")
    assert "retry budget spent" in str(err)
    assert openai_server.n_requests == 3
    assert model.stats.failures == 1 and model.stats.retries == 2


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(openai_server, status):
    openai_server.script(Action.error(status))
    with pytest.raises(ChatModelError) as info:
        chat(make_model(openai_server))
    assert info.value.attempts == 1 and info.value.last_status == status
    assert not info.value.retryable
    assert openai_server.n_requests == 1


def test_json_schema_rejection_falls_back_and_is_remembered(openai_server):
    openai_server.reject_json_schema = True
    model = make_model(openai_server)
    first = chat(model, SCHEMA)
    second = chat(model, SCHEMA)
    assert not first.structured and not second.structured
    assert openai_server.counts["rejected_schema"] == 1  # the second call asked plainly
    assert "response_format" not in openai_server.requests[-1]
    assert model.stats.schema_fallbacks == 1


def test_json_schema_is_sent_when_accepted(openai_server):
    model = make_model(openai_server)
    assert chat(model, SCHEMA).structured
    assert openai_server.requests[0]["response_format"]["type"] == "json_schema"


def test_requests_per_minute_paces_request_starts(openai_server):
    model = make_model(openai_server, requests_per_minute=300)  # one every 0.2 s

    async def four() -> list[ChatReply]:
        return await asyncio.gather(*(model.achat(MESSAGES) for _ in range(4)))

    start = time.perf_counter()
    replies = asyncio.run(four())
    assert len(replies) == 4
    assert time.perf_counter() - start >= 0.6


def test_one_model_serves_many_event_loops(openai_server):
    model = make_model(openai_server)
    clients = []

    async def call() -> None:
        clients.append(await model.client())
        await model.achat(MESSAGES)

    for _ in range(3):
        asyncio.run(call())
    assert openai_server.n_requests == 3
    assert len({id(c) for c in clients}) == 3
    assert all(c.is_closed() for c in clients)  # closed as each loop shut down


def test_aclose_closes_the_running_loops_client(openai_server):
    model = make_model(openai_server)

    async def main() -> bool:
        await model.achat(MESSAGES)
        client = await model.client()
        await model.aclose()
        closed = client.is_closed()
        await model.achat(MESSAGES)  # a fresh client
        return closed

    assert asyncio.run(main())
    assert openai_server.n_requests == 2


def test_key_is_masked_in_repr_errors_logs_and_pickles(openai_server, caplog):
    caplog.set_level(logging.DEBUG)
    model = make_model(openai_server, max_retries=1)
    openai_server.script(
        Action.error(500, message=f"upstream saw key {KEY}"),
        Action.error(401, message=f"Incorrect API key provided: {KEY}"),
    )
    with pytest.raises(ChatModelError) as info:
        chat(model)
    assert KEY not in str(info.value) and "***" in str(info.value)
    assert KEY not in repr(model) and "api_key='***'" in repr(model)
    assert KEY not in repr(vars(model))
    assert KEY not in caplog.text and "retrying" in caplog.text  # DEBUG logs were captured


def _clear_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # set-then-delete so that whatever a .env load adds is undone at teardown
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.setenv(var, "placeholder")
        monkeypatch.delenv(var)


def test_env_configures_the_model_and_dotenv_files_are_not_read(tmp_path, monkeypatch):
    _clear_openai_env(monkeypatch)
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no API key; set OPENAI_API_KEY"):
        OpenAIChatModel("m")  # the library leaves .env to recipes and the CLI
    assert "OPENAI_API_KEY" not in os.environ
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8/v1")
    monkeypatch.setenv("JUDGE_KEY", "sk-judge")
    model = OpenAIChatModel("m", api_key_env="JUDGE_KEY")
    assert model.base_url == "http://127.0.0.1:8/v1"
    assert model._key is not None and model._key.get() == "sk-judge"
    with pytest.raises(ConfigError, match="api_key_env must name"):
        OpenAIChatModel("m", api_key_env="")


def test_missing_key_and_bad_arguments_are_config_errors(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _clear_openai_env(monkeypatch)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIChatModel("m")
    keyless = OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1")._key
    assert keyless is not None and keyless.get() == "EMPTY"
    with pytest.raises(ConfigError, match="timeout must be a number > 0, got -1"):
        OpenAIChatModel("m", api_key="k", timeout=-1)
    with pytest.raises(ConfigError, match="max_retries"):
        OpenAIChatModel("m", api_key="k", max_retries=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model must be a non-empty"):
        OpenAIChatModel("", api_key="k")


def test_parse_retry_after_seconds_dates_and_cap():
    assert parse_retry_after({"retry-after": "2"}, cap=60) == 2.0
    assert parse_retry_after({"retry-after": "3600"}, cap=60) == 60.0
    assert parse_retry_after({"retry-after-ms": "250"}, cap=60) == 0.25
    assert parse_retry_after({"retry-after": "soon"}, cap=60) is None
    assert parse_retry_after({}, cap=60) is None
    date = email.utils.formatdate(time.time() + 5, usegmt=True)
    waited = parse_retry_after({"retry-after": date}, cap=60)
    assert waited is not None and 3.5 <= waited <= 5.0
    past = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert parse_retry_after({"retry-after": past}, cap=60) == 0.0


def test_backoff_is_full_jitter_and_capped():
    import random

    rng = random.Random(0)
    delays = [backoff_delay(5, base=0.5, cap=4.0, rng=rng) for _ in range(200)]
    assert max(delays) <= 4.0 and min(delays) >= 0.0
    assert max(delays) > 2.0 and min(delays) < 1.0  # spread over the whole window


# -- HTTP 200 that is not a completion ---------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Action.error_200("upstream model overloaded", code=502), "502"),
        (Action.error_200("Rate limit reached", type_="rate_limit_error"), "429"),
        (Action.error_200("something odd happened"), "bad_response"),
        (Action.html_200(502, "Bad Gateway"), "502"),
        (
            Action.raw("<html><body>try later</body></html>", content_type="text/html"),
            "bad_response",
        ),
    ],
)
def test_http_200_error_bodies_are_classified_and_retried(openai_server, fault, reason):
    openai_server.script(fault, Action.reply("ok"))
    reply = chat(make_model(openai_server))
    assert reply.text == "ok" and reply.attempts == 2
    assert reply.retry_reasons == (reason,)


def test_http_200_error_naming_a_client_error_is_not_retried_and_keeps_the_message(
    openai_server,
):
    message = "model 'judge-model' does not exist; " + "details " * 300
    openai_server.script(Action.error_200(message, code=404))
    with pytest.raises(ChatModelError) as info:
        chat(make_model(openai_server))
    err = info.value
    assert err.attempts == 1 and err.last_status == 404 and not err.retryable
    assert "model 'judge-model' does not exist" in str(err)
    assert "more characters]" in str(err) and len(str(err)) < 1300  # capped, and says so
    assert openai_server.n_requests == 1


def test_proxy_page_failures_keep_the_page_text(openai_server):
    openai_server.fail_first(100, Action.html_200(503, "Service Temporarily Unavailable"))
    with pytest.raises(ChatModelError) as info:
        chat(make_model(openai_server, max_retries=1))
    assert info.value.attempts == 2 and info.value.last_status == 503
    assert "503 Service Temporarily Unavailable" in str(info.value)
    assert "<title>" not in str(info.value)


def test_status_error_text_is_the_servers_message_capped(openai_server):
    openai_server.script(Action.error(400, message="bad field 'x' " + "y" * 3000))
    with pytest.raises(ChatModelError) as info:
        chat(make_model(openai_server))
    text = str(info.value)
    assert text.startswith("HTTP 400: bad field 'x' ") and "more characters]" in text


# -- connection pool -------------------------------------------------------------------------
def test_requests_queued_for_a_connection_do_not_spend_their_timeout(openai_server):
    """max_concurrency 200 against a pool of 20 on a healthy 1 s server: 0 timeouts."""
    from rlreward import GradingRunner, RelevanceGrader

    openai_server.latency = 1.0
    model = make_model(openai_server, max_connections=20, timeout=3.0, max_retries=0)
    runner = GradingRunner([RelevanceGrader(model=model)], max_concurrency=200, show_progress=False)
    rows = [{"query": f"q{i}", "response": f"r{i}"} for i in range(200)]
    results = runner.run(rows)["relevance"]
    errors = [r.error for r in results if not r.ok]
    assert errors == []
    assert all(r.metadata["attempts"] == 1 for r in results)
    assert openai_server.n_requests == 200  # every prompt reached the server, once
    assert openai_server.counts["max_in_flight"] == 20  # the pool was full, never exceeded


# -- secrets in pickles --------------------------------------------------------------------
def test_pickles_carry_no_key_by_default_and_workers_read_their_environment(
    openai_server, monkeypatch
):
    from rlreward import GradingRunner, RelevanceGrader

    model = make_model(openai_server)
    runner = GradingRunner([RelevanceGrader(model=model)], show_progress=False)
    for obj in (model, runner):
        assert KEY.encode() not in pickle.dumps(obj)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-worker-env-key")
    clone = pickle.loads(pickle.dumps(model))
    openai_server.script(Action.reply("after pickle"))
    assert chat(clone).text == "after pickle"
    assert openai_server.headers[-1]["Authorization"] == "Bearer sk-worker-env-key"


def test_an_unpickled_model_without_a_key_fails_clearly_before_any_request(
    openai_server, monkeypatch, caplog
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    clone = pickle.loads(pickle.dumps(make_model(openai_server)))
    assert "has no API key" in caplog.text
    with pytest.raises(ChatModelError, match="set OPENAI_API_KEY .*pickle_api_key=True") as info:
        chat(clone)
    assert info.value.last_status == "no_api_key" and not info.value.retryable
    assert openai_server.n_requests == 0


def test_pickle_api_key_opt_in_and_keyless_servers(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    opted = make_model(openai_server, pickle_api_key=True)
    data = pickle.dumps(opted)
    assert KEY.encode() in data  # the documented opt-in
    assert chat(pickle.loads(data)).attempts == 1
    assert openai_server.headers[-1]["Authorization"] == f"Bearer {KEY}"
    keyless = OpenAIChatModel("judge", base_url=openai_server.url, max_retries=0)
    assert chat(pickle.loads(pickle.dumps(keyless))).attempts == 1
    assert openai_server.headers[-1]["Authorization"] == "Bearer EMPTY"
