"""The fenced code blocks of README.md and docs/, and the markers that say how CI runs them.

One grammar, read by both the MkDocs hook (which renders markers as visible notes) and
tests/test_docs.py (which executes the blocks). A marker is an HTML comment on the line
right above a fence::

    <!-- run: skip (needs a GPU) -->          not run: needs a GPU, a hub, a key...
    <!-- run: no (install) -->                not re-run: an install command
    <!-- run: by tests/x.py::test_name -->    too slow for the block runner; that test runs it
    <!-- run: server (needs a judge server) -->  runs, with OPENAI_BASE_URL pointing at the
                                              local OpenAI-protocol stand-in server

A block without a marker is executed as written, with no judge server configured. In
README.md (which GitHub renders without hooks) the line above a marker must be a visible
``> ...`` note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EXECUTED", "MARKER", "Block", "Marker", "blocks", "parse_marker"]

#: languages the block runner executes; yaml is parsed; text/none are shown only
EXECUTED = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "console": "bash"}
SHOWN = {"", "text", "yaml", "toml", "json"}

MARKER = re.compile(r"^<!--\s*run:\s*(?P<kind>skip|no|by|server)\s+(?P<arg>.+?)\s*-->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Marker:
    kind: str  # skip | no | by | server
    reason: str  # the text in parentheses, or the test node id for "by"

    @property
    def runs(self) -> bool:
        """Whether the block runner executes the block."""
        return self.kind == "server"

    def describe(self) -> str:
        if self.kind == "by":
            return f"run in CI by {self.reason}"
        if self.kind == "server":
            return f"{self.reason}; CI runs it against a local OpenAI-protocol stand-in server"
        return f"not run in CI: {self.reason}"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: Marker | None
    above: str  # the non-blank line above the marker (README's visible note)

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def parse_marker(line: str) -> Marker | None:
    """The marker on ``line``; a malformed ``<!-- run:`` comment is a ValueError."""
    stripped = line.strip()
    if not stripped.startswith("<!--") or "run:" not in stripped:
        return None
    m = MARKER.match(stripped)
    if m is None:
        raise ValueError(
            f"malformed run marker {stripped!r}; use <!-- run: skip (reason) -->, "
            "<!-- run: no (install) -->, <!-- run: by tests/file.py::test_name --> or "
            "<!-- run: server (needs a judge server) -->"
        )
    kind, arg = m["kind"], m["arg"]
    if kind in ("skip", "no", "server"):
        if not (arg.startswith("(") and arg.endswith(")")) or len(arg) < 3:
            raise ValueError(f"run marker {stripped!r}: give the reason in parentheses")
        arg = arg[1:-1].strip()
    return Marker(kind, arg)


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, with the marker right above it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent = m["fence"], m["indent"]
        info = m["info"].strip().split()
        lang = info[0].lower() if info else ""
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        marker = parse_marker(lines[j]) if j >= 0 else None
        above = ""
        if marker is not None:
            k = j - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            above = lines[k].strip() if k >= 0 else ""
        out.append(Block(path, start + 1, lang, "\n".join(body) + "\n", marker, above))
    return out
