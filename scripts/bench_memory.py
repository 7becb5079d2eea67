"""Peak memory of ``rlreward grade`` against the number of rows (streaming: it must stay flat).

Writes N rows (10,000 and 100,000 by default) of GSM8K-like text, grades them with a
rule-function spec (length, format, repetition, math_answer and a weighted reward)
through the real CLI in a subprocess, and reads the child's peak RSS from ``wait4``.
Target: peak RSS at the largest N within 1.5x that at the smallest. Prints a table and
appends it to BENCHMARKS.md (with the load average) unless ``--no-append``.

    python scripts/bench_memory.py                  # 10k vs 100k rows
    python scripts/bench_memory.py --rows 1000 5000 --no-append   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import append_section, machine, table

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
graders:
  length: {type: reward_function, function: length, params: {target_min: 10, target_max: 80}}
  formatted: {type: reward_function, function: format, params: {style: think_answer}}
  repetition: {type: reward_function, function: repetition}
  correct:
    type: reward_function
    function: math_answer
    mapper: {reference_response: ground_truth}
aggregators:
  - {name: reward, weights: {correct: 0.7, formatted: 0.1, repetition: 0.1, length: 0.1}}
runner: {max_concurrency: 64}
"""


def write_rows(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            a, b = i % 97, i % 89
            row = {
                "id": i,
                "query": f"Tom has {a} apples and buys {b} more. How many apples does he have?",
                "response": f"<think>He starts with {a} and adds {b}, so {a} + {b} = {a + b}."
                f"</think><answer>The answer is {a + b if i % 3 else a + b + 1}</answer>",
                "ground_truth": str(a + b),
            }
            fh.write(json.dumps(row) + "\n")


def measure(src: Path, spec: Path, data: Path, out: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one ``rlreward grade`` run from the checkout ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "rlreward", "grade", "-c", str(spec), str(data)]
    cmd += ["-o", str(out), "-q"]
    start = time.perf_counter()
    proc = subprocess.Popen(  # cwd: not a checkout, or `-m` would import the rlreward there
        cmd, env=env, cwd=data.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        assert proc.stderr is not None
        raise SystemExit(f"rlreward grade failed: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--compare", type=Path, help="also measure another rlreward checkout (e.g. an old one)"
    )
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()

    sources = [("this checkout", ROOT)]
    if args.compare is not None:
        sources.append((str(args.compare), args.compare.resolve()))
    load_before = os.getloadavg()[0]
    rows_out: list[list[object]] = []
    peaks: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC)
        for n in sorted(args.rows):
            data = Path(tmp) / f"rows{n}.jsonl"
            write_rows(data, n)
            for label, src in sources:
                out = Path(tmp) / f"out{n}.jsonl"
                peak, seconds = measure(src, spec, data, out)
                lines = sum(1 for _ in out.open("rb"))
                assert lines == n, f"{lines} rows written of {n}"
                peaks.setdefault(label, []).append(peak)
                ratio = peak / peaks[label][0]
                rows_out.append(
                    [
                        label,
                        f"{n:,}",
                        f"{peak:.0f}",
                        f"{ratio:.2f}",
                        f"{seconds:.1f}",
                        f"{n / seconds:,.0f}",
                    ]
                )
                print(f"{label}: {n:,} rows: peak RSS {peak:.0f} MB, {seconds:.1f} s", flush=True)
    headers = ["code", "rows", "peak RSS MB", "x smallest", "seconds", "rows/s"]
    body = table(headers, rows_out)
    ours = peaks["this checkout"]
    verdict = ours[-1] / ours[0]
    body += (
        f"\n\nPeak RSS of the `rlreward grade` process (wait4 ru_maxrss), rule spec of 4 "
        f"functions + a weighted reward. Largest / smallest N: **{verdict:.2f}x** (target "
        f"<= 1.5x). Load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after."
    )
    print(body)
    print(f"machine: {machine()}")
    if not args.no_append:
        append_section("rlreward grade: peak memory vs rows (scripts/bench_memory.py)", body)
    if verdict > 1.5:
        raise SystemExit(f"peak RSS grew {verdict:.2f}x from {args.rows[0]} rows")


if __name__ == "__main__":
    main()
