"""Write examples/trl_grpo_log.jsonl: a SYNTHETIC TRL GRPO log in which the reward is gamed.

The lines have the keys TRL 1.12's GRPOTrainer logs (``reward``, ``rewards/<func>/mean``,
``completions/mean_length``, ``kl``, ``frac_reward_zero_std``, ...), one per step, an
evaluation line every 20 steps and the summary line at the end, as ``trainer_state.json``'s
``log_history`` holds them. The numbers are drawn (seeded), not measured: the trained
reward rises all run; from step 30 on a relevance monitor (a reward function logged with
weight 0) falls and the answers grow longer. docs/reward-hacking.md audits it.

    python scripts/make_audit_example.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "examples" / "trl_grpo_log.jsonl"
STEPS, ONSET = 60, 30


def main() -> int:
    rng = np.random.default_rng(20)
    lines = []
    for step in range(1, STEPS + 1):
        after = max(step - ONSET, 0)
        reward = 0.45 + 0.006 * step + 0.03 * rng.standard_normal()
        relevance = 0.62 - 0.004 * after + 0.015 * rng.standard_normal()
        length = 24 + 0.5 * after + 1.5 * rng.standard_normal()
        lines.append(
            {
                "loss": round(0.01 * rng.standard_normal(), 6),
                "grad_norm": round(abs(0.5 + 0.1 * rng.standard_normal()), 6),
                "learning_rate": round(1e-6 * (1 - (step - 1) / STEPS), 12),
                "num_tokens": 8 * step * 60,
                "completions/mean_length": round(length, 4),
                "rewards/brevity_judge/mean": round(reward, 6),
                "rewards/brevity_judge/std": round(abs(0.2 + 0.02 * rng.standard_normal()), 6),
                "rewards/relevance/mean": round(relevance, 6),
                "rewards/relevance/std": round(abs(0.08 + 0.01 * rng.standard_normal()), 6),
                "reward": round(reward, 6),
                "reward_std": round(abs(0.2 + 0.02 * rng.standard_normal()), 6),
                "frac_reward_zero_std": float(rng.binomial(8, 0.05) / 8),
                "kl": round(max(0.0005 * step + 0.002 * rng.standard_normal(), 0.0), 6),
                "entropy": round(1.2 - 0.004 * step + 0.02 * rng.standard_normal(), 6),
                "epoch": round(step / STEPS, 4),
                "step": step,
            }
        )
        if step % 20 == 0:
            lines.append(
                {
                    "eval_loss": round(0.01 * rng.standard_normal(), 6),
                    "eval_reward": round(reward, 6),
                    "epoch": round(step / STEPS, 4),
                    "step": step,
                }
            )
    lines.append(
        {
            "train_runtime": 1234.5,
            "train_samples_per_second": 0.389,
            "train_steps_per_second": 0.049,
            "total_flos": 0.0,
            "train_loss": 0.0012,
            "epoch": 1.0,
            "step": STEPS,
        }
    )
    OUT.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    print(f"wrote {len(lines)} lines to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
