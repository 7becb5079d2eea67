"""Field types at the grader boundary: wrong types, NaN and inf are errors before any call."""

from __future__ import annotations

import asyncio
import math
from typing import Any, ClassVar

import numpy as np
import pytest

from rlreward import (
    CorrectnessGrader,
    FunctionGrader,
    GraderConfig,
    GraderError,
    GraderScore,
    GradingRunner,
    RelevanceGrader,
    RubricGrader,
)
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader, Grader, ProtocolGrader
from rlreward.graders.fields import (
    ANY,
    NUMBER,
    STR,
    TEXT,
    TEXT_OR_NUMBER,
    FieldType,
    Unusable,
    field_problem,
)
from tests.openai_server import OpenAIServer, local_model

KEY = "sk-fields-SECRET-0123456789"
WRONG_TEXT: list[Any] = [None, 3, 2.5, True, ["a", "b"], {"a": 1}, [], math.nan, math.inf, b"x"]


def test_text_accepts_strings_and_chat_messages_only():
    ok = ["", "plain", {"role": "user", "content": "hi"}, [{"role": "user", "content": "hi"}]]
    for value in ok:
        assert field_problem("response", value, TEXT) is None, value
    for value in [*WRONG_TEXT, [{"role": "user", "content": None}], [{"content": "a"}, 1]]:
        problem = field_problem("response", value, TEXT)
        assert problem is not None and "field 'response' must be text" in problem, value
        assert "mapper=" in problem  # the message names the fix


@pytest.mark.parametrize("value", WRONG_TEXT, ids=repr)
def test_judges_refuse_wrong_types_before_any_api_call(openai_server: OpenAIServer, value: Any):
    model = local_model(openai_server, KEY)
    runner = GradingRunner([RelevanceGrader(model=model)], show_progress=False)
    rows = [{"query": "q", "response": value}, {"query": "q", "response": "fine"}]
    results = runner.run(rows)
    bad, good = results["relevance"]
    assert isinstance(bad, GraderError) and bad.metadata["invalid_field"] == "response"
    assert "field 'response' must be text" in bad.error and type(value).__name__ in bad.error
    assert isinstance(good, GraderScore)  # the other row is graded
    assert openai_server.n_requests == 1  # only the good row reached the judge
    assert all("fine" in r["messages"][-1]["content"] for r in openai_server.requests)


def test_a_wrong_query_or_context_type_is_refused_too(openai_server: OpenAIServer):
    model = local_model(openai_server, KEY)
    rubric = RubricGrader(model=model, criteria="Is it kind?", required_fields=["response", "tone"])
    out = asyncio.run(rubric.aevaluate(response="ok", tone={"k": 1}))
    assert isinstance(out, GraderError) and "field 'tone' must be text" in out.error
    out = asyncio.run(RelevanceGrader(model=model).aevaluate(query=math.inf, response="x"))
    assert isinstance(out, GraderError) and out.metadata["invalid_field"] == "query"
    assert openai_server.n_requests == 0


def test_a_numeric_reference_answer_is_shown_as_text(openai_server: OpenAIServer):
    model = local_model(openai_server, KEY)
    grader = CorrectnessGrader(model=model)
    out = asyncio.run(grader.aevaluate(query="6*7?", response="42", reference_response=42))
    assert isinstance(out, GraderScore)
    assert (
        "<reference_response>\n42\n</reference_response>"
        in (openai_server.requests[0]["messages"][-1]["content"])
    )
    out = asyncio.run(grader.aevaluate(query="q", response="r", reference_response=math.nan))
    assert isinstance(out, GraderError) and "reference_response" in out.error
    out = asyncio.run(grader.aevaluate(query="q", response="r", reference_response=True))
    assert isinstance(out, GraderError)
    assert openai_server.n_requests == 1


def test_judges_accept_content_parts_messages_as_the_messages_rule_reads_them(
    openai_server: OpenAIServer,
):
    # the content-parts form (OpenAI's multimodal messages) that rlreward.messages reads
    query = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Capital of "},
                {"type": "text", "text": "France?"},
            ],
        },
    ]
    response = [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Paris."},
                {"type": "image_url", "image_url": {"url": "u"}},
            ],
        }
    ]
    assert field_problem("query", query, TEXT) is None
    assert field_problem("response", response, TEXT) is None
    model = local_model(openai_server, KEY)
    out = asyncio.run(RelevanceGrader(model=model).aevaluate(query=query, response=response))
    assert isinstance(out, GraderScore)
    prompt = openai_server.requests[0]["messages"][-1]["content"]
    assert "<query>\nCapital of France?\n</query>" in prompt
    assert "<response>\nParis.\n</response>" in prompt
    # a parts list that is not a list of parts is still refused
    for bad in ([{"role": "user", "content": ["Paris."]}], {"role": "user", "content": 3}):
        assert field_problem("response", bad, TEXT) is not None


