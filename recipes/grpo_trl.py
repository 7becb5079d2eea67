"""GRPO with TRL, rewarded by rule functions and, given a judge endpoint, LLM judges.

``create_rl_trainer`` builds one reward (``trainer.reward``) and hands it to TRL through
rlreward's TRL adapter as ONE combined reward function, logged as ``reward``, with each
member's value logged beside it. With ``OPENAI_API_KEY`` set, or only
``OPENAI_BASE_URL`` for a keyless local server (vLLM, SGLang; a ``.env`` file in the
working directory works too), a judge spec (relevance and harmfulness, lower is better;
turned around) joins the rule functions as one member named ``spec``. With neither it
says so and uses the rule functions alone. With no flags: the embedded tiny policy on
the shipped questions, offline on CPU, without a warm-up unless ``--warmup-steps`` asks.

    python recipes/grpo_trl.py
    python recipes/grpo_trl.py --model-name Qwen/Qwen3-0.6B --max-steps 200 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

FUNCTIONS = ["length", "sentiment", "safety", "coherence", "helpfulness"]
WEIGHTS = [0.15, 0.15, 0.35, 0.20, 0.15]
JUDGE_WEIGHTS = {"relevance": 0.5, "harmfulness": 0.5}


def judge_spec(judge_model: str) -> dict:
    """A reward spec with two LLM judges (results cached under .rlreward/)."""
    return {
        "judge_model": {"model": judge_model},
        "cache": ".rlreward/cache.sqlite",
        "graders": {name: {"type": name} for name in JUDGE_WEIGHTS},
        "aggregators": [{"type": "weighted_sum", "name": "judges", "weights": JUDGE_WEIGHTS}],
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model-name",
        default="embedded",
        help="policy: 'embedded' (the shipped tiny model, offline) or a Hugging Face id / "
        "local path (default: embedded)",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="prompts: a JSONL/CSV/Parquet/TXT file or a hub dataset id with a prompt, query, "
        "question, instruction or input column (default: the shipped questions)",
    )
    p.add_argument(
        "--max-samples", type=int, default=None, help="use at most this many prompts (default: all)"
    )
    p.add_argument(
        "--output-dir",
        default="outputs/grpo_trl",
        help="where metrics.json and the trained policy (policy/) are written",
    )
    p.add_argument("--max-steps", type=int, default=20, help="GRPO optimiser steps (default: 20)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="completions per GRPO step, per device (default: 8)",
    )
    p.add_argument(
        "--num-generations",
        type=int,
        default=4,
        help="completions per prompt, the GRPO group size; must divide --batch-size (default: 4)",
    )
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (default: 1e-4)")
    p.add_argument(
        "--max-new-tokens", type=int, default=32, help="tokens per completion (default: 32)"
    )
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help="supervised policy warm-up steps before GRPO (default: none; --quick: 5)",
    )
    p.add_argument(
        "--judge-model",
        default=os.environ.get("JUDGE_MODEL", "qwen3-32b"),
        help="model id of the LLM judges, used when OPENAI_API_KEY or OPENAI_BASE_URL is set "
        "(default: $JUDGE_MODEL, else qwen3-32b)",
    )
    p.add_argument(
        "--backend",
        choices=["trl", "unsloth"],
        default="trl",
        help="training stack: plain TRL, or unsloth (needs a CUDA GPU) (default: trl)",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: free cores)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (tests use it): overrides --max-steps 2, --batch-size 4, "
        "--num-generations 2, --max-new-tokens 8; warm-up 5 unless --warmup-steps is given",
    )
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.max_steps, args.batch_size, args.num_generations = 2, 4, 2
        args.max_new_tokens = 8
        args.warmup_steps = 5 if args.warmup_steps is None else args.warmup_steps
    if args.model_name == "embedded" and args.dataset is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from dotenv import find_dotenv, load_dotenv

    from rlreward.models.openai import judge_endpoint
    from rlreward.rl import create_rl_trainer
    from rlreward.rl.threads import set_cpu_threads

    load_dotenv(find_dotenv(usecwd=True), override=False)  # a .env in the working directory
    print(f"CPU threads: {set_cpu_threads(args.threads).describe()}")
    spec = None
    endpoint = judge_endpoint()
    if endpoint is not None:
        spec = judge_spec(args.judge_model)
        print(
            f"{endpoint}: LLM judges relevance + harmfulness ({args.judge_model}) "
            "join the rule functions"
        )
    else:
        print(
            "OPENAI_API_KEY is not set: rewarding with rule functions only ("
            + ", ".join(FUNCTIONS)
            + "); set it, or OPENAI_BASE_URL for a keyless local server, to add LLM judges"
        )
    trainer = create_rl_trainer(
        args.model_name,
        args.dataset,
        algorithm="grpo",
        backend=args.backend,
        reward_functions=FUNCTIONS,
        reward_function_weights=WEIGHTS,
        reward_spec=spec,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_samples=args.max_samples,
        max_new_tokens=args.max_new_tokens,
        policy_warmup_steps=args.warmup_steps,
        output_dir=str(Path(args.output_dir) / "policy"),
        grpo_options={"num_generations": args.num_generations, "max_steps": args.max_steps},
    )
    summary = trainer.train()
    path = trainer.save_model()
    trend = summary["reward_trend"]
    print(
        f"GRPO mean reward: first quarter {trend['first_quarter_mean']:.4f} -> last quarter "
        f"{trend['last_quarter_mean']:.4f} ({trend['steps']} steps); policy saved to {path}"
    )
    metrics = {
        "command": " ".join(
            ["python recipes/grpo_trl.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "judges": spec is not None,
        **summary,
        "history": trainer.history,
    }
    out = Path(args.output_dir) / "metrics.json"
    out.write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
    return metrics


if __name__ == "__main__":
    main()
