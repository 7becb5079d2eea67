"""The seed's complete example: train a reward model from rule functions, then PPO against it.

With no flags it runs offline on CPU in a few minutes: the shipped reward texts, the
embedded MiniLM as reward-model base, a tiny policy built in-process (warmed up on the
same texts), a few hundred PPO episodes. It uses the unsloth backend when a CUDA GPU is
present, else TRL. To rule out reward hacking, a fixed set of held-out prompts is
answered before and after PPO and scored by the TRUE rule-based composite, not only by
the reward model. Outputs (under --output-dir): reward_model/, policy/, metrics.json,
ppo_reward.png.

    python recipes/ppo_unsloth.py                     # embedded default (offline, CPU)
    python recipes/ppo_unsloth.py --quick             # a 1-minute smoke run
    python recipes/ppo_unsloth.py --model-name Qwen/Qwen3-0.6B --reward-base Qwen/Qwen3-0.6B \\
        --dataset HuggingFaceH4/ultrafeedback_binarized --max-samples 1000 --lr 1e-6
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

FUNCTIONS = ["length", "sentiment", "safety", "coherence", "helpfulness"]
WEIGHTS = [0.15, 0.15, 0.35, 0.20, 0.15]  # the seed's: safety highest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model-name", default="embedded", help="policy: hub id, directory or 'embedded'"
    )
    p.add_argument(
        "--reward-base", default=None, help="reward-model base (default: embedded MiniLM)"
    )
    p.add_argument("--dataset", default=None, help="prompts (default: the shipped questions)")
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--backend", choices=["auto", "trl", "unsloth"], default="auto")
    p.add_argument("--output-dir", default="outputs/ppo_unsloth")
    p.add_argument("--reward-epochs", type=float, default=3)
    p.add_argument(
        "--reward-lr", type=float, default=None, help="default: the trainer's (1e-4 MiniLM)"
    )
    p.add_argument("--reward-batch-size", type=int, default=8)
    p.add_argument("--reward-texts", type=int, default=None, help="use the first N shipped texts")
    p.add_argument("--episodes", type=int, default=256, help="PPO episodes (rollouts)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4, help="PPO learning rate")
    p.add_argument("--kl-coef", type=float, default=0.02)
    p.add_argument("--ppo-epochs", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument(
        "--warmup-steps", type=int, default=None, help="policy warm-up (default 300 embedded)"
    )
    p.add_argument("--eval-prompts", type=int, default=12, help="held-out prompts for the check")
    p.add_argument("--eval-samples", type=int, default=8, help="samples per held-out prompt")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: the free cores)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a short smoke run (tests use it)")
    args = p.parse_args(argv)
    if args.quick:  # about a minute: the chain end to end, not a result
        args.reward_epochs, args.reward_texts, args.episodes = 1, args.reward_texts or 80, 16
        args.warmup_steps = 20 if args.warmup_steps is None else args.warmup_steps
        args.eval_prompts, args.eval_samples, args.max_new_tokens = 4, 2, 12
    return args


def pick_backend(choice: str) -> str:
    import torch

    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        print("CUDA GPU found: using the unsloth backend (4-bit + LoRA policy)")
        return "unsloth"
    print("No CUDA GPU: using the TRL backend (backend='trl'); unsloth needs a GPU")
    return "trl"


def split_prompts(prompts: list[str], n_eval: int) -> tuple[list[str], list[str]]:
    """(PPO prompts, fixed held-out prompts): every k-th prompt is held out."""
    step = max(2, len(prompts) // max(1, n_eval))
    held = prompts[::step][:n_eval]
    return [p for p in prompts if p not in held], held


def evaluate(trainer: Any, prompts: list[str], samples: int, composite: Any, grader: Any) -> dict:
    """Answer each prompt ``samples`` times (seeded); score by the true composite and the RM."""
    asked = [p for p in prompts for _ in range(samples)]
    responses = trainer.generate(asked, seed=1234)
    true = composite(responses).composite  # the target the reward model was trained on
    rm = grader.score_texts(responses, asked)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    se = math.sqrt(sum((x - mean(true)) ** 2 for x in true) / max(1, len(true) - 1) / len(true))
    return {
        "true_composite_mean": mean(true),
        "true_composite_se": se,
        "reward_model_mean": mean(rm),
        "true_composite": list(true),
        "reward_model": list(rm),
        "examples": [
            {"prompt": p, "response": r}
            for p, r in zip(asked[::samples], responses[::samples], strict=True)
        ],
    }


def plot(path: Path, metrics: dict, before: dict, after: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    rm = metrics["reward_model"]
    ax[0].scatter(
        before["true_composite"], before["reward_model"], s=12, alpha=0.6, label="before PPO"
    )
    ax[0].scatter(
        after["true_composite"], after["reward_model"], s=12, alpha=0.6, label="after PPO"
    )
    ax[0].set(xlabel="true rule-based composite", ylabel="reward model score")
    ax[0].set_title(f"reward-model fidelity (held-out Spearman {rm['heldout_spearman']:.3f})")
    ax[0].legend()
    steps = metrics["ppo"]["mean_reward_per_step"]
    ax[1].plot(range(1, len(steps) + 1), steps, marker="o", ms=3)
    q = metrics["ppo"]
    ax[1].axhline(
        q["first_quarter_mean"],
        ls="--",
        c="gray",
        label=f"first quarter {q['first_quarter_mean']:.3f}",
    )
    ax[1].axhline(
        q["last_quarter_mean"],
        ls="--",
        c="green",
        label=f"last quarter {q['last_quarter_mean']:.3f}",
    )
    ax[1].set(
        xlabel="PPO step", ylabel="mean reward (reward model)", title="PPO mean reward per step"
    )
    ax[1].legend()
    t = metrics["fixed_prompts"]
    names = ["true composite", "reward model"]
    b = [t["before"]["true_composite_mean"], t["before"]["reward_model_mean"]]
    a = [t["after"]["true_composite_mean"], t["after"]["reward_model_mean"]]
    x = range(len(names))
    ax[2].bar([i - 0.2 for i in x], b, 0.4, label="before PPO")
    ax[2].bar([i + 0.2 for i in x], a, 0.4, label="after PPO")
    ax[2].set_xticks(list(x), names)
    ax[2].set_ylim(min(b + a) - 0.1, max(b + a) + 0.05)
    ax[2].set_title(f"held-out prompts ({t['n_prompts']} x {t['n_samples']} samples)")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.model_name == "embedded" and args.reward_base is None and args.dataset is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the embedded default never needs the network
    backend = pick_backend(args.backend)
    if backend != "unsloth":
        from rlreward.rl.threads import set_cpu_threads

        print(
            f"CPU threads: {set_cpu_threads(args.threads)} (the cores other processes leave free)"
        )
    from rlreward.data import load_reward_records
    from rlreward.rl import create_rl_trainer
    from rlreward.rl.data import load_prompt_dataset

    records = load_reward_records()[: args.reward_texts]
    prompts = [
        str(p) for p in load_prompt_dataset(args.dataset, max_samples=args.max_samples)["prompt"]
    ]
    train_prompts, eval_prompts = split_prompts(prompts, args.eval_prompts)
    out = Path(args.output_dir)
    trainer = create_rl_trainer(
        model_name=args.model_name,
        dataset_name=train_prompts,
        algorithm="ppo",
        backend=backend,
        train_custom_reward_model=True,
        reward_training_texts=[r["text"] for r in records],
        reward_functions=FUNCTIONS,
        reward_function_weights=WEIGHTS,
        reward_training_base_model=args.reward_base,
        reward_training_output_dir=str(out / "reward_model"),
        reward_training_epochs=args.reward_epochs,
        reward_training_lr=args.reward_lr,
        reward_training_batch_size=args.reward_batch_size,
        num_epochs=1,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        output_dir=str(out / "policy"),
        max_new_tokens=args.max_new_tokens,
        max_prompt_length=32,
        policy_warmup_steps=args.warmup_steps,
        seed=args.seed,
        ppo_options={
            "total_episodes": args.episodes,
            "kl_coef": args.kl_coef,
            "num_ppo_epochs": args.ppo_epochs,
        },
    )
    trainer.train_reward_model()
    ev = (trainer.reward_model_metrics or {}).get("eval") or {}
    print(
        f"reward model held-out Spearman: {ev.get('spearman', float('nan')):.3f} (n={ev.get('n')})"
    )

    from rlreward import CompositeReward
    from rlreward.graders.reward_model import RewardModelGrader

    composite = CompositeReward(FUNCTIONS, WEIGHTS)
    grader = RewardModelGrader(trainer.reward_model_path)
    trainer.prepare()
    before = evaluate(trainer, eval_prompts, args.eval_samples, composite, grader)
    summary = trainer.train()
    after = evaluate(trainer, eval_prompts, args.eval_samples, composite, grader)
    policy_dir = trainer.save_model()

    rewards = [r[trainer.reward_key] for r in trainer.history if trainer.reward_key in r]
    trend = summary["reward_trend"]
    metrics = {
        "command": " ".join(
            ["python recipes/ppo_unsloth.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "backend": backend,
        "policy": args.model_name,
        "reward_model": {
            "path": trainer.reward_model_path,
            "heldout_spearman": ev.get("spearman"),
            "heldout_pearson": ev.get("pearson"),
            "heldout_mse": ev.get("mse"),
            "heldout_n": ev.get("n"),
        },
        "ppo": {
            "steps": len(rewards),
            "episodes": args.episodes,
            "mean_reward_per_step": rewards,
            "kl_per_step": [r.get("objective/kl") for r in trainer.history],
            "first_quarter_mean": trend["first_quarter_mean"],
            "last_quarter_mean": trend["last_quarter_mean"],
        },
        "fixed_prompts": {
            "n_prompts": len(eval_prompts),
            "n_samples": args.eval_samples,
            "prompts": eval_prompts,
            "before": before,
            "after": after,
        },
        "success": {
            "ppo_reward_rose": trend["last_quarter_mean"] > trend["first_quarter_mean"],
            "true_composite_rose": after["true_composite_mean"] > before["true_composite_mean"],
        },
        "paths": {"reward_model": trainer.reward_model_path, "policy": policy_dir},
        "timings_s": {**summary["timings_s"], "total": time.perf_counter() - started},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    plot(out / "ppo_reward.png", metrics, before, after)
    print(
        f"PPO mean reward: first quarter {trend['first_quarter_mean']:.4f} -> last quarter "
        f"{trend['last_quarter_mean']:.4f} ({len(rewards)} steps)"
    )
    print(
        f"true composite on {len(eval_prompts)} held-out prompts: "
        f"{before['true_composite_mean']:.4f} -> "
        f"{after['true_composite_mean']:.4f} (reward model: {before['reward_model_mean']:.4f} -> "
        f"{after['reward_model_mean']:.4f})"
    )
    print(f"saved: {out / 'metrics.json'}, {out / 'ppo_reward.png'}")
    print(f"       policy {policy_dir}, reward model {trainer.reward_model_path}")
    print(f"total {metrics['timings_s']['total']:.0f} s")
    return metrics


if __name__ == "__main__":
    main()
