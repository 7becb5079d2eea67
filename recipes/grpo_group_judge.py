"""GRPO with a group judge: a listwise LLM judge compares each prompt's completions, plus rules.

The judge sees all ``--num-generations`` completions of a prompt in one call (the prompt
sent once) and scores each against the others; with ``--debias`` (the default) it is
asked once per rotation of the order, so position bias cancels. Rule functions add an
absolute part. One reward, a weighted sum, through rlreward's TRL adapter; each process's
batch must hold whole groups (``--batch-size`` a multiple of ``--num-generations``;
checked). Group-relative scores do not compare across prompts: see docs/group-judges.md.

The judge is any OpenAI-protocol endpoint: ``OPENAI_BASE_URL`` alone for a keyless local
server (vLLM, SGLang), or ``OPENAI_API_KEY`` (a ``.env`` file in the working directory
works too). The policy is the embedded tiny model, offline on CPU, unless
``--model-name`` says otherwise.

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 python recipes/grpo_group_judge.py \\
        --judge-model qwen3-32b
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

FUNCTIONS = ["length", "coherence"]
FUNCTION_WEIGHTS = [0.2, 0.2]
JUDGE_WEIGHT = 0.6
CRITERIA = "helpful, correct and clearly written answers to the prompt"


def group_judge_spec(judge_model: str, group_size: int, debias: bool) -> dict:
    """A reward spec with one listwise group judge (calls cached under .rlreward/)."""
    judge = {"type": "listwise_judge", "group_size": group_size, "debias": debias}
    return {
        "judge_model": {"model": judge_model},
        "cache": ".rlreward/cache.sqlite",
        "graders": {"listwise": {**judge, "criteria": CRITERIA}},
        "aggregators": [
            {"type": "weighted_sum", "name": "judge", "weights": {"listwise": JUDGE_WEIGHT}}
        ],
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
        "--dataset", default=None, help="prompts (default: the shipped questions); see grpo_trl.py"
    )
    p.add_argument("--output-dir", default="outputs/grpo_group_judge", help="metrics.json etc.")
    p.add_argument("--max-steps", type=int, default=20, help="GRPO optimiser steps (default: 20)")
    p.add_argument(
        "--batch-size", type=int, default=8, help="completions per step, per device (default: 8)"
    )
    p.add_argument(
        "--num-generations",
        type=int,
        default=4,
        help="completions per prompt: the GRPO group and the judge's group_size (default: 4)",
    )
    p.add_argument(
        "--no-debias",
        dest="debias",
        action="store_false",
        help="one judge call per group instead of one per rotation (position bias stays)",
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=32, help="tokens per completion (default: 32)"
    )
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (default: 1e-4)")
    p.add_argument(
        "--judge-model",
        default=os.environ.get("JUDGE_MODEL", "qwen3-32b"),
        help="the judge's model id (default: $JUDGE_MODEL, else qwen3-32b)",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: free cores)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (tests use it): --max-steps 2, --batch-size 4, --num-generations 2, "
        "--max-new-tokens 8, a 5-step policy warm-up",
    )
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    warmup = None
    if args.quick:
        args.max_steps, args.batch_size, args.num_generations = 2, 4, 2
        args.max_new_tokens, warmup = 8, 5
    if args.model_name == "embedded" and args.dataset is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from dotenv import find_dotenv, load_dotenv

    from rlreward.models.openai import judge_endpoint
    from rlreward.rl import create_rl_trainer
    from rlreward.rl.threads import set_cpu_threads

    load_dotenv(find_dotenv(usecwd=True), override=False)  # a .env in the working directory
    endpoint = judge_endpoint()
    if endpoint is None:
        raise SystemExit(
            "grpo_group_judge: the group judge needs an OpenAI-protocol endpoint: set "
            "OPENAI_BASE_URL (a keyless local server such as vLLM) or OPENAI_API_KEY; for rule "
            "functions alone use recipes/grpo_trl.py"
        )
    print(f"CPU threads: {set_cpu_threads(args.threads)} (cores other processes leave free)")
    calls = args.num_generations if args.debias else 1
    print(
        f"{endpoint}: listwise judge ({args.judge_model}) over groups of {args.num_generations}, "
        f"{calls} call(s) per group, plus rule functions {', '.join(FUNCTIONS)}"
    )
    trainer = create_rl_trainer(
        args.model_name,
        args.dataset,
        algorithm="grpo",
        reward_functions=FUNCTIONS,
        reward_function_weights=FUNCTION_WEIGHTS,
        reward_spec=group_judge_spec(args.judge_model, args.num_generations, args.debias),
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_new_tokens=args.max_new_tokens,
        policy_warmup_steps=warmup,
        output_dir=str(Path(args.output_dir) / "policy"),
        grpo_options={"num_generations": args.num_generations, "max_steps": args.max_steps},
    )
    summary = trainer.train()
    trend = summary["reward_trend"]
    last = trainer.history[-1] if trainer.history else {}
    print(
        f"GRPO mean reward: first quarter {trend['first_quarter_mean']:.4f} -> last quarter "
        f"{trend['last_quarter_mean']:.4f} ({trend['steps']} steps); listwise judge error "
        f"rate in the last step: {last.get('rlreward/listwise/error_rate', float('nan')):.2f}"
    )
    metrics = {
        "command": " ".join(
            ["python recipes/grpo_group_judge.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        **summary,
        "history": trainer.history,
    }
    out = Path(args.output_dir) / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
    return metrics


if __name__ == "__main__":
    main()
