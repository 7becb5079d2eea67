"""The ``rlreward`` command: grade a JSONL file with a reward spec, print the spec's schema.

``rlreward grade -c spec.yaml data.jsonl -o out.jsonl`` checks everything that can be
checked before the first grader call (the spec, the output path, every input line and
the fields each grader needs), then streams: rows are read a few at a time, graded by the
spec's one ``Reward`` (``RewardSpec.reward``: graders, monitors, aggregators), and written
in input order as soon as their grades are final, each line
with one ``write`` so a killed run leaves only whole lines. A sidecar
``<out>.resume.json`` marks an unfinished output; rerunning the same command continues
after the rows already written (and the judge cache answers what was graded but not yet
written). Memory does not grow with the number of rows.

Exit status: 0 done; 1 done, but a grader failed on more rows than ``--max-error-rate``
allows (default: a grader that failed on every row), or the spec's ``budget`` ran out
before every row was graded (the rows it left ungraded are written as errors and are
not cached: a rerun with a larger budget grades them, the cache answering the rest); 2 a
usage, spec or input error (nothing graded, or grading stopped); 130 interrupted (Ctrl-C;
the output holds the rows finished so far).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rlreward.dataset import iter_jsonl, json_line
from rlreward.errors import ConfigError, DatasetError, MissingFieldsError, RLRewardError
from rlreward.graders.group import group_key, is_group_grader
from rlreward.schema import GraderAbstention

__all__ = [
    "EXIT_BUDGET",
    "EXIT_ERROR_RATE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EXIT_OK = 0
EXIT_ERROR_RATE = 1
EXIT_BUDGET = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: rows graded per runner call: small enough that a row waits little for its neighbours,
#: large enough that the per-call overhead is spread (measured: 8 rows ~1.3x one batch)
CHUNK_ROWS = 8
#: rows checked per ``prepare`` call in the field check before grading
CHECK_ROWS = 1000

DESCRIPTION = """\
Composite rewards from LLM judges, rule functions and reward models.

commands:
  grade    grade a JSONL file with the graders of a reward spec
  schema   print the JSON Schema of reward spec files
  audit    run the reward-hacking detectors on a per-step JSONL log

exit status of `rlreward grade`:
  0    every row graded and written
  1    rows written, but a grader failed on more rows than --max-error-rate allows,
       or the spec's budget ran out (ungraded rows are errors; rerun with more budget)
  2    usage, spec or input error (reported before any grading where possible)
  130  interrupted (Ctrl-C); the output holds the rows finished so far and a rerun
       of the same command resumes after them
"""

log = logging.getLogger("rlreward.cli")


class _Interrupted(Exception):
    pass


# -- argument types ----------------------------------------------------------------------
_N = TypeVar("_N", int, float)


def _parse(text: str, convert: Callable[[str], _N], expected: str) -> _N:
    """``convert(text)``; text it cannot read is an argparse error 'must be <expected>'."""
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None


def _int_at_least_1(text: str) -> int:
    value = _parse(text, int, "a whole number >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _parse(text, float, "a number > 0")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _rate(text: str) -> float:
    value = _parse(text, float, "a fraction in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1], got {text}")
    return value


# -- output ------------------------------------------------------------------------------
def _check_output(output: Path, data: Path) -> bool:
    """Fail now, not after grading, on an output that cannot be written; True if created."""
    if output.is_dir():
        raise ConfigError(f"-o/--output {str(output)!r} is a directory; give a file path")
    if output.exists() and data.exists() and output.resolve() == data.resolve():
        raise ConfigError(f"-o/--output {str(output)!r} is the input file; give another path")
    existed = output.exists()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("ab"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"-o/--output {str(output)!r} cannot be written ({exc.strerror or exc}); "
            "choose a writable file path"
        ) from None
    return not existed


def _fingerprint(spec_path: Path, data: Path) -> dict[str, Any]:
    stat = data.stat()
    return {
        "version": 1,
        "spec_sha256": hashlib.sha256(spec_path.read_bytes()).hexdigest(),
        "input": str(data.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
    }


def _resume_point(output: Path, sidecar: Path, fingerprint: dict[str, Any]) -> list[str] | None:
    """The complete lines of an unfinished output of this same job, or None to start over."""
    try:
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if saved != fingerprint or not output.is_file():
        return None
    lines: list[str] = []
    good = 0
    with output.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # a line cut by a kill: graded again
            try:
                json.loads(raw)
            except ValueError:
                break
            good += len(raw)
            lines.append(raw.decode("utf-8"))
    with output.open("r+b") as fh:
        fh.truncate(good)
    return lines


class _LineWriter:
    """Appends whole lines with one ``write`` each (a kill leaves no half line)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, line: str) -> None:
        data = memoryview(line.encode("utf-8"))
        while data:
            data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        os.close(self._fd)


