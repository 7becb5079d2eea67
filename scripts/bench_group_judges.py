"""Benchmark group judges against per-row judging: calls, tokens, time and ranking quality.

Per group of 8 rollouts of one prompt, on the local OpenAI-compatible judge server
(tests/openai_server.RankingJudge in a separate process, fixed latency): the judge knows
each response's true quality ``q`` and has a KNOWN position bias ``b`` (listwise: +b to
whatever sits in position 1; pairwise: position 1 wins unless it is worse by more than
b). For each setting: judge calls, prompt / completion tokens and wall time per group, and
how well the scores recover the true ranking (Spearman rho, mean over groups; top-1: the
best response scored highest, ties counted as misses).

Tokens are the server's ``usage`` as it sent it back, summed by the server; this server
computes usage as ceil(characters / 4) of the request's messages and of the reply: an
ESTIMATE (no tokenizer), the same rule for every setting, so ratios hold.

python scripts/bench_group_judges.py                  # 32 groups of 8, b = 0.2
python scripts/bench_group_judges.py --groups 8 --no-append
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench import append_section, table  # noqa: E402

from rlreward import GraderScore, GradingRunner, OpenAIChatModel, RelevanceGrader  # noqa: E402
from rlreward.graders.group_judges import ListwiseJudgeGrader, PairwiseJudgeGrader  # noqa: E402
from tests.openai_server import RankingJudge, ServerProcess  # noqa: E402

TEXT = (
    "the value of each term follows from the previous step so we add the two parts and "
    "check the result against the constraint before we simplify the expression again"
)
WORDS = TEXT.split(" ")


def text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def make_groups(n_groups: int, size: int, seed: int) -> tuple[list[dict[str, Any]], list[float]]:
    """Rows (one prompt per group, ``size`` responses each) and each row's true quality."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    qualities: list[float] = []
    for g in range(n_groups):
        query = f"Problem {g}: " + text(rng, 120)  # about 700 characters, as a GRPO prompt
        qs = rng.sample([round(0.05 + 0.7 * k / 63, 4) for k in range(64)], size)
        for q in qs:
            rows.append({"query": query, "response": text(rng, 140) + f" q={q}"})
            qualities.append(q)
    return rows, qualities


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[float]:
        order = sorted(range(len(x)), key=lambda i: x[i])
        out = [0.0] * len(x)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else 0.0


def settings(model: OpenAIChatModel, size: int) -> list[tuple[str, Any]]:
    lw, pw = ListwiseJudgeGrader, PairwiseJudgeGrader
    return [
        ("per-row (relevance, 1..5)", RelevanceGrader(model)),
        ("listwise, debias off", lw(model, group_size=size, debias=False)),
        ("listwise, reversed (2 orders)", lw(model, group_size=size, orders="reversed")),
        ("listwise, rotations (debias)", lw(model, group_size=size)),
        ("pairwise all, debias off", pw(model, group_size=size, debias=False)),
        ("pairwise all, debias", pw(model, group_size=size)),
        (
            "pairwise circular, debias off",
            pw(model, group_size=size, pairs="circular", debias=False),
        ),
        ("pairwise circular, debias", pw(model, group_size=size, pairs="circular")),
    ]


async def measure(server: ServerProcess, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows, qualities = make_groups(args.groups, args.size, args.seed)
    model = OpenAIChatModel("judge", base_url=server.url, api_key="sk-bench", max_connections=256)
    warm = GradingRunner({"g": RelevanceGrader(model)}, show_progress=False)
    await warm.arun(rows[: args.concurrency])  # connections and the json_schema probe
    out = []
    for label, grader in settings(model, args.size):
        runner = GradingRunner({"g": grader}, max_concurrency=args.concurrency, show_progress=False)
        server.configure(reset_counts=True)
        start = time.perf_counter()
        results = await runner.arun(rows)
        wall = time.perf_counter() - start
        stats = server.stats()
        col = results["g"]
        failed = sum(not isinstance(r, GraderScore) for r in col)
        rhos, top1 = [], 0
        for g in range(args.groups):
            span = range(g * args.size, (g + 1) * args.size)
            got = [col[i].score if isinstance(col[i], GraderScore) else float("nan") for i in span]
            true = [qualities[i] for i in span]
            rhos.append(spearman(got, true))
            best = max(got)
            top1 += got.count(best) == 1 and got.index(best) == true.index(max(true))
        n = args.groups
        out.append(
            {
                "setting": label,
                "calls": stats.get("chat", 0) / n,
                "prompt_tokens": stats.get("prompt_tokens", 0) / n,
                "completion_tokens": stats.get("completion_tokens", 0) / n,
                "wall_ms": 1000 * wall / n,
                "rho": sum(rhos) / n,
                "top1": top1 / n,
                "failed": failed,
            }
        )
        print(f"{label}: done in {wall:.2f} s", flush=True)
    await model.aclose()
    return out


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    base = results[0]["prompt_tokens"]
    rows = [
        [
            r["setting"],
            f"{r['calls']:g}",
            f"{r['prompt_tokens']:,.0f}",
            f"{r['prompt_tokens'] / base:.2f}",
            f"{r['completion_tokens']:,.0f}",
            f"{r['wall_ms']:.0f}",
            f"{r['rho']:.3f}",
            f"{r['top1']:.2f}",
            str(r["failed"]),
        ]
        for r in results
    ]
    head = [
        "setting",
        "calls / group",
        "prompt tok / group",
        "vs per-row",
        "completion tok / group",
        "wall ms / group",
        "Spearman rho",
        "top-1",
        "failed rows",
    ]
    return (
        f"{args.groups} groups of {args.size} rollouts (prompt ~700 chars, responses ~850 "
        f"chars), judge latency {args.latency_ms:g} ms, position bias b = {args.bias:g} "
        f"(listwise: +b in position 1; pairwise: position 1 wins unless worse by more than b; "
        f"the per-row judge sees one response, so it has no position to be biased by), "
        f"max_concurrency {args.concurrency}. Tokens: the server's usage, ceil(chars/4) "
        f"(an estimate, the same rule for every row). Wall ms / group = total wall time / "
        f"groups (throughput at that concurrency, not one group's latency).\n\n" + table(head, rows)
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--groups", type=int, default=32)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--bias", type=float, default=0.2)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    with ServerProcess(latency=args.latency_ms / 1000, responder=RankingJudge(bias=args.bias)) as s:
        results = asyncio.run(measure(s, args))
    body = report(results, args)
    print(body)
    if not args.no_append:
        append_section("Group judges vs per-row judging (scripts/bench_group_judges.py)", body)


if __name__ == "__main__":
    main()
