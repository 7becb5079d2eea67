import asyncio
import json
import random

import pytest

from rlreward import FunctionGrader, GraderConfig, GradingRunner, MissingFieldsError
from rlreward.errors import ConfigError, DatasetError
from rlreward.schema import GraderError, GraderScore


def capture(**fields):
    """A grader that returns what it saw, so mapping can be checked."""
    return {"score": 1.0, "reason": json.dumps(fields, sort_keys=True)}


def seen(results, name, i=0):
    return json.loads(results[name][i].reason)


def run(runner, rows):
    return runner.run(rows)


# -- mappers -----------------------------------------------------------------------------
def test_dict_mapper_renames_and_keeps_other_fields():
    g = FunctionGrader(
        capture, name="c", required_fields=["query", "response", "reference_response"]
    )
    runner = GradingRunner(
        {"c": GraderConfig(g, mapper={"reference_response": "ground_truth"})}, show_progress=False
    )
    res = run(runner, [{"query": "q", "response": "r", "ground_truth": "gt"}])
    assert seen(res, "c") == {"query": "q", "response": "r", "reference_response": "gt"}


def test_dict_mapper_overlays_existing_fields_and_follows_dotted_paths():
    g = FunctionGrader(capture, name="c", required_fields=["query", "response"])
    mapper = {"query": "extra_info.question", "response": "choices.1.text"}
    row = {
        "query": "old",
        "extra_info": {"question": "new"},
        "choices": [{"text": "a"}, {"text": "b"}],
    }
    res = run(GradingRunner({"c": GraderConfig(g, mapper=mapper)}, show_progress=False), [row])
    assert seen(res, "c") == {"query": "new", "response": "b"}


def test_dotted_key_present_verbatim_wins():
    g = FunctionGrader(capture, name="c", required_fields=["response"])
    res = run(
        GradingRunner({"c": GraderConfig(g, mapper={"response": "a.b"})}, show_progress=False),
        [{"a.b": "x"}],
    )
    assert seen(res, "c") == {"response": "x"}


def test_callable_mapper_result_is_used_as_fields():
    g = FunctionGrader(capture, name="c", required_fields=["response"], optional_fields=["query"])
    cfg = GraderConfig(g, mapper=lambda row: {"response": row["out"].upper()})
    res = run(GradingRunner({"c": cfg}, show_progress=False), [{"out": "abc", "query": "dropped"}])
    assert seen(res, "c") == {"response": "ABC"}


def test_graders_get_only_their_declared_fields_unless_they_take_kwargs():
    def anything(**fields):
        return {"score": 0.0, "reason": json.dumps(sorted(fields))}

    strict = FunctionGrader(capture, name="strict", required_fields=["response"])
    res = run(
        GradingRunner([strict, FunctionGrader(anything)], show_progress=False),
        [{"response": "r", "x": 1}],
    )
    assert seen(res, "strict") == {"response": "r"}
    assert json.loads(res["anything"][0].reason) == ["response", "x"]


# -- up-front validation --------------------------------------------------------------------
def test_missing_fields_are_reported_together_before_any_grader_runs():
    calls = []

    def corr(query, response, reference_response):
        calls.append(1)
        return 1.0

    def rel(query, response):
        calls.append(1)
        return 1.0

    runner = GradingRunner(
        {
            "correctness": GraderConfig(corr, mapper={"reference_response": "ground_truth"}),
            "relevance": rel,
        },
        show_progress=False,
    )
    rows = [
        {"query": "q", "response": "r", "ground_truth": "g"},
        {"query": "q", "response": "r"},
        {"response": "r", "ground_truth": "g"},
    ]
    with pytest.raises(MissingFieldsError) as info:
        runner.run(rows)
    assert calls == []
    assert info.value.missing == {
        "correctness": {"reference_response": [1], "query": [2]},
        "relevance": {"query": [2]},
    }
    msg = str(info.value)
    assert (
        "grader 'correctness': field 'reference_response' missing in 1/3 samples (indices 1)" in msg
    )
    assert "mapper=" in msg  # says how to fix it


def test_a_raising_mapper_is_reported_up_front():
    runner = GradingRunner(
        {"c": GraderConfig(capture, mapper=lambda row: {"response": row["nope"]})},
        show_progress=False,
    )
    with pytest.raises(MissingFieldsError, match="mapper raised KeyError"):
        runner.run([{"response": "r"}])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"timeout": -1}, "timeout"),
        ({"grader_configs": {}}, "empty"),
        ({"grader_configs": 3}, "grader_configs must be"),
    ],
)
def test_bad_runner_arguments(kwargs, match):
    args = {"grader_configs": {"c": capture}, **kwargs}
    with pytest.raises(ConfigError, match=match):
        GradingRunner(**args)


