"""Benchmark the rule-based reward functions: texts/second, single process.

10,000 seeded synthetic responses of 5 to 120 words (plain prose with sentiment words,
numbers, lists, a few refusals, repetitive and unsafe lines), each with a prompt and a
reference. Every registered cheap function is timed on the whole set (best of
``--repeats``), then the five seed functions together as one CompositeReward (the
issue's target: > 5,000 texts/s; the original managed ~1,100 texts/s only because its
model-based sentiment and safety failed offline). The semantic functions run on
``--semantic-texts`` texts and are reported separately.

    python scripts/bench_reward_functions.py
    python scripts/bench_reward_functions.py --texts 2000 --repeats 1 --no-append
    python scripts/bench_reward_functions.py --profile   # cProfile of the seed composite
"""

from __future__ import annotations

import argparse
import os
import random
import time

from _bench import append_section, machine, table

from rlreward import CompositeReward
from rlreward.rewards import RewardRegistry

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SEED_FIVE = ["length", "sentiment", "safety", "coherence", "helpfulness"]
SEED_WEIGHTS = [0.15, 0.15, 0.35, 0.2, 0.15]
BASELINE_TEXTS_PER_S = 1_100  # the original's composite, with sentiment/safety failing offline
TARGET_TEXTS_PER_S = 5_000
SEMANTIC = ("semantic_relevance", "semantic_similarity")

_SUBJECTS = ["The recipe", "This approach", "Your code", "The river", "Our team",
             "The report", "The model", "This method", "The garden", "The engine",
             "The answer", "The city"]  # fmt: skip
_VERBS = ["uses", "needs", "improves", "explains", "reduces", "covers", "describes", "supports",
          "includes", "changes", "requires", "avoids"]  # fmt: skip
_OBJECTS = ["the main steps", "three simple rules", "a small amount of salt",
            "the error rate", "every edge case", "the water level", "the final result",
            "two extra checks", "the morning traffic", "a clear summary", "the loop overhead",
            "the old design"]  # fmt: skip
_TAILS = ["in about 10 minutes", "for most users", "without extra cost", "when it rains",
          "as shown above", "by 25 percent", "in Paris", "on Python 3.11", "after the update",
          "with great care", "because it is simpler", "so the results stay stable"]  # fmt: skip
_SENTIMENT = ["This is wonderful.", "I love how clear it is.", "Sadly, the result was awful.",
              "It is not bad at all.", "Honestly, this is terrible and confusing.",
              "The team was very happy with it!", "That was a disappointing outcome."]  # fmt: skip
_SPECIAL = [
    "I'm sorry, but I can't help with that request.",
    "As an AI language model, I cannot browse the internet.",
    "You are such an idiot, nobody likes you.",
    "I will hurt you if you come back.",
    "Here is how to hack into someone's email account.",
]
_PROMPTS = ["How do I bake bread at home?", "Why is my Python loop slow?",
            "What is the capital of France?", "How can I reduce the error rate?",
            "Summarise the report in two sentences.", "Explain how rivers flood."]  # fmt: skip


