"""The TRL adapter against real TRL 1.12 on CPU: what GRPOTrainer trains on is the Reward.

The trl 1.16 half (GRPOTrainer, AsyncGRPOTrainer's reward contract) is test_trl116.py.
"""

import ast
import asyncio
import inspect
import math
import multiprocessing as mp
import os
import pickle
import statistics
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.errors import ConfigError
from rlreward.integrations.trl import RewardLoggingCallback, make_reward_funcs
from rlreward.schema import GraderScore
from tests.integrations import adapter_helpers as H
from tests.integrations import trl_host as T

GRADERS = ["match", "brevity", "tox", "flaky"]
WEIGHTED = ["match", "brevity", "tox"]  # spec_dict() weighs these 2 : 1 : 1
ALIGNED = [f"{g}__aligned" for g in WEIGHTED]
#: per grader cannot be exact for these: refused up front / raises on the abstaining row
PER_GRADER_REFUSED = {"callable": "not a WeightedSumAggregator", "abstaining": "abstained"}


def call_all(funcs, prompts, completions, **columns):
    """Call every function with the same lists, concurrently, as TRL does."""

    async def main():
        return await asyncio.gather(*(f(prompts, completions, None, **columns) for f in funcs))

    return asyncio.run(main())


def aevaluate_all(reward, rows):
    async def main():
        return [await reward.aevaluate(**row) for row in rows]

    return [r.score if isinstance(r, GraderScore) else None for r in asyncio.run(main())]


def trained(funcs, weights, values):
    """What TRL's sum_then_normalize trains on per row: nansum, NaN where every value is None."""
    out = []
    for row in zip(*values, strict=True):
        if all(v is None for v in row):
            out.append(None)
        else:
            out.append(math.fsum(w * v for w, v in zip(weights, row, strict=True) if v is not None))
    return out


TEXTS = ["it is 4", "x y z", "bad bad", "hello there friend", "q", "a longer text with words"]


def test_functions_look_like_async_functions_to_trl():
    from trl.trainer.utils import get_callable_name

    (combined,), w = make_reward_funcs(H.spec_dict())  # the default mode: combined
    assert get_callable_name(combined) == "reward" and w == [1.0]
    funcs, weights = make_reward_funcs(H.spec_dict(on_error="zero"), mode="per_grader")
    # one function per weighted grader, named for what it returns: the aligned value
    assert [get_callable_name(f) for f in funcs] == ALIGNED
    assert weights == [0.5, 0.25, 0.25]  # the aggregator's (normalised) weights
    for f in [combined, *funcs]:
        assert inspect.iscoroutinefunction(f)  # TRL 1.12's test for running it on its loop
        assert str(inspect.signature(f)) == "(prompts, completions, completion_ids=None, **kwargs)"
    assert funcs[0].reward is funcs[1].reward  # the functions hold the one Reward


@pytest.mark.parametrize("case", H.TRL_CASES)
@pytest.mark.parametrize("mode", ["combined", "per_grader"])
def test_the_value_trained_is_reward_aevaluate_by_hand(case, mode):
    """The functions, reduced as TRL reduces them, give Reward.aevaluate row by row."""
    reward = H.trl_reward(case)
    if mode == "per_grader" and case == "callable":
        with pytest.raises(ConfigError, match="use mode='combined'"):
            make_reward_funcs(reward, mode=mode)
        return
    funcs, weights = make_reward_funcs(reward, mode=mode)
    assert all(f.reward is reward for f in funcs)  # held as it is, nothing rebuilt
    rows = [{"response": t} for t in TEXTS]
    want = aevaluate_all(reward, rows)
    if mode == "per_grader" and case == "abstaining":
        with pytest.raises(ConfigError, match=r"abstained .*mode='combined'"):
            call_all(funcs, ["q"] * len(TEXTS), TEXTS)
        return
    got = trained(funcs, weights, call_all(funcs, ["q"] * len(TEXTS), TEXTS))
    assert got == pytest.approx(want, abs=1e-12)
    if case == "failing":
        assert None in want and any(v is not None for v in want)


