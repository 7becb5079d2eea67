"""``--help`` of a recipe prints its usage and writes nothing (issue 12)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_ppo_verl_help_prints_usage_and_writes_nothing(tmp_path: Path, flag: str) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DATA", "MODEL", "SPEC", "N_GPUS")}
    env["HOME"] = str(home)
    run = subprocess.run(
        ["bash", str(ROOT / "recipes" / "ppo_verl.sh"), flag],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "Usage: bash recipes/ppo_verl.sh" in run.stdout
    assert "MODEL" in run.stdout and "N_GPUS" in run.stdout
    assert not run.stderr
    assert list(home.iterdir()) == [] and list(work.iterdir()) == []
