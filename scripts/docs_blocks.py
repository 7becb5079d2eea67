"""List every code block of README.md and docs/ and how CI runs it (notes/docs-blocks.md).

python scripts/docs_blocks.py > notes/docs-blocks.md
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_hooks"))

from codeblocks import EXECUTED, blocks  # noqa: E402


def how(lang: str, marker: object) -> str:
    if marker is not None:
        kind, reason = marker.kind, marker.reason  # type: ignore[attr-defined]
        if kind == "no":
            return f"skipped (not re-run): {reason}"
        if kind == "skip":
            return f"skipped (cannot run in CI): {reason}"
        if kind == "by":
            return f"run by {reason}"
        return "executed against the local OpenAI-protocol server (OPENAI_BASE_URL), no key"
    if lang in EXECUTED:
        if EXECUTED[lang] == "python":
            return "executed: python subprocess, temp working dir, offline, no judge server"
        return "executed: bash -euo pipefail, temp working dir, offline"
    if lang == "yaml":
        return "parsed: must be a YAML mapping"
    return f"shown only ({lang or 'text'})"


def main() -> None:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    print("# Every code block in README.md and docs/, and how CI runs it\n")
    print(
        "Produced by `python scripts/docs_blocks.py` from `docs/_hooks/codeblocks.py` (the "
        "marker grammar tests/test_docs.py uses); `file:line` is the opening fence.\n"
    )
    print("| block | lang | how CI runs it |\n|---|---|---|")
    counts: dict[str, int] = {}
    for path in files:
        for b in blocks(path):
            where = f"{path.relative_to(ROOT)}:{b.line}"
            kind = how(b.lang, b.marker)
            counts[kind.split(":")[0]] = counts.get(kind.split(":")[0], 0) + 1
            print(f"| {where} | {b.lang or 'text'} | {kind} |")
    total = sum(counts.values())
    print(f"\n{total} blocks: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