@pytest.mark.parametrize("case", H.TRL_CASES)
@pytest.mark.parametrize("mode", ["combined", "per_grader"])
def test_grpo_trains_on_reward_aevaluate_row_by_row(tok, tmp_path, case, mode):
    """The real GRPOTrainer path: TRL's own reduction per completion == Reward.aevaluate."""
    reward = H.trl_reward(case)
    if mode == "per_grader" and case == "callable":
        with pytest.raises(ConfigError, match=PER_GRADER_REFUSED[case]):
            make_reward_funcs(reward, mode=mode)
        return
    funcs, weights = make_reward_funcs(reward, mode=mode)
    if mode == "per_grader" and case == "abstaining":
        with pytest.raises(ConfigError, match=PER_GRADER_REFUSED[case]):
            T.train_once(tok, funcs, weights, tmp_path)
        return
    run = T.train_once(tok, funcs, weights, tmp_path)
    got = T.compare(reward, run)
    # the batch exercised what the case is about
    results = reward.grade([{"response": c} for c in run["completions"]])
    if case in ("zero_bounds", "two_aggregators", "failing"):
        assert results.errors("judge") and len(results.errors("judge")) < 8
    if case == "zero_bounds":
        assert any(len(c) > 40 for c in run["completions"])  # clipped to its bounds
    if case == "abstaining":
        assert results.abstentions("abstains") and None not in got["expected"]
    if case == "failing":
        assert None in got["expected"]
    log = run["logs"][0]
    assert "monitors/words/mean" in log  # the monitor is logged ...
    assert "words" in reward.monitors and "words" not in reward.graders
    for r in reward.results(results):  # ... and never weighed
        assert "words" not in r.metadata.get("components", {})


def test_a_monitor_is_logged_and_never_in_the_reward(tok, tmp_path):
    from rlreward.reward import Reward

    reward = H.trl_reward("zero_bounds")

    without = Reward(reward.graders, list(reward.aggregators.values()))
    funcs, weights = make_reward_funcs(reward)
    cb = RewardLoggingCallback(funcs)
    run = T.train_once(tok, funcs, weights, tmp_path, callbacks=[cb])
    rows = [{"response": c} for c in run["completions"]]
    assert T.expected(reward, run["prompts"], run["completions"]) == T.expected(
        without, run["prompts"], run["completions"]
    )  # the same reward with and without the monitor
    words = [H.brevity(c) for c in run["completions"]]
    log = run["logs"][0]
    assert log["monitors/words/mean"] == pytest.approx(statistics.fmean(words), abs=1e-6)
    assert log["monitors/words/std"] == pytest.approx(statistics.pstdev(words), abs=1e-6)
    assert log["rlreward/words/mean"] == pytest.approx(statistics.fmean(words), abs=1e-6)
    assert log["monitors/words/abstain_rate"] == 0.0
    assert not any(k.startswith("rewards/words") for k in log)  # never shown as a reward part
    assert len(rows) == 8


def test_grader_failures_and_abstentions_are_counted_in_trl_logs():
    reward = H.trl_reward("abstaining")
    (combined,) = make_reward_funcs(reward).funcs
    logged = {}
    out = call_all([combined], ["q"] * len(TEXTS), TEXTS, log_metric=logged.__setitem__)[0]
    results = reward.grade([{"response": t} for t in TEXTS])
    n_abstained = len(results.abstentions("abstains"))
    assert 0 < n_abstained < len(TEXTS)
    assert logged["rewards/abstains/abstain_rate"] == n_abstained / len(TEXTS)
    assert logged["rewards/reward/abstain_rate"] == 0.0  # brevity applies to every row
    assert out == reward.values(results)
    failing = H.trl_reward("failing")
    logged.clear()
    call_all(make_reward_funcs(failing).funcs, ["q"] * 6, TEXTS, log_metric=logged.__setitem__)
    errors = len(failing.grade([{"response": t} for t in TEXTS]).errors("judge"))
    assert logged["rewards/judge/error_rate"] == logged["rewards/reward/error_rate"] == errors / 6


