"""Score columns VERL reads: GDPO on the aligned columns, reserved names, ground truth."""

from __future__ import annotations

import asyncio
import math
import os

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("verl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.embedded import embedded_model_path
from rlreward.errors import ConfigError, MissingFieldsError
from rlreward.integrations._rows import ground_truth_fields
from rlreward.integrations.reserved import RESERVED_NAMES
from rlreward.integrations.verl import compute_score
from rlreward.runner import GradingRunner
from tests.integrations import adapter_helpers as H
from tests.integrations import verl_helpers as V

H_ = "tests.integrations.adapter_helpers"


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


# -- GDPO ---------------------------------------------------------------------------

GROUP = [
    {"prompt": "what is 2 plus 2", "response": "it is 4", "ground_truth": "4"},
    {"prompt": "what is 2 plus 2", "response": "bad it is 4", "ground_truth": "4"},  # toxic
    {"prompt": "what is 2 plus 2", "response": "fail it is 4", "ground_truth": "4"},  # flaky down
    {"prompt": "what is 2 plus 2", "response": "it is 5", "ground_truth": "4"},  # wrong
]


def gdpo(data, columns, keys):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.core_algos import compute_gdpo_outcome_advantage

    # the trainer's compute_response_mask (importing ray_trainer pulls in the rollout stack)
    mask = data.batch["attention_mask"][:, -data.batch["responses"].shape[-1] :]
    adv, _ = compute_gdpo_outcome_advantage(
        token_level_rewards=torch.zeros_like(mask, dtype=torch.float32),
        response_mask=mask,
        index=np.array(["g"] * len(data), dtype=object),
        config=OmegaConf.create({"gdpo_reward_keys": keys}),
        non_tensor_batch=columns,
        batch=data.batch,
    )
    return adv[:, 0]  # outcome advantage: the same on every response token


@pytest.mark.parametrize("on_error", ["renormalize", "zero"])
def test_gdpo_on_aligned_columns_is_finite_and_does_not_favour_the_toxic_sample(
    tok, tmp_path, on_error
):
    spec = tmp_path / "rules.yaml"
    spec.write_text(yaml.safe_dump(V.rules_spec(on_error)))
    data = H.make_dataproto(tok, GROUP)
    config = H.verl_config(str(embedded_model_path()), str(spec))
    config.reward.reward_manager.name = "gdpo"  # verl's GDPO reward manager
    config.trainer = {"experiment_name": "gdpo-test"}
    _, _, _, cols = V.reward_loop(config, data)
    aligned = ["match__aligned", "tox__aligned", "flaky__aligned", "brevity__aligned"]
    adv = gdpo(data, cols, aligned)
    assert torch.isfinite(adv).all(), adv
    assert adv[0] > adv[1]  # same answer, but toxic: lower advantage
    assert adv[0] > adv[3]  # wrong answer
    assert adv[2] < adv[0]  # a failed grader never earns the sample a better advantage
    for k in aligned:
        assert ((cols[k] >= 0) & (cols[k] <= 1)).all()
    assert cols["tox"].tolist()[1] == 10.0  # raw value still there, in its own direction
    assert cols["flaky__error"].tolist() == [0, 0, 1, 0]
    failed = cols["flaky__aligned"][2]
    if on_error == "zero":
        assert failed == 0.0
    else:  # renormalize: the failed grader takes the sample's own reward
        assert failed == pytest.approx(cols["score"][2])
    # weighted by the aggregator's weights, the aligned columns average to the reward
    w = {"match__aligned": 2, "brevity__aligned": 1, "tox__aligned": 1, "flaky__aligned": 1}
    mean = sum(w[k] * cols[k] for k in w) / sum(w.values())
    assert mean == pytest.approx(cols["score"])
    assert "extra__aligned" not in cols  # the reward does not weigh "extra"


def test_gdpo_on_raw_columns_is_what_went_wrong(tok, tmp_path):
    """The old columns: NaN for the failed grader poisons the batch."""
    spec = tmp_path / "rules.yaml"
    spec.write_text(yaml.safe_dump(V.rules_spec("renormalize")))
    data = H.make_dataproto(tok, GROUP)
    _, _, _, cols = V.reward_loop(H.verl_config(str(embedded_model_path()), str(spec)), data)
    assert torch.isnan(gdpo(data, cols, ["match", "tox", "flaky"])).all()


# -- reserved names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["uid", "data_source", "acc", "error", "x__aligned", "y__error", "z__abstained"]
)
def test_grader_names_that_are_verl_keys_are_refused(name):
    runner = GradingRunner({name: H.brevity}, show_progress=False)
    with pytest.raises(ConfigError, match="reserved") as info:
        asyncio.run(compute_score("s", "a", None, {}, spec=runner))
    if name in RESERVED_NAMES:
        assert "uid" in str(info.value) and "data_source" in str(info.value)  # lists them


