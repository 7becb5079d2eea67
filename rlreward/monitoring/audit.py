"""``rlreward audit LOG``: the reward-hacking detectors on any per-step JSONL of metrics.

The log is one JSON object per line: the monitor's own JSONL (default columns), or any
trainer's logged metrics with the columns named by options (TRL's ``log_history``:
``--reward reward --kl kl --length completions/mean_length``). Lines without a number
under the trained reward's column (eval or summary lines) are skipped. The command prints
each detector's verdict with its evidence, writes a PNG of the curves with the alerts
marked, and exits 0 when no detector fired, 1 when one did, 2 when the log cannot be
judged (the message names the column, the line or the count that is missing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlreward.checks import is_number
from rlreward.dataset import iter_jsonl
from rlreward.errors import DatasetError, DependencyError
from rlreward.monitoring.detectors import FidelityFloor, Verdict, default_detectors, run_detectors
from rlreward.monitoring.records import MONITOR_PREFIX, PREFIX, StepRecord

__all__ = [
    "EXIT_ALERT",
    "EXIT_CLEAN",
    "EXIT_UNUSABLE",
    "MIN_STEPS",
    "AuditColumns",
    "add_audit_parser",
    "audit_records",
    "read_log",
    "run_audit",
]

EXIT_CLEAN = 0
EXIT_ALERT = 1
EXIT_UNUSABLE = 2
#: fewer usable steps than this and there is nothing to judge
MIN_STEPS = 8

#: StepRecord field <- (option, default column)
_SCALAR_OPTIONS = {
    "reward_mean": ("--reward", PREFIX + "reward_mean"),
    "reference_mean": ("--reference", PREFIX + "reference_mean"),
    "length_mean": ("--length", PREFIX + "length_mean"),
    "kl": ("--kl", PREFIX + "kl"),
    "rank_corr": ("--rank-corr", PREFIX + "rank_corr"),
    "zero_spread_groups": ("--zero-spread", PREFIX + "zero_spread_groups"),
}

DESCRIPTION = f"""\
Run the reward-hacking detectors on a per-step JSONL log (one JSON object per line):
the monitor's own file, or any trainer's logged metrics with the columns named below.
Lines without a number under the trained reward's column are skipped.

