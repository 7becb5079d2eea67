"""scripts/bench_detectors.py runs and prints its table (a few runs; BENCHMARKS.md untouched)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_detectors_prints_its_table():
    before = (ROOT / "BENCHMARKS.md").read_text()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_detectors.py"),
            "--runs",
            "3",
            "--no-append",
            "--set",
            "monitor_drop.window=4",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "| `MonitorDrop(baseline=8, window=4, z=3.0, persist=2)` |" in done.stdout
    assert "| any of the five |" in done.stdout
    assert (ROOT / "BENCHMARKS.md").read_text() == before
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_detectors.py"), "--set", "nope.z=1"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert bad.returncode != 0 and "no field 'z' in detector 'nope'" in bad.stderr
