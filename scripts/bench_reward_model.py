"""Reward-model speed: training samples/s and scoring texts/s of the embedded MiniLM.

Scoring compares RewardModelGrader.score_texts (length-sorted padded batches under
torch.inference_mode) with the baseline the issue names: a plain transformers
``pipeline("text-classification")`` called one text at a time. The pipeline with its own
batching is shown too, for reference. On a CUDA GPU the same runs in bf16.

    python scripts/bench_reward_model.py            # prints a table, appends to BENCHMARKS.md
    python scripts/bench_reward_model.py --no-append --n-train 64 --n-score 64

Scoring on both embedded bases (MiniLM and SmolLM2), bf16, the runner path and the
semantic functions: ``scripts/bench_scoring.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this checkout's rlreward

from _bench import append_section, table

from rlreward.data import load_reward_texts

FUNCTIONS = ["length", "sentiment", "safety", "coherence", "helpfulness"]


def bench_training(texts: list[str], out: str, epochs: float) -> tuple[float, dict]:
    from rlreward.models.reward_model_io import read_metadata
    from rlreward.training.trainer import RewardModelTrainer

    trainer = RewardModelTrainer(reward_functions=FUNCTIONS)
    data = trainer.generate_training_data(texts, show_progress=False)
    trainer.train_reward_model(data, out, num_epochs=epochs, eval_fraction=0.2, show_progress=False)
    meta = read_metadata(out) or {}
    return float(meta["metrics"]["train_samples_per_second"]), meta


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_scoring(model_dir: str, texts: list[str], device: str) -> list[tuple[str, float]]:
    import torch
    from transformers import pipeline

    from rlreward.graders.reward_model import RewardModelGrader

    grader = RewardModelGrader(model_dir, batch_size=32, device=device)
    ours = grader.score_texts(texts)
    dtype = grader.dtype
    pipe = pipeline(
        "text-classification",
        model=model_dir,
        device=torch.device(device),
        dtype=dtype,
        function_to_apply="none",
    )
    theirs = [pipe(t, truncation=True, max_length=512)[0]["score"] for t in texts[:32]]
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    worst = max(abs(a - b) for a, b in zip(ours[:32], theirs, strict=True))
    assert worst < tol, f"pipeline and grader disagree by {worst}"
    grader.score_texts(texts[:32])  # warm-up
    n = len(texts)
    t_ours = timed(lambda: grader.score_texts(texts), repeats=2)
    t_one = timed(lambda: [pipe(t, truncation=True, max_length=512) for t in texts])
    t_pipe_b = timed(lambda: pipe(texts, batch_size=32, truncation=True, max_length=512))
    return [
        ("baseline: pipeline, one text at a time", n / t_one),
        ("pipeline, batch_size=32 (reference)", n / t_pipe_b),
        ("RewardModelGrader.score_texts (length-sorted, bs 32)", n / t_ours),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=672, help="training texts (20%% held out)")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--n-score", type=int, default=512, help="texts to score")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: the cores other processes leave free)",
    )
    ap.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    args = ap.parse_args()

    import torch

    from rlreward.rl.threads import set_cpu_threads

    set_cpu_threads(args.threads or None)

    texts = load_reward_texts()
    score_texts = (texts * (args.n_score // len(texts) + 1))[: args.n_score]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rm")
        sps, meta = bench_training(texts[: args.n_train], out, args.epochs)
        rho = meta["metrics"]["eval"]["spearman"]
        rows.append(
            [
                "cpu (fp32)" if not torch.cuda.is_available() else "cuda (bf16)",
                f"training, {meta['training']['n_train']} texts x {args.epochs} epoch(s), batch 8",
                f"{sps:,.1f} samples/s",
                f"held-out Spearman {rho:.3f}",
            ]
        )
        for device in devices:
            results = bench_scoring(out, score_texts, device)
            base = results[0][1]
            label = "cpu (fp32)" if device == "cpu" else "cuda (bf16)"
            for name, tps in results:
                ratio = "-" if tps is base else f"{tps / base:.1f}x vs baseline"
                rows.append(
                    [
                        label,
                        f"scoring {len(score_texts)} texts: {name}",
                        f"{tps:,.1f} texts/s",
                        ratio,
                    ]
                )
    headers = ["device", "measure", "throughput", "note"]
    body = table(headers, rows)
    notes = (
        f"\n\nThreads: torch uses {torch.get_num_threads()}. Texts: the shipped reward texts "
        "(mean 44 MiniLM tokens, max 138). "
        + (
            "No GPU was lent to this task, so there are no bf16 GPU figures."
            if not torch.cuda.is_available()
            else ""
        )
    )
    print(body + notes)
    if not args.no_append:
        append_section(
            "Reward model training and scoring (scripts/bench_reward_model.py)", body + notes
        )


if __name__ == "__main__":
    main()
