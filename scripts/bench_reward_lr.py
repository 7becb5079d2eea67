"""Reward-model fidelity across the learning rates a user may pass, with and without a
separate head learning rate, on the embedded MiniLM (full fine-tune, regression).

For each learning rate, two runs on the same split: "one rate" (``head_learning_rate``
equal to ``learning_rate``: the old behaviour) and the default (``head_learning_rate=None``:
``max(lr, 1e-3)`` for the embedded MiniLM). Labels: the seed's five-function composite.

    python scripts/bench_reward_lr.py                       # 4 lrs x 2, appends to BENCHMARKS.md
    python scripts/bench_reward_lr.py --n-texts 160 --lrs 1e-5 --no-append   # a quick look
    python scripts/bench_reward_lr.py --head-lrs same,default,3e-3            # other head rates
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import append_section, table

from rlreward.data import load_reward_texts

FUNCTIONS = ["length", "sentiment", "safety", "coherence", "helpfulness"]
WEIGHTS = [0.15, 0.15, 0.35, 0.20, 0.15]


def head_rate(spec: str, lr: float) -> float | None:
    """``same`` -> lr (one rate), ``default`` -> None (the trainer's default), else a number."""
    if spec == "same":
        return lr
    if spec == "default":
        return None
    return float(spec)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime unavailable"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-texts", type=int, default=672, help="shipped texts (20%% held out)")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lrs", default="1e-5,5e-5,1e-4,2e-4", help="comma-separated")
    ap.add_argument(
        "--head-lrs",
        default="same,default",
        help="comma-separated: same (= lr), default (None) or a number",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the free cores)")
    ap.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    args = ap.parse_args()

    import torch

    from rlreward.rl.threads import set_cpu_threads
    from rlreward.training.trainer import RewardModelTrainer

    set_cpu_threads(args.threads or None)
    lrs = [float(x) for x in args.lrs.split(",")]
    specs = args.head_lrs.split(",")
    load_before = uptime()
    trainer = RewardModelTrainer(
        reward_functions=FUNCTIONS, composite_weights=WEIGHTS, seed=args.seed
    )
    data = trainer.generate_training_data(load_reward_texts()[: args.n_texts], show_progress=False)
    rows = []
    for lr in lrs:
        for spec in specs:
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                trainer.train_reward_model(
                    data,
                    tmp,
                    num_epochs=args.epochs,
                    learning_rate=lr,
                    head_learning_rate=head_rate(spec, lr),
                    batch_size=args.batch_size,
                    show_progress=False,
                )
            metrics = trainer.last_metrics or {}
            run = trainer.last_run
            assert run is not None
            ev = metrics["eval"]
            head = f"{run.settings.head_learning_rate:g}"
            row = [
                f"{lr:g}",
                head + (" (default)" if spec == "default" else ""),
                f"{ev['spearman']:.3f}",
                f"{ev['pearson']:.3f}",
                f"{ev['mse']:.5f}",
                f"{time.perf_counter() - started:.0f}",
            ]
            rows.append(row)
            print(" | ".join(row), flush=True)
    n_train, n_eval = len(run.train_ids), len(run.eval_ids or [])
    headers = ["lr", "head lr", "held-out Spearman", "Pearson", "MSE", "wall s"]
    body = table(headers, rows)
    notes = (
        "\n\nhead lr = lr is the old behaviour (one rate); the head is BERT's pooler + "
        "classifier. "
        f"Embedded MiniLM, full fine-tune, regression on the seed composite "
        f"({', '.join(FUNCTIONS)}; {'/'.join(map(str, WEIGHTS))}); {n_train} texts trained, "
        f"{n_eval} held out (seed {args.seed} split), {args.epochs:g} epochs, batch "
        f"{args.batch_size}, torch threads {torch.get_num_threads()}.\n"
        f"`uptime` before: {load_before}\n`uptime` after: {uptime()}"
    )
    print(body + notes)
    if not args.no_append:
        append_section(
            "Reward-model fidelity across learning rates, head learning rate "
            "(scripts/bench_reward_lr.py)",
            body + notes,
        )


if __name__ == "__main__":
    main()
