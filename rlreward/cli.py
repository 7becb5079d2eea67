"""Command line: ``rlreward grade --config reward.yaml data.jsonl -o scored.jsonl``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rlreward.dataset import read_jsonl, write_jsonl
from rlreward.errors import RLRewardError
from rlreward.integrations.spec import RewardSpec

__all__ = ["main"]


def _grade(args: argparse.Namespace) -> int:
    spec = RewardSpec.from_yaml(args.config)
    if args.no_cache:
        for cfg in spec.graders.values():
            disable = getattr(cfg.grader, "disable_cache", None)
            if callable(disable):
                disable()
    rows = read_jsonl(args.data)
    if args.limit is not None:
        rows = rows[: args.limit]
    overrides: dict[str, object] = {"show_progress": not args.quiet}
    if args.max_concurrency is not None:
        overrides["max_concurrency"] = args.max_concurrency
    if args.timeout is not None:
        overrides["timeout"] = args.timeout
    runner = spec.build_runner(**overrides)
    results = runner.run(rows)
    records = results.to_records()
    out_rows = [{**row, "grades": rec} for row, rec in zip(rows, records, strict=True)]
    output = Path(args.output) if args.output else Path(args.data).with_suffix(".scored.jsonl")
    write_jsonl(output, out_rows)
    print(results.format_summary())
    print(f"\nwrote {len(out_rows)} rows to {output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlreward", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a JSONL file with the graders of a reward spec")
    g.add_argument("data", help="input JSONL, one row per line")
    g.add_argument("-c", "--config", required=True, help="reward spec YAML")
    g.add_argument("-o", "--output", help="output JSONL (default: <data>.scored.jsonl)")
    g.add_argument("--max-concurrency", type=int, help="override runner.max_concurrency")
    g.add_argument("--timeout", type=float, help="seconds per grader call")
    g.add_argument("--limit", type=int, help="grade only the first N rows")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the judge cache")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_grade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except RLRewardError as exc:
        print(f"rlreward: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
