"""The TRL adapter against real TRL 1.12 on CPU: GRPOTrainer with our reward functions."""

import asyncio
import base64
import inspect
import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.errors import ConfigError
from rlreward.integrations.trl import RewardLoggingCallback, make_reward_funcs
from tests.integrations import adapter_helpers as H
from tests.training.tiny import tiny_llama_config

ROOT = Path(__file__).resolve().parents[2]
GRADERS = ["match", "brevity", "tox", "flaky"]


def call_all(funcs, prompts, completions, **columns):
    """Call every function with the same lists, concurrently, as TRL does."""

    async def main():
        return await asyncio.gather(*(f(prompts, completions, None, **columns) for f in funcs))

    return asyncio.run(main())


def test_functions_look_like_async_functions_to_trl():
    from trl.trainer.utils import get_callable_name

    funcs, weights = make_reward_funcs(H.spec_dict())
    assert [get_callable_name(f) for f in funcs] == GRADERS
    assert weights == [0.5, 0.25, 0.25, 0.0]  # the aggregator's (normalised) weights
    for f in funcs:
        assert inspect.iscoroutinefunction(f)  # TRL's test for running it on its event loop
        assert str(inspect.signature(f)) == "(prompts, completions, completion_ids=None, **kwargs)"
    (combined,), w = make_reward_funcs(H.spec_dict(), mode="combined")
    assert get_callable_name(combined) == "reward" and w == [1.0]


def test_per_grader_scores_are_normalised_and_weights_rebuild_the_reward():
    funcs, weights = make_reward_funcs(H.spec_dict())
    (combined,), _ = make_reward_funcs(H.spec_dict(), mode="combined")
    prompts = ["what is 2 plus 2", "name a colour"]
    completions = ["it is 4", "bad red"]
    cols = {"ground_truth": ["4", "blue"]}
    per = dict(zip(GRADERS, call_all(funcs, prompts, completions, **cols)))
    assert per["tox"] == [1.0, 0.0]  # lower-is-better on [0, 10], turned around
    assert per["brevity"] == pytest.approx([0.94, 0.96])
    total = [sum(w * per[g][i] for g, w in zip(GRADERS, weights)) for i in range(2)]
    assert total == pytest.approx(call_all([combined], prompts, completions, **cols)[0])


def test_per_grader_functions_share_one_grading_per_batch():
    spec = {
        "graders": {
            "j": {"callable": "tests.integrations.adapter_helpers:counting_judge"},
            "b": {"callable": "tests.integrations.adapter_helpers:brevity"},
        },
    }
    funcs, _ = make_reward_funcs(spec)
    H.IN_FLIGHT.update(now=0, max=0, calls=0)
    out = call_all(funcs, ["p"] * 6, ["c"] * 6)
    assert out[0] == [1.0] * 6 and H.IN_FLIGHT["calls"] == 6  # not 6 x 2 functions


def test_none_where_a_grader_does_not_apply_or_fails_and_both_are_counted():
    funcs, _ = make_reward_funcs(H.spec_dict())
    cb = RewardLoggingCallback(funcs)
    cb.pop_metrics()
    # row 0 has no ground truth (match does not apply); row 1 makes flaky fail
    out = dict(
        zip(GRADERS, call_all(funcs, ["q", "q"], ["x", "fail"], ground_truth=[None, "fail"]))
    )
    assert out["match"] == [None, 1.0] and out["flaky"] == [1.0, None]
    m = cb.pop_metrics()
    assert m["rlreward/match/skip_rate"] == 0.5 and m["rlreward/match/error_rate"] == 0.0
    assert m["rlreward/flaky/error_rate"] == 0.5 and "rlreward/flaky/skip_rate" not in m
    assert m["rlreward/tox/mean"] == 0.0 and m["rlreward/brevity/std"] == pytest.approx(0.0)
    assert cb.pop_metrics() == {}  # reset after each log


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
    funcs, _ = make_reward_funcs(spec)
    prompts = [
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "purple elephants"}]
    ]
    completions = [[{"role": "assistant", "content": [{"type": "text", "text": "purple cats"}]}]]
    q, topic = call_all(funcs, prompts, completions, topic=["cats"], trainer_state=object())
    assert q == [0.5]  # query = last user message: purple (yes), elephants (no)
    assert topic == [1.0]  # the dataset column 'topic' mapped onto the query


PICKLE_CHILD = """
import asyncio, base64, json, pickle, sys
funcs = pickle.loads(base64.b64decode(sys.argv[1]))
out = [asyncio.run(f(["what is 2 plus 2"], ["it is 4 bad"], ground_truth=["4"])) for f in funcs]
print(json.dumps(out))
"""


