"""Benchmark GradingRunner: per-call overhead and throughput against max_concurrency / latency.

python scripts/bench_runner.py            # 10,000 samples, as in the issue
python scripts/bench_runner.py --samples 2000 --no-append
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _bench import append_section, table

from rlreward import FunctionGrader, GradingRunner


async def trivial(response: str) -> float:
    return 1.0


async def bare_loop(rows: list[dict], concurrency: int) -> float:
    """The floor: the same calls with only a semaphore and gather, no runner."""
    sem = asyncio.Semaphore(concurrency)
    g = FunctionGrader(trivial)

    async def one(row: dict) -> object:
        async with sem:
            return await g.aevaluate(**row)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(r) for r in rows))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = ap.parse_args()
    rows = [{"response": f"answer {i}"} for i in range(args.samples)]

    runner = GradingRunner(
        {"trivial": FunctionGrader(trivial)}, max_concurrency=args.concurrency, show_progress=False
    )
    best = min(_timed(lambda: runner.run(rows)) for _ in range(args.repeats))
    overhead_us = best / args.samples * 1e6
    floor_us = (
        min(asyncio.run(bare_loop(rows, args.concurrency)) for _ in range(args.repeats))
        / args.samples
        * 1e6
    )

    latency = args.latency_ms / 1000

    async def sleepy(response: str) -> float:
        await asyncio.sleep(latency)
        return 1.0

    runner = GradingRunner(
        {"sleepy": FunctionGrader(sleepy)}, max_concurrency=args.concurrency, show_progress=False
    )
    elapsed = _timed(lambda: runner.run(rows))
    achieved = args.samples / elapsed
    ideal = args.concurrency / latency
    ratio = achieved / ideal

    body = table(
        ["measure", "value", "target", "met"],
        [
            [
                f"runner overhead per call (trivial async grader, {args.samples} samples, "
                f"c={args.concurrency})",
                f"{overhead_us:.1f} us",
                "< 30 us",
                "yes" if overhead_us < 30 else "NO",
            ],
            [
                "bare semaphore+gather floor per call (same grader, no runner)",
                f"{floor_us:.1f} us",
                "-",
                "-",
            ],
            [
                f"throughput, grader sleeping {args.latency_ms:g} ms",
                f"{achieved:,.0f} calls/s",
                "-",
                "-",
            ],
            ["ideal max_concurrency / latency", f"{ideal:,.0f} calls/s", "-", "-"],
            ["achieved / ideal", f"{ratio:.3f}", ">= 0.95", "yes" if ratio >= 0.95 else "NO"],
        ],
    )
    print(body)
    if not args.no_append:
        append_section("GradingRunner overhead and throughput (scripts/bench_runner.py)", body)


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
