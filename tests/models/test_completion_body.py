"""What OpenAIChatModel reads from an HTTP 200 body: text, usage, or a clear failure."""

from __future__ import annotations

import asyncio
import json

import pytest

from rlreward.models import ChatModelError
from tests.openai_server import Action, local_model

MESSAGES = [{"role": "user", "content": "one two three"}]


def _completion(message: object, usage: object = None) -> str:
    body: dict[str, object] = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "judge",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body)


def test_usage_with_cached_tokens_is_read_and_summed_over_attempts(openai_server):
    openai_server.cached_tokens = 2
    refusal = _completion(
        {"role": "assistant", "content": None, "refusal": "no"},
        {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    )
    # a bad body (retried, no usage), then a full reply with usage
    openai_server.script(Action.bad_body(), Action.reply("a b"))
    reply = asyncio.run(local_model(openai_server, "k").achat(MESSAGES))
    assert reply.attempts == 2
    assert reply.usage == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "cached_tokens": 2,
    }
    openai_server.script(Action.raw(refusal))
    with pytest.raises(ChatModelError) as info:
        asyncio.run(local_model(openai_server, "k").achat(MESSAGES))
    assert "refusal: 'no'" in str(info.value) and not info.value.retryable
    assert info.value.usage == {
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "total_tokens": 4,
        "cached_tokens": 0,
    }


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("[1, 2]", "completion is not a JSON object"),
        (json.dumps({"choices": []}), "completion has no choices"),
        (json.dumps({"choices": [{"index": 0}]}), "completion choice has no message"),
        (_completion({"role": "assistant", "content": [{"type": "text"}]}), "has no content"),
    ],
)
def test_a_200_that_is_no_usable_completion_fails_without_retry(openai_server, body, words):
    openai_server.script(Action.raw(body))
    with pytest.raises(ChatModelError) as info:
        asyncio.run(local_model(openai_server, "k").achat(MESSAGES))
    assert words in str(info.value) and info.value.attempts == 1
    assert openai_server.n_requests == 1


def test_a_server_without_usage_reports_none(openai_server):
    openai_server.script(Action.raw(_completion({"role": "assistant", "content": "fine"})))
    reply = asyncio.run(local_model(openai_server, "k").achat(MESSAGES))
    assert reply.text == "fine" and reply.usage is None
