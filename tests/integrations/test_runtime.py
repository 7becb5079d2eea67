"""The adapters' shared runtime (``as_reward``, ``run_sync``) and what it relies on in the core."""

import asyncio
import pickle
import threading

import pytest
import yaml

from rlreward.errors import ConfigError, MissingFieldsError
from rlreward.graders.batching import MicroBatcher
from rlreward.graders.function import FunctionGrader
from rlreward.integrations._runtime import as_reward, run_sync
from rlreward.integrations.spec import RewardSpec, load_reward
from rlreward.reward import Reward
from rlreward.runner import GraderConfig, GradingRunner
from rlreward.schema import GraderAbstention, GraderError
from tests.integrations import adapter_helpers as H


def _runner() -> GradingRunner:
    return GradingRunner(
        {
            "match": GraderConfig(FunctionGrader(H.exact_match)),
            "brevity": FunctionGrader(H.brevity),
        },
        show_progress=False,
    )


def test_on_missing_skip_abstains_and_grades_the_rest():
    rows = [{"response": "it is 4", "reference_response": "4"}, {"response": "no ref"}]
    runner = _runner()
    with pytest.raises(MissingFieldsError, match="'reference_response' missing in 1/2"):
        runner.run(rows)  # the default is unchanged
    res = runner.run(rows, on_missing="skip")
    assert res.scores("match") == [1.0, None]
    assert isinstance(res["match"][1], GraderAbstention)  # not applicable: not an error
    assert res.errors("match") == {} and "reference_response" in res.abstentions("match")[1]
    assert res.scores("brevity") == [pytest.approx(1 - 3 / 50), pytest.approx(1 - 2 / 50)]
    with pytest.raises(ConfigError, match="on_missing='maybe'"):
        runner.run(rows, on_missing="maybe")


def test_on_missing_skip_keeps_a_mapper_bug_an_ordinary_error():
    def bad_mapper(row):
        raise KeyError("oops")

    runner = GradingRunner({"b": GraderConfig(H.brevity, mapper=bad_mapper)}, show_progress=False)
    err = runner.run([{"response": "x"}], on_missing="skip")["b"][0]
    assert isinstance(err, GraderError) and "mapper raised KeyError" in err.error


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


def test_one_reward_per_spec_per_process(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(H.spec_dict()))
    a = as_reward(str(path))
    assert as_reward(path) is a  # same file, other spelling
    assert isinstance(a, Reward) and a.name == "reward"
    d1 = as_reward(H.spec_dict())
    assert as_reward(H.spec_dict()) is d1 and d1 is not a
    given = load_reward(H.spec_dict())
    assert as_reward(given) is given  # a Reward object is used as it is
    spec = RewardSpec.from_dict(H.spec_dict())
    assert as_reward(spec) is spec.reward  # a spec's one reward
    h = as_reward(_runner())
    # no aggregator in the runner: the documented equal-weight 'reward'
    assert h.name == "reward" and dict(h.weighted_sum().grader_weights) == {
        "match": 0.5,
        "brevity": 0.5,
    }


def test_rewards_built_from_paths_are_bounded(tmp_path):
    import rlreward.integrations._runtime as runtime

    runtime._built.clear()
    for i in range(runtime._MAX_BUILT + 4):
        spec = H.spec_dict(concurrency=i + 1)
        as_reward(spec)
    assert len(runtime._built) == runtime._MAX_BUILT  # the oldest were let go


def test_aggregator_picks_the_value_and_unknown_names_are_refused():
    spec = H.spec_dict()
    spec["aggregators"].append({"type": "weighted_sum", "name": "tox_only", "weights": {"tox": 1}})
    assert as_reward(spec).name == "reward"  # the first, as the spec says
    other = as_reward(spec, aggregator="tox_only")
    assert other.name == "tox_only" and list(other.graders) == list(as_reward(spec).graders)
    with pytest.raises(ConfigError, match="aggregator 'nope' is not in the reward"):
        as_reward(spec, aggregator="nope")
    with pytest.raises(ConfigError, match="aggregator must be an aggregator name"):
        as_reward(spec, aggregator="")


def test_source_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="reward spec file not found"):
        as_reward(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="YAML spec path, a spec dict"):
        as_reward(42)


def test_custom_aggregator_has_no_per_grader_weights():
    spec = H.spec_dict()
    spec["aggregators"] = [{"callable": "tests.integrations.adapter_helpers:min_reward"}]
    with pytest.raises(ConfigError, match="not a WeightedSumAggregator"):
        as_reward(spec).weighted_sum()


def test_the_reward_hands_out_the_bound_aggregator_and_re_derives_nothing():
    import rlreward.integrations._runtime as runtime
    from rlreward.schema import GraderScore

    reward = as_reward(H.spec_dict())
    agg = reward.weighted_sum()
    assert agg is reward.runner.aggregators["reward"]  # the runner's own bound aggregator
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