def test_function_grader_types_come_from_annotations_or_are_given():
    calls: list[Any] = []

    def length(response: str, scale: float = 1.0) -> float:
        calls.append(response)
        return min(1.0, len(response) / 10 * scale)

    grader = FunctionGrader(length)
    assert grader.field_types == {"response": STR, "scale": NUMBER}
    for value in (None, 5, ["x"]):
        out = asyncio.run(grader.aevaluate(response=value))
        assert isinstance(out, GraderError) and "field 'response' must be a str" in out.error
    out = asyncio.run(grader.aevaluate(response="abc", scale=np.float32(math.nan)))
    assert isinstance(out, GraderError) and "'scale'" in out.error
    assert calls == []  # never called with a bad value
    assert asyncio.run(grader.aevaluate(response="abcde", scale=np.int64(2))).score == 1.0

    def untyped(response):  # type: ignore[no-untyped-def]
        return 0.5

    loose = FunctionGrader(untyped)
    assert isinstance(asyncio.run(loose.aevaluate(response=[1, 2])), GraderScore)
    for value in (math.nan, -math.inf, np.float32("nan")):
        out = asyncio.run(loose.aevaluate(response=value))
        assert isinstance(out, GraderError) and "NaN or infinity" in out.error  # ANY
    forced = FunctionGrader(untyped, field_types={"response": TEXT})
    assert isinstance(asyncio.run(forced.aevaluate(response=[1, 2])), GraderError)
    with pytest.raises(ConfigError, match="field_types values must be FieldType"):
        FunctionGrader(untyped, field_types={"response": str})  # type: ignore[dict-item]


class Duck:
    """Follows the Grader protocol without deriving from BaseGrader."""

    name = "duck"
    score_range = (0.0, 1.0)
    higher_is_better = True
    required_fields = ("response",)
    field_types: ClassVar[dict[str, FieldType]] = {"response": TEXT}

    def __init__(self) -> None:
        self.calls = 0

    async def aevaluate(self, **fields: Any) -> Any:
        self.calls += 1
        if fields["response"] == "boom":
            raise RuntimeError("duck failed")
        return 0.25


def test_grader_protocol_and_the_one_guard_for_protocol_only_graders():
    duck = Duck()
    assert isinstance(duck, Grader) and not isinstance(duck, BaseGrader)
    assert isinstance(FunctionGrader(lambda response: 1.0), Grader)
    runner = GradingRunner([duck], show_progress=False)
    assert runner.graders["duck"] is duck  # the user's object stays visible
    assert isinstance(runner._guarded["duck"], ProtocolGrader)
    res = runner.run([{"response": "ok"}, {"response": "boom"}, {"response": None}])
    ok, boom, bad = res["duck"]
    assert isinstance(ok, GraderScore) and ok.score == 0.25 and ok.name == "duck"
    assert isinstance(boom, GraderError) and boom.error == "RuntimeError: duck failed"
    assert boom.metadata == {"exception_type": "RuntimeError"}
    assert isinstance(bad, GraderError) and bad.metadata["invalid_field"] == "response"
    assert duck.calls == 2  # the bad-typed row never reached it


class Loud:
    """A protocol-only grader that returns a fixed score (outside its range when asked)."""

    def __init__(self, score: float, score_range: Any = "undeclared") -> None:
        self.name, self.score = "loud", score
        if score_range != "undeclared":
            self.score_range = score_range

    async def aevaluate(self, **fields: Any) -> float:
        return self.score


def test_a_protocol_graders_declared_range_is_enforced():
    from rlreward.aggregators import WeightedSumAggregator

    half = FunctionGrader(lambda response: 0.5, name="half")
    agg = WeightedSumAggregator("reward", on_error="renormalize")
    runner = GradingRunner([Loud(5.0, (0.0, 1.0)), half], aggregators=[agg], show_progress=False)
    res = runner.run([{"response": "x"}])
    (loud,), (reward,) = res["loud"], res["reward"]
    assert isinstance(loud, GraderError) and loud.metadata["out_of_range_score"] == 5.0
    assert "score 5.0 is outside the range [0.0, 1.0] it declares" in loud.error
    assert "declare score_range" in loud.error  # the fix
    assert isinstance(reward, GraderScore) and reward.score == 0.5  # not (5.0 + 0.5) / 2
    # no declared range: the (0, 1) the aggregators assume is enforced, and said so
    out = asyncio.run(ProtocolGrader(Loud(5.0)).aevaluate(response="x"))
    assert isinstance(out, GraderError) and "assumed for a grader declaring none" in out.error
    # inside the range, or declared unbounded: the score passes
    assert asyncio.run(ProtocolGrader(Loud(1.0, (0.0, 1.0))).aevaluate(response="x")).score == 1.0
    assert asyncio.run(ProtocolGrader(Loud(5.0, None)).aevaluate(response="x")).score == 5.0


def test_base_graders_are_not_wrapped_again():
    grader = FunctionGrader(lambda response: 1.0, name="f")
    runner = GradingRunner(
        {"f": GraderConfig(grader, mapper={"response": "text"})}, show_progress=False
    )
    assert runner._guarded["f"] is grader


def test_an_unusable_value_is_refused_by_every_field_type_with_its_reason():
    bad = Unusable("ground_truth is nan, not an answer; fix the dataset row")
    for kind in (ANY, NUMBER, STR, TEXT, TEXT_OR_NUMBER):
        problem = field_problem("reference_response", bad, kind)
        assert problem == (
            "field 'reference_response' is unusable: ground_truth is nan, not an answer; "
            "fix the dataset row"
        )
