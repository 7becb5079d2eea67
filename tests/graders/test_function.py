import asyncio
import threading

import pytest

from rlreward import batched
from rlreward.errors import ConfigError
from rlreward.graders.function import FunctionGrader
from rlreward.runner import GradingRunner
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


@pytest.mark.parametrize(("in_thread", "expected"), [(True, 1.0), (False, 0.0)])
def test_sync_functions_do_not_block_the_event_loop(in_thread, expected):
    """The sync function waits for the event loop to act; it can only see that if it runs
    in a worker thread (the inline control shows the test can fail)."""
    main_thread = threading.get_ident()
    seen = []
    loop_ran = threading.Event()

    def blocking(response):
        seen.append(threading.get_ident())
        return 1.0 if loop_ran.wait(timeout=5 if in_thread else 0.3) else 0.0

    g = FunctionGrader(blocking, run_in_thread=in_thread)

    async def main():
        async def release():
            await asyncio.sleep(0)
            loop_ran.set()

        result, _ = await asyncio.gather(g.aevaluate(response="x"), release())
        return result

    assert asyncio.run(main()).score == expected
    assert (seen[0] != main_thread) is in_thread


def test_async_callable_objects_are_awaited():
    class Scorer:
        async def __call__(self, response):
            await asyncio.sleep(0)
            return 0.75

    assert asyncio.run(FunctionGrader(Scorer(), name="s").aevaluate(response="x")).score == 0.75


# -- the one calling convention: batched is declared, never guessed ----------------------


@batched
def first_words(response: list[str], query: list[str] | None = None) -> list[float]:
    """A declared batched function (module level, so it pickles)."""
    first_words.calls.append((len(response), query is not None))  # type: ignore[attr-defined]
    return [min(1.0, len(r.split()) / 4) for r in response]


first_words.calls = []  # type: ignore[attr-defined]


def test_a_declared_batched_function_gets_lists_in_one_call_per_batch():
    first_words.calls.clear()
    grader = FunctionGrader(first_words)
    assert grader.batched and grader.describe()["batched"] is True
    runner = GradingRunner({"w": grader}, show_progress=False)
    rows = [{"response": "a b"}, {"response": "a b c d e"}, {"response": "a"}]
    assert runner.run(rows).scores("w") == [0.5, 1.0, 0.25]
    assert first_words.calls == [(3, False)]
    # rows that carry different optional fields are called in one group each
    first_words.calls.clear()
    mixed = [{"response": "a b", "query": "q"}, {"response": "a"}, {"response": "c", "query": "q"}]
    assert runner.run(mixed).scores("w") == [0.5, 0.25, 0.25]
    assert sorted(first_words.calls) == [(1, False), (2, True)]


def test_batched_can_be_declared_by_argument_and_an_undeclared_function_is_per_row():
    seen = []

    def lengths(response):
        seen.append(response)
        return [0.5] * len(response) if isinstance(response, list) else 0.5

    runner = GradingRunner({"b": FunctionGrader(lengths, batched=True)}, show_progress=False)
    assert runner.run([{"response": "x"}, {"response": "y"}]).scores("b") == [0.5, 0.5]
    assert seen == [["x", "y"]]
    seen.clear()
    per_row = GradingRunner({"r": FunctionGrader(lengths)}, show_progress=False)
    assert per_row.run([{"response": "x"}, {"response": "y"}]).scores("r") == [0.5, 0.5]
    assert sorted(seen) == ["x", "y"]  # a name is never read as "batched"


def test_a_batched_function_that_returns_the_wrong_count_fails_every_row_as_a_value():
    @batched
    def short(response):
        return [1.0]

    runner = GradingRunner({"s": FunctionGrader(short)}, show_progress=False)
    results = runner.run([{"response": "x"}, {"response": "y"}])
    assert results.scores("s") == [None, None]
    assert "returned 1 scores for 2 rows" in results["s"][0].error


def test_an_async_batched_function_is_awaited():
    @batched
    async def one(response):
        return [1.0] * len(response)

    runner = GradingRunner({"a": FunctionGrader(one)}, show_progress=False)
    assert runner.run([{"response": "x"}, {"response": "y"}]).scores("a") == [1.0, 1.0]


def test_a_batched_grader_pickles_and_grades_after_unpickling():
    import pickle

    grader = pickle.loads(pickle.dumps(FunctionGrader(first_words, max_batch_size=2)))
    runner = GradingRunner({"w": grader}, show_progress=False)
    assert runner.run([{"response": "a b c d"}] * 3).scores("w") == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("source", "renames"),
    [
        ("def f(text): return 1.0", "'text' -> 'response'"),
        ("def f(texts, *, prompts=None, references=None): return [1.0]", "'prompts' -> 'query'"),
        ("def f(completions, **kw): return [1.0]", "'completions' -> 'response'"),
        ("def f(response, reference=None): return 1.0", "'reference' -> 'reference_response'"),
    ],
)
def test_the_old_convention_is_a_config_error_naming_the_renames(source, renames):
    namespace: dict = {}
    exec(source, namespace)
    with pytest.raises(ConfigError, match="old reward-function convention") as info:
        FunctionGrader(namespace["f"])
    assert renames in str(info.value) and "@rlreward.batched" in str(info.value)


def test_declaring_the_function_lets_a_field_have_an_old_name():
    def f(text):
        return float(text == "yes")

    for grader in (FunctionGrader(f, batched=False), FunctionGrader(f, required_fields=["text"])):
        runner = GradingRunner({"f": grader}, show_progress=False)
        assert runner.run([{"text": "yes"}]).scores("f") == [1.0]
    with pytest.raises(ConfigError, match="contradicts the function's @batched mark"):
        FunctionGrader(first_words, batched=False)
    with pytest.raises(ConfigError, match="batched must be true or false"):
        FunctionGrader(f, batched="yes")  # type: ignore[arg-type]


def test_a_spec_declares_a_callable_batched():
    from rlreward import load_spec

    def lengths(response):
        return [min(1.0, len(r) / 10) for r in response]

    spec = load_spec(
        {"graders": {"n": {"callable": lengths, "batched": True, "max_batch_size": 2}}}
    )
    grader = spec.graders["n"].grader
    assert isinstance(grader, FunctionGrader) and grader.batched and grader.max_batch_size == 2
    rows = [{"response": "x" * k} for k in (1, 5, 20)]
    assert spec.build_runner().run(rows).scores("n") == [0.1, 0.5, 1.0]
    assert grader._batcher is not None and max(grader._batcher.batch_sizes) == 2
