"""Shared helpers for benchmark scripts: machine description and BENCHMARKS.md appends."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine() -> str:
    """One line: CPU count, OS, Python, and the 1-minute load average when measured."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, load avg {load:.2f}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table (printed to the terminal and appended to BENCHMARKS.md)."""
    cells = [[str(c) for c in r] for r in rows]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(out)


def append_section(title: str, body: str, command: str | None = None) -> None:
    """Append a dated section (machine, command, body) to BENCHMARKS.md."""
    command = command or "python " + " ".join(sys.argv)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = f"\n## {title} ({stamp})\n\n- machine: {machine()}\n- command: `{command}`\n\n{body}\n"
    with BENCHMARKS.open("a", encoding="utf-8") as fh:
        fh.write(text)
