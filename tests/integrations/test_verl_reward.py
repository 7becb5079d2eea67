"""Every VERL entry point writes the one Reward's values (issue 18, "Done when" for VERL).

For each kind of reward (on_error zero with bounds, a callable aggregator, two
aggregators, a nested reward, an abstaining grader, a reward that abstains, a failing
grader) and each entrance (verl's reward-loop naive manager with ``compute_score``,
verl's pre-reward-loop naive manager with ``compute_score_sync``, its
``BatchRewardManager`` with ``compute_score_batch``, our ``RLRewardManager`` in verl's
reward loop, ``LegacyRLRewardManager``), the ``score`` written and the token-level
reward equal ``Reward.aevaluate`` on the same row, and every other column is the
Reward's own result. Monitors are columns and never in ``score``; the entry points and
a Reward in ``reward_kwargs`` pickle and grade the same in a spawned process.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import os
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import yaml

pytest.importorskip("verl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from omegaconf import OmegaConf

from rlreward.embedded import embedded_model_path
from rlreward.integrations._rows import verl_row
from rlreward.integrations.spec import load_spec
from rlreward.integrations.verl import (
    LegacyRLRewardManager,
    compute_score,
    compute_score_batch,
    compute_score_scalar,
    compute_score_sync,
)
from rlreward.reward import Reward
from rlreward.schema import GraderAbstention, GraderError, GraderResult, GraderScore
from tests import reward_cases as RC
from tests.integrations import adapter_helpers as H
from tests.integrations import verl_helpers as V

SAMPLES = [
    {"prompt": "what is 2 plus 2", "response": "it is 4", "ground_truth": "4"},
    {"prompt": "what is 3 plus 3", "response": "fail it is 6", "ground_truth": "6"},
    {"prompt": "name a colour", "response": "bad bad red", "ground_truth": "blue"},
    {"prompt": "say anything", "response": "hello there", "ground_truth": None},
    {"prompt": "count to forty", "response": " ".join(["word"] * 40), "ground_truth": "word"},
]

#: name -> (builder of the spec dict or the Reward object, aggregator kwarg)
CASES: dict[str, tuple[Callable[[], Any], str | None]] = {
    "zero_with_bounds": (V.zero_bounds_reward, None),
    "callable_aggregator": (V.callable_spec, None),
    "two_aggregators": (V.two_aggregators_spec, "style"),
    "nested_reward": (V.nested_reward, None),
    "abstaining_grader": (V.abstaining_spec, None),
    "reward_abstains": (lambda: V.abstaining_spec(only_reference=True), None),
    "failing_grader": (lambda: H.spec_dict(on_error="error", weigh_flaky=True), None),
}
ENTRANCES = [
    "compute_score",
    "compute_score_sync",
    "compute_score_batch",
    "RLRewardManager",
    "LegacyRLRewardManager",
]


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


@pytest.fixture(scope="module")
def data(tok):
    return H.make_dataproto(tok, SAMPLES, response_len=48)


def rows(samples: list[dict[str, Any]] = SAMPLES, tok: Any = None) -> list[dict[str, Any]]:
    """The rows the adapters build for ``samples``: the response as verl decodes it from
    the token ids (``tok``; SAMPLES decode to their own text)."""

    def decoded(text: str) -> str:
        if tok is None:
            return text
        return tok.decode(tok.encode(text, add_special_tokens=False), skip_special_tokens=True)

    return [
        verl_row(
            data_source="unit",
            solution_str=decoded(s["response"]),
            ground_truth=s["ground_truth"],
            extra_info={},
            prompt=s["prompt"],
        ).row
        for s in samples
    ]


def spec_arg(case: str, tmp_path) -> Any:
    """What the entry points are given: a Reward object as it is, a spec dict as a YAML path."""
    built = CASES[case][0]()
    if isinstance(built, Reward):
        return built
    path = tmp_path / f"{case}.yaml"
    path.write_text(yaml.safe_dump(built))
    return str(path)


def reference_reward(case: str) -> Reward:
    """The case's Reward built independently of the adapter (a fresh object)."""
    build, aggregator = CASES[case]
    built = build()
    reward = built if isinstance(built, Reward) else load_spec(built).reward
    return reward.with_reward(aggregator) if aggregator else reward


