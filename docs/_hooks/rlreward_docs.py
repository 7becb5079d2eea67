"""MkDocs hook: visible run markers and the pages generated from the code at build time.

- ``<!-- run: ... -->`` markers (see codeblocks.py) become a visible note above their block.
- ``<!-- generated: NAME -->`` on its own line is replaced by generated Markdown:
  ``reward-functions`` (the registry's table), ``errors`` (the exception tree),
  ``cli-help`` (``rlreward --help`` output), ``benchmarks`` (BENCHMARKS.md) and
  ``spec-schema`` (the reward spec's reference, from its JSON Schema).
"""

from __future__ import annotations

import dataclasses
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


def _help(args: list[str]) -> str:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "88"}
    run = subprocess.run(
        [sys.executable, "-m", "rlreward", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return run.stdout.rstrip()


def cli_help() -> str:
    """``rlreward --help`` and the help of every subcommand it lists."""
    top = _help(["--help"])
    found = re.search(r"\{([\w,-]+)\}", top)
    commands = found[1].split(",") if found else []
    parts = ["`rlreward --help`:", "", "```text", top, "```", ""]
    for command in commands:
        text = _help([command, "--help"])
        parts += [f"`rlreward {command} --help`:", "", "```text", text, "```", ""]
    return "\n".join(parts)


def benchmarks() -> str:
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    return text.split("\n", 1)[1] if text.startswith("# ") else text


def _type(prop: dict[str, Any]) -> str:
    """A JSON Schema property's type, short: ``string``, ``[number, number]``, ``Name``."""
    if "$ref" in prop:
        return f"`{prop['$ref'].rsplit('/', 1)[-1]}`"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(_type(p) for p in prop[key])
    kind = prop.get("type", "any")
    if kind == "array":
        if "prefixItems" in prop:
            return "[" + ", ".join(_type(p) for p in prop["prefixItems"]) + "]"
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map of {_type(prop['additionalProperties'])}"
    return str(kind)


def _properties(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, prop in (schema.get("properties") or {}).items():
        default = json.dumps(prop["default"]) if "default" in prop else "-"
        default = "required" if key in required else default
        rows.append(
            f"| `{key}` | {_md_cell(_type(prop))} | {_md_cell(default)} | "
            f"{_md_cell(prop.get('description', ''))} |"
        )
    return rows


def render_schema(schema: dict[str, Any]) -> str:
    """Markdown for a JSON Schema: the top-level keys, then one table per definition."""
    out = [schema.get("description", ""), "", *_properties(schema), ""]
    for name, sub in sorted((schema.get("$defs") or {}).items()):
        if sub.get("properties"):
            out += [f"### `{name}`", "", sub.get("description", ""), "", *_properties(sub), ""]
    out += ['??? note "The JSON Schema"', "", "    ```json"]
    out += [f"    {line}" for line in json.dumps(schema, indent=2).splitlines()]
    out += ["    ```", ""]
    return "\n".join(out)


def spec_schema() -> str:
    """The reward spec's reference, from ``rlreward.integrations.spec_schema.json_schema()``."""
    from rlreward.integrations.spec_schema import json_schema

    return render_schema(json_schema())


GENERATORS: dict[str, Callable[[], str]] = {
    "reward-functions": reward_functions_table,
    "errors": errors_tree,
    "cli-help": cli_help,
    "benchmarks": benchmarks,
    "spec-schema": spec_schema,
}


_NOTES = {  # marker kind -> (admonition type, title)
    "skip": ("note", "Not run in CI"),
    "no": ("note", "Not run in CI"),
    "by": ("info", "Run in CI by another test"),
    "server": ("info", "Needs a judge server"),
}


def _admonitions(markdown: str) -> str:
    out = []
    for line in markdown.splitlines():
        marker = parse_marker(line)
        if marker is not None:
            kind, title = _NOTES[marker.kind]
            body = {
                "by": f"`{marker.reason}`",
                "server": f"{marker.reason}. CI runs it against a local OpenAI-protocol server "
                "(`tests/openai_server.py`) with no API key.",
            }.get(marker.kind, marker.reason)
            out += [f'!!! {kind} "{title}"', f"    {body}", ""]
        out.append(line)
    return "\n".join(out) + "\n"


def on_config(config: Any) -> Any:
    """Refuse to document an rlreward other than this checkout's (another editable install)."""
    from mkdocs.exceptions import PluginError

    import rlreward

    found = Path(rlreward.__file__).resolve().parents[1]
    if found != ROOT:
        raise PluginError(
            f"the docs of {ROOT} would be generated from the rlreward in {found}; "
            f"run mkdocs with PYTHONPATH={ROOT} or install this checkout (pip install -e .)"
        )
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def generate(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown generated section {name!r}")
        return GENERATORS[name]()

    return _GENERATED.sub(generate, _admonitions(markdown))
