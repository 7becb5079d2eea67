"""``rlreward audit`` on a real TRL log: GRPOTrainer's ``log_history`` written out as JSONL."""

import json
import os
import zlib

import pytest

pytest.importorskip("trl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.cli import main
from tests.integrations import adapter_helpers as H
from tests.training.tiny import tiny_llama_config

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
def test_audit_reads_a_grpo_trainer_log_history(tmp_path, capsys):
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
            output_dir=str(tmp_path / "run"),
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
    log = tmp_path / "log_history.jsonl"
    log.write_text("".join(json.dumps(h) + "\n" for h in trainer.state.log_history))
    history = trainer.state.log_history
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