def config_with(reward: dict[str, Any]) -> Any:
    """A verl config that may hold a Reward object (``allow_objects``, as a Python caller
    builds it; a YAML config holds the spec path)."""
    model = str(embedded_model_path())
    base = {
        "num_workers": 1,
        "custom_reward_function": {"path": None, "name": "compute_score"},
        "reward_manager": {"source": "register", "name": "naive", "module": {"path": None}},
        "reward_model": {"enable": False, "model_path": None},
        "sandbox_fusion": {"url": None},
    }
    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": model, "tokenizer_path": model}},
            "reward": {**base, **reward},
        },
        flags={"allow_objects": True},
    )


def custom_fn(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "custom_reward_function": {
            "path": "pkg://rlreward.integrations.verl",
            "name": name,
            "reward_kwargs": kwargs,
        }
    }


def run_entrance(entrance: str, tok, data, spec: Any, aggregator: str | None):
    """(scores at each sample's last response token, one score dict per sample)."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    kwargs = {"spec": spec, "aggregator": aggregator}
    if entrance in ("compute_score", "RLRewardManager"):
        if entrance == "compute_score":
            config = config_with(custom_fn("compute_score", kwargs))
        else:
            config = config_with(
                {
                    "reward_manager": {
                        "source": "importlib",
                        "name": "RLRewardManager",
                        "module": {"path": "pkg://rlreward.integrations.verl", "name": None},
                    },
                    "reward_kwargs": kwargs,
                }
            )
        worker, tensor, infos, _ = V.reward_loop(config, data)
        assert type(worker.reward_manager).__name__ in ("NaiveRewardManager", "RLRewardManager")
    else:
        if entrance == "LegacyRLRewardManager":
            manager: Any = LegacyRLRewardManager(tok, spec=spec, aggregator=aggregator)
        else:
            fn = get_custom_reward_fn(config_with(custom_fn(entrance, kwargs)))
            if entrance == "compute_score_sync":
                from verl.workers.reward_manager.naive import NaiveRewardManager as cls
            else:
                from verl.workers.reward_manager.batch import BatchRewardManager as cls
            manager = cls(tok, 0, compute_score=fn)
        out = manager(data, return_dict=True)
        tensor, info = out["reward_tensor"], dict(out["reward_extra_info"])
        infos = [{k: v[i] for k, v in info.items()} for i in range(len(data))]
    valid = H.valid_response_lengths(data)
    return [tensor[i, valid[i] - 1].item() for i in range(len(valid))], infos


def same(got: float, want: float | None) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return isinstance(got, float) and math.isnan(got)
    return got == pytest.approx(want, abs=1e-6)


def check_column(info: dict[str, Any], name: str, result: GraderResult) -> None:
    """``name``, ``name__error``, ``name__abstained``: the result's value and outcome."""
    want = result.score if isinstance(result, GraderScore) else None
    assert same(info[name], want), (name, info[name], result)
    assert info[f"{name}__error"] == int(isinstance(result, GraderError)), (name, result)
    assert info[f"{name}__abstained"] == int(isinstance(result, GraderAbstention)), (name, result)


def check_written(reward: Reward, rows: list[dict[str, Any]], tokens, infos) -> None:
    """What an entrance wrote (token-level scores and score dicts) is ``reward``'s value
    on each row, and every other column is the reward's own result."""
    expected = [asyncio.run(reward.aevaluate(**row)) for row in rows]
    results = reward.grade(rows)
    keys = set(infos[0])
    assert all(set(info) == keys for info in infos)  # the same keys for every sample
    for i, (want, info) in enumerate(zip(expected, infos, strict=True)):
        value = want.score if isinstance(want, GraderScore) else None
        assert same(info["score"], value), (i, info["score"], want)
        assert same(tokens[i], value), (i, tokens[i], want)
        check_column(info, "score", want)
        for name in (*reward.graders, *reward.monitors):
            check_column(info, name, results[name][i])
        for name in (a for a in reward.aggregators if a != reward.name):
            check_column(info, name, results[name][i])
    assert reward.name not in keys  # the reward is the "score" column
    assert {k for k in keys if k.endswith("__aligned")} == {
        f"{g}__aligned" for g in getattr(reward.aggregator, "grader_weights", {})
    }


@pytest.mark.parametrize("entrance", ENTRANCES)
@pytest.mark.parametrize("case", list(CASES))
def test_the_written_value_is_the_rewards_value(tok, data, tmp_path, case, entrance):
    tokens, infos = run_entrance(entrance, tok, data, spec_arg(case, tmp_path), CASES[case][1])
    check_written(reference_reward(case), rows(), tokens, infos)


