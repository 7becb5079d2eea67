"""Recipes with only OPENAI_BASE_URL set (a keyless vLLM/SGLang server) use the LLM judges;
their flags are all documented and ``--help`` writes nothing."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
DATA = ROOT / "examples" / "data.jsonl"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keyless(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", url)


def test_score_dataset_uses_the_judges_of_a_keyless_server(
    openai_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _keyless(monkeypatch, tmp_path, openai_server.url)
    rewards = _load("score_dataset").main([str(DATA), "--judge-model", "judge"])
    printed = capsys.readouterr().out
    assert "OPENAI_BASE_URL is set, no key" in printed
    assert "scoring with LLM judges (judge)" in printed
    n = len(DATA.read_text().splitlines())
    assert openai_server.n_requests == 3 * n and all(r is not None for r in rewards)
    assert {h["Authorization"] for h in openai_server.headers} == {"Bearer EMPTY"}


def test_grpo_trl_uses_the_judges_of_a_keyless_server(
    openai_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _keyless(monkeypatch, tmp_path, openai_server.url)
    metrics = _load("grpo_trl").main(
        ["--quick", "--judge-model", "judge", "--output-dir", str(tmp_path / "g")]
    )
    printed = capsys.readouterr().out
    assert "OPENAI_BASE_URL is set, no key" in printed
    assert "LLM judges relevance + harmfulness (judge) join the rule functions" in printed
    assert metrics["judges"] is True
    # the judges spec joins the rule functions as one nested member, "spec"
    assert metrics["history"][-1]["rlreward/spec/error_rate"] == 0.0
    assert openai_server.n_requests > 0
    assert {h["Authorization"] for h in openai_server.headers} == {"Bearer EMPTY"}


def test_dotenv_in_the_working_directory_is_read_by_the_recipe(
    openai_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.setenv(var, "x")  # set-then-delete: teardown undoes what .env adds
        monkeypatch.delenv(var)
    (tmp_path / ".env").write_text(f"OPENAI_BASE_URL={openai_server.url}\n")
    _load("score_dataset").main([str(DATA), "--judge-model", "judge"])
    assert "scoring with LLM judges (judge)" in capsys.readouterr().out
    assert openai_server.n_requests > 0


@pytest.mark.parametrize("name", ["score_dataset", "grpo_trl"])
def test_every_flag_has_help_and_help_writes_no_files(name: str, tmp_path: Path) -> None:
    parser = _load(name).build_parser()
    undocumented = [
        a.option_strings or [a.dest]
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()
    ]
    assert undocumented == []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(RECIPES / f"{name}.py"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "usage:" in done.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written, no output dir made