default columns (the monitor's keys): --step step, --reward {PREFIX}reward_mean,
--reference {PREFIX}reference_mean, --monitor every {MONITOR_PREFIX}<name> column,
--length {PREFIX}length_mean, --kl {PREFIX}kl, --rank-corr {PREFIX}rank_corr,
--zero-spread {PREFIX}zero_spread_groups. Without a step column the line order is used.

exit status: 0 no detector fired; 1 a detector fired; 2 unusable input (missing
column, too few steps, a value that is not a number).
"""


@dataclass
class AuditColumns:
    """Which column feeds each signal; ``explicit`` holds the options the user gave."""

    step: str = "step"
    reward_mean: str = PREFIX + "reward_mean"
    reference_mean: str = PREFIX + "reference_mean"
    length_mean: str = PREFIX + "length_mean"
    kl: str = PREFIX + "kl"
    rank_corr: str = PREFIX + "rank_corr"
    zero_spread_groups: str = PREFIX + "zero_spread_groups"
    monitors: list[str] | None = None  # None: every monitor/monitor/<name> column
    explicit: set[str] = field(default_factory=set)


@dataclass
class AuditLog:
    """The records read from a log and how they were read."""

    records: list[StepRecord]
    lines: int
    skipped: int
    columns: dict[str, str]  # signal -> column actually used
    step_column: str | None  # None: the line order


def _present(keys: set[str]) -> str:
    shown = sorted(keys)
    more = f", ... ({len(shown) - 40} more)" if len(shown) > 40 else ""
    return ", ".join(shown[:40]) + more if shown else "(none: every line is empty)"


def _number(path: Path, lineno: int, column: str, value: Any) -> float | None:
    """A line's value: a finite float; None for null, NaN or +-Infinity; else unusable."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if not is_number(value):
        raise DatasetError(
            f"{path}:{lineno}: column {column!r} is {json.dumps(value)[:60]} "
            f"({type(value).__name__}), not a number"
        )
    return float(value)


def read_log(path: str | Path, columns: AuditColumns) -> AuditLog:
    """The log's usable lines as StepRecords; a DatasetError says why a log is unusable."""
    p = Path(path)
    lines = list(iter_jsonl(p))
    keys: set[str] = set().union(*(row.keys() for _, row in lines)) if lines else set()
    for attr, (option, _) in _SCALAR_OPTIONS.items():
        name = getattr(columns, attr)
        if (attr == "reward_mean" or option in columns.explicit) and name not in keys:
            raise DatasetError(
                f"column {name!r} ({option}) is in no line of {p}; columns present: "
                f"{_present(keys)}; name the column with {option} COL"
            )
    if "--step" in columns.explicit and columns.step not in keys:
        raise DatasetError(
            f"column {columns.step!r} (--step) is in no line of {p}; columns present: "
            f"{_present(keys)}; name the step column with --step COL, or leave --step out "
            "to use the line order"
        )
    for name in columns.monitors or []:
        if name not in keys:
            raise DatasetError(
                f"column {name!r} (--monitor) is in no line of {p}; columns present: "
                f"{_present(keys)}"
            )
    monitors = (
        columns.monitors
        if columns.monitors is not None
        else sorted(k for k in keys if k.startswith(MONITOR_PREFIX))
    )
    step_column = columns.step if columns.step in keys else None
    used = {
        attr: getattr(columns, attr) for attr in _SCALAR_OPTIONS if getattr(columns, attr) in keys
    }

    records: list[StepRecord] = []
    skipped = 0
    last: tuple[int, int] | None = None  # (step, line)
    for lineno, row in lines:
        reward = _number(p, lineno, columns.reward_mean, row.get(columns.reward_mean))
        if reward is None:
            skipped += 1
            continue
        if step_column is None:
            step = len(records) + 1
        else:
            raw = row.get(step_column)
            value = _number(p, lineno, step_column, raw)
            if value is None or value != int(value):
                raise DatasetError(
                    f"{p}:{lineno}: step column {step_column!r} is {json.dumps(raw)}; every "
                    "line with a reward needs a whole-number step (or leave --step out to "
                    "use the line order)"
                )
            step = int(value)
            if last is not None and step <= last[0]:
                raise DatasetError(
                    f"{p}:{lineno}: step {step} does not come after step {last[0]} (line "
                    f"{last[1]}); one run per log, steps increasing (a resumed run repeats "
                    "steps: keep one copy of them)"
                )
            last = (step, lineno)
        record = StepRecord(step=step, reward_mean=reward)
        for attr, column in used.items():
            if attr != "reward_mean":
                setattr(record, attr, _number(p, lineno, column, row.get(column)))
        for column in monitors:
            value = _number(p, lineno, column, row.get(column))
            if value is not None:
                name = (
                    column[len(MONITOR_PREFIX) :] if column.startswith(MONITOR_PREFIX) else column
                )
                record.monitors[name] = value
        records.append(record)
    if len(records) < MIN_STEPS:
        raise DatasetError(
            f"{p}: {len(records)} usable steps (lines with a number under "
            f"{columns.reward_mean!r}; {skipped} lines skipped); the detectors need at least "
            f"{MIN_STEPS}"
        )
    shown = dict(used)
    for column in monitors:
        shown["monitor/" + column.removeprefix(MONITOR_PREFIX)] = column
    return AuditLog(records, len(lines), skipped, shown, step_column)


def audit_records(records: Sequence[StepRecord]) -> list[Verdict]:
    """The default detectors' verdicts on ``records`` (what the monitor runs online)."""
    return run_detectors(records, default_detectors())


# -- the PNG -----------------------------------------------------------------------------
_PANELS = [  # (title, signals); an alert is drawn bold in the panels of its signal
    ("trained reward and reference", ["reward_mean", "reference_mean"]),
    ("monitors", ["monitor/*"]),
    ("rank correlation, trained vs reference", ["rank_corr"]),
    ("response length (mean words)", ["length_mean"]),
    ("KL to the reference policy", ["kl"]),
    ("share of groups with zero reward spread", ["zero_spread_groups"]),
]
#: a verdict's signal name -> the record signal it is about
_ALERT_SIGNAL = {"reference": "reference_mean", "length": "length_mean"}


def _owns(signals: Sequence[str], alert: Verdict) -> bool:
    """Whether a panel drawing ``signals`` is where ``alert`` is about."""
    if alert.detector == "divergence" and "reward_mean" in signals:
        return True  # a divergence is about the trained reward too
    return _ALERT_SIGNAL.get(alert.signal, alert.signal) in signals


def write_png(path: Path, log: AuditLog, verdicts: Sequence[Verdict], title: str) -> None:
    """The log's curves, one panel per kind, every alert a red line at its step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = log.records
    monitor_names = sorted({n for r in records for n in r.monitors})

    def series(signal: str) -> tuple[list[int], list[float]]:
        pts = [(r.step, r.value(signal)) for r in records]
        kept = [(s, v) for s, v in pts if v is not None]
        return [s for s, _ in kept], [v for _, v in kept]

    panels = []
    for name, signals in _PANELS:
        expanded = [f"monitor/{m}" for m in monitor_names] if signals == ["monitor/*"] else signals
        drawn = [s for s in expanded if series(s)[0]]
        if drawn:
            panels.append((name, drawn))
    alerts = [(v, v.step) for v in verdicts if v.fired and v.step is not None]
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 3.4 * rows), squeeze=False)
    for ax, (name, signals) in zip(axes.flat, panels, strict=False):
        twin = None
        for i, signal in enumerate(signals):
            xs, ys = series(signal)
            label = log.columns.get(signal, signal)
            if name.startswith("trained reward") and signal == "reference_mean":
                twin = ax.twinx()  # the two rewards may live on different scales
                twin.plot(xs, ys, color="tab:green", marker=".", label=f"reference: {label}")
                twin.set_ylabel("reference", color="tab:green")
            else:
                ax.plot(xs, ys, marker=".", color=f"C{i}", label=label)
        if "rank_corr" in signals:
            floor = FidelityFloor().floor
            ax.axhline(floor, color="grey", linestyle=":", label=f"floor {floor:g}")
        labelled = 0
        middle = (records[0].step + records[-1].step) / 2
        for alert, step in alerts:
            late = step > middle  # label on the left of the line, inside the panel
            own = _owns(signals, alert)
            ax.axvline(
                step,
                color="red",
                linestyle="-" if own else ":",
                linewidth=1.2 if own else 0.8,
            )
            if own:
                about = _ALERT_SIGNAL.get(alert.signal, alert.signal) in signals
                text = alert.detector if about else f"{alert.detector} ({alert.signal})"
                ax.annotate(
                    f"{text}, step {step}",
                    xy=(step, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(
                        -3 if late else 3,
                        -3 - 11 * labelled,
                    ),  # stacked: alerts may share a step
                    textcoords="offset points",
                    ha="right" if late else "left",
                    va="top",
                    fontsize=8,
                    color="red",
                )
                labelled += 1
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step" if log.step_column else "line order")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if twin is not None:
            h2, l2 = twin.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.legend(handles, labels, fontsize=7, loc="best")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(textwrap.fill(title, 70 * cols), fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the command ---------------------------------------------------------------------------
def add_audit_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``audit`` to an ``add_subparsers()`` object; the parser runs ``run_audit``."""
    a = sub.add_parser(
        "audit",
        help="run the reward-hacking detectors on a per-step JSONL log",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("log", help="per-step JSONL: one JSON object of metrics per line")
    a.add_argument("--step", metavar="COL", help="step column (default: step, else line order)")
    for attr, (option, default) in _SCALAR_OPTIONS.items():
        what = {
            "reward_mean": "the trained reward",
            "reference_mean": "the reference reward",
            "length_mean": "mean response length",
            "kl": "KL to the reference policy",
            "rank_corr": "rank correlation of trained vs reference reward",
            "zero_spread_groups": "share of GRPO groups with zero reward spread",
        }[attr]
        a.add_argument(option, dest=attr, metavar="COL", help=f"{what} (default: {default})")
    a.add_argument(
        "--monitor",
        action="append",
        metavar="COL",
        help=f"a monitor's column; repeat for several (default: every {MONITOR_PREFIX}<name>)",
    )
    a.add_argument("--png", metavar="PATH", help="the plot (default: LOG.audit.png beside LOG)")
    a.add_argument("--no-png", action="store_true", help="write no plot")
    a.add_argument("--json", metavar="PATH", help="also write the verdicts as JSON here")
    a.set_defaults(func=run_audit)
    return a


def _columns(args: argparse.Namespace) -> AuditColumns:
    columns = AuditColumns()
    if args.step is not None:
        columns.step = args.step
        columns.explicit.add("--step")
    for attr, (option, _) in _SCALAR_OPTIONS.items():
        value = getattr(args, attr)
        if value is not None:
            setattr(columns, attr, value)
            columns.explicit.add(option)
    columns.monitors = args.monitor
    return columns


def run_audit(args: argparse.Namespace) -> int:
    """The ``audit`` command: 0 no detector fired, 1 one did; unusable input raises."""
    path = Path(args.log)
    png = None if args.no_png else Path(args.png) if args.png else Path(f"{path}.audit.png")
    if png is not None and importlib.util.find_spec("matplotlib") is None:
        raise DependencyError(
            "the plot needs matplotlib, which is not installed: pip install matplotlib "
            "(or 'rlreward[train]'), or pass --no-png"
        )
    log = read_log(path, _columns(args))
    verdicts = audit_records(log.records)
    if not any(v.checked for v in verdicts):
        raise DatasetError(
            f"{path}: nothing to judge: "
            + "; ".join(f"{v.name}: {v.evidence}" for v in verdicts)
            + "; name more columns (--reference, --monitor, --length, --rank-corr, "
            "--zero-spread)"
        )
    fired = [v for v in verdicts if v.fired]
    steps = log.records
    print(
        f"{path}: {len(steps)} steps ({steps[0].step}-{steps[-1].step}) from {log.lines} lines"
        + (
            f", {log.skipped} skipped (no {args.reward_mean or PREFIX + 'reward_mean'!r})"
            if log.skipped
            else ""
        )
        + ("" if log.step_column else "; steps are the line order")
    )
    print("columns: " + ", ".join(f"{k} <- {v}" for k, v in log.columns.items()))
    for verdict in verdicts:
        print(verdict.format())
    summary = (
        f"{len(fired)} alert(s): " + ", ".join(f"{v.name} at step {v.step}" for v in fired)
        if fired
        else "no detector fired"
    )
    print(summary)
    if png is not None:
        write_png(png, log, verdicts, f"{path.name}: {summary}")
        print(f"wrote {png}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "log": str(path),
                    "steps": len(steps),
                    "first_step": steps[0].step,
                    "last_step": steps[-1].step,
                    "skipped_lines": log.skipped,
                    "columns": log.columns,
                    "fired": bool(fired),
                    "verdicts": [v.to_json() for v in verdicts],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"wrote {out}")
    sys.stdout.flush()
    return EXIT_ALERT if fired else EXIT_CLEAN