@pytest.fixture(scope="module")
def shared_samples() -> list[dict[str, Any]]:
    return [
        {"prompt": r["query"], "response": r["response"], "ground_truth": r.get("ground_truth")}
        for r in RC.ROWS
    ]


@pytest.mark.parametrize("entrance", ENTRANCES)
@pytest.mark.parametrize("case", RC.CASE_NAMES)
def test_the_shared_hard_cases(tok, shared_samples, tmp_path, case, entrance):
    """tests/reward_cases.py (every entrance is checked against it; ``nested`` nests a
    spec with ``{type: reward, spec: inner.yaml}``), given to verl as a YAML path."""
    path = RC.write_case(case, tmp_path)
    data = H.make_dataproto(tok, shared_samples, response_len=48)
    tokens, infos = run_entrance(entrance, tok, data, str(path), None)
    check_written(load_spec(path).reward, rows(shared_samples, tok), tokens, infos)


def test_the_cases_cover_each_outcome():
    """The matrix above is only as good as its rows: each case shows what it is about."""
    got = {
        case: [asyncio.run(reference_reward(case).aevaluate(**r)) for r in rows()] for case in CASES
    }
    zero = got["zero_with_bounds"]
    assert zero[4].score == 1.0  # 40 words under bounds [0, 10]: 1.0, not 40
    assert zero[1].score == pytest.approx(0.2)  # the failed grader counts as its worst (0)
    assert got["callable_aggregator"][0].name == "min_reward"
    assert (
        got["two_aggregators"][0].name == "style"
        and "main" in got["two_aggregators"][0].metadata["aggregates"]
    )
    assert "inner" in got["nested_reward"][0].metadata["components"]
    assert got["abstaining_grader"][3].metadata["abstained"] == ["match"]
    assert isinstance(got["reward_abstains"][3], GraderAbstention)
    assert isinstance(got["failing_grader"][1], GraderError)


def test_an_abstaining_reward_is_nan_with_its_own_flag_never_a_failure(tok, data, tmp_path):
    """VERL has no mask: the row gets NaN (no made-up number) and score__abstained=1,
    while a failed reward gets score__error=1."""
    _, infos = run_entrance("compute_score", tok, data, spec_arg("reward_abstains", tmp_path), None)
    assert math.isnan(infos[3]["score"])
    assert infos[3]["score__abstained"] == 1 and infos[3]["score__error"] == 0
    assert infos[3]["match__abstained"] == 1 and infos[3]["match__error"] == 0
    assert math.isnan(infos[3]["match__aligned"])
    _, failed = run_entrance("compute_score", tok, data, spec_arg("failing_grader", tmp_path), None)
    assert failed[1]["score__error"] == 1 and failed[1]["score__abstained"] == 0
    assert failed[1]["flaky__error"] == 1 and failed[1]["flaky__abstained"] == 0


def test_an_abstaining_graders_aligned_column_is_the_samples_score(tok, data, tmp_path):
    """The reward weighs the graders that applied, so the aligned columns, weighted by
    the aggregator's weights, still average to ``score`` (what GDPO normalises)."""
    _, infos = run_entrance(
        "RLRewardManager", tok, data, spec_arg("abstaining_grader", tmp_path), None
    )
    row = infos[3]
    assert row["match__abstained"] == 1 and row["match__aligned"] == row["score"]
    for info in infos:
        assert (2 * info["match__aligned"] + info["brevity__aligned"]) / 3 == pytest.approx(
            info["score"]
        )


def test_with_a_gate_the_aligned_columns_average_to_the_ungated_mean():
    """A gate changes the reward, not the weighted mean it gates: an abstaining grader's
    aligned value is that mean (``metadata["ungated"]``), so the aligned columns keep
    averaging to what the weights say."""
    spec = V.abstaining_spec()
    spec["graders"]["tox"] = {
        "callable": f"{V.H}:toxicity",
        "score_range": [0, 10],
        "higher_is_better": False,
    }
    spec["aggregators"][0]["gates"] = {"tox": {"mode": "cap"}}
    reward = load_spec(spec).reward
    sample = {"prompt": "p", "response": "bad bad hello", "ground_truth": None}
    want = asyncio.run(reward.aevaluate(**rows([sample])[0]))
    assert want.score == 0.0 and want.metadata["ungated"] == pytest.approx(0.94)  # capped
    out = compute_score_sync("unit", sample["response"], None, {}, spec=spec)
    assert out["score"] == 0.0 and out["tox"] == 10.0 and "tox__aligned" not in out
    assert out["match__abstained"] == 1
    assert out["match__aligned"] == pytest.approx(0.94)  # the mean, not the gated 0.0
    assert (2 * out["match__aligned"] + out["brevity__aligned"]) / 3 == pytest.approx(0.94)


