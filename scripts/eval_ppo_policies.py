"""Re-evaluate the main job's trained policies with many samples per held-out prompt.

A run of ``recipes/ppo_unsloth.py`` checks itself on 12 held-out prompts x 32 samples;
when runs are compared (tuning), one check's noise can decide. This answers the same
held-out prompts ``--samples`` times each (default 64: 768 answers) with the base policy
and with each run's ``policy/``, scores them with the true composite of the run's task
and with relevance to the question, and prints the rise over the base policy in standard
errors. Appends the table to BENCHMARKS.md unless ``--no-append``.

    python scripts/eval_ppo_policies.py outputs/ppo_unsloth [RUN_DIR ...] --samples 64
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "recipes"))

from _bench import append_section, table


def _answers(model: Any, tokenizer: Any, asked: list[str], tokens: int, seed: int) -> list[str]:
    from rlreward.rl.policy import generate_responses

    return generate_responses(
        model, tokenizer, asked, max_new_tokens=tokens, max_prompt_length=1 << 20, seed=seed
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories of recipes/ppo_unsloth.py")
    p.add_argument("--samples", type=int, default=64, help="answers per held-out prompt")
    p.add_argument("--seed", type=int, default=99, help="sampling seed (the same for every policy)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--no-append", action="store_true", help="print only")
    args = p.parse_args()

    import ppo_unsloth as recipe
    import torch
    from transformers import AutoModelForCausalLM

    from rlreward.rl import create_rl_trainer
    from rlreward.rl.policy import load_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    metrics = {run: json.loads((Path(run) / "metrics.json").read_text()) for run in args.runs}
    first = next(iter(metrics.values()))
    task = first["task"]["name"]
    held = first["fixed_prompts"]["prompts"]
    for run, m in metrics.items():
        if m["task"]["name"] != task or m["fixed_prompts"]["prompts"] != held:
            sys.exit(f"{run}: another task or other held-out prompts than {args.runs[0]}")
    tokens = int(first["ppo"].get("max_new_tokens", 32))
    functions, weights, gates = recipe.task(task)
    # the true composite of the task (no model is loaded: labels only)
    labeller = create_rl_trainer(
        model_name="embedded",
        dataset_name=held,
        algorithm="ppo",
        backend="trl",
        train_custom_reward_model=True,
        reward_training_texts=["a placeholder text"] * 10,
        reward_functions=functions,
        reward_function_weights=weights,
        reward_function_gates=gates,
        show_progress=False,
    )
    asked = [q for q in held for _ in range(args.samples)]
    base = load_policy("embedded")
    rows, found = [], {}
    for name in ["base policy", *args.runs]:
        model = (
            base.model
            if name == "base policy"
            else AutoModelForCausalLM.from_pretrained(str(Path(name) / "policy"))
        )
        answers = _answers(model, base.tokenizer, asked, tokens, args.seed)
        true = labeller.label_texts(answers, asked)
        relevance = recipe.on_topic(answers, asked)
        found[name] = recipe.mean_se(true), recipe.mean_se(relevance)
        words = sum(len(a.split()) for a in answers) / len(answers)
        (tm, tse), (rm, rse) = found[name]
        (bm, bse), (brm, _) = found["base policy"]
        rise = (tm - bm) / math.hypot(tse, bse) if name != "base policy" else 0.0
        setting = "" if name == "base policy" else metrics[name]["command"]
        change = f" ({rm - brm:+.3f})" if name != "base policy" else ""
        rows.append(
            [
                name,
                setting,
                f"{tm:.3f} +/- {tse:.3f}",
                f"{rise:+.1f} SE" if name != "base policy" else "",
                f"{rm:.3f} +/- {rse:.3f}{change}",
                f"{words:.1f}",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    body = (
        f"Task `{task}`; {len(held)} held-out prompts x {args.samples} samples "
        f"(n={len(asked)}, seed {args.seed}), the same answers' prompts for every policy.\n\n"
        + table(["policy", "run's command", "true composite", "rise", "relevance", "words"], rows)
    )
    print(body)
    if not args.no_append:
        append_section(
            f"The main job's policies re-evaluated, {args.samples} samples per prompt", body
        )


if __name__ == "__main__":
    main()
