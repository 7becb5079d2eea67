"""recipes/score_dataset.py: rule functions without a key, LLM judges with one (local server)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DATA = Path(__file__).resolve().parents[2] / "examples" / "data.jsonl"


def _recipe():
    spec = importlib.util.spec_from_file_location("score_dataset", RECIPES / "score_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_key_it_says_so_and_uses_rule_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    out = tmp_path / "scored.jsonl"
    rewards = _recipe().main([str(DATA), "-o", str(out)])
    printed = capsys.readouterr().out
    assert "OPENAI_API_KEY is not set: scoring with offline rule functions" in printed
    n = len(DATA.read_text().splitlines())
    assert len(rewards) == n and all(r is not None and 0.0 <= r <= 1.0 for r in rewards)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["scores"]["reward"]["score"] == pytest.approx(rewards[0])
    # each column under its grader's true name: safety (higher = safer) is not "harmfulness"
    assert {"safety", "semantic_relevance", "rouge"} <= set(rows[0]["scores"])
    assert "harmfulness" not in rows[0]["scores"]


def test_with_a_key_it_uses_the_llm_judges(
    openai_server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    rewards = _recipe().main([str(DATA), "--judge-model", "judge"])
    assert "scoring with LLM judges (judge)" in capsys.readouterr().out
    n = len(DATA.read_text().splitlines())
    assert openai_server.n_requests == 3 * n  # three judges per row, nothing else
    assert len(rewards) == n and all(r is not None for r in rewards)