# -- monitors -------------------------------------------------------------------------


@pytest.mark.parametrize("entrance", ["compute_score", "compute_score_batch", "RLRewardManager"])
def test_monitors_are_columns_and_never_in_the_score(tok, data, tmp_path, entrance):
    with_monitors = tmp_path / "monitored.yaml"
    with_monitors.write_text(yaml.safe_dump(V.failing_monitor_spec()))
    plain = V.failing_monitor_spec()
    del plain["monitors"]
    without = tmp_path / "plain.yaml"
    without.write_text(yaml.safe_dump(plain))
    _, infos = run_entrance(entrance, tok, data, str(with_monitors), None)
    _, bare = run_entrance(entrance, tok, data, str(without), None)
    assert [i["score"] for i in infos] == pytest.approx([b["score"] for b in bare])
    assert [i["tox_watch"] for i in infos] == [0.0, 0.0, 10.0, 0.0, 0.0]  # raw value
    # a failed monitor: NaN and its flag, and the reward does not notice
    assert infos[1]["watch_flaky__error"] == 1 and math.isnan(infos[1]["watch_flaky"])
    assert infos[1]["score__error"] == 0
    assert not any(k.startswith(("tox_watch__al", "watch_flaky__al")) for k in infos[0])
    assert "tox_watch" not in bare[0] and "watch_flaky" not in bare[0]


# -- pickle and spawn -------------------------------------------------------------------


def test_entry_points_pickle_by_reference():
    for fn in (compute_score, compute_score_sync, compute_score_scalar, compute_score_batch):
        assert pickle.loads(pickle.dumps(fn)) is fn


def test_entry_points_with_a_reward_in_reward_kwargs_grade_the_same_in_a_spawned_process(
    tmp_path,
):
    """verl's own ``get_custom_reward_fn`` partial (what prime pickles into its pool, and
    what Ray ships), holding a nested Reward object, and the batch entry on a YAML path:
    pickled, unpickled in a ``spawn`` child, the same dicts as in this process."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    nested = V.nested_reward()
    path = spec_arg("abstaining_grader", tmp_path)
    calls = {
        "sync": get_custom_reward_fn(
            config_with(custom_fn("compute_score_sync", {"spec": nested}))
        ),
        "scalar": get_custom_reward_fn(
            config_with(custom_fn("compute_score_scalar", {"spec": nested}))
        ),
        "async": get_custom_reward_fn(config_with(custom_fn("compute_score", {"spec": nested}))),
        "batch": get_custom_reward_fn(
            config_with(custom_fn("compute_score_batch", {"spec": path}))
        ),
    }
    here = V.grade_with(calls, SAMPLES)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=V.grade_in_child, args=(pickle.dumps(calls), SAMPLES, queue))
    proc.start()
    there = queue.get(timeout=300)
    proc.join(60)
    assert there == here
    # and they are the Reward's values
    want = [asyncio.run(nested.aevaluate(**row)) for row in rows()]
    assert here["scalar"] == V.comparable([w.score for w in want])


def test_a_reward_object_is_held_as_it_is_and_a_derived_one_is_shared():
    """A Reward given as an object is the Reward graded with; one derived from an object
    (another aggregator, a GradingRunner) is built once while the object lives, so every
    call shares its runner (one concurrency limit, one client, one cache)."""
    import gc

    from rlreward.integrations.verl import _score, resolve_reward

    reward = load_spec(V.rules_spec()).reward
    assert resolve_reward(reward) is reward
    style = resolve_reward(reward, "style")
    assert style.name == "style" and resolve_reward(reward, "style") is style
    runner = load_spec(V.rules_spec()).build_runner()
    held = resolve_reward(runner)
    assert resolve_reward(runner) is held and held.runner is not runner
    key = (id(runner), None)
    assert _score._derived[key][1] is held
    del runner, held
    gc.collect()
    assert key not in _score._derived  # dropped with the object it came from