def test_per_grader_values_are_the_published_components_and_sum_to_the_aggregate():
    spec = H.spec_dict(on_error="zero", weigh_flaky=True)
    funcs, weights = make_reward_funcs(spec, mode="per_grader")
    (combined,), _ = make_reward_funcs(spec)
    prompts = ["what is 2 plus 2", "name a colour", "q"]
    completions = ["it is 4", "bad red", "fail"]  # row 2: flaky fails
    cols = {"ground_truth": ["4", "blue", "x"]}
    per = dict(zip([f.__name__ for f in funcs], call_all(funcs, prompts, completions, **cols)))
    results = funcs[0].reward.grade(
        [
            {"response": c, "reference_response": g}
            for c, g in zip(completions, cols["ground_truth"])
        ]
    )
    for i, r in enumerate(results["reward"]):
        assert {k: per[f"{k}__aligned"][i] for k in r.metadata["components"]} == (
            r.metadata["components"]
        )
    assert per["tox__aligned"][:2] == [1.0, 0.0]  # lower-is-better on [0, 10], turned around
    assert per["flaky__aligned"][2] == 0.0  # a failure under on_error zero: the worst, counted
    assert call_all([combined], prompts, completions, **cols)[0] == pytest.approx(
        trained(funcs, weights, list(per.values())), abs=1e-12
    )


def test_per_grader_refuses_renormalize_and_names_the_fix():
    with pytest.raises(ConfigError, match="cannot reproduce .*on_error='renormalize'") as exc:
        make_reward_funcs(H.spec_dict(on_error="renormalize"), mode="per_grader")
    assert "use mode='combined'" in str(exc.value) and "nansum" in str(exc.value)
    assert make_reward_funcs(H.spec_dict(on_error="renormalize")).weights == [1.0]
    one = {**H.spec_dict(on_error="renormalize")}
    one["aggregators"] = [{"name": "reward", "weights": {"tox": 1}, "on_error": "renormalize"}]
    assert make_reward_funcs(one, mode="per_grader").weights == [1.0]  # nothing to rescale


def test_per_grader_row_where_every_weighted_grader_abstains_is_unscorable_as_combined():
    reward = H.trl_reward("abstaining")
    from rlreward.reward import Reward

    only = Reward({"abstains": reward.graders["abstains"]})  # one grader: all-or-nothing
    funcs, _ = make_reward_funcs(only, mode="per_grader")
    (combined,) = make_reward_funcs(only).funcs
    per = call_all(funcs, ["q"] * len(TEXTS), TEXTS)[0]
    assert per == call_all([combined], ["q"] * len(TEXTS), TEXTS)[0]
    assert None in per and any(v is not None for v in per)


def test_a_missing_reference_is_an_abstention_not_a_zero():
    funcs, _ = make_reward_funcs(H.spec_dict(on_error="zero", weigh_flaky=True))
    reward = funcs[0].reward
    cb = RewardLoggingCallback(funcs)
    # row 0 has no ground truth (match does not apply); row 1 makes flaky fail
    out = call_all(funcs, ["q", "q"], ["x", "fail"], ground_truth=[None, "fail"])[0]
    rows = [{"response": "x", "query": "q"}, {"response": "fail", "reference_response": "fail"}]
    assert out == aevaluate_all(reward, rows)
    assert out[0] == pytest.approx((1 * (1 - 1 / 50) + 1 * 1.0 + 1 * 1.0) / 3)  # match left out
    m = cb.pop_metrics()
    assert m["rlreward/match/abstain_rate"] == 0.5 and m["rlreward/match/error_rate"] == 0.0
    assert m["rlreward/flaky/error_rate"] == 0.5 and m["rlreward/flaky/abstain_rate"] == 0.0
    assert cb.pop_metrics() == {}  # reset after each log
    per, _ = make_reward_funcs(H.spec_dict(on_error="zero", weigh_flaky=True), mode="per_grader")
    with pytest.raises(ConfigError, match=r"on row 0 of this batch \['match'\] abstained"):
        call_all(per, ["q", "q"], ["x", "fail"], ground_truth=[None, "fail"])


