"""``rlreward audit`` on a real TRL log: GRPOTrainer's ``log_history`` written out as JSONL."""

import importlib.util
import json
import os
import sys
import zlib
from pathlib import Path

import pytest

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.cli import main
from tests.integrations import adapter_helpers as H
from tests.training.tiny import tiny_llama_config

ROOT = Path(__file__).resolve().parents[2]
STEPS = 10
VARIED_STEPS = 4  # the trained reward tells completions apart for 4 steps, then collapses


class CollapsingReward:
    """Varied rewards for the first calls, then one value for every completion: from then
    on every GRPO group has zero reward spread, which TRL logs as frac_reward_zero_std."""

    __name__ = "collapsing"

    def __init__(self):
        self.calls = 0

    def __call__(self, completions, **kwargs):
        self.calls += 1
        if self.calls > VARIED_STEPS:
            return [1.0] * len(completions)
        return [(zlib.crc32(c.encode()) % 97) / 96 for c in completions]


def words(completions, **kwargs):
    """A monitor TRL logs beside the reward (weight 0): words per completion."""
    return [float(len(c.split())) for c in completions]


@pytest.mark.slow
def docs_conversion_block() -> str:
    """The docs' trainer_state.json -> JSONL block (docs/reward-hacking.md), as written."""
    path = ROOT / "docs" / "_hooks" / "codeblocks.py"
    spec = importlib.util.spec_from_file_location("rlreward_docs_codeblocks", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    name = f"{Path(__file__).relative_to(ROOT)}::test_audit_reads_a_grpo_trainer_log_history"
    (block,) = [
        b
        for b in module.blocks(ROOT / "docs" / "reward-hacking.md")
        if b.marker is not None and b.marker.reason == name
    ]
    return block.code


def test_audit_reads_a_grpo_trainer_log_history(tmp_path, capsys, monkeypatch):
    import torch
    from datasets import Dataset
    from transformers import LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    tok = H.tokenizer()
    torch.manual_seed(0)
    config = tiny_llama_config(len(tok))
    config.pad_token_id, config.bos_token_id, config.eos_token_id = (
        tok.pad_token_id,
        None,
        tok.sep_token_id,
    )
    reward = CollapsingReward()
    trainer = GRPOTrainer(
        model=LlamaForCausalLM(config),
        reward_funcs=[reward, words],
        args=GRPOConfig(
            output_dir=str(tmp_path / "outputs" / "grpo"),
            use_cpu=True,
            bf16=False,
            max_completion_length=8,
            num_generations=4,
            per_device_train_batch_size=8,
            max_steps=STEPS,
            logging_steps=1,
            learning_rate=1e-3,
            report_to=[],
            save_strategy="no",
            reward_weights=[1.0, 0.0],
            seed=0,
        ),
        train_dataset=Dataset.from_list([{"prompt": f"what is {i} plus {i}"} for i in range(8)]),
        processing_class=tok,
    )
    trainer.train()
    assert reward.calls == STEPS  # one generation per step: the log's steps are the calls
    trainer.save_state()  # output_dir/trainer_state.json, as a TRL run leaves it
    monkeypatch.chdir(tmp_path)
    exec(docs_conversion_block(), {})  # the docs' conversion, as written
    log = tmp_path / "outputs" / "grpo" / "log_history.jsonl"
    history = [json.loads(line) for line in log.read_text().splitlines()]
    assert history == json.loads(json.dumps(trainer.state.log_history))
    assert "train_runtime" in history[-1] and "reward" not in history[-1]  # a summary line

    args = ["audit", str(log), "--reward", "reward", "--monitor", "rewards/words/mean"]
    args += ["--length", "completions/mean_length", "--zero-spread", "frac_reward_zero_std"]
    code = main([*args, "--png", str(tmp_path / "trl.png")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"{STEPS} steps (1-{STEPS}) from {STEPS + 1} lines, 1 skipped" in out
    # TRL's frac_reward_zero_std is 1.0 from step 5 on: three checks in a row by step 7
    assert "ALERT group_collapse:zero_spread_groups: at step 7:" in out, out
    assert "length_mean <- completions/mean_length" in out
    assert "monitor/rewards/words/mean <- rewards/words/mean" in out
    assert (tmp_path / "trl.png").is_file()
