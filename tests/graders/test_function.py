import asyncio
import threading

import pytest

from rlreward.graders.function import FunctionGrader
from rlreward.schema import GraderError, GraderScore


def test_fields_come_from_the_signature():
    def f(query, response, reference_response=None):
        return 1.0

    g = FunctionGrader(f)
    assert g.name == "f"
    assert g.required_fields == ("query", "response")
    assert g.optional_fields == ("reference_response",)
    assert g.missing_fields({"query"}) == ["response"]


def test_return_shapes_become_results():
    assert asyncio.run(FunctionGrader(lambda response: 0.5).aevaluate(response="x")).score == 0.5
    r = asyncio.run(FunctionGrader(lambda response: (0.25, "why")).aevaluate(response="x"))
    assert isinstance(r, GraderScore) and r.reason == "why"
    r = asyncio.run(
        FunctionGrader(lambda response: {"score": 1, "reason": "ok", "k": 2}).aevaluate(
            response="x"
        )
    )
    assert r.score == 1.0 and r.metadata == {"k": 2}


def test_exceptions_and_out_of_range_scores_become_errors():
    def boom(response):
        raise KeyError("nope")

    r = asyncio.run(FunctionGrader(boom).aevaluate(response="x"))
    assert isinstance(r, GraderError) and "KeyError" in r.error
    r = asyncio.run(FunctionGrader(lambda response: 1.5).aevaluate(response="x"))
    assert isinstance(r, GraderError) and "outside the declared range" in r.error
    r = asyncio.run(FunctionGrader(lambda response: float("nan")).aevaluate(response="x"))
    assert isinstance(r, GraderError) and "finite" in r.error
    r = asyncio.run(FunctionGrader(lambda response: None).aevaluate(response="x"))
    assert isinstance(r, GraderError)


def test_unbounded_range_accepts_any_finite_score():
    g = FunctionGrader(lambda response: -42.0, score_range=None)
    assert asyncio.run(g.aevaluate(response="x")).score == -42.0


@pytest.mark.parametrize("in_thread", [True, False])
def test_sync_functions_do_not_block_the_event_loop(in_thread):
    """slow() returns 1.0 only if the event loop runs a ticker while slow() waits."""
    main_thread = threading.get_ident()
    seen = []
    loop_ran = threading.Event()

    def slow(response):
        seen.append(threading.get_ident())
        return 1.0 if loop_ran.wait(timeout=5 if in_thread else 0.2) else 0.0

    g = FunctionGrader(slow, run_in_thread=in_thread)

    async def main():
        async def ticker():
            for _ in range(3):
                await asyncio.sleep(0)
            loop_ran.set()

        result, _ = await asyncio.gather(g.aevaluate(response="x"), ticker())
        return result

    result = asyncio.run(main())
    if in_thread:
        assert result.score == 1.0  # the loop kept running while slow() waited
        assert seen and seen[0] != main_thread
    else:  # the control: run on the loop's thread, slow() blocks the ticker out
        assert result.score == 0.0 and seen == [main_thread]


def test_async_callable_objects_are_awaited():
    class Scorer:
        async def __call__(self, response):
            await asyncio.sleep(0)
            return 0.75

    assert asyncio.run(FunctionGrader(Scorer(), name="s").aevaluate(response="x")).score == 0.75
