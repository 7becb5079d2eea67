"""The reward head's start on the main job's SmolLM2 reward model: fidelity on held-out
policy samples.

The main job (``recipes/ppo_unsloth.py``) trains a SmolLM2 reward model (score head +
LoRA, one epoch at 5e-4) on 48 shipped texts plus the policy's own samples, labelled
with the concise task's true composite. Llama's score head has no bias. This script
compares, on the same data and split:

- ``label-mean start + LoRA``: the head's weight set so that its mean output is the
  label mean (the start before ``rlreward.training.head_start``);
- ``ridge probe start + LoRA``: the default now (ridge regression of the labels on the
  pooled features, strength by generalised cross-validation);
- ``ridge probe alone``: the same probe, no fine-tuning at all.

Fidelity = Spearman of the reward model's scores against the true composite on the
main job's held-out prompts (12 x 8 policy samples, the recipe's seeds). The policy
samples are generated once (the recipe's settings) and cached in ``--pool``.

    python scripts/bench_reward_head.py                 # prints a table, appends BENCHMARKS.md
    python scripts/bench_reward_head.py --samples 8 --no-append
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "recipes"))

import ppo_unsloth as recipe  # the main job's task, prompts and split
from _bench import append_section, table

POOL_SAMPLES = 8  # policy samples per training prompt kept in the cache


def make_pool(path: Path) -> dict[str, Any]:
    """Policy samples on the recipe's PPO prompts (8 each) and its held-out prompts (12 x 8),
    with the shipped texts, all labelled with the true composite through the runner."""
    from rlreward.data import load_reward_records
    from rlreward.rl import create_rl_trainer
    from rlreward.rl.data import load_prompt_dataset

    functions, weights = recipe.concise_task()
    prompts = [str(p) + recipe.CONCISE_SUFFIX for p in load_prompt_dataset(None)["prompt"]]
    train_p, eval_p = recipe.split_prompts(prompts, 12)
    records = load_reward_records()[:48]
    trainer = create_rl_trainer(
        model_name="embedded",
        dataset_name=train_p,
        algorithm="ppo",
        backend="trl",
        train_custom_reward_model=True,
        reward_training_texts=[r["text"] for r in records],
        reward_functions=functions,
        reward_function_weights=weights,
        max_new_tokens=32,
        seed=0,
        output_dir=tempfile.mkdtemp(),
    )
    asked = [p for p in train_p for _ in range(POOL_SAMPLES)]
    held = [p for p in eval_p for _ in range(8)]
    pool: dict[str, Any] = {}
    for name, qs, seed in (("train", asked, 1), ("eval", held, 1234)):
        texts = trainer.generate(qs, seed=seed, desc=f"policy samples ({name})")
        pool[name] = {"prompt": qs, "text": texts, "label": trainer.label_texts(texts, qs)}
    shipped = {"prompt": [r["prompt"] for r in records], "text": [r["text"] for r in records]}
    pool["shipped"] = shipped | {"label": trainer.label_texts(shipped["text"], shipped["prompt"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pool), encoding="utf-8")
    return pool


def label_mean_start(model: Any, labels: Any, sample_ids: Any = None, pad_id: Any = None) -> bool:
    """The old start of a bias-free head: w = mean * mu / |mu|^2 (mean output = label mean)."""
    import torch

    from rlreward.training import head_start

    head = head_start._score_head(model)
    feats = head_start.pooled_features(model, list(sample_ids)[:64], pad_id)
    w = head_start.mean_direction(feats.mean(0), sum(labels) / len(labels))
    with torch.no_grad():
        head.weight.copy_(w.to(head.weight.dtype).view_as(head.weight))
    return True


def train_lora(data: dict[str, list[Any]], out: str, start: str) -> tuple[Any, float]:
    """The recipe's reward-model training (LoRA, 1 epoch, lr 5e-4, batch 8) with ``start``."""
    from datasets import Dataset

    from rlreward.graders.reward_model import RewardModelGrader
    from rlreward.training import head_start
    from rlreward.training.trainer import RewardModelTrainer

    functions, weights = recipe.concise_task()
    default = head_start.init_head
    if start == "label-mean":
        head_start.init_head = label_mean_start  # type: ignore[assignment]
    try:
        began = time.perf_counter()
        rm = RewardModelTrainer(
            base_model_name="embedded-smollm2",
            reward_functions=functions,
            composite_weights=weights,
            use_lora=True,
            seed=0,
        )
        path = rm.train_reward_model(
            Dataset.from_dict(data),
            output_dir=out,
            num_epochs=1,
            learning_rate=5e-4,
            batch_size=8,
            max_length=128,
            show_progress=False,
        )
        took = time.perf_counter() - began
    finally:
        head_start.init_head = default  # type: ignore[assignment]
    return RewardModelGrader(path), took