def test_an_extra_aggregator_named_reward_is_refused_but_the_reward_may_be():
    ok = {
        "graders": {"b": {"callable": f"{H_}:brevity"}},
        "aggregators": [{"type": "weighted_sum", "name": "reward"}],
    }
    assert asyncio.run(compute_score("s", "a", None, {}, spec=ok))["score"] == 0.98
    bad = {
        "graders": {"b": {"callable": f"{H_}:brevity"}},
        "aggregators": [
            {"type": "weighted_sum", "name": "main"},
            {"type": "weighted_sum", "name": "reward"},
        ],
    }
    with pytest.raises(ConfigError, match="validation loop"):
        asyncio.run(compute_score("s", "a", None, {}, spec=bad))


def test_rl_reward_manager_refuses_reserved_names_when_built(tok, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({"graders": {"b": {"callable": f"{H_}:brevity"}}}))
    from rlreward.integrations.verl import RLRewardManager

    config = H.verl_config(
        str(embedded_model_path()), str(spec), manager="RLRewardManager", custom_fn=False
    )
    runner = GradingRunner({"index": H.brevity}, show_progress=False)
    with pytest.raises(ConfigError, match="'index' is a reserved name"):
        RLRewardManager(config, tok, spec=runner)


# -- ground truth ---------------------------------------------------------------------

REF_SPEC = {
    "graders": {
        "ref": {"callable": f"{V.V}:needs_reference"},
        "brev": {"callable": f"{H_}:brevity"},
    },
    "aggregators": [{"type": "weighted_sum", "name": "reward", "on_error": "renormalize"}],
}


@pytest.mark.parametrize(
    ("ground_truth", "answer"),
    [(np.int64(42), "42"), (42, "42"), (np.float64(2.5), "2.5"), (np.float32(0.1), "0.1")],
)
def test_numeric_ground_truth_is_text(ground_truth, answer):
    out = asyncio.run(
        compute_score("s", f"the answer is {answer}", ground_truth, {}, spec=REF_SPEC)
    )
    assert out["ref"] == 1.0 and out["ref__error"] == 0


def _reference_outcome(ground_truth):
    """What the one rule in ``_rows.ground_truth_fields`` makes of a ground truth for a
    grader that needs ``reference_response``: no field -> it abstains; a refused value
    in the field -> it fails."""
    fields, problem = ground_truth_fields(ground_truth)
    assert problem is not None
    return "error" if "reference_response" in fields else "abstained"


