"""Time the main job, ``python recipes/ppo_unsloth.py``, and report what it achieved.

Runs the recipe as a subprocess (its default: the embedded SmolLM2, offline CPU run unless
flags are passed after ``--``), then reads its metrics.json: wall time against the
issue's 10-minute budget, the reward model's fidelity on held-out policy samples, the
true composite on the held-out prompts before and after PPO (in standard errors), the
fluency check and the PPO KL. Appends a section to BENCHMARKS.md with the load average.
``--from-run DIR --wall S --cpu S --load A B`` reports a run already made (its
metrics.json, and the wall/CPU time and load averages measured around it, e.g. by
``/usr/bin/time -v`` and ``uptime``) instead of starting one.

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
    p.add_argument("--from-run", default=None, help="report this finished run's directory")
    p.add_argument("--wall", type=float, default=None, help="with --from-run: wall seconds")
    p.add_argument("--cpu", type=float, default=None, help="with --from-run: CPU seconds")
    p.add_argument(
        "--load", type=float, nargs=2, default=None, help="with --from-run: load before, after"
    )
    p.add_argument("--note", default="", help="a sentence appended to the section")
    args = p.parse_args()
    if args.from_run:
        m = json.loads((Path(args.from_run) / "metrics.json").read_text())
        cmd = [sys.executable, *m["command"].split()[1:]]
        body = report(m, args.wall, args.cpu, *args.load, cmd) + (
            f" {args.note}" if args.note else ""
        )
        print(body)
        if not args.no_append:
            append_section(
                title(m),
                body,
                f"{m['command']} (timed with /usr/bin/time -v)",
            )
        return

    out = ROOT / (args.output_dir or "outputs/ppo_unsloth")
    extra = ["--output-dir", str(out)] if args.output_dir else []
    cmd = [sys.executable, "recipes/ppo_unsloth.py", *extra, *args.recipe_args]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime  # load-independent: what the run itself consumed
    peak_gb = usage.ru_maxrss / 1e6  # kB on Linux: the largest child, i.e. the recipe
    load_after = os.getloadavg()[0]
    m = json.loads((out / "metrics.json").read_text())
    body = report(m, wall, cpu, load_before, load_after, cmd, peak_gb)
    print(f"machine: {machine()}")
    print(body)
    if not args.no_append:
        shown = " ".join(
            [
                "python scripts/bench_ppo_recipe.py",
                *(["--", *args.recipe_args] if args.recipe_args else []),
            ]
        )
        append_section(title(m), body, shown)


def report(
    m: dict,
    wall: float,
    cpu: float | None,
    load_before: float,
    load_after: float,
    cmd: list[str],
    peak_gb: float | None = None,
) -> str:
    rm, ppo, fixed, ok = m["reward_model"], m["ppo"], m["fixed_prompts"], m["success"]
    t = m["timings_s"]
    b, a = fixed["before"], fixed["after"]
    yes = lambda c: "yes" if c else "no"  # noqa: E731
    gated = bool(m["task"].get("gates"))
    trained = "PPO's reward (the model under the gate)" if gated else "the reward model"
    rows = [
        [
            "wall time (whole recipe)",
            f"{wall:.0f} s",
            f"<= {BUDGET_S:.0f} s",
            yes(wall <= BUDGET_S),
        ],
        [
            "CPU time of the run (user + sys)",
            f"{cpu:.0f} s ({cpu / wall:.2f} cores busy)" if cpu is not None else "not measured",
            "",
            "",
        ],
        ["torch threads", str(m.get("threads")), "", ""],
        ["peak memory (max RSS)", f"{peak_gb:.2f} GB" if peak_gb else "not measured", "", ""],
        [
            "  reward model (policy samples + training)",
            f"{t.get('reward_model_s', 0):.0f} s",
            "",
            "",
        ],
        [
            "  PPO",
            f"{t.get('rl_s', 0):.0f} s ({ppo['steps']} steps of {ppo.get('batch_size', '?')}, "
            f"{t.get('rl_s', 0) / max(1, ppo['steps']):.1f} s/step; lr {ppo.get('lr')}, "
            f"KL coef {ppo.get('kl_coef')})",
            "",
            "",
        ],
        [
            f"RM on its own split (n={rm['own_split_n']})",
            f"Spearman {rm['own_split_spearman']:.3f}",
            "",
            "",
        ],
        [
            f"{trained} vs true composite, held-out policy samples (n="
            f"{rm['heldout_policy_samples_n']}): before PPO / on the trained policy",
            f"Spearman {rm['heldout_policy_samples_spearman']:.3f} / "
            f"{rm['after_ppo_heldout_spearman']:.3f}",
            ">= 0.7 after",
            yes(ok["rm_fidelity_after_ppo_ok"]),
        ],
    ]
    if rm.get("model_alone_vs_ungated_before") is not None:
        rows.append(
            [
                "the reward model alone vs the ungated composite it learned: before / after",
                f"Spearman {rm['model_alone_vs_ungated_before']:.3f} / "
                f"{rm['model_alone_vs_ungated_after']:.3f}",
                "",
                "",
            ]
        )
    rows += [
        [
            f"true composite, {b['n']} held-out samples",
            f"{b['true_composite_mean']:.3f} +/- {b['true_composite_se']:.3f} -> "
            f"{a['true_composite_mean']:.3f} +/- {a['true_composite_se']:.3f} "
            f"({ok['rise_in_se']:+.1f} SE)",
            ">= +3 SE",
            yes(ok["true_composite_rose_3se"]),
        ],
        ["words per answer", f"{b['mean_words']:.1f} -> {a['mean_words']:.1f}", "", ""],
        [
            "fluency: frozen base NLL (nats/token)",
            f"{b['base_nll_mean']:.3f} -> {a['base_nll_mean']:.3f}; KL at end {ppo['kl_last']:.3f}",
            "stays language",
            "",
        ],
    ]
    if "relevance_mean" in b:  # runs before the on-topic check lack it
        rows.append(
            [
                "on topic: relevance to the question (MiniLM cosine)",
                f"{b['relevance_mean']:.3f} +/- {b['relevance_se']:.3f} -> "
                f"{a['relevance_mean']:.3f} +/- {a['relevance_se']:.3f}",
                "within 1 SE or above",
                yes(ok.get("relevance_within_1se")),
            ]
        )
    if b.get("specificity_mean") is not None:
        rows.append(
            [
                "on topic, independent: base-model NLL after other questions minus own",
                f"{b['specificity_mean']:.3f} +/- {b['specificity_se']:.3f} -> "
                f"{a['specificity_mean']:.3f} +/- {a['specificity_se']:.3f} nats/token",
                "not down by > 1 SE",
                yes(a["specificity_mean"] >= b["specificity_mean"] - b["specificity_se"]),
            ]
        )
    mon = m.get("monitor")
    if mon:
        alerts = mon.get("alerts") or []
        verdict = (
            "; ".join(f"**{x['detector']} on {x['signal']} at step {x['step']}**" for x in alerts)
            or "no alert"
        )
        rows.append(
            [
                f"reward-hacking monitor ({mon.get('checks')} checks, "
                f"{mon.get('rows_scored')} rows)",
                verdict,
                "",
                "",
            ]
        )
    text = table(["measure", "value", "target", "met"], rows)
    for x in (mon or {}).get("alerts") or []:
        text += f"\n\nAlert: {x['detector']} on {x['signal']} at step {x['step']}: {x['evidence']}"
    return text + (
        f"\n\nRuns `{' '.join(['python', *cmd[1:]]).replace(str(ROOT) + '/', '')}`. "
        f"Backend: {m['backend']}; policy: {m['policy']}; reward model base "
        f"{rm['base']} (LoRA {rm['lora']}); task {m['task']['name']}. Load average "
        f"{load_before:.2f} before, {load_after:.2f} after."
    )


def title(m: dict) -> str:
    return f"The main job on SmolLM2, --task {m['task']['name']} (scripts/bench_ppo_recipe.py)"


if __name__ == "__main__":
    main()