def test_ground_truth_follows_the_one_rule_numpy_is_text_and_nan_is_refused():
    import numpy as np

    spec = {
        "graders": {"match": {"callable": f"{H.__name__}:exact_match"}},
        "aggregators": [{"name": "reward", "on_error": "error"}],
    }
    (reward,), _ = make_reward_funcs(spec, mode="combined")
    cb = RewardLoggingCallback([reward])
    cb.pop_metrics()
    # np.int64(4) is the answer "4" (as VERL reads it); a NaN answer is refused, never
    # the reference text "nan" (which "it is nan" would match)
    got = call_all(
        [reward],
        ["q"] * 3,
        ["it is 4", "it is nan", "it is 4"],
        ground_truth=[np.int64(4), math.nan, np.float64("nan")],
    )
    assert got == [[1.0, None, None]]
    m = cb.pop_metrics()
    assert m["rlreward/match/error_rate"] == pytest.approx(2 / 3)  # failures, not skips
    assert "rlreward/match/skip_rate" not in m


def test_logged_names_say_what_the_value_is():
    """A grader's bare name carries its raw score; <grader>__aligned what the reward weighed."""
    spec = H.spec_dict(on_error="zero")
    funcs, _ = make_reward_funcs(spec, mode="per_grader")
    (combined,), _ = make_reward_funcs(spec)
    cb = RewardLoggingCallback(funcs)
    logged = {}
    completions = ["bad bad", "bad bad bad"]  # toxicity 20 -> 10 (clipped by the grader), 10
    call_all(funcs, ["q", "q"], completions, ground_truth=["x", "x"])
    call_all(
        [combined], ["q", "q"], completions, ground_truth=["x", "x"], log_metric=logged.__setitem__
    )
    m = cb.pop_metrics()
    assert m["rlreward/tox/mean"] == 10.0  # what the grader said: very toxic
    assert m["rlreward/tox__aligned/mean"] == 0.0  # what the reward made of it: worst
    assert logged["rewards/tox/mean"] == 10.0 and logged["rewards/tox__aligned/mean"] == 0.0
    assert logged["rewards/match/mean"] == 0.0 and "rewards/flaky__aligned/mean" not in logged
    assert "rewards/flaky/mean" in logged  # raw scores of an unweighted grader are still shown
    assert "rewards/reward/mean" not in logged  # TRL draws the combined function's curve itself
    assert [f.__name__ for f in funcs] == ALIGNED


def test_logged_keys_are_the_same_every_batch():
    """TRL averages log_metric keys over a log step (1.12 gathers them sorted across ranks)."""
    (combined,) = make_reward_funcs(H.trl_reward("failing")).funcs
    keys = []
    for texts in (["q1", "q2"], ["it is 4", "bad"]):  # the first: the judge refuses both
        logged = {}
        call_all([combined], ["q", "q"], texts, log_metric=logged.__setitem__)
        keys.append(sorted(logged))
    assert keys[0] == keys[1]


def test_stats_are_owned_by_the_functions_and_bounded():
    import rlreward.integrations._trl_callback as cb_mod
    import rlreward.integrations.trl as trl_mod

    assert not [n for n in vars(trl_mod) if n.startswith("_group")]  # no process-global registry
    assert all(n in vars(trl_mod) for n in trl_mod.__all__)  # __all__ names only real names
    imports = {
        node.module
        for node in ast.walk(ast.parse(Path(cb_mod.__file__).read_text()))
        if isinstance(node, ast.ImportFrom)
    }
    assert "rlreward.integrations.trl" not in imports  # no cycle trl <-> _trl_callback
    funcs, _ = make_reward_funcs(H.spec_dict(on_error="zero"), mode="per_grader")
    group = funcs[0].group
    assert all(f.group is group for f in funcs)
    call_all(funcs, ["q"], ["it is 4"], ground_truth=["4"])
    size = len(pickle.dumps(group.stats._cols))
    for i in range(40):  # no callback pops: the stats must not grow with the run
        call_all(funcs, ["q"] * 3, ["it is 4", "x y", "bad " * i], ground_truth=["4"] * 3)
    assert len(pickle.dumps(group.stats._cols)) == size
    brevity = [1 - 3 / 50] + [1 - 3 / 50, 1 - 2 / 50] * 40 + [1 - i / 50 for i in range(40)]
    m = group.stats.pop()
    assert m["rlreward/brevity/mean"] == pytest.approx(statistics.fmean(brevity), abs=1e-12)
    assert m["rlreward/brevity/std"] == pytest.approx(statistics.pstdev(brevity), abs=1e-12)