@pytest.mark.parametrize(
    "ground_truth", [math.nan, np.float64("nan"), math.inf, None, [1, 2], np.array(["4"]), True]
)
def test_unusable_ground_truth_flags_the_sample_and_never_raises(ground_truth):
    good = asyncio.run(compute_score("s", "it is 4", "4", {}, spec=REF_SPEC))
    out = asyncio.run(compute_score("s", "it is 4", ground_truth, {}, spec=REF_SPEC))
    assert set(out) == set(good)
    outcome = _reference_outcome(ground_truth)
    assert out[f"ref__{outcome}"] == 1 and math.isnan(out["ref"])  # not a 0.0 "wrong answer"
    other = "abstained" if outcome == "error" else "error"
    assert out[f"ref__{other}"] == 0  # a failure and an abstention are never both
    assert out["score"] == pytest.approx(out["brev"])  # the other grader decides
    assert out["score__error"] == 0 and out["score__abstained"] == 0
    assert out["ref__aligned"] == out["score"]  # weighed as the graders that applied


def test_no_ground_truth_abstains_and_is_never_a_failure():
    """None is "this row has no answer": the reference grader abstains (its own flag,
    error 0), and with no other weighted grader the reward itself abstains."""
    out = asyncio.run(compute_score("s", "it is 4", None, {}, spec=REF_SPEC))
    assert out["ref__abstained"] == 1 and out["ref__error"] == 0 and math.isnan(out["ref"])
    only_ref = {**REF_SPEC, "aggregators": [{"type": "weighted_sum", "weights": {"ref": 1}}]}
    out = asyncio.run(compute_score("s", "it is 4", None, {}, spec=only_ref))
    assert math.isnan(out["score"])  # VERL has no mask: no made-up number either
    assert out["score__abstained"] == 1 and out["score__error"] == 0
    assert out["brev"] == pytest.approx(0.94)  # unweighted graders still report


def test_a_list_ground_truth_can_be_mapped():
    spec = {
        "graders": {
            "ref": {
                "callable": f"{V.V}:needs_reference",
                "mapper": {"reference_response": "ground_truth.0"},
            }
        }
    }
    out = asyncio.run(compute_score("s", "it is 4", np.array(["4", "four"]), {}, spec=spec))
    assert out["ref"] == 1.0


def test_mixed_ground_truths_in_one_reward_loop_batch(tok, tmp_path):
    spec = tmp_path / "ref.yaml"
    spec.write_text(yaml.safe_dump(REF_SPEC))
    gts = [np.int64(4), math.nan, None, [4, 5], "4"]
    samples = [{"prompt": "2+2", "response": "it is 4", "ground_truth": g} for g in gts]
    data = H.make_dataproto(tok, samples)
    _, _, _, cols = V.reward_loop(H.verl_config(str(embedded_model_path()), str(spec)), data)
    outcomes = [None, *(_reference_outcome(g) for g in gts[1:4]), None]
    assert cols["ref__error"].tolist() == [int(o == "error") for o in outcomes]
    assert cols["ref__abstained"].tolist() == [int(o == "abstained") for o in outcomes]
    assert cols["ref"][0] == 1.0 and cols["ref"][4] == 1.0
    assert np.isfinite(cols["score"]).all()


def test_a_field_no_sample_has_is_still_a_configuration_error():
    spec = {
        "graders": {
            "ref": {"callable": f"{V.V}:needs_reference"},
            "q": {"callable": f"{H_}:mentions_query"},
        }
    }
    from rlreward.integrations.verl import compute_score_batch

    with pytest.raises(MissingFieldsError, match="'query'"):
        compute_score_batch(["s", "s"], ["a", "b"], ["4", None], [{}, {}], spec=spec)


# -- judge usage columns --------------------------------------------------------------

USAGE = ("calls", "prompt_tokens", "completion_tokens", "latency_s")


def _judge_spec(url: str, tmp_path, cache: object = False) -> str:
    spec = {
        "judge_model": {
            "model": "judge",
            "base_url": url,
            "api_key": "sk-test-0000",
            "max_retries": 0,
        },
        "cache": cache,
        "graders": {
            "relevance": {"type": "relevance"},
            "length": {"type": "reward_function", "function": "length"},
        },
        "aggregators": [{"type": "weighted_sum", "name": "reward"}],
    }
    path = tmp_path / f"judge-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _score_all(spec: str, responses: list[str], timeout: float | None = 60.0) -> list[dict]:
    async def main():
        return await asyncio.gather(
            *(
                compute_score(
                    "s",
                    r,
                    None,
                    {"question": "what is the capital of france"},
                    spec=spec,
                    timeout=timeout,
                )
                for r in responses
            )
        )

    return asyncio.run(main())