def probe_alone(
    data: dict[str, list[Any]], held: dict[str, list[Any]]
) -> tuple[list[float], float]:
    """The ridge probe on the frozen base, no fine-tuning: held-out scores and seconds."""
    from rlreward.embedded import resolve_model_name
    from rlreward.models.reward_model_io import encode_pairs
    from rlreward.training import head_start
    from rlreward.training.loops import load_base
    from rlreward.training.rows import split_rows

    began = time.perf_counter()
    train, _ = split_rows(data, "composite", 0.2, 0)  # the LoRA rows' own split, same seed
    model, tok = load_base(resolve_model_name("embedded-smollm2"), 0)
    pad = tok.pad_token_id
    ids = encode_pairs(tok, train["text"], train["prompt"], "chat", 128)
    w, _, _ = head_start.ridge_head(head_start.pooled_features(model, ids, pad), train["composite"])
    held_ids = encode_pairs(tok, held["text"], held["prompt"], "chat", 128)
    scores = (head_start.pooled_features(model, held_ids, pad) @ w).tolist()
    return scores, time.perf_counter() - began


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5, help="policy samples per prompt (<= 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--pool", default=None, help="cache of the policy samples (JSON)")
    ap.add_argument("--no-append", action="store_true", help="do not touch BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from rlreward.embedded import cache_dir

    pool_path = Path(args.pool) if args.pool else cache_dir() / "bench_reward_head_pool.json"
    pool = (
        json.loads(pool_path.read_text(encoding="utf-8"))
        if pool_path.is_file()
        else make_pool(pool_path)
    )
    keep = [i for i in range(len(pool["train"]["text"])) if i % POOL_SAMPLES < args.samples]
    data = {
        c: pool["shipped"][c] + [pool["train"][c][i] for i in keep]
        for c in ("text", "prompt", "label")
    }
    data["composite"] = data.pop("label")
    held = pool["eval"]
    scores, took = probe_alone(data, held)
    rows = [
        [
            "ridge probe alone (no fine-tuning)",
            f"{recipe.spearman(scores, held['label']):.3f}",
            f"{took:.0f}",
        ]
    ]
    print(rows[-1], flush=True)
    for start in ("label-mean", "ridge"):
        with tempfile.TemporaryDirectory() as tmp:
            grader, took = train_lora(data, tmp, start)
            got = grader.score_texts(held["text"], held["prompt"])
        fidelity = recipe.spearman(got, held["label"])
        rows.append([f"{start} start + LoRA (1 epoch, lr 5e-4)", f"{fidelity:.3f}", f"{took:.0f}"])
        print(rows[-1], flush=True)
    body = table(["reward model", "Spearman vs true composite, 96 held-out samples", "s"], rows)
    load = os.getloadavg()
    body += (
        f"\n\nSmolLM2-135M reward model, concise task; training data: 48 shipped texts + "
        f"{args.samples} policy samples x 36 prompts (20% of them held out as the trainer's own "
        f"split, for every row); torch threads {args.threads}; load average "
        f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} at the end."
    )
    print(body)
    if not args.no_append:
        append_section("Reward head start on SmolLM2 (scripts/bench_reward_head.py)", body)


if __name__ == "__main__":
    main()