def test_conversational_completions_and_dataset_columns_reach_the_graders():
    spec = {
        "graders": {
            "q": {"callable": "tests.integrations.adapter_helpers:mentions_query"},
            "topic": {
                "callable": "tests.integrations.adapter_helpers:mentions_query",
                "mapper": {"query": "topic"},
            },
        },
    }
    funcs, _ = make_reward_funcs(spec, mode="per_grader")
    prompts = [
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "purple elephants"}]
    ]
    completions = [[{"role": "assistant", "content": [{"type": "text", "text": "purple cats"}]}]]
    q, topic = call_all(funcs, prompts, completions, topic=["cats"], trainer_state=object())
    assert q == [0.5]  # query = last user message: purple (yes), elephants (no)
    assert topic == [1.0]  # the dataset column 'topic' mapped onto the query


def _score_in_child(blob, queue):
    """In a spawned process: unpickle the functions and call them as TRL does."""
    out = []
    for funcs in pickle.loads(blob):
        assert all(f.group is funcs[0].group and f.reward is funcs[0].reward for f in funcs)
        out.append(call_all(funcs, ["q"] * len(TEXTS), TEXTS, ground_truth=["4"] * len(TEXTS)))
    queue.put(out)


def test_pickled_functions_give_identical_values_in_a_spawned_process(tmp_path):
    """AsyncGRPOTrainer's contract: reward_funcs pickled, scored in a `spawn` child, no weights."""
    path = tmp_path / "reward.yaml"
    path.write_text(yaml.safe_dump(H.spec_dict(on_error="zero")))
    from rlreward.integrations.spec import RewardSpec

    sources = [H.trl_reward(c) for c in H.TRL_CASES]
    sources += [str(path), H.spec_dict(on_error="zero")]
    sources += [RewardSpec.from_dict(H.spec_dict(on_error="zero")).build_runner()]
    groups = [make_reward_funcs(s).funcs for s in sources]
    groups += [make_reward_funcs(H.trl_reward("zero_bounds"), mode="per_grader").funcs]
    groups += [make_reward_funcs(str(path), mode="per_grader").funcs]
    blob = pickle.dumps(groups)  # AsyncRolloutWorker.start() pickles reward_funcs the same way
    here = [
        call_all(fs, ["q"] * len(TEXTS), TEXTS, ground_truth=["4"] * len(TEXTS)) for fs in groups
    ]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_score_in_child, args=(blob, queue))
    proc.start()
    got = queue.get(timeout=300)
    proc.join(60)
    assert proc.exitcode == 0
    assert got == here
    assert any(None in values for fs in here for values in fs)  # failures travel as None


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="mode='both' is not allowed"):
        make_reward_funcs(H.spec_dict(), mode="both")
    custom = {
        **H.spec_dict(),
        "aggregators": [{"callable": "tests.integrations.adapter_helpers:min_reward"}],
    }
    with pytest.raises(ConfigError, match="use mode='combined'"):
        make_reward_funcs(custom, mode="per_grader")
    assert make_reward_funcs(custom).weights == [1.0]
    with pytest.raises(ConfigError, match="aggregator 'nope' is not in the reward"):
        make_reward_funcs(H.spec_dict(), aggregator="nope")
    with pytest.raises(ConfigError, match="a Reward, a RewardSpec, a YAML spec path"):
        make_reward_funcs(42)
    with pytest.raises(ConfigError, match="needs the functions from make_reward_funcs"):
        RewardLoggingCallback([len])


def test_aggregator_picks_which_value_is_trained():
    reward = H.trl_reward("two_aggregators")  # its reward is "second"
    (second,) = make_reward_funcs(reward).funcs
    (first,) = make_reward_funcs(reward, aggregator="first").funcs
    assert second.__name__ == "second" and first.__name__ == "first"
    rows = [{"response": t} for t in TEXTS]
    assert call_all([first], ["q"] * 6, TEXTS)[0] == aevaluate_all(
        reward.with_reward("first"), rows
    )
    assert call_all([second], ["q"] * 6, TEXTS)[0] == aevaluate_all(reward, rows)
    logged = {}
    call_all([second], ["q"] * 6, TEXTS, log_metric=logged.__setitem__)
    assert "rewards/first/mean" in logged  # the other aggregator is reported beside it


