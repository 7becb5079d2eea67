"""MkDocs hook: visible run markers and the pages generated from the code at build time.

- ``<!-- run: ... -->`` markers (see codeblocks.py) become a visible note above their block.
- ``<!-- generated: NAME -->`` on its own line is replaced by generated Markdown:
  ``reward-functions`` (the registry's table), ``errors`` (the exception tree),
  ``cli-help`` (``rlreward --help`` output), ``benchmarks`` (BENCHMARKS.md) and
  ``spec-schema`` (the reward spec's JSON Schema; a placeholder until the spec exposes it).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from codeblocks import parse_marker  # noqa: E402

_GENERATED = re.compile(r"^<!--\s*generated:\s*(?P<name>[\w-]+)\s*-->\s*$", re.MULTILINE)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reward_functions_table() -> str:
    """One row per registered reward function: range, direction, inputs, parameters."""
    from rlreward.rewards.registry import RewardRegistry

    registry = RewardRegistry(shared=False)
    rows = [
        "| name | range | direction | needs | uses | parameters (defaults) | what it scores |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in registry.list_reward_functions():
        fn = registry.get_reward_function(name)
        low, high = fn.score_range
        needs = [w for w in ("prompt", "reference") if getattr(fn, f"needs_{w}")]
        uses = [w for w in ("prompt", "reference") if getattr(fn, f"uses_{w}")]
        params = (
            [f"`{f.name}={getattr(fn, f.name)!r}`" for f in dataclasses.fields(fn) if f.init]
            if dataclasses.is_dataclass(fn)
            else []
        )
        doc = (inspect.getdoc(type(fn)) or "").splitlines()
        rows.append(
            f"| `{name}` | [{low:g}, {high:g}] | "
            f"{'higher is better' if fn.higher_is_better else 'lower is better'} | "
            f"{', '.join(needs) or '-'} | {', '.join(uses) or '-'} | "
            f"{_md_cell(', '.join(params)) or '-'} | {_md_cell(doc[0] if doc else '')} |"
        )
    return "\n".join(rows)


def errors_tree() -> str:
    """The hierarchy drawn in errors.py plus every public exception type."""
    import rlreward
    from rlreward import errors

    doc = inspect.getdoc(errors) or ""
    tree = doc.split("::", 1)[1].strip("\n") if "::" in doc else doc
    out = ["```text", inspect.cleandoc(tree), "```", "", "| exception | bases | raised when |"]
    out.append("|---|---|---|")
    for name in rlreward.__all__:
        if name.startswith("_"):
            continue
        obj = getattr(rlreward, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            bases = ", ".join(f"`{b.__name__}`" for b in obj.__bases__)
            first = (inspect.getdoc(obj) or "").splitlines()
            out.append(f"| `{name}` | {bases} | {_md_cell(first[0] if first else '')} |")
    return "\n".join(out)


def cli_help() -> str:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    parts = []
    for args in (["--help"], ["grade", "--help"]):
        run = subprocess.run(
            [sys.executable, "-m", "rlreward", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            check=True,
        )
        parts += [f"`rlreward {' '.join(args)}`:", "", "```text", run.stdout.rstrip(), "```", ""]
    return "\n".join(parts)


def benchmarks() -> str:
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    return text.split("\n", 1)[1] if text.startswith("# ") else text


def spec_schema() -> str:
    """The reward spec's JSON Schema, once rlreward.integrations.spec exposes one.

    Wiring (for the lead): give ``rlreward.integrations.spec`` a ``spec_json_schema()``
    (or ``RewardSpec.json_schema()``) returning a dict; this page then renders it.
    """
    spec = importlib.import_module("rlreward.integrations.spec")
    fn: Callable[[], Any] | None = getattr(spec, "spec_json_schema", None) or getattr(
        spec.RewardSpec, "json_schema", None
    )
    if fn is None:
        return (
            '!!! warning "Generated reference pending"\n'
            "    This section is generated from the reward spec's JSON Schema once\n"
            "    `rlreward.integrations.spec` exposes `spec_json_schema()`; until then the\n"
            "    annotated examples below are the reference.\n"
        )
    schema = fn()
    lines = ["| key | type | description |", "|---|---|---|"]
    for key, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type") or " / ".join(
            str(p.get("type", p.get("$ref", "?"))) for p in prop.get("anyOf", [])
        )
        about = _md_cell(prop.get("description", ""))
        lines.append(f"| `{key}` | {_md_cell(str(kind))} | {about} |")
    return "\n".join([*lines, "", "```json", json.dumps(schema, indent=2), "```"])


GENERATORS: dict[str, Callable[[], str]] = {
    "reward-functions": reward_functions_table,
    "errors": errors_tree,
    "cli-help": cli_help,
    "benchmarks": benchmarks,
    "spec-schema": spec_schema,
}


def _admonitions(markdown: str) -> str:
    out = []
    for line in markdown.splitlines():
        marker = parse_marker(line)
        if marker is not None:
            kind = "info" if marker.kind == "by" else "note"
            title = "Run in CI by another test" if marker.kind == "by" else "Not run in CI"
            body = f"`{marker.reason}`" if marker.kind == "by" else marker.reason
            out += [f'!!! {kind} "{title}"', f"    {body}", ""]
        out.append(line)
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def generate(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown generated section {name!r}")
        return GENERATORS[name]()

    return _GENERATED.sub(generate, _admonitions(markdown))
