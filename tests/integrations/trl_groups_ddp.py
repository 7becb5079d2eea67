"""One GRPO step whose reward holds a listwise group judge, under two processes (gloo, CPU).

Run by tests/integrations/test_trl_groups.py as
``torchrun --nproc_per_node 2 -m tests.integrations.trl_groups_ddp URL OUT PER_DEVICE
GENERATIONS [unchecked]``;
each rank writes ``OUT/rank<k>.json``: what TRL logged (gathered across ranks) or the
ConfigError that refused the configuration.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def build_reward(url: str, group_size: int = 4):  # type: ignore[no-untyped-def]
    from rlreward import RewardFunctionGrader
    from rlreward.graders.group_judges import ListwiseJudgeGrader
    from rlreward.models.openai import OpenAIChatModel
    from rlreward.reward import Reward

    judge = OpenAIChatModel(
        "judge", base_url=url, api_key="sk-trl-groups-0123456789", timeout=30.0, max_retries=2
    )
    return Reward(
        {
            "listwise": ListwiseJudgeGrader(
                judge, group_size=group_size, debias=False, cache=False
            ),
            "length": RewardFunctionGrader("length"),
        }
    )


def main(argv: list[str]) -> int:
    url, out, per_device, gens = argv[0], Path(argv[1]), int(argv[2]), int(argv[3])
    from rlreward.errors import ConfigError
    from rlreward.integrations.trl import make_reward_funcs
    from tests.integrations import adapter_helpers as H
    from tests.integrations import trl_host as T

    rank = int(os.environ["RANK"])
    if argv[4:] == ["unchecked"]:  # what grading across processes prevents (a test shows it)
        import rlreward.integrations.trl as adapter

        adapter.split_slices = lambda reward, trainer: []
    funcs, weights = make_reward_funcs(build_reward(url, gens))
    trainer = T.grpo_trainer(
        H.tokenizer(),
        funcs,
        weights,
        T.arith_rows(3),
        out / f"run{rank}",
        max_steps=1,
        num_generations=gens,
        per_device_train_batch_size=per_device,
    )
    record: dict[str, object] = {"processes": trainer.accelerator.num_processes}
    try:
        trainer.train()
    except ConfigError as exc:
        record["error"] = str(exc)
    else:
        record["prompts"] = list(trainer._logs["prompt"])
        record["completions"] = list(trainer._logs["completion"])
        record["rewards"] = [float(v) for v in trainer._logs["rewards"]["reward"]]
        record["spread"] = funcs[0].group.spread
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
