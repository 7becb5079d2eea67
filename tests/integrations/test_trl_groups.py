"""Group judges in TRL (issue 19): GRPOTrainer/RLOOTrainer hand a group grader whole groups.

One process: the real trainers, a listwise judge on the local judge server; every request
it receives holds one prompt's candidates. Two processes (torchrun, gloo, CPU): whole
groups when each process's batch holds them, and also when it does not (TRL checks only
the global batch): then rlreward grades each prompt's rows on one process; unchecked,
every row would be a partial group.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.errors import ConfigError
from rlreward.graders.judge_io import neutralise
from rlreward.integrations._rows import trl_rows
from rlreward.integrations._trl_groups import owners
from rlreward.integrations.trl import group_problems, make_reward_funcs, split_slices
from rlreward.reward import Reward
from tests.integrations import adapter_helpers as H
from tests.integrations import trl_host as T
from tests.integrations.trl_groups_ddp import build_reward
from tests.openai_server import RankingJudge
from tests.test_runner_groups import LengthRank

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r'<response id="(\d+)">\n(.*?)\n</response>', re.DOTALL)
PROMPT = re.compile(r"what is \d+ plus \d+")


@pytest.fixture(scope="module")
def tok():
    return H.tokenizer()


def one_group_per_request(requests, prompts, completions, size):
    """Each request shows one prompt and only that prompt's completions (at most size)."""
    by_prompt: dict[str, set[str]] = {}
    for p, c in zip(prompts, completions, strict=True):
        by_prompt.setdefault(p, set()).add(neutralise(c))
    for body in requests:
        text = body["messages"][-1]["content"]
        asked = set(PROMPT.findall(text))
        assert len(asked) == 1, asked
        shown = [t for _, t in BLOCK.findall(text)]
        assert 2 <= len(shown) <= size
        assert set(shown) <= by_prompt[asked.pop()]  # never another prompt's completion
    assert len(requests) == len(prompts) // size  # one call per group (debias off)


@pytest.mark.parametrize("rloo", [False, True], ids=["grpo", "rloo"])
def test_one_process_hands_the_group_judge_whole_groups(tok, tmp_path, openai_server, rloo):
    openai_server.responder = RankingJudge()
    reward = build_reward(openai_server.url)
    funcs, weights = make_reward_funcs(reward)
    trainer = T.grpo_trainer(
        tok,
        funcs,
        weights,
        T.arith_rows(2),
        tmp_path,
        rloo=rloo,
        max_steps=1,
        num_generations=4,
        per_device_train_batch_size=8,
    )
    trainer.train()
    prompts, completions = list(trainer._logs["prompt"]), list(trainer._logs["completion"])
    assert len(prompts) == 8
    one_group_per_request(openai_server.requests, prompts, completions, 4)
    trained = [float(v) for v in trainer._logs["rewards"]["reward"]]
    openai_server.reset()
    openai_server.responder = RankingJudge()
    want = reward.values(reward.grade(trl_rows(prompts, completions, {})))
    assert None not in want and trained == pytest.approx(want, abs=1e-6)


def test_group_size_other_than_num_generations_is_refused_before_grading(
    tok, tmp_path, openai_server
):
    reward = Reward({"rank": LengthRank(4)})
    funcs, weights = make_reward_funcs(reward)
    trainer = T.grpo_trainer(tok, funcs, weights, T.arith_rows(2), tmp_path, max_steps=1)
    with pytest.raises(ConfigError, match=r"group_size 4 .* num_generations=2 .*group_size: 2"):
        trainer.train()
    assert reward.graders["rank"].grader.calls == []


def fake_trainer(processes, per_device, gens=4, steps=1, eval_batch=None, gens_eval=None):
    args = SimpleNamespace(
        per_device_train_batch_size=per_device,
        steps_per_generation=steps,
        eval_strategy="steps" if eval_batch else "no",
        per_device_eval_batch_size=eval_batch or 8,
    )
    return SimpleNamespace(
        args=args,
        num_generations=gens,
        num_generations_eval=gens_eval or gens,
        accelerator=SimpleNamespace(num_processes=processes),
    )


