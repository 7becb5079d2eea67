"""``rlreward audit``: verdicts, PNG, JSON, and exit status 0 / 1 / 2 on clean, hacked, bad logs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rlreward.cli import main
from rlreward.monitoring.records import write_record
from rlreward.monitoring.synthetic import synthetic_run
from tests.monitoring.test_detectors import falls_after_onset, rising, run

ROOT = Path(__file__).resolve().parents[2]


def write_log(path, records):
    for r in records:
        write_record(path, r)
    return path


def clean_log(tmp_path):
    records = run(
        reward_mean=rising,
        reference_mean=rising,
        monitor_relevance=lambda s: 0.6,
        length_mean=lambda s: 20,
        rank_corr=lambda s: 0.8,
        sd=0.05,
    )
    return write_log(tmp_path / "clean.jsonl", records)


def hacked_log(tmp_path):
    return write_log(tmp_path / "hacked.jsonl", synthetic_run(0, hack="monitor_drop", onset=30))


def test_clean_log_exits_0_with_every_verdict_and_a_png(tmp_path, capsys):
    log = clean_log(tmp_path)
    assert main(["audit", str(log)]) == 0
    out = capsys.readouterr().out
    assert "60 steps (1-60) from 60 lines" in out
    assert out.count("\nok    ") == 5 and "ALERT" not in out and "no detector fired" in out
    png = Path(f"{log}.audit.png")  # beside the log by default
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_hacked_log_exits_1_naming_signal_step_and_evidence(tmp_path, capsys):
    log = hacked_log(tmp_path)
    report = tmp_path / "out" / "verdicts.json"
    png = tmp_path / "out" / "curves.png"
    assert main(["audit", str(log), "--json", str(report), "--png", str(png)]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("ALERT monitor_drop:monitor/relevance"))
    step = int(line.split("at step ")[1].split(":")[0])
    assert step > 30 and " SE" in line and "over the first 8 steps" in line
    data = json.loads(report.read_text())
    assert data["fired"] is True and data["steps"] == 60
    drop = next(v for v in data["verdicts"] if v["detector"] == "monitor_drop")
    assert drop == {**drop, "fired": True, "step": step, "signal": "monitor/relevance"}
    assert png.is_file() and not Path(f"{log}.audit.png").exists()


def test_eval_and_summary_lines_are_skipped_and_line_order_is_the_step(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    lines = []
    for r in synthetic_run(1, "flat", steps=30):
        lines.append({"r": r.reward_mean, "relevance": r.monitors["relevance"]})
        if r.step % 10 == 0:
            lines.append({"eval_loss": 0.1})  # an eval line: no reward column
    lines.append({"train_runtime": 12.5})
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code = main(["audit", str(log), "--reward", "r", "--monitor", "relevance", "--no-png"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "30 steps (1-30) from 34 lines, 4 skipped (no 'r'); steps are the line order" in out
    assert "monitor/relevance <- relevance" in out


@pytest.mark.parametrize(
    ("lines", "args", "message"),
    [
        (
            [{"step": 1, "loss": 0.3, "reward": 0.5}],
            [],
            r"column 'monitor/reward_mean' \(--reward\) is in no line of .*; columns present: "
            r"loss, reward, step; name the column with --reward COL",
        ),
        (
            [{"step": s, "reward": 0.1 * s} for s in range(1, 20)],
            ["--reward", "reward", "--reference", "gold"],
            r"column 'gold' \(--reference\) is in no line",
        ),
        (
            [{"step": s, "reward": 0.1 * s, "kl": 0.0} for s in range(1, 6)],
            ["--reward", "reward", "--kl", "kl"],
            r"5 usable steps \(lines with a number under 'reward'; 0 lines skipped\); the "
            r"detectors need at least 8",
        ),
        (
            [{"step": s, "reward": 0.1 * s if s != 7 else "n/a"} for s in range(1, 20)],
            ["--reward", "reward"],
            r"log.jsonl:7: column 'reward' is \"n/a\" \(str\), not a number",
        ),
        (
            [{"step": s, "reward": 0.1, "length": True} for s in range(1, 20)],
            ["--reward", "reward", "--length", "length"],
            r"log.jsonl:1: column 'length' is true \(bool\), not a number",
        ),
        (
            [{"step": s % 12, "reward": 0.1} for s in range(1, 20)],
            ["--reward", "reward"],
            r"log.jsonl:12: step 0 does not come after step 11 \(line 11\)",
        ),
        (
            [{"reward": 0.1 * s} for s in range(1, 20)],
            ["--reward", "reward", "--step", "global_step"],
            r"column 'global_step' \(--step\) is in no line",
        ),
        (
            [{"step": s, "reward": 0.1 * s} for s in range(1, 20)],
            ["--reward", "reward"],
            r"nothing to judge: divergence:reference: not checked: no step has both",
        ),
    ],
)
def test_unusable_logs_exit_2_with_the_reason(tmp_path, capsys, lines, args, message):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["audit", str(log), "--no-png", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlreward: error: ")
    assert re.search(message, err), err


def test_a_line_that_is_not_json_or_a_missing_file_exits_2(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "monitor/reward_mean": 0.5}\n{"step": 2,\n')
    assert main(["audit", str(log), "--no-png"]) == 2
    assert "log.jsonl:2: invalid JSON" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "nope.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err


def test_python_m_rlreward_audit_in_a_subprocess(tmp_path):
    log = hacked_log(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "rlreward", "audit", str(log), "--no-png"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "ALERT monitor_drop:monitor/relevance" in done.stdout
    help_text = subprocess.run(
        [sys.executable, "-m", "rlreward", "--help"], capture_output=True, text=True, env=env
    ).stdout
    assert "audit    run the reward-hacking detectors" in help_text


def test_divergence_in_a_log_written_by_hand(tmp_path, capsys):
    """Columns of another trainer's names, a reference that turns at step 30."""
    records = run(reward_mean=rising, reference_mean=falls_after_onset)
    log = tmp_path / "other.jsonl"
    log.write_text(
        "".join(
            json.dumps(
                {"global_step": r.step, "train/reward": r.reward_mean, "gold": r.reference_mean}
            )
            + "\n"
            for r in records
        )
    )
    args = ["audit", str(log), "--step", "global_step", "--reward", "train/reward"]
    assert main([*args, "--reference", "gold", "--no-png"]) == 1
    out = capsys.readouterr().out
    assert "ALERT divergence:reference: at step" in out and "reference_mean <- gold" in out


def test_the_docs_show_the_output_the_example_gives(capsys, monkeypatch):
    """docs/reward-hacking.md prints the audit of examples/trl_grpo_log.jsonl: keep it true."""
    text = (ROOT / "docs" / "reward-hacking.md").read_text()
    shown = re.search(r"```text\n(examples/trl_grpo_log.jsonl: .*?)```", text, re.S)[1]
    monkeypatch.chdir(ROOT)
    args = ["audit", "examples/trl_grpo_log.jsonl", "--reward", "reward"]
    args += ["--monitor", "rewards/relevance/mean", "--length", "completions/mean_length"]
    args += ["--kl", "kl", "--zero-spread", "frac_reward_zero_std", "--no-png"]
    assert main(args) == 1
    assert capsys.readouterr().out == shown
