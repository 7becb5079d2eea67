"""Shared helpers for benchmark scripts: machine description and BENCHMARKS.md appends."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
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
    """Write a dated section (machine, command, body) to BENCHMARKS.md: it REPLACES the
    section of the same title (one current section per benchmark; earlier runs stay in
    git history), or is appended when the benchmark has none yet. Update the benchmark's
    row in the table at the top by hand when its headline figure changes."""
    command = command or "python " + " ".join(sys.argv)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = f"## {title} ({stamp})\n\n- machine: {machine()}\n- command: `{command}`\n\n{body}\n"
    old = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else "# Benchmarks\n"
    sections = re.split(r"(?m)^(?=## )", old)
    head, rest = sections[0], sections[1:]
    key = f"## {title} ("
    kept = [sec for sec in rest if not sec.startswith(key)]
    pos = next((i for i, sec in enumerate(rest) if sec.startswith(key)), len(kept))
    kept.insert(pos, text)
    body_text = "\n".join(sec.rstrip() + "\n" for sec in kept)
    BENCHMARKS.write_text(head.rstrip() + "\n\n" + body_text, encoding="utf-8")
