"""The MkDocs hook's generated sections, checked without a site build."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    path = ROOT / "docs" / "_hooks" / "rlreward_docs.py"
    spec = importlib.util.spec_from_file_location("rlreward_docs_hook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_reward_table_has_one_row_per_registered_function(hook: ModuleType) -> None:
    from rlreward.rewards.registry import RewardRegistry

    table = hook.reward_functions_table().splitlines()
    registry = RewardRegistry(shared=False)
    names = registry.list_reward_functions()
    assert len(table) == 2 + len(names)
    for name in names:
        row = next(line for line in table if line.startswith(f"| `{name}` |"))
        fn = registry.get_reward_function(name)
        assert ("higher is better" in row) == fn.higher_is_better, row
    assert "`target_min=20`" in next(r for r in table if r.startswith("| `length` |"))
    assert "| reference |" in next(r for r in table if r.startswith("| `math_answer` |"))


def test_errors_section_lists_every_public_exception(hook: ModuleType) -> None:
    import rlreward

    text = hook.errors_tree()
    assert "RLRewardError" in text and "├── ConfigError" in text
    public = [
        n
        for n in rlreward.__all__
        if isinstance(getattr(rlreward, n), type) and issubclass(getattr(rlreward, n), Exception)
    ]
    assert public
    for name in public:
        assert f"| `{name}` |" in text, name


def test_schema_renderer_tables_keys_definitions_and_refs(hook: ModuleType) -> None:
    schema = {
        "description": "A reward.",
        "type": "object",
        "required": ["graders"],
        "properties": {
            "graders": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Judge"}},
            "cache": {"anyOf": [{"type": "boolean"}, {"type": "string"}], "default": None},
        },
        "$defs": {
            "Judge": {
                "description": "An LLM judge.",
                "properties": {
                    "type": {"const": "relevance"},
                    "scale": {"type": "array", "prefixItems": [{"type": "number"}] * 2},
                },
            }
        },
    }
    md = hook.render_schema(schema)
    assert "| `graders` | map of `Judge` | required |" in md
    assert "| `cache` | boolean or string | null |" in md
    assert "### `Judge`" in md and '| `type` | `"relevance"` | - |' in md
    assert "[number, number]" in md
    assert '??? note "The JSON Schema"' in md


def test_spec_reference_is_generated_from_the_spec_schema(hook: ModuleType) -> None:
    from rlreward.integrations.spec_schema import json_schema

    text = hook.spec_schema()
    assert "pending" not in text.lower()
    assert "| `graders` |" in text and "required" in text
    # one table per definition with properties, and the schema itself in a fold
    for name, sub in json_schema()["$defs"].items():
        if sub.get("properties"):
            assert f"### `{name}`" in text
    assert "| `api_key_env` |" in text and "| `on_error` |" in text


def test_cli_help_covers_every_subcommand(hook: ModuleType) -> None:
    text = hook.cli_help()
    assert "`rlreward --help`:" in text and "`rlreward grade --help`:" in text
    assert "usage: rlreward grade" in text


def test_run_markers_become_visible_notes(hook: ModuleType) -> None:
    md = "text\n\n<!-- run: skip (needs a GPU) -->\n```bash\nnvidia-smi\n```\n"
    out = hook._admonitions(md)
    assert '!!! note "Not run in CI"\n    needs a GPU\n' in out
    by = hook._admonitions("<!-- run: by tests/x.py::test_y -->\n")
    assert '!!! info "Run in CI by another test"' in by and "`tests/x.py::test_y`" in by
    server = hook._admonitions("<!-- run: server (needs a judge server) -->\n")
    assert '!!! info "Needs a judge server"' in server and "tests/openai_server.py" in server
    with pytest.raises(ValueError, match="malformed run marker"):
        hook._admonitions("<!-- run: maybe -->\n")


def test_benchmarks_page_is_benchmarks_md_without_its_title(hook: ModuleType) -> None:
    text = hook.benchmarks()
    assert not text.startswith("# ")
    assert text.strip() in (ROOT / "BENCHMARKS.md").read_text()