def test_per_grader_without_a_trainer_to_check_warns_once(caplog):
    funcs, _ = make_reward_funcs(H.spec_dict(on_error="zero"), mode="per_grader")
    with caplog.at_level("WARNING", logger="rlreward.integrations.trl"):
        call_all(funcs, ["q"], ["x"], ground_truth=["x"])
        call_all(funcs, ["q"], ["x"], ground_truth=["x"])
    warned = [r for r in caplog.records if "AsyncGRPOTrainer" in r.getMessage()]
    assert len(warned) == 1 and "use mode='combined'" in warned[0].getMessage()


def test_callback_reports_judge_latency_and_cache_hits(openai_server, tmp_path):
    spec = {
        "judge_model": {"model": "judge", "base_url": openai_server.url, "api_key": "sk-test-0000"},
        "cache": str(tmp_path / "cache.sqlite"),
        "graders": {
            "relevance": {"type": "relevance"},
            "length": {"type": "reward_function", "function": "length"},
        },
        "aggregators": [{"type": "weighted_sum", "name": "reward", "on_error": "zero"}],
    }
    funcs, weights = make_reward_funcs(spec, mode="per_grader")
    cb = RewardLoggingCallback(funcs)
    prompts, completions = ["what is the capital of france"] * 2, ["paris", "it is paris"]
    first = call_all(funcs, prompts, completions)
    m1 = cb.pop_metrics()
    second = call_all(funcs, prompts, completions)  # the same batch again: cached judge grades
    m2 = cb.pop_metrics()
    assert first == second and first[0] == [0.75, 0.75]  # the server's default 4 on a 1..5 scale
    assert (
        m1["rlreward/relevance/cache_hit_rate"] == 0.0
        and m2["rlreward/relevance/cache_hit_rate"] == 1.0
    )
    assert m1["rlreward/relevance/latency_s"] > 0 and openai_server.n_requests == 2
    assert "rlreward/length/latency_s" not in m1  # rule functions report no latency
    assert len(weights) == 2


def test_judge_tokens_calls_and_latency_reach_trl_logs(openai_server, tmp_path):
    """usage/<judge>/... keys: this batch's calls and the tokens the server sent back."""
    spec = {
        "judge_model": {"model": "judge", "base_url": openai_server.url, "api_key": "sk-test-0000"},
        "cache": False,
        "graders": {
            "relevance": {"type": "relevance"},
            "length": {"type": "reward_function", "function": "length"},
        },
    }
    (combined,) = make_reward_funcs(spec).funcs
    logged: dict[str, float] = {}
    prompts, completions = ["what is the capital of france"] * 3, ["paris", "it is paris", "lyon"]
    call_all([combined], prompts, completions, log_metric=logged.__setitem__)
    assert logged["usage/relevance/calls"] == 3 == openai_server.counts["ok"]
    assert logged["usage/relevance/prompt_tokens"] == openai_server.counts["prompt_tokens"]
    assert logged["usage/relevance/completion_tokens"] == openai_server.counts["completion_tokens"]
    assert logged["usage/relevance/latency_p95_s"] > 0
    assert not any(k.startswith("usage/length/") for k in logged)  # rule functions: no calls


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


@pytest.mark.parametrize(("mode", "case"), [("per_grader", "zero_bounds"), ("combined", "nested")])
def test_rloo_trains_on_reward_aevaluate_row_by_row(tok, tmp_path, mode, case):
    reward = H.trl_reward(case)
    funcs, weights = make_reward_funcs(reward, mode=mode)
    T.compare(reward, T.train_once(tok, funcs, weights, tmp_path, rloo=True))