def test_group_problems_and_split_slices_name_the_settings():
    reward = Reward({"rank": LengthRank(4), "plain": lambda response: 1.0})
    assert group_problems(reward, fake_trainer(2, 6)) == []  # sizes agree
    assert split_slices(reward, fake_trainer(1, 2)) == []  # one process: TRL's own check
    assert split_slices(reward, fake_trainer(2, 4)) == []
    assert split_slices(reward, fake_trainer(2, 2, steps=2)) == []  # 2 * 2 rows per process
    (p,) = split_slices(reward, fake_trainer(2, 6))
    assert "6 completions, not a multiple of num_generations=4" in p
    assert "per_device_train_batch_size=4 would keep them whole" in p
    (p,) = split_slices(reward, fake_trainer(2, 4, eval_batch=2))
    assert "per_device_eval_batch_size (2) = 2" in p
    (p,) = group_problems(reward, fake_trainer(1, 4, eval_batch=4, gens_eval=2))
    assert "num_generations_eval=2" in p
    nested = Reward({"inner": Reward({"rank": LengthRank(8)})})  # a nested group grader
    (p,) = group_problems(nested, fake_trainer(1, 4))
    assert "'inner' has group_size 8" in p
    monitor = Reward({"plain": lambda response: 1.0}, monitors={"rank": LengthRank(2)})
    assert group_problems(monitor, fake_trainer(1, 4))  # monitors are graded too
    assert split_slices(Reward({"plain": lambda response: 1.0}), fake_trainer(2, 3)) == []


def test_owners_keep_a_prompt_run_on_the_process_holding_its_first_row():
    rows = [{"query": q} for q in "aabbbbcc"]  # a run of b straddles processes 0 and 1
    assert owners([3, 5], rows) == [0, 0, 0, 0, 0, 0, 1, 1]
    assert owners([4, 4], rows) == [0, 0, 0, 0, 0, 0, 1, 1]
    assert owners([2, 6], rows) == [0, 0, 1, 1, 1, 1, 1, 1]


def torchrun(server, out, per_device, gens, *extra):
    out.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd += ["--master_port", str(29500 + os.getpid() % 500), "-m"]
    cmd += ["tests.integrations.trl_groups_ddp", server.url, str(out), str(per_device)]
    cmd += [str(gens), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize(
    ("per_device", "gens", "spread"),
    [
        (4, 4, False),  # each process holds one whole group
        (2, 4, True),  # each process holds half a group
        (3, 2, True),  # process 0: a, a, b; process 1: b, c, c
    ],
)
def test_two_processes_hand_the_group_judge_whole_groups(
    tmp_path, openai_server, per_device, gens, spread
):
    openai_server.responder = RankingJudge()
    ranks = torchrun(openai_server, tmp_path / "run", per_device, gens)
    assert [r["processes"] for r in ranks] == [2, 2]
    assert [r["spread"] for r in ranks] == [spread, spread]
    run = ranks[0]
    assert "error" not in run and len(run["prompts"]) == 2 * per_device
    one_group_per_request(openai_server.requests, run["prompts"], run["completions"], gens)
    openai_server.reset()
    openai_server.responder = RankingJudge()
    reward = build_reward(openai_server.url, gens)
    want = reward.values(reward.grade(trl_rows(run["prompts"], run["completions"], {})))
    assert None not in want and run["rewards"] == pytest.approx(want, abs=1e-6)


def test_two_processes_unchecked_would_leave_every_row_a_partial_group(tmp_path, openai_server):
    # what grading across processes prevents: each process holds half a group, so the
    # judge refuses every row as a partial group and GRPO trains on no judge at all
    openai_server.responder = RankingJudge()
    ranks = torchrun(openai_server, tmp_path / "unchecked", 2, 4, "unchecked")
    assert ranks[0]["spread"] is False
    assert openai_server.requests == []
    assert all(v != v for v in ranks[0]["rewards"])  # NaN: unscorable rows
