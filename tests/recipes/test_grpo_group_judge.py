"""recipes/grpo_group_judge.py --quick: GRPO on the embedded policy with a listwise group
judge (the local judge server, RankingJudge) plus rule functions, offline on CPU."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.openai_server import RankingJudge

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "grpo_group_judge.py"
BLOCK = re.compile(r'<response id="(\d+)">\n(.*?)\n</response>', re.DOTALL)


def _load():
    spec = importlib.util.spec_from_file_location("grpo_group_judge", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grpo_group_judge_quick_run_against_the_local_judge(
    openai_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    openai_server.responder = RankingJudge(bias=0.2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    metrics = _load().main(["--quick", "--judge-model", "judge", "--output-dir", str(tmp_path)])
    assert "listwise judge (judge) over groups of 2, 2 call(s) per group" in capsys.readouterr().out
    assert metrics["reward_trend"]["steps"] == 2
    last = metrics["history"][-1]
    # the spec (the listwise judge) joins the rule functions as one nested member, "spec"
    assert {"rewards/spec/mean", "rewards/length/mean", "rewards/coherence/mean"} <= set(last)
    assert last["rlreward/spec/error_rate"] == 0.0  # every group whole and judged
    # 2 steps x 2 groups of 2, debiased: 2 rotations per group (identical pairs: fewer;
    # the cache may answer repeats); each request holds one group's candidates
    assert 0 < len(openai_server.requests) <= 8
    for body in openai_server.requests:
        assert 1 <= len(BLOCK.findall(body["messages"][-1]["content"])) <= 2
    assert (tmp_path / "metrics.json").is_file()


def test_grpo_group_judge_without_an_endpoint_says_what_to_set(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(SystemExit, match="OPENAI_BASE_URL"):
        _load().main(["--quick"])


def test_every_flag_has_help_and_help_writes_no_files(tmp_path: Path) -> None:
    import argparse
    import os
    import subprocess
    import sys

    parser = _load().build_parser()
    assert all(
        (a.help or "").strip() for a in parser._actions if not isinstance(a, argparse._HelpAction)
    )
    env = {**os.environ, "PYTHONPATH": str(RECIPE.parents[1])}
    done = subprocess.run(
        [sys.executable, str(RECIPE), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "usage:" in done.stdout
    assert list(tmp_path.iterdir()) == []
