"""rlreward.messages: the one chat-messages -> text rule, and every user of it agreeing."""

from __future__ import annotations

import asyncio

import pytest

from rlreward.graders.judge_io import as_text
from rlreward.graders.reward_function import RewardFunctionGrader
from rlreward.integrations._rows import trl_rows
from rlreward.messages import content_text, field_text, is_text, prompt_text, response_text
from rlreward.rl.data import prompt_text as rl_prompt_text

PROMPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "First question?"},
    {"role": "assistant", "content": "First answer."},
    {
        "role": "user",
        "content": [{"type": "text", "text": "Capital "}, {"type": "text", "text": "of France?"}],
    },
]
COMPLETION = [
    {"role": "assistant", "content": "Let me check."},
    {"role": "tool", "content": "{'capital': 'Paris'}"},
    {"role": "assistant", "content": "Paris."},
]


def test_the_rule():
    assert prompt_text(PROMPT) == "Capital of France?"
    assert response_text(COMPLETION) == "Paris."
    assert field_text(PROMPT, "query") == "Capital of France?"
    assert field_text(COMPLETION, "response") == "Paris."
    assert field_text(COMPLETION, "reference_response") == "Paris."
    assert field_text({"role": "assistant", "content": "x"}, "response") == "x"
    assert field_text("plain", "query") == "plain"
    # no message with the wanted role: the last message
    assert field_text([{"role": "system", "content": "s"}], "response") == "s"
    assert content_text([{"type": "image", "url": "u"}, {"type": "text", "text": "t"}]) == "t"
    assert prompt_text(42) is None
    with pytest.raises(TypeError, match="field 'response' must be a str"):
        field_text(42, "response")


def test_graders_and_adapters_read_messages_the_same_way():
    """A rule function, an LLM judge's prompt, the TRL rows and RL prompts see one text."""
    [row] = trl_rows([PROMPT], [COMPLETION], {})
    assert (row["query"], row["response"]) == ("Capital of France?", "Paris.")
    assert as_text(COMPLETION, "response") == row["response"]
    assert as_text(PROMPT, "query") == row["query"]
    assert rl_prompt_text(PROMPT) == row["query"]

    seen: list[tuple[str, str]] = []

    def spy(response: str, query: str = "") -> float:
        seen.append((response, query))
        return 0.5

    grader = RewardFunctionGrader(spy)
    result = asyncio.run(grader.aevaluate(response=COMPLETION, query=PROMPT))
    assert result.ok and seen == [("Paris.", "Capital of France?")]


def test_is_text_is_what_field_text_reads_and_the_text_field_type_accepts():
    from rlreward.graders.fields import TEXT

    ok = ["x", {"content": "x"}, PROMPT, [{"role": "user", "content": [{"type": "text"}]}]]
    bad = [None, 3, [], {"content": None}, [{"content": "a"}, {"content": None}], ["a"]]
    bad += [{"content": ["x"]}, {"content": 3}, [{"content": "a"}, 1], {"role": "user"}]
    for value in ok:
        assert is_text(value) and TEXT.accepts(value), value
        assert isinstance(field_text(value, "response"), str)
    for value in bad:
        assert not is_text(value) and not TEXT.accepts(value), value
        with pytest.raises(TypeError, match="field 'response' must be a str, a chat message"):
            field_text(value, "response")
