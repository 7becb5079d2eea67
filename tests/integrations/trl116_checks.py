"""The TRL adapter against trl 1.16, run in a subprocess: ``PYTHONPATH=.trl116 python -m
tests.integrations.trl116_checks OUT.json`` (test_trl116.py does it; the main environment
keeps trl 1.12 for PPO).

- ``grpo``: GRPOTrainer (tiny Llama from a config, CPU, one step of 8 generations) trains
  on ``Reward.aevaluate``'s value row by row (trl_host.compare), combined and per grader.
- ``async``: AsyncGRPOTrainer's reward contract through trl 1.16's own code:
  ``AsyncRolloutWorker.start()`` pickles ``reward_funcs`` and spawns ``_child_main``,
  whose ``_AsyncRolloutLoop`` scores a group with ``_score_group`` (no reward_weights,
  no log_metric, functions summed with weight 1). Only generation is replaced (it needs
  a vLLM server): ``ScoreOnlyLoop.run`` scores fixed completions instead of generating.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
from typing import Any

import trl.experimental.async_grpo.async_rollout_worker as worker_mod
from trl.experimental.async_grpo.async_rollout_worker import (
    RolloutGroup,
    TrainingSequence,
    _AsyncRolloutLoop,
)
from trl.trainer.utils import get_callable_name

from tests.integrations import adapter_helpers as H

COMPLETIONS = ["it is 4", "x y z", "bad bad", "hello there friend", "q", "a longer text", "a", "bb"]
GRPO_RUNS = [
    ("abstaining", "combined"),
    ("failing", "combined"),
    ("failing", "per_grader"),
    ("nested", "combined"),
    ("zero_bounds", "per_grader"),
    ("callable", "combined"),
]
ASYNC_RUNS = [("abstaining", "combined"), ("failing", "combined"), ("zero_bounds", "per_grader")]


def check_grpo() -> dict[str, Any]:
    from rlreward.integrations.trl import make_reward_funcs
    from tests.integrations import trl_host as T

    tok = H.tokenizer()
    out: dict[str, Any] = {}
    for case, mode in GRPO_RUNS:
        reward = H.trl_reward(case)
        funcs, weights = make_reward_funcs(reward, mode=mode)
        run = T.train_once(tok, funcs, weights, tempfile.mkdtemp())
        got = T.compare(reward, run)  # raises on a mismatch
        got["monitor_logged"] = "monitors/words/mean" in run["logs"][0]
        out[f"{case}/{mode}"] = got
    return out


class ScoreOnlyLoop(_AsyncRolloutLoop):  # type: ignore[misc]
    """trl 1.16's rollout loop with generation replaced by fixed completions.

    Module-level: the spawned child unpickles it by name. ``more_reward_funcs``: further
    lists of reward functions, each scored the same way as ``reward_funcs`` (one spawn
    for every case; they travel in the same pickled kwargs).
    """

    def __init__(
        self, *, completions: list[str], more_reward_funcs: list[list[Any]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.fixed_completions = completions
        self.all_reward_funcs = [self.reward_funcs, *more_reward_funcs]

    def run(self) -> None:
        asyncio.set_event_loop(self._loop)
        row = next(self._dataset_iter)
        out = []
        for funcs in self.all_reward_funcs:
            self.reward_funcs = funcs
            self.reward_func_names = [get_callable_name(f) for f in funcs]
            samples = self._loop.run_until_complete(self._score_group(self._group(row)))
            out.append([(s.metrics, s.advantage) for s in samples])
        self.rollout_buffer.put(out)

    def _group(self, row: dict[str, Any]) -> Any:
        n = len(self.fixed_completions)
        skip = {"prompt", "completion", "completion_ids"}
        return RolloutGroup(  # as _generate_loop fills it for one prompt's group
            prompts=[row["prompt"]] * n,
            reward_kwargs={k: [row[k]] * n for k in row if k not in skip},
            completions=[[{"role": "assistant", "content": c}] for c in self.fixed_completions],
            completions_ids=[[1, 2]] * n,
            completions_sequences=[
                [TrainingSequence([0, 1, 2], [0, 1, 1], [0.0, -1.0, -1.0], f"r{i}")]
                for i in range(n)
            ],
            tool_call_counts=[0] * n,
            tool_failure_counts=[0] * n,
            model_version=0,
            group_id=0,
            env_rewards=[],
            rollout_rewards=[],
        )


class Worker(worker_mod.AsyncRolloutWorker):  # type: ignore[misc]
    """trl 1.16's AsyncRolloutWorker (pickle check, spawn, _child_main) with ScoreOnlyLoop."""

    _loop_cls = ScoreOnlyLoop


def check_async() -> dict[str, Any]:
    from accelerate.state import PartialState
    from datasets import Dataset

    from rlreward.integrations.trl import make_reward_funcs
    from tests.integrations import trl_host as T

    PartialState()  # the trainer's accelerator sets this up before it starts the worker
    # generation would need vLLM; nothing here generates (ScoreOnlyLoop), so let the worker start
    worker_mod.is_vllm_available = lambda: True
    tok = H.tokenizer()
    # the worker parses tool calls from replies (unused here) and wants to know their shape
    tok.response_schema = {
        "type": "object",
        "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}},
    }
    prompt = [{"role": "user", "content": "what is 2 plus 2"}]
    dataset = Dataset.from_list([{"prompt": prompt, "ground_truth": "4"}])
    rewards = [H.trl_reward(case) for case, _ in ASYNC_RUNS]
    made = [make_reward_funcs(r, mode=mode) for r, (_, mode) in zip(rewards, ASYNC_RUNS)]
    worker = Worker(
        model_name="tiny",
        dataset=dataset,
        reward_funcs=made[0].funcs,
        more_reward_funcs=[m.funcs for m in made[1:]],
        processing_class=tok,
        eos_token_ids=[tok.sep_token_id],
        num_generations=len(COMPLETIONS),
        completions=COMPLETIONS,
        child_ready_timeout=300,
    )
    worker.start()  # pickles reward_funcs, spawns the child (CUDA hidden, env scrubbed)
    try:
        scored_cases = worker.rollout_buffer.get(timeout=300)
    finally:
        worker.stop()
    completions = [[{"role": "assistant", "content": c}] for c in COMPLETIONS]
    gt = {"ground_truth": ["4"] * len(COMPLETIONS)}
    out: dict[str, Any] = {}
    for (case, mode), reward, (_, weights), scored in zip(
        ASYNC_RUNS, rewards, made, scored_cases, strict=True
    ):
        want = T.expected(reward, [prompt] * len(COMPLETIONS), completions, gt)
        trained = [m["reward"] for m, _ in scored]
        per_func = {k: [m[k] for m, _ in scored] for k in scored[0][0] if k.startswith("rewards/")}
        weighted = [
            math.fsum(w * v for w, v in zip(weights, vals, strict=True) if not math.isnan(v))
            for vals in zip(*per_func.values(), strict=True)
        ]
        out[f"{case}/{mode}"] = {
            "expected": want,
            "trained": [None if math.isnan(v) else v for v in trained],
            "advantages": [a for _, a in scored],
            "weighted_sum": weighted,  # what TRL would train on had it applied reward_weights
            "functions": list(per_func),
        }
    return out


def main() -> None:
    import trl

    result: dict[str, Any] = {"trl": trl.__version__, "trl_file": trl.__file__}
    result["grpo"] = check_grpo() if "--no-grpo" not in sys.argv else {}
    result["async"] = check_async()
    with open(sys.argv[1], "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
