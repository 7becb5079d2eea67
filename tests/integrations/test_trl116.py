"""The TRL adapter against trl 1.16 (GRPOTrainer, AsyncGRPOTrainer's reward contract).

The main environment keeps trl 1.12 (the last with PPOTrainer, the ``train`` extra pins
it), so trl 1.16 is installed apart, without its dependencies, into ``.trl116`` (what
``.ci/run`` does: ``pip install --no-deps --target .trl116 trl==1.16.0``) and run in a
subprocess with ``PYTHONPATH=.trl116`` (``trl116_checks.py``).
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRL116 = ROOT / ".trl116"

pytestmark = pytest.mark.skipif(
    not (TRL116 / "trl").is_dir(),
    reason=(
        f"trl 1.16 is not installed in {TRL116}; install it apart from the main environment "
        "with: pip install --no-deps --target .trl116 trl==1.16.0 (as .ci/run does)"
    ),
)


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("trl116") / "checks.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TRL116), str(ROOT)]),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integrations.trl116_checks", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_the_checks_ran_against_trl_116(checks):
    assert checks["trl"].startswith("1.16.")
    assert Path(checks["trl_file"]).is_relative_to(TRL116)


def test_grpo_trains_on_reward_aevaluate_row_by_row(checks):
    """trl_host.compare raised in the child on any mismatch; here: what each case exercised."""
    runs = checks["grpo"]
    assert set(runs) == {
        "abstaining/combined",
        "failing/combined",
        "failing/per_grader",
        "nested/combined",
        "zero_bounds/per_grader",
        "callable/combined",
    }
    for name, run in runs.items():
        for want, got, unscorable in zip(run["expected"], run["trl"], run["unscorable"]):
            assert unscorable == (want is None), name
            if want is not None:
                assert got == pytest.approx(want, abs=1e-6), name
        assert run["monitor_logged"], name  # monitors/words/mean reached TRL 1.16's logs
    assert None in runs["failing/combined"]["expected"]  # unscorable rows: advantage 0
    assert runs["failing/per_grader"]["unscorable"] == runs["failing/combined"]["unscorable"]


def test_async_grpo_combined_scores_the_reward_in_a_spawned_child(checks):
    """AsyncRolloutWorker pickled the functions, spawned the child, _score_group summed them."""
    for name in ("abstaining/combined", "failing/combined"):
        run = checks["async"][name]
        assert run["functions"] == ["rewards/reward"]
        for want, got, adv in zip(run["expected"], run["trained"], run["advantages"]):
            if want is None:  # unscorable: NaN reward, advantage 0
                assert got is None and adv == 0.0
            else:
                assert got == pytest.approx(want, abs=1e-12)
    assert None in checks["async"]["failing/combined"]["expected"]


def test_async_grpo_per_grader_is_not_the_reward(checks):
    """AsyncGRPOTrainer passes no reward_weights: per-grader functions are summed with weight
    1, which is not the reward (the reason combined is the default and the functions warn)."""
    run = checks["async"]["zero_bounds/per_grader"]
    assert len(run["functions"]) == 3
    assert run["weighted_sum"] == pytest.approx(run["expected"], abs=1e-12)  # weights would fix it
    assert all(not math.isclose(t, e) for t, e in zip(run["trained"], run["expected"]))