@pytest.mark.parametrize("kind", ["path", "dict", "runner"])
def test_pickled_functions_work_in_a_fresh_process(tmp_path, kind):
    spec = H.spec_dict()
    if kind == "path":
        source = tmp_path / "reward.yaml"
        source.write_text(yaml.safe_dump(spec))
    elif kind == "dict":
        source = spec
    else:
        from rlreward.integrations.spec import RewardSpec

        source = RewardSpec.from_dict(spec).build_runner()
    funcs, _ = make_reward_funcs(source)
    blob = base64.b64encode(pickle.dumps(funcs)).decode()
    here = [
        asyncio.run(f(["what is 2 plus 2"], ["it is 4 bad"], ground_truth=["4"])) for f in funcs
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", PICKLE_CHILD, blob],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert json.loads(child.stdout) == here
    names = [f.__name__ for f in funcs]
    assert dict(zip(names, here)) == {
        "match": [1.0],
        "brevity": [0.92],
        "tox": [0.0],
        "flaky": [1.0],
    }


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="mode='both' is not allowed"):
        make_reward_funcs(H.spec_dict(), mode="both")
    custom = {
        **H.spec_dict(),
        "aggregators": [{"callable": "tests.integrations.adapter_helpers:min_reward"}],
    }
    with pytest.raises(ConfigError, match="use mode='combined'"):
        make_reward_funcs(custom)
    assert make_reward_funcs(custom, mode="combined").weights == [1.0]
    with pytest.raises(ConfigError, match="needs the functions from make_reward_funcs"):
        RewardLoggingCallback([len])


def test_callback_reports_judge_latency_and_cache_hits(openai_server, tmp_path):
    spec = {
        "judge_model": {"model": "judge", "base_url": openai_server.url, "api_key": "sk-test-0000"},
        "cache": str(tmp_path / "cache.sqlite"),
        "graders": {
            "relevance": {"type": "relevance"},
            "length": {"type": "reward_function", "function": "length"},
        },
        "aggregators": [{"type": "weighted_sum", "name": "reward", "on_error": "renormalize"}],
    }
    funcs, weights = make_reward_funcs(spec)
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


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


def grpo_trainer(tok, funcs, weights, dataset, tmp_path, callbacks=(), rloo=False):
    import torch
    from transformers import LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    torch.manual_seed(0)
    config = tiny_llama_config(len(tok))  # the training tests' 2-layer Llama, built in-process
    config.pad_token_id, config.bos_token_id, config.eos_token_id = (
        tok.pad_token_id,
        None,
        tok.sep_token_id,
    )
    config_cls, trainer_cls = (RLOOConfig, RLOOTrainer) if rloo else (GRPOConfig, GRPOTrainer)
    extra = {"beta": 0.0} if rloo else {}  # RLOO's KL reference would be loaded from a hub id
    args = config_cls(
        **extra,
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        max_completion_length=8,
        num_generations=2,
        per_device_train_batch_size=2,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        reward_weights=weights,
        seed=0,
    )
    return trainer_cls(
        model=LlamaForCausalLM(config),
        reward_funcs=funcs,
        args=args,
        train_dataset=dataset,
        processing_class=tok,
        callbacks=list(callbacks),
    )


def test_grpo_trains_two_steps_with_one_function_per_grader(tok, tmp_path):
    from datasets import Dataset

    rows = [{"prompt": f"what is {i} plus {i}", "ground_truth": str(2 * i)} for i in range(4)]
    funcs, weights = make_reward_funcs(H.spec_dict())
    cb = RewardLoggingCallback(funcs)
    trainer = grpo_trainer(tok, funcs, weights, Dataset.from_list(rows), tmp_path, [cb])
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for log in logs:
        for g in GRADERS:
            assert math.isfinite(log[f"rewards/{g}/mean"])  # TRL's own per-function logging
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
    funcs, weights = make_reward_funcs(H.spec_dict(), mode="combined")
    trainer = grpo_trainer(tok, funcs, weights, Dataset.from_list(rows), tmp_path)
    cb = RewardLoggingCallback(funcs).install(trainer)
    assert trainer.callback_handler.callbacks[1] is cb  # ahead of the reporters
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for log in logs:
        assert math.isfinite(log["rewards/reward/mean"])
        for g in GRADERS:  # components through TRL's log_metric
            assert 0.0 <= log[f"rewards/{g}/mean"] <= 1.0
            assert f"rlreward/{g}/mean" in log
    metrics = cb.grade(["what is 2 plus 2", "q"], ["it is 4", "it is 5"], ground_truth=["4", "4"])
    assert metrics["eval_rlreward/match/mean"] == 0.5
    trainer.log({"eval_loss": 0.0})  # the next log carries the evaluation metrics
    assert trainer.state.log_history[-1]["eval_rlreward/match/mean"] == 0.5


def test_rloo_trains_with_the_same_functions(tok, tmp_path):
    from datasets import Dataset

    rows = [{"prompt": f"what is {i} plus {i}", "ground_truth": str(2 * i)} for i in range(4)]
    funcs, weights = make_reward_funcs(H.spec_dict(), mode="combined")
    trainer = grpo_trainer(tok, funcs, weights, Dataset.from_list(rows), tmp_path, rloo=True)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2 and all(f"rewards/{g}/mean" in log for g in GRADERS for log in logs)