def test_bad_mapper_type():
    with pytest.raises(ConfigError, match="mapper"):
        GraderConfig(capture, mapper=["response"])


# -- execution ----------------------------------------------------------------------------
def test_order_is_preserved_under_concurrency():
    async def jittery(i):
        await asyncio.sleep(random.random() / 200)
        return (0.0, str(i))

    rows = [{"i": i} for i in range(300)]
    res = GradingRunner({"j": jittery}, max_concurrency=50, show_progress=False).run(rows)
    assert [r.reason for r in res["j"]] == [str(i) for i in range(300)]


def test_concurrency_bound_holds_across_graders_and_concurrent_runs():
    state = {"now": 0, "peak": 0}

    async def probe(response):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.002)
        state["now"] -= 1
        return 1.0

    runner = GradingRunner(
        {"a": FunctionGrader(probe, name="a"), "b": FunctionGrader(probe, name="b")},
        max_concurrency=7,
        show_progress=False,
    )
    rows = [{"response": "x"}] * 60

    async def main():
        await asyncio.gather(runner.arun(rows), runner.arun(rows), runner.arun(rows))

    asyncio.run(main())
    assert state["peak"] == 7


def test_one_failing_call_affects_only_that_sample_and_grader():
    def flaky(response):
        if response == "bad":
            raise RuntimeError("judge exploded")
        return 0.5

    rows = [{"response": "ok"}, {"response": "bad"}, {"response": "ok"}]
    res = GradingRunner({"flaky": flaky, "other": lambda response: 1.0}, show_progress=False).run(
        rows
    )
    assert [type(r) for r in res["flaky"]] == [GraderScore, GraderError, GraderScore]
    assert "judge exploded" in res["flaky"][1].error
    assert res.scores("other") == [1.0, 1.0, 1.0]
    assert res.errors("flaky") == {1: "RuntimeError: judge exploded"}


def test_duck_typed_grader_that_raises_is_contained():
    class Raw:
        name = "raw"
        required_fields = ("response",)

        async def aevaluate(self, **fields):
            raise OSError("socket")

    res = GradingRunner([Raw()], show_progress=False).run([{"response": "x"}])
    assert isinstance(res["raw"][0], GraderError) and "OSError: socket" in res["raw"][0].error


def test_per_call_timeout_becomes_an_error_for_that_call_only():
    async def slow(response):
        await asyncio.sleep(1.0 if response == "slow" else 0)
        return 1.0

    res = GradingRunner({"s": slow}, timeout=0.05, show_progress=False).run(
        [{"response": "slow"}, {"response": "fast"}]
    )
    assert isinstance(res["s"][0], GraderError) and res["s"][0].metadata["timeout"] is True
    assert res.scores("s") == [None, 1.0]


def test_runner_is_reusable_across_event_loops():
    async def g(response):
        await asyncio.sleep(0)
        return 0.5

    runner = GradingRunner({"g": g}, max_concurrency=2, show_progress=False)
    rows = [{"response": "x"}] * 10
    for _ in range(3):
        assert asyncio.run(runner.arun(rows)).scores("g") == [0.5] * 10
    assert runner.run(rows).scores("g") == [0.5] * 10


def test_run_inside_a_running_loop_says_to_await():
    runner = GradingRunner({"g": capture}, show_progress=False)

    async def main():
        runner.run([{"response": "x"}])

    with pytest.raises(RuntimeError, match="await runner.arun"):
        asyncio.run(main())


def test_empty_dataset_gives_empty_columns():
    res = GradingRunner({"g": capture}, show_progress=False).run([])
    assert res == {"g": []}


# -- datasets --------------------------------------------------------------------------------
def test_jsonl_and_hf_datasets_are_accepted(tmp_path):
    import datasets

    rows = [{"response": "a"}, {"response": "bb"}]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    runner = GradingRunner({"len": lambda response: float(len(response))}, show_progress=False)
    runner.grader_configs["len"].grader.score_range = None
    assert runner.run(str(path)).scores("len") == [1.0, 2.0]
    assert runner.run(datasets.Dataset.from_list(rows)).scores("len") == [1.0, 2.0]


def test_bad_datasets_are_clear(tmp_path):
    runner = GradingRunner({"g": capture}, show_progress=False)
    with pytest.raises(DatasetError, match="not found"):
        runner.run(str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"response": "x"}\n{oops\n')
    with pytest.raises(DatasetError, match="bad.jsonl:2"):
        runner.run(str(bad))
    with pytest.raises(DatasetError, match="row 1"):
        runner.run([{"response": "x"}, "y"])


def test_progress_bar_counts_every_call(capsys):
    GradingRunner({"g": capture}, show_progress=True).run([{"response": "x"}] * 5)
    err = capsys.readouterr().err
    assert "grading" in err and "5/5" in err
