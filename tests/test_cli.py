import json
import shutil
import subprocess
import sys
from pathlib import Path

from rlreward.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_cli_grades_a_jsonl_and_keeps_rows(tmp_path, capsys):
    out = tmp_path / "scored.jsonl"
    assert (
        main(
            [
                "grade",
                "-c",
                str(EXAMPLES / "reward.yaml"),
                str(EXAMPLES / "data.jsonl"),
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    src = [json.loads(line) for line in (EXAMPLES / "data.jsonl").read_text().splitlines()]
    assert len(rows) == len(src)
    for row, orig in zip(rows, src):
        assert {k: row[k] for k in orig} == orig
        assert set(row["grades"]) == {"relevance", "correctness", "reward"}
        assert 0.0 <= row["grades"]["reward"]["score"] <= 1.0
    printed = capsys.readouterr().out
    assert "reward" in printed and "err%" in printed and f"wrote {len(src)} rows" in printed


def test_cli_reports_errors_per_row_and_config_errors_cleanly(tmp_path, capsys):
    shutil.copy(EXAMPLES / "simple_graders.py", tmp_path)
    (tmp_path / "g.py").write_text(
        "def picky(response):\n    if response == '4':\n        raise ValueError('too short')\n    return 1.0\n"
    )
    (tmp_path / "spec.yaml").write_text("graders:\n  picky: {callable: 'g.py:picky'}\n")
    out = tmp_path / "o.jsonl"
    assert (
        main(
            [
                "grade",
                "-c",
                str(tmp_path / "spec.yaml"),
                str(EXAMPLES / "data.jsonl"),
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [r["grades"]["picky"] for r in rows if "error" in r["grades"]["picky"]]
    assert len(errors) == 1 and "too short" in errors[0]["error"]
    assert main(["grade", "-c", str(tmp_path / "nope.yaml"), str(EXAMPLES / "data.jsonl")]) == 2
    assert "reward spec file not found" in capsys.readouterr().err


def test_console_script_entry_point(tmp_path):
    out = tmp_path / "o.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlreward",
            "grade",
            "-c",
            str(EXAMPLES / "reward.yaml"),
            str(EXAMPLES / "data.jsonl"),
            "-o",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and "reward" in proc.stdout
