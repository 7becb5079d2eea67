"""The judge path's shortcuts give exactly what the general code gives."""

from __future__ import annotations

from string import Template

import pytest

from rlreward.cache import KeyMaker, cache_key
from rlreward.errors import JudgeReplyError
from rlreward.graders import judge_io
from rlreward.graders.judges import CorrectnessGrader
from rlreward.graders.llm import NOT_GIVEN, _CompiledTemplate, load_prompt

PROMPTS = [
    "correctness.txt",
    "hallucination.txt",
    "harmfulness.txt",
    "instruction_following.txt",
    "relevance.txt",
    "rubric.txt",
]


@pytest.mark.parametrize("name", PROMPTS)
def test_compiled_template_renders_what_substitute_renders(name):
    template = Template(load_prompt(name))
    compiled = _CompiledTemplate(template)
    values = {n: f"<{n} value $x>" for n in compiled.names}
    assert compiled.names  # every shipped prompt has placeholders
    assert compiled.render(values) == template.substitute(values)


def test_compiled_template_escapes_braces_and_missing_values():
    template = Template("cost $$5 for ${a}b and $a, then $missing.")
    compiled = _CompiledTemplate(template)
    assert compiled.render({"a": "X"}) == f"cost $5 for Xb and X, then {NOT_GIVEN}."
    assert compiled.render({"a": "X", "missing": "M"}) == template.substitute(a="X", missing="M")


def test_a_replaced_template_is_compiled_again():
    grader = CorrectnessGrader(model=_FakeModel())
    grader.template = Template("only $response")
    messages = grader.build_messages({"response": "hi"})
    assert messages[-1]["content"] == "only hi"


class _FakeModel:
    model = "fake"

    async def achat(self, messages, response_format=None):  # pragma: no cover - not called
        raise AssertionError

    def cache_identity(self):
        return {"model": "fake"}


@pytest.mark.parametrize(
    "fields",
    [
        {"query": "q", "response": "r"},
        {"response": "é <b>", "reference_response": 42, "messages": [{"role": "user"}]},
        {},
    ],
)
def test_key_maker_gives_the_cache_key(fields):
    static = {
        "model": {"model": "m", "temperature": 0.0, "max_tokens": None, "extra_body": None},
        "template": "0123abcd",
        "grader": "RelevanceGrader",
        "params": {"judge_scale": [1.0, 5.0], "score_range": (0.0, 1.0)},
    }
    maker = KeyMaker()
    assert maker.key(fields, **static) == cache_key(fields=fields, **static)
    assert maker.key(fields, **static) == cache_key(fields=fields, **static)  # reused JSON
    changed = {**static, "model": {**static["model"], "temperature": 0.7}}
    assert maker.key(fields, **changed) == cache_key(fields=fields, **changed)
    assert maker.key(fields, **changed) != maker.key(fields, **static)
    early = {"a_first": 1, **static}  # a key sorting before "fields": the plain path
    assert maker.key(fields, **early) == cache_key(fields=fields, **early)


REPLIES = [
    '{"reason": "fine", "score": 4}',
    '  {"reason": "says </think> and ```json", "score": 2}\n',
    '{"reason": "nested", "score": 3, "detail": {"score": 1}}',
    '{"reason": "no score here"}',
    '{"score": 4} {"score": 5}',
    '{"score": 4} {"score": 4}',
    '{"score": "4.5", "reason": ["a", "b"]}',
    '{"score": 9}',
    '{"score": true}',
    '{"score": 4',
    '<think>hmm</think>{"score": 5, "reason": "ok"}',
]


def _general(text):
    """parse_judgement with its shortcut turned off."""
    original = judge_io._whole_object
    judge_io._whole_object = lambda text: None
    try:
        return judge_io.parse_judgement(text, (1.0, 5.0))
    finally:
        judge_io._whole_object = original


@pytest.mark.parametrize("reply", REPLIES)
def test_the_whole_object_shortcut_agrees_with_the_general_scan(reply):
    def outcome(parse):
        try:
            return parse(reply)
        except JudgeReplyError as exc:
            return f"error: {exc}"

    assert outcome(lambda t: judge_io.parse_judgement(t, (1.0, 5.0))) == outcome(_general)


def test_neutralise_shortcut_leaves_text_without_tags_alone():
    assert judge_io.neutralise("plain text, a < b") == "plain text, a < b"
    assert judge_io.neutralise("x </response> y") == "x &lt;/response> y"
