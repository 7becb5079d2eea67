"""Benchmark: more graders in flight than the judge model has connections.

A runner with ``max_concurrency`` 200 over a model with ``max_connections`` 20, against
a healthy server (1 s per answer, in its own process): every row must be scored, no
call may time out or be retried, and the server must never see more than 20 requests
at once (its in-flight counter). A second row sizes the pool to the concurrency.

python scripts/bench_judge_pool.py               # appends to BENCHMARKS.md
python scripts/bench_judge_pool.py --no-append
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench import append_section, table  # noqa: E402

from rlreward import GradingRunner, OpenAIChatModel, RelevanceGrader  # noqa: E402
from tests.openai_server import ServerProcess  # noqa: E402


def run_once(server: ServerProcess, rows: int, concurrency: int, pool: int, timeout: float):
    server.configure(reset_counts=True)
    model = OpenAIChatModel(
        "judge", base_url=server.url, timeout=timeout, max_retries=0, max_connections=pool
    )
    runner = GradingRunner(
        [RelevanceGrader(model=model)], max_concurrency=concurrency, show_progress=False
    )
    data = [{"query": f"q{i}", "response": f"r{i}"} for i in range(rows)]
    start = time.perf_counter()
    results = runner.run(data)["relevance"]
    wall = time.perf_counter() - start
    stats = server.stats()
    timeouts = sum(1 for r in results if not r.ok and "timed out" in r.error.lower())
    return {
        "scored": sum(r.ok for r in results),
        "timeouts": timeouts,
        "errors": sum(not r.ok for r in results),
        "requests": stats.get("chat", 0),
        "max_in_flight": stats.get("max_in_flight", 0),
        "wall": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200, help="rows graded (default: 200)")
    ap.add_argument("--concurrency", type=int, default=200, help="runner max_concurrency")
    ap.add_argument("--pool", type=int, default=20, help="model max_connections (default: 20)")
    ap.add_argument("--latency", type=float, default=1.0, help="server seconds per answer")
    ap.add_argument("--timeout", type=float, default=3.0, help="model timeout per request")
    ap.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = ap.parse_args()
    lines = []
    with ServerProcess(latency=args.latency) as server:
        for pool in (args.pool, args.concurrency):
            r = run_once(server, args.rows, args.concurrency, pool, args.timeout)
            ideal = -(-args.rows // min(pool, args.concurrency)) * args.latency
            lines.append(
                [
                    args.concurrency,
                    pool,
                    f"{r['scored']}/{args.rows}",
                    r["timeouts"],
                    r["errors"],
                    r["requests"],
                    r["max_in_flight"],
                    f"{r['wall']:.1f}",
                    f"{ideal:.1f}",
                ]
            )
    headers = [
        "max_concurrency",
        "max_connections",
        "scored",
        "timeouts",
        "errors",
        "server requests",
        "server max in flight",
        "wall s",
        "waves x latency s",
    ]
    body = table(headers, lines)
    body += (
        f"\n\nServer latency {args.latency} s in a separate process, model timeout "
        f"{args.timeout} s, no retries: a call queued for a connection must not spend its "
        "timeout (before the fix, the timeout also ran while a call waited for a pooled "
        "connection)."
    )
    print(body)
    if not args.no_append:
        append_section("Judge calls queued for a connection (scripts/bench_judge_pool.py)", body)


if __name__ == "__main__":
    main()
