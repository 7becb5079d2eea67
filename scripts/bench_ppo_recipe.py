"""Time the main job, ``python recipes/ppo_unsloth.py``, and report what it achieved.

Runs the recipe as a subprocess (its default: the embedded, offline CPU run unless
flags are passed after ``--``), then reads its metrics.json: wall time against the
issue's 10-minute budget, the reward model's held-out Spearman, PPO mean reward over
the first and last quarter of steps, and the true rule-based composite on the fixed
held-out prompts before and after PPO. Appends a section to BENCHMARKS.md.

    python scripts/bench_ppo_recipe.py                   # the full default run
    python scripts/bench_ppo_recipe.py --no-append -- --quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import append_section, machine, table

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 600.0  # the issue: "finishes on this 2-core CPU machine in under 10 minutes"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--no-append", action="store_true", help="print only; do not touch BENCHMARKS.md"
    )
    p.add_argument("--output-dir", default=None, help="default: the recipe's (outputs/ppo_unsloth)")
    p.add_argument("recipe_args", nargs="*", help="arguments for the recipe (after --)")
    args = p.parse_args()

    out = ROOT / (args.output_dir or "outputs/ppo_unsloth")
    extra = ["--output-dir", str(out)] if args.output_dir else []
    cmd = [sys.executable, "recipes/ppo_unsloth.py", *extra, *args.recipe_args]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime  # load-independent: what the run itself consumed
    load_after = os.getloadavg()[0]
    m = json.loads((out / "metrics.json").read_text())
    rm, ppo, fixed = m["reward_model"], m["ppo"], m["fixed_prompts"]
    t = m["timings_s"]
    before, after = fixed["before"], fixed["after"]
    rows = [
        [
            "wall time (whole recipe)",
            f"{wall:.0f} s",
            f"< {BUDGET_S:.0f} s",
            "yes" if wall < BUDGET_S else "no",
        ],
        ["CPU time of the run (user + sys)", f"{cpu:.0f} s ({cpu / wall:.2f} cores busy)", "", ""],
        ["  reward-model training", f"{t.get('reward_model_s', 0):.0f} s", "", ""],
        ["  policy build + warm-up", f"{t.get('policy_s', 0):.0f} s", "", ""],
        [
            "  PPO",
            f"{t.get('rl_s', 0):.0f} s ({ppo['steps']} steps, "
            f"{t.get('rl_s', 0) / max(1, ppo['steps']):.1f} s/step)",
            "",
            "",
        ],
        [
            "reward model held-out Spearman",
            f"{rm['heldout_spearman']:.3f} (n={rm['heldout_n']})",
            ">= 0.9",
            "yes" if (rm["heldout_spearman"] or 0) >= 0.9 else "no",
        ],
        [
            "PPO mean reward, first -> last quarter",
            f"{ppo['first_quarter_mean']:.4f} -> {ppo['last_quarter_mean']:.4f}",
            "rises",
            "yes" if m["success"]["ppo_reward_rose"] else "no",
        ],
        [
            f"true composite, {fixed['n_prompts']} held-out prompts x {fixed['n_samples']}",
            f"{before['true_composite_mean']:.4f} -> {after['true_composite_mean']:.4f} "
            f"(se {before['true_composite_se']:.4f} / {after['true_composite_se']:.4f})",
            "rises",
            "yes" if m["success"]["true_composite_rose"] else "no",
        ],
        [
            "reward model on the same prompts",
            f"{before['reward_model_mean']:.4f} -> {after['reward_model_mean']:.4f}",
            "",
            "",
        ],
    ]
    body = table(["measure", "value", "target", "met"], rows)
    body += (
        f"\n\nRuns `{' '.join(['python', *cmd[1:]]).replace(str(ROOT) + '/', '')}`. "
        f"Backend: {m['backend']}; policy: {m['policy']}. Load average "
        f"{load_before:.2f} before, {load_after:.2f} after (other work shares the 2 cores). "
        "Baseline, the issue's feasibility run: whole chain about 4 minutes, PPO ~2.5 s/step, "
        "reward 0.75 -> 0.9 in 32 steps."
    )
    print(f"machine: {machine()}")
    print(body)
    if not args.no_append:
        shown = " ".join(
            [
                "python scripts/bench_ppo_recipe.py",
                *(["--", *args.recipe_args] if args.recipe_args else []),
            ]
        )
        append_section(
            "PPO recipe: reward model then PPO (scripts/bench_ppo_recipe.py)", body, shown
        )


if __name__ == "__main__":
    main()