def make_texts(n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """(texts, prompts, references): ``n`` seeded synthetic responses of 5..120 words."""
    rng = random.Random(seed)
    texts, prompts, refs = [], [], []
    for _ in range(n):
        target = rng.randint(5, 120)
        parts: list[str] = []
        words = 0
        kind = rng.random()
        if kind < 0.05:
            parts.append(rng.choice(_SPECIAL))
        elif kind < 0.10:
            parts.append(" ".join([rng.choice(_OBJECTS)] * 12))  # degenerate repetition
        while words < target:
            r = rng.random()
            if r < 0.15:
                s = rng.choice(_SENTIMENT)
            elif r < 0.25:
                s = "\n".join(f"{i}. {rng.choice(_VERBS).capitalize()} {rng.choice(_OBJECTS)}."
                              for i in range(1, 4))  # fmt: skip
            else:
                s = (f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
                     f"{rng.choice(_TAILS)}.")  # fmt: skip
            parts.append(s)
            words += len(s.split())
        text = " ".join(" ".join(parts).split(" ")[:target]).rstrip(".,") + "."
        texts.append(text)
        prompts.append(rng.choice(_PROMPTS))
        refs.append(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}.")
    return texts, prompts, refs


def best_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_rules(registry, composite, texts, prompts, refs, args) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Rows for every cheap function and the seed composite."""
    rows = []
    for name in registry.list_reward_functions():
        if name in SEMANTIC:
            continue
        fn = registry.get_reward_function(name)
        kw = {}
        if fn.needs_prompt or fn.uses_prompt:
            kw["prompts"] = prompts
        if fn.needs_reference:
            kw["references"] = refs
        fn(texts[:50], **{k: v[:50] for k, v in kw.items()})
        secs = best_time(lambda fn=fn, kw=kw: fn(texts, **kw), args.repeats)
        note = "with prompts" if "prompts" in kw else ("vs reference" if "references" in kw else "")
        rows.append([name, f"{len(texts) / secs:,.0f}", note])
    rate = len(texts) / best_time(lambda: composite(texts, prompts=prompts), args.repeats)
    verdict = "met" if rate > TARGET_TEXTS_PER_S else "NOT met"
    rows.append(
        [
            "**composite: " + " + ".join(SEED_FIVE) + "**",
            f"**{rate:,.0f}**",
            f"target > {TARGET_TEXTS_PER_S:,}: {verdict}; {rate / BASELINE_TEXTS_PER_S:.1f}x the "
            f"original's ~{BASELINE_TEXTS_PER_S:,} (which scored sentiment/safety as a constant "
            "0.5 offline)",
        ]
    )
    return rows


def bench_semantic(registry, texts, prompts, refs, args) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Rows for the MiniLM functions on the first ``--semantic-texts`` texts."""
    m = min(args.semantic_texts, len(texts))
    if not m:
        return []
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    threads = torch.get_num_threads()
    rows = []
    for name in SEMANTIC:
        fn = registry.get_reward_function(name)
        kw = {"prompts": prompts[:m]} if fn.needs_prompt else {"references": refs[:m]}
        t0 = time.perf_counter()
        fn(texts[:8], **{k: v[:8] for k, v in kw.items()})  # loads MiniLM once
        load_s = time.perf_counter() - t0
        secs = best_time(lambda fn=fn, kw=kw: fn(texts[:m], **kw), max(1, args.repeats - 1))
        note = f"{m} texts, MiniLM on CPU, {threads} torch threads; first call {load_s:.1f} s"
        rows.append([name, f"{m / secs:,.0f}", note])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--texts", type=int, default=10_000)
    ap.add_argument("--semantic-texts", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch default)"
    )
    ap.add_argument("--only-semantic", action="store_true", help="skip the rule functions")
    ap.add_argument("--profile", action="store_true", help="cProfile the seed composite and exit")
    ap.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = ap.parse_args()

    texts, prompts, refs = make_texts(args.texts, args.seed)
    n_words = sum(len(t.split()) for t in texts) / len(texts)
    registry = RewardRegistry(shared=False)
    composite = CompositeReward(SEED_FIVE, SEED_WEIGHTS, registry=registry)
    composite(texts[:50], prompts=prompts[:50])  # warm-up: imports, lexicon, regexes

    if args.profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            composite(texts, prompts=prompts)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return

    load_before = os.getloadavg()[0]
    rows = (
        [] if args.only_semantic else bench_rules(registry, composite, texts, prompts, refs, args)
    )
    sem_rows = bench_semantic(registry, texts, prompts, refs, args)

    load_after = os.getloadavg()[0]
    body = table(["reward function", "texts/s", "notes"], rows) if rows else ""
    if sem_rows:
        body += "\n\nSemantic functions (embedding model, reported separately):\n\n"
        body += table(["reward function", "texts/s", "notes"], sem_rows)
    body += (
        f"\n\n{len(texts):,} texts of 5-120 words (mean {n_words:.0f}), seed {args.seed}, best of "
        f"{args.repeats}, one process. 1-minute load average {load_before:.2f} before, "
        f"{load_after:.2f} after (2 cores shared with other work)."
    )
    print(machine())
    print(body)
    if not args.no_append:
        append_section("Rule-based reward functions (scripts/bench_reward_functions.py)", body)


if __name__ == "__main__":
    main()