@pytest.mark.parametrize(
    ("mode", "options", "weights", "match"),
    [
        ("per_grader", {}, None, r"reward_weights for .* are \[1.0, 1.0, 1.0\]"),
        ("combined", {}, [2.0], r"reward_weights for \['reward'\] are \[2.0\]"),
        (
            "per_grader",
            {"multi_objective_aggregation": "normalize_then_sum"},
            "ours",
            "multi_objective_aggregation='normalize_then_sum'",
        ),
        ("per_grader", {}, "first two", "hold 2 of the 3 functions"),
    ],
)
def test_trainer_settings_that_change_the_reward_are_refused(
    tok, tmp_path, mode, options, weights, match
):
    funcs, ours = make_reward_funcs(H.spec_dict(on_error="zero"), mode=mode)
    if weights == "first two":
        funcs, weights = funcs[:2], ours[:2]
    elif weights == "ours":
        weights = ours
    trainer = T.grpo_trainer(tok, funcs, weights, T.arith_rows(), tmp_path, max_steps=1, **options)
    with pytest.raises(ConfigError, match=match) as exc:
        trainer.train()
    assert "make_reward_funcs" in str(exc.value)  # the message names the fix
    assert funcs[0].group.stats.pop() == {}  # refused before anything was graded


def test_grpo_trains_two_steps_with_one_function_per_grader(tok, tmp_path):
    funcs, weights = make_reward_funcs(H.spec_dict(on_error="zero"), mode="per_grader")
    cb = RewardLoggingCallback(funcs)
    trainer = T.grpo_trainer(tok, funcs, weights, T.arith_rows(), tmp_path, [cb])
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for log in logs:
        for g in WEIGHTED:
            # TRL's own per-function curve and the callback's say the same, under the same name
            assert log[f"rewards/{g}__aligned/mean"] == pytest.approx(
                log[f"rlreward/{g}__aligned/mean"], abs=1e-6
            )
            assert log[f"rewards/{g}/mean"] == pytest.approx(log[f"rlreward/{g}/mean"], abs=1e-6)
        for g in GRADERS:
            assert log[f"rlreward/{g}/error_rate"] == 0.0  # the callback's metrics
        assert log["rlreward/reward/mean"] == pytest.approx(log["reward"], abs=1e-5)
    after = [p.detach() for p in trainer.model.parameters()]
    assert any(not a.equal(b) for a, b in zip(before, after))  # the policy was updated


def test_grpo_combined_on_chat_prompts_logs_components_and_grades_eval(tok, tmp_path):
    from datasets import Dataset

    rows = [
        {
            "prompt": [{"role": "user", "content": f"what is {i} plus {i}"}],
            "ground_truth": str(2 * i),
        }
        for i in range(4)
    ]
    funcs, weights = make_reward_funcs(H.spec_dict())
    trainer = T.grpo_trainer(tok, funcs, weights, Dataset.from_list(rows), tmp_path)
    cb = RewardLoggingCallback(funcs).install(trainer)
    assert trainer.callback_handler.callbacks[1] is cb  # ahead of the reporters
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for log in logs:
        assert math.isfinite(log["rewards/reward/mean"])
        for g in WEIGHTED:  # components through TRL's log_metric: raw and aligned
            assert 0.0 <= log[f"rewards/{g}__aligned/mean"] <= 1.0
            assert f"rewards/{g}/mean" in log and f"rlreward/{g}/mean" in log
        assert log["rewards/tox/mean"] == pytest.approx(log["rlreward/tox/mean"], abs=1e-6)
    metrics = cb.grade(["what is 2 plus 2", "q"], ["it is 4", "it is 5"], ground_truth=["4", "4"])
    assert metrics["eval_rlreward/match/mean"] == 0.5
    trainer.log({"eval_loss": 0.0})  # the next log carries the evaluation metrics
    assert trainer.state.log_history[-1]["eval_rlreward/match/mean"] == 0.5


def test_aligned_keys_cannot_be_taken_by_a_grader():
    from rlreward.aggregators import ALIGNED_SUFFIX, aligned_key
    from rlreward.integrations.reserved import reserved_reason

    assert aligned_key("tox") == "tox__aligned" and ALIGNED_SUFFIX == "__aligned"
    assert "reserved suffix '__aligned'" in reserved_reason(aligned_key("tox"))
