"""The adapters' shared runtime, and the core additions it needs (on_missing, pickling, async batches)."""

import asyncio
import pickle
import threading

import pytest
import yaml

from rlreward.errors import ConfigError, MissingFieldsError
from rlreward.graders.batching import MicroBatcher
from rlreward.graders.function import FunctionGrader
from rlreward.integrations._runtime import RewardSource, get_handle, run_sync
from rlreward.runner import GraderConfig, GradingRunner
from tests.integrations import adapter_helpers as H


def _runner() -> GradingRunner:
    return GradingRunner(
        {
            "match": GraderConfig(FunctionGrader(H.exact_match)),
            "brevity": FunctionGrader(H.brevity),
        },
        show_progress=False,
    )


def test_on_missing_skip_marks_not_applicable_and_grades_the_rest():
    rows = [{"response": "it is 4", "reference_response": "4"}, {"response": "no ref"}]
    runner = _runner()
    with pytest.raises(MissingFieldsError, match="'reference_response' missing in 1/2"):
        runner.run(rows)  # the default is unchanged
    res = runner.run(rows, on_missing="skip")
    assert res.scores("match") == [1.0, None]
    assert res["match"][1].metadata == {
        "not_applicable": True,
        "missing_fields": ["reference_response"],
    }
    assert res.scores("brevity") == [pytest.approx(1 - 3 / 50), pytest.approx(1 - 2 / 50)]
    with pytest.raises(ConfigError, match="on_missing='maybe'"):
        runner.run(rows, on_missing="maybe")


def test_on_missing_skip_keeps_a_mapper_bug_an_ordinary_error():
    def bad_mapper(row):
        raise KeyError("oops")

    runner = GradingRunner({"b": GraderConfig(H.brevity, mapper=bad_mapper)}, show_progress=False)
    err = runner.run([{"response": "x"}], on_missing="skip")["b"][0]
    assert not err.ok and "mapper raised KeyError" in err.error
    assert "not_applicable" not in err.metadata


def test_runner_pickles_without_its_loop_state():
    runner = _runner()
    runner.run([{"response": "a", "reference_response": "a"}])  # creates per-loop state
    copy = pickle.loads(pickle.dumps(runner))
    assert list(copy.graders) == ["match", "brevity"]
    assert copy.run([{"response": "a", "reference_response": "a"}]).scores("match") == [1.0]


def test_micro_batcher_awaits_an_async_batch_function():
    async def double(xs):
        await asyncio.sleep(0)
        return [2 * x for x in xs]

    b = MicroBatcher(double, max_batch_size=8)

    async def main():
        return await asyncio.gather(*(b.submit(i) for i in range(10)))

    assert asyncio.run(main()) == [2 * i for i in range(10)]
    assert b.batch_sizes == [8, 2]


def test_one_handle_per_spec_per_process(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(H.spec_dict()))
    a = get_handle(RewardSource.coerce(str(path)))
    b = get_handle(RewardSource.coerce(path))  # same file, other spelling
    assert a is b and a.reward == "reward"
    d1 = get_handle(RewardSource.coerce(H.spec_dict()))
    assert get_handle(RewardSource.coerce(H.spec_dict())) is d1 and d1 is not a
    runner = _runner()
    h = get_handle(RewardSource.coerce(runner))
    # no aggregator in the runner: an equal-weight 'reward' is added
    assert h.reward == "reward" and h.weighted_sum().grader_weights == {
        "match": 0.5,
        "brevity": 0.5,
    }


def test_source_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="reward spec file not found"):
        RewardSource.coerce(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="YAML spec path, a spec dict"):
        RewardSource.coerce(42)
    with pytest.raises(ConfigError, match="aggregator 'nope' is not in the reward spec"):
        get_handle(RewardSource.coerce(H.spec_dict(), aggregator="nope"))


def test_custom_aggregator_has_no_per_grader_weights():
    spec = H.spec_dict()
    spec["aggregators"] = [{"callable": "tests.integrations.adapter_helpers:min_reward"}]
    handle = get_handle(RewardSource.coerce(spec))
    with pytest.raises(ConfigError, match="not a WeightedSumAggregator"):
        handle.weighted_sum()


def test_the_handle_hands_out_the_bound_aggregator_and_re_derives_nothing():
    import rlreward.integrations._runtime as runtime
    from rlreward.schema import GraderScore

    handle = get_handle(RewardSource.coerce(H.spec_dict()))
    agg = handle.weighted_sum()
    assert agg is handle.runner.aggregators["reward"]  # the runner's own bound aggregator
    assert not hasattr(handle, "normalised") and not hasattr(handle, "grader_weights")
    assert "normalise_score" not in vars(runtime)  # normalising is the aggregator's alone
    assert agg.aligned("tox", GraderScore("tox", 10.0)) == 0.0  # lower is better on [0, 10]


def test_run_sync_uses_one_background_loop():
    async def where():
        return id(asyncio.get_running_loop()), threading.current_thread().name

    first, second = run_sync(where()), run_sync(where())
    assert first == second and first[1] == "rlreward-loop"

    async def nested():
        return run_sync(where())

    with pytest.raises(RuntimeError, match="await instead"):
        run_sync(nested())