# -- grading -----------------------------------------------------------------------------
def _rows(data: Path, limit: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, item in enumerate(iter_jsonl(data)):
        if limit is not None and i >= limit:
            return
        yield item


def _check_fields(reward: Any, data: Path, limit: int | None) -> int:
    """Read every input line once: its JSON and the fields every grader needs. Row count.

    A grader abstains on a row that lacks a field it needs (``{"abstained": reason}`` in
    the row's grades: not applicable, neither an error nor a score), e.g. a
    reference-based grader on a row without a reference. Two gaps are input errors,
    raised before any grading: a field that NO row has (a typo in a mapper, the wrong
    file), and a row that no grader of the reward can grade (it lacks the fields of
    all of them, e.g. no ``response``)."""
    runner = reward.runner
    graders = list(runner.graders)
    counts: dict[tuple[str, str], int] = {}
    where: dict[tuple[str, str], list[int]] = {}
    unusable: list[int] = []
    n = 0
    chunk: list[tuple[int, dict[str, Any]]] = []

    def check() -> None:
        calls = runner.prepare([row for _, row in chunk], on_missing="skip")
        for i, (line, _) in enumerate(chunk):
            lacking = 0
            for grader in graders:
                call = calls[grader][i]
                if isinstance(call, GraderAbstention):
                    lacking += 1
                    for field in call.metadata.get("missing_fields", []):
                        key = (grader, field)
                        counts[key] = counts.get(key, 0) + 1
                        seen = where.setdefault(key, [])
                        if len(seen) < 5:
                            seen.append(line)
            if lacking == len(graders) and len(unusable) < 1000:
                unusable.append(line)
        chunk.clear()

    for item in _rows(data, limit):
        n += 1
        chunk.append(item)
        if len(chunk) >= CHECK_ROWS:
            check()
    if chunk:
        check()
    bad_lines = set(unusable)
    shown = {key: at for key, at in where.items() if counts[key] == n or bad_lines.intersection(at)}
    if shown:
        lines = ["rows lack fields their graders need (nothing was graded):"]
        for (grader, field), at in shown.items():
            more = (
                f" and {counts[grader, field] - len(at)} more"
                if counts[grader, field] > len(at)
                else ""
            )
            lines.append(
                f"  grader {grader!r}: field {field!r} missing in {counts[grader, field]}/{n} rows "
                f"(lines {', '.join(map(str, at))}{more})"
            )
        lines.append(
            "  (a grader abstains on a row that lacks its fields; a field no row has, or a row "
            "that no grader can grade, is an input error)"
        )
        lines.append(
            "fix: add the field to the rows, or map it from another field with "
            "`mapper: {<grader field>: <row field or dotted.path>}` in the spec"
        )
        missing = {g: {f: at} for (g, f), at in shown.items()}
        raise MissingFieldsError("\n".join(lines), missing)
    return n


#: with group graders a chunk closes only where every group is whole; a group whose rows
#: are further apart than this is cut (and refused as partial, never judged smaller)
MAX_GROUP_CHUNK_ROWS = 4096


class _GroupBounds:
    """Where a chunk may close when the reward has group graders (nested ones included).

    ``form_groups`` forms a grader's groups from consecutive rows with one ``query``, or
    from the rows sharing its ``group_key`` value, within the batch it is given. A chunk
    may close before a row when, for every group grader, the row does not continue the
    current group: its prompt differs from the last applicable row's, or (with
    ``group_key``) every key in the chunk already has ``group_size`` rows and the row's key
    is new. Rows a grader does not apply to are passed over, as ``form_groups`` does. So a
    chunk's groups are the groups the file's rows form, whatever the chunk size.
    """

    def __init__(self, runner: Any, names: list[str]) -> None:
        self.runner = runner
        configs = {**runner.grader_configs, **runner.monitor_configs}
        self.graders = {n: configs[n].grader for n in names}
        self.last: dict[str, Any] = {}  # query-grouped: the last applicable row's prompt
        self.counts: dict[str, dict[Any, int]] = {n: {} for n in names}  # keyed: rows per key

    @classmethod
    def of(cls, reward: Any) -> _GroupBounds | None:
        runner = reward.runner
        configs = {**runner.grader_configs, **runner.monitor_configs}
        names = [n for n, c in configs.items() if is_group_grader(c.grader)]
        return cls(runner, names) if names else None

    def _values(self, row: dict[str, Any]) -> dict[str, Any]:
        """Each group grader's grouping value for ``row``; absent where it does not apply."""
        calls = self.runner.prepare([row], on_missing="skip")
        out = {}
        for name, grader in self.graders.items():
            fields = calls[name][0]
            if isinstance(fields, dict):
                key = getattr(grader, "group_key", None)
                out[name] = group_key(fields.get(key if key is not None else "query"))
        return out

    def starts_new_chunk(self, row: dict[str, Any], chunk_rows: int) -> bool:
        """Add ``row``; True when the chunk (of ``chunk_rows`` rows) should close before it."""
        values = self._values(row)
        cut = chunk_rows >= MAX_GROUP_CHUNK_ROWS or (
            chunk_rows >= CHUNK_ROWS and all(self._closed(n, values) for n in self.graders)
        )
        if cut:
            self.last.clear()
            for counts in self.counts.values():
                counts.clear()
        for name, value in values.items():
            if getattr(self.graders[name], "group_key", None) is None:
                self.last[name] = value
            else:
                counts = self.counts[name]
                counts[value] = counts.get(value, 0) + 1
        return cut

    def _closed(self, name: str, values: dict[str, Any]) -> bool:
        """True when ``name``'s groups in the chunk cannot continue with this row (a row it
        does not apply to closes nothing: its run may go on after it)."""
        grader = self.graders[name]
        if getattr(grader, "group_key", None) is None:
            if name not in self.last:
                return True
            return name in values and self.last[name] != values[name]
        counts = self.counts[name]
        whole = all(c >= grader.group_size for c in counts.values())
        return whole and (name not in values or values[name] not in counts)


async def _grade_stream(
    reward: Any,
    rows: Iterator[tuple[int, dict[str, Any]]],
    writer: _LineWriter,
    summary: Any,
    window: int,
    progress: Any,
) -> int:
    """Grade ``rows`` in chunks, at most ``window`` rows in flight; write them in order.

    A chunk is ``CHUNK_ROWS`` rows; with group graders it grows until it ends on a group
    boundary (``_GroupBounds``), so no group is split between two runner calls. A chunk's
    lines are written with one ``write``, so a resumed run starts on a chunk boundary.
    """
    pending: deque[tuple[list[dict[str, Any]], asyncio.Task[Any]]] = deque()
    in_flight = 0
    written = 0
    bounds = _GroupBounds.of(reward)

    def start(chunk: list[dict[str, Any]]) -> None:
        nonlocal in_flight
        in_flight += len(chunk)
        pending.append((chunk, asyncio.ensure_future(reward.agrade(chunk, on_missing="skip"))))

    async def finish_head() -> None:
        nonlocal written, in_flight
        chunk, task = pending.popleft()
        results = await task
        summary.add_results(results)
        records = results.to_records()
        writer.write(
            "".join(
                json_line({**row, "grades": record})
                for row, record in zip(chunk, records, strict=True)
            )
        )
        written += len(chunk)
        in_flight -= len(chunk)
        progress.update(len(chunk))

    try:
        chunk: list[dict[str, Any]] = []
        for _, row in rows:
            if bounds is None:
                chunk.append(row)
                if len(chunk) >= CHUNK_ROWS:
                    start(chunk)
                    chunk = []
            else:  # close the chunk before a row that starts new groups only
                if bounds.starts_new_chunk(row, len(chunk)):
                    start(chunk)
                    chunk = []
                chunk.append(row)
            while pending and (in_flight >= window or pending[0][1].done()):
                await finish_head()
        if chunk:
            start(chunk)
        while pending:
            await finish_head()
    finally:
        for _, task in pending:
            task.cancel()
        await asyncio.gather(*(t for _, t in pending), return_exceptions=True)
        await reward.aclose()  # commits the judge cache, also when interrupted
    return written


def _grade(args: argparse.Namespace) -> int:
    from dotenv import find_dotenv, load_dotenv
    from tqdm.auto import tqdm

    from rlreward.integrations.spec import RewardSpec
    from rlreward.results import RunningSummary
    from rlreward.usage import UsageSummary

    # the library never reads .env; the CLI reads the working directory's, like the recipes
    load_dotenv(find_dotenv(usecwd=True), override=False)

    data = Path(args.data)
    if not data.is_file():
        raise DatasetError(f"input file not found: {str(data)!r}")
    output = Path(args.output) if args.output else Path("outputs") / f"{data.stem}.scored.jsonl"
    created = _check_output(output, data)
    sidecar = output.with_name(output.name + ".resume.json")
    written = 0
    try:
        # --no-cache reaches the spec before it opens a cache: no file is created
        spec = RewardSpec.from_yaml(args.config, cache_override=False if args.no_cache else None)
        spec.show_progress = False  # the CLI shows its own bar, per row
        if args.max_concurrency is not None:
            spec.max_concurrency = args.max_concurrency
        if args.timeout is not None:
            spec.timeout = args.timeout
        reward = spec.reward  # the one Reward: every column written comes from it
        runner = reward.runner
        n_rows = _check_fields(reward, data, args.limit)
    except BaseException:
        if created:
            output.unlink(missing_ok=True)
        raise

    summary = _Summaries(RunningSummary(), UsageSummary(spec.prices))
    fingerprint = _fingerprint(Path(args.config), data)
    done_lines = None if args.no_resume else _resume_point(output, sidecar, fingerprint)
    if done_lines is None:
        output.write_bytes(b"")
        done = 0
    else:
        done = min(len(done_lines), n_rows)
        if len(done_lines) > n_rows:  # a smaller --limit this time: keep its rows only
            output.write_text("".join(done_lines[:n_rows]), encoding="utf-8")
        for line in done_lines[:done]:
            grades = json.loads(line).get("grades")
            if isinstance(grades, dict):
                summary.scores.add_record(grades)
        if done:
            print(f"resuming: {done} of {n_rows} rows already in {output}", file=sys.stderr)
    sidecar.write_text(json.dumps(fingerprint), encoding="utf-8")

    rows = _rows(data, args.limit)
    for _ in range(done):
        next(rows)
    window = max(64, 4 * runner.max_concurrency)
    writer = _LineWriter(output)
    bar = tqdm(
        total=n_rows, initial=done, unit="row", desc="grading", disable=args.quiet, file=sys.stderr
    )
    try:
        written = done + asyncio.run(_grade_stream(reward, rows, writer, summary, window, bar))
    except KeyboardInterrupt:
        bar.close()
        writer.close()
        raise _Interrupted(
            f"rlreward: interrupted; {_count_lines(output)} of {n_rows} rows are in {output}; "
            "rerun the same command to resume"
        ) from None
    bar.close()
    writer.close()
    sidecar.unlink(missing_ok=True)

    print(summary.scores.format())
    if reward.monitors:
        print(f"monitors (reported, never in {reward.name!r}): {', '.join(reward.monitors)}")
    if summary.usage.summary():
        print("\n" + summary.usage.format())
    print(f"\nwrote {written} rows to {output}")
    if args.summary_json:
        _write_summary_json(Path(args.summary_json), summary, spec.budget, written)
    if spec.budget is not None and spec.budget.refused:  # spent, and rows were left ungraded
        _report_budget(spec.budget, summary.usage)
        return EXIT_BUDGET
    failed = []
    for name, stats in summary.scores.summary().items():
        if name not in spec.graders or not stats["count"]:
            continue
        rate = float(stats["error_rate"])
        over = rate >= 1.0 if args.max_error_rate is None else rate > args.max_error_rate
        if over:
            failed.append(f"{name!r} failed on {stats['errors']} of {stats['count']} rows")
    if failed:
        allowed = "every row" if args.max_error_rate is None else f"{100 * args.max_error_rate:g}%"
        print(
            f"rlreward: grader errors over the limit (--max-error-rate: {allowed}): "
            + "; ".join(failed)
            + "; see the rows' grades for the messages",
            file=sys.stderr,
        )
        return EXIT_ERROR_RATE
    return EXIT_OK


class _Summaries:
    """The score summary and the judges' usage summary, fed the same chunks in row order
    (rows resumed from an earlier run count in the scores only: their calls were made
    then)."""

    def __init__(self, scores: Any, usage: Any) -> None:
        self.scores = scores
        self.usage = usage
        self.rows = 0

    def add_results(self, results: Any) -> None:
        self.scores.add_results(results)
        self.usage.add_results(results, offset=self.rows)
        self.rows += len(next(iter(results.values()), []))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN: no such thing in JSON
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _write_summary_json(path: Path, summary: _Summaries, budget: Any, written: int) -> None:
    """``--summary-json``: per judge grader calls/tokens/latency/cost, scores, budget."""
    data = {
        "rows": written,
        "graders": summary.usage.summary(),
        "totals": summary.usage.totals(),
        "budget": budget.state() if budget is not None else None,
        "scores": _json_safe(summary.scores.summary()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote the summary to {path}")


def _report_budget(budget: Any, usage: Any) -> None:
    limits = ", ".join(
        f"{k}={v:g}"
        for k, v in (("max_tokens", budget.max_tokens), ("max_cost", budget.max_cost))
        if v is not None
    )
    refused = {n: s["budget_refused"] for n, s in usage.summary().items() if s["budget_refused"]}
    used = f"used {budget.used_tokens} tokens" + (
        f", ${budget.used_cost:.6g}" if budget.max_cost is not None else ""
    )
    shown = "; ".join(f"{n!r}: {k} rows" for n, k in refused.items()) or "none"
    print(
        f"rlreward: budget exhausted (spec budget: {limits}; {used}); no judge call started "
        f"after that; rows not graded, written as errors and not cached: {shown}. Rerun with "
        "a larger budget: the judge cache answers the rows already graded",
        file=sys.stderr,
    )


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.endswith(b"\n"))


def _schema(args: argparse.Namespace) -> int:
    from rlreward.integrations.spec_schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from rlreward._version import __version__

    parser = argparse.ArgumentParser(
        prog="rlreward",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rlreward {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{grade,schema,audit}")
    g = sub.add_parser(
        "grade",
        help="grade a JSONL file with the graders of a reward spec",
        description="Grade each row of a JSONL file; write it with a 'grades' key. "
        "Exit status: 0 done, 1 a grader failed on too many rows, 2 usage/spec/input "
        "error, 130 interrupted (rerun to resume).",
    )
    g.add_argument("data", help="input JSONL, one JSON object per line (UTF-8)")
    g.add_argument("-c", "--config", required=True, help="reward spec YAML")
    g.add_argument(
        "-o", "--output", help="output JSONL (default: outputs/<input name>.scored.jsonl)"
    )
    g.add_argument(
        "--max-concurrency", type=_int_at_least_1, help="grader calls in flight (spec: runner)"
    )
    g.add_argument("--timeout", type=_positive_float, help="seconds per grader call (spec: runner)")
    g.add_argument("--limit", type=_int_at_least_1, help="grade only the first N rows (N >= 1)")
    g.add_argument(
        "--max-error-rate",
        type=_rate,
        help="exit 1 when a grader failed on more than this fraction of rows "
        "(default: exit 1 only when a grader failed on every row)",
    )
    g.add_argument(
        "--no-cache", action="store_true", help="do not read or write the judge result cache"
    )
    g.add_argument(
        "--no-resume",
        action="store_true",
        help="start over even when the output is an unfinished run of the same job",
    )
    g.add_argument(
        "--summary-json",
        metavar="PATH",
        help="write the run's summary as JSON: per judge grader calls, tokens, errors, "
        "latency p50/p95/max, slowest rows, cost (with the spec's prices), the budget",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_grade)
    s = sub.add_parser("schema", help="print the JSON Schema of reward spec files")
    s.set_defaults(func=_schema)
    from rlreward.monitoring.audit import add_audit_parser

    add_audit_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except _Interrupted as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("rlreward: interrupted before grading started; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RLRewardError as exc:
        print(f"rlreward: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"rlreward: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