def test_judge_usage_columns_are_what_the_server_sent_on_every_path(openai_server, tmp_path):
    """<judge>__calls|prompt_tokens|completion_tokens|latency_s: per sample, equal to the
    usage block the server sent for that sample's request; the same keys on every sample,
    graded, failed, cached or timed out; rule graders get none."""
    from tests.openai_server import Action, prompt_words

    spec = _judge_spec(openai_server.url, tmp_path)
    responses = ["berlin", "it is madrid", "lyon, i think, or maybe nice"]
    outs = _score_all(spec, responses)
    keys = list(outs[0])
    assert all(list(o) == keys for o in outs)
    assert [f"relevance__{f}" for f in USAGE] == [
        k for k in keys if k.startswith("relevance__") and k.split("__")[1] in USAGE
    ]
    assert not any(k.startswith("length__") and k.split("__")[1] in USAGE for k in keys)
    assert openai_server.counts["ok"] == 3
    # per sample: the request that carried its response, and the reply the server sent
    by_response = {}
    for body in openai_server.requests:
        text = body["messages"][-1]["content"]
        (r,) = [r for r in responses if r in text]
        by_response[r] = prompt_words(body)
    reply_words = openai_server.counts["completion_tokens"] / 3
    for r, o in zip(responses, outs, strict=True):
        assert o["relevance__error"] == 0 and o["relevance__calls"] == 1
        assert o["relevance__prompt_tokens"] == by_response[r]
        assert o["relevance__completion_tokens"] == reply_words
        assert o["relevance__latency_s"] > 0
    assert sum(o["relevance__prompt_tokens"] for o in outs) == openai_server.counts["prompt_tokens"]
    assert len({o["relevance__prompt_tokens"] for o in outs}) == 3  # per sample, not a mean

    # a failed call: one call, no token counts reported (NaN), the same keys
    openai_server.reset()
    openai_server.script(Action.error(400, message="bad request"))
    (failed,) = _score_all(spec, ["paris again"])
    assert list(failed) == keys and failed["relevance__error"] == 1
    assert failed["relevance__calls"] == 1 and failed["relevance__latency_s"] > 0
    assert math.isnan(failed["relevance__prompt_tokens"])
    assert math.isnan(failed["relevance__completion_tokens"])

    # timed out: no result at all, usage unknown (NaN), the same keys
    openai_server.reset()
    openai_server.latency = 2.0
    (late,) = _score_all(spec, ["paris at last"], timeout=0.3)
    assert list(late) == keys and late["score__error"] == 1
    assert all(math.isnan(late[f"relevance__{f}"]) for f in USAGE)

    # a cached grade: 0 calls, 0 tokens
    openai_server.reset()
    cached = _judge_spec(openai_server.url, tmp_path, cache=str(tmp_path / "cache.sqlite"))
    first = _score_all(cached, ["paris"])[0]
    second = _score_all(cached, ["paris"])[0]
    assert openai_server.counts["ok"] == 1 and list(second) == keys
    assert first["relevance__calls"] == 1 and first["relevance__prompt_tokens"] > 0
    assert second["relevance__calls"] == 0
    assert second["relevance__prompt_tokens"] == second["relevance__completion_tokens"] == 0


def test_a_name_equal_to_a_judges_usage_column_is_refused():
    from rlreward.integrations.verl._columns import check_names

    with pytest.raises(ConfigError, match="usage column of LLM judge 'rel'"):
        check_names(["rel", "rel__calls"], judges=["rel"])
    check_names(["rel", "len__calls"], judges=["rel"])  # not a judge's column: allowed
