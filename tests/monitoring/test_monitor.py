"""RewardMonitor.observe with a plain reference function (the trainer's side played here)."""

import json
import logging
import random

import pytest

from rlreward.errors import ConfigError
from rlreward.monitoring.detectors import FidelityFloor
from rlreward.monitoring.monitor import RewardMonitor
from rlreward.monitoring.records import read_records


def words_reference(rows):
    """A reference that grades each row by itself: length share, a keyword monitor."""
    return {
        "reference": [min(len(r["response"].split()) / 10, 1.0) for r in rows],
        "on_topic": [1.0 if "sun" in r["response"] else 0.0 for r in rows],
        "brevity": [None if r["response"] == "" else 1.0 for r in rows],
    }


def batch(step, n=16):
    rng = random.Random(step)
    rows = [
        {"prompt": f"q{i}", "response": " ".join(["sun"] * rng.randint(1, 12)), "id": i}
        for i in range(n)
    ]
    return rows


def trained_from(rows):
    return [min(len(r["response"].split()) / 10, 1.0) for r in rows]  # agrees with the reference


def test_checks_every_kth_step_and_logs_under_the_prefix(tmp_path):
    path = tmp_path / "out" / "monitor.jsonl"
    monitor = RewardMonitor(
        words_reference, every=2, sample_size=8, monitor_names=["on_topic"], jsonl_path=path
    )
    rows = batch(1)
    assert monitor.observe(1, rows, trained_from(rows)) == {}  # not a checked step
    metrics = monitor.observe(2, rows, trained_from(rows), kl=0.02, entropy=1.5)
    assert set(metrics) == {
        "monitor/reward_mean",
        "monitor/reference_mean",
        "monitor/rank_corr",
        "monitor/gap",
        "monitor/monitor/on_topic",
        "monitor/component/brevity",
        "monitor/length_mean",
        "monitor/kl",
        "monitor/entropy",
        "monitor/rows_scored",
        "monitor/alerts",
    }
    assert metrics["monitor/rows_scored"] == 8 and metrics["monitor/monitor/on_topic"] == 1.0
    assert metrics["monitor/rank_corr"] == pytest.approx(1.0)  # same ordering as the reference
    assert metrics["monitor/gap"] == pytest.approx(0.0)
    words = [len(r["response"].split()) for r in rows]
    assert metrics["monitor/length_mean"] == pytest.approx(sum(words) / len(words))
    (record,) = read_records(path)
    assert record.step == 2 and record.to_metrics() == {
        k: v for k, v in metrics.items() if k != "monitor/alerts"
    }
    assert monitor.cost.reference_calls == 1 and monitor.cost.rows_scored == 8


def test_the_subsample_is_bounded_seeded_and_reported():
    seen = []

    def reference(rows):
        seen.append([r["id"] for r in rows])
        return {"reference": [0.5] * len(rows)}

    for _ in range(2):
        monitor = RewardMonitor(reference, sample_size=5, seed=7)
        rows = batch(3, n=40)
        monitor.observe(1, rows, trained_from(rows))
    assert len(seen[0]) == 5 and seen[0] == seen[1]  # the same seed picks the same rows
    assert len(set(seen[0])) == 5
    small = RewardMonitor(reference, sample_size=100)
    small.observe(1, batch(1, n=3), [0.1, 0.2, 0.3])
    assert small.cost.rows_scored == 3  # never more rows than the step has


def test_failed_grades_are_left_out_not_scored():
    def reference(rows):
        return {"reference": [None] * len(rows)}

    monitor = RewardMonitor(reference, sample_size=4)
    rows = batch(1, n=4)
    metrics = monitor.observe(1, rows, [None, 0.5, float("nan"), 0.7])
    assert metrics["monitor/reward_mean"] == pytest.approx(0.6)  # None and NaN left out
    assert "monitor/reference_mean" not in metrics and "monitor/rank_corr" not in metrics
    assert monitor.best_step is None


def test_zero_spread_share_of_groups():
    monitor = RewardMonitor(words_reference, sample_size=4)
    rows = batch(1, n=8)
    rewards = [1.0, 1.0, 0.0, 1.0, 0.5, 0.5, None, 0.2]
    groups = ["a", "a", "b", "b", "c", "c", "d", "d"]  # d has one scored row: not counted
    metrics = monitor.observe(1, rows, rewards, group_ids=groups)
    assert metrics["monitor/zero_spread_groups"] == pytest.approx(2 / 3)


def hacking_reference(rows):
    """The trained reward counts words; the reference stops agreeing after step 5."""
    return {"reference": [r["truth"] for r in rows]}


def hacked_batch(step, n=32):
    rng = random.Random(step)
    rows = []
    for i in range(n):
        x = rng.random()
        truth = x if step <= 5 else rng.random()  # unrelated to the trained reward later
        rows.append({"response": "w " * (i + 1), "truth": truth, "x": x})
    return rows


@pytest.mark.parametrize("on_alert", ["log", "stop", "best_checkpoint"])
def test_an_alert_is_raised_once_and_does_what_the_run_asked(on_alert, caplog):
    monitor = RewardMonitor(
        hacking_reference, sample_size=32, on_alert=on_alert, detectors=[FidelityFloor()]
    )
    stopped_at = None
    with caplog.at_level(logging.WARNING, logger="rlreward.monitoring.monitor"):
        for step in range(1, 13):
            rows = hacked_batch(step)
            metrics = monitor.observe(step, rows, [r["x"] for r in rows])
            if monitor.should_stop and stopped_at is None:
                stopped_at = step
    (alert,) = monitor.alerts
    assert alert.name == "fidelity_floor:rank_corr" and alert.step == 8  # steps 6, 7, 8 below 0.5
    assert metrics["monitor/alerts"] == 1.0
    assert [r.getMessage() for r in caplog.records if "alert" in r.getMessage()] == [
        f"reward hacking alert ({on_alert}): " + alert.format()
    ]
    assert stopped_at == (None if on_alert == "log" else 8)
    assert monitor.best_step is not None and monitor.best_step <= 12
    summary = json.loads(json.dumps(monitor.summary()))
    assert summary["alerts"][0]["step"] == 8 and summary["checks"] == 12


def test_best_step_follows_the_reference_mean():
    means = iter([0.2, 0.5, 0.4, 0.7, 0.6])

    def reference(rows):
        m = next(means)
        return {"reference": [m] * len(rows)}

    monitor = RewardMonitor(reference)
    news = []
    for step in range(1, 6):
        rows = batch(step, n=4)
        monitor.observe(step, rows, trained_from(rows))
        news.append(monitor.new_best)
    assert monitor.best_step == 4 and monitor.best_reference == pytest.approx(0.7)
    assert news == [True, True, False, True, False]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"ref": [1.0]}, r"returned no column \['reference'\]; it returned \['ref'\]"),
        ({"reference": [1.0, 2.0]}, r"column 'reference' has 2 values for 1 rows"),
        ({"reference": ["high"]}, r"reference column 'reference'\[0\] = 'high' is not a number"),
        ([1.0], r"reference returned list; it must return a mapping"),
    ],
)
def test_a_bad_reference_answer_is_a_clear_error(answer, message):
    monitor = RewardMonitor(lambda rows: answer, sample_size=1)
    with pytest.raises(ConfigError, match=message):
        monitor.observe(1, batch(1, n=1), [0.5])


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="every = 0 is not allowed; use an integer >= 1"):
        RewardMonitor(words_reference, every=0)
    with pytest.raises(ConfigError, match="on_alert = 'halt' is not allowed"):
        RewardMonitor(words_reference, on_alert="halt")
    with pytest.raises(ConfigError, match="'reference' is the reference_key"):
        RewardMonitor(words_reference, monitor_names=["reference"])
    with pytest.raises(ConfigError, match="must be a callable"):
        RewardMonitor({"reference": [1.0]})
    monitor = RewardMonitor(words_reference, monitor_names=["missing"])
    with pytest.raises(ConfigError, match=r"no column \['missing'\]"):
        monitor.observe(1, batch(1), trained_from(batch(1)))
    with pytest.raises(ConfigError, match="3 trained rewards for 16 rows"):
        monitor.observe(1, batch(1), [0.1, 0.2, 0.3])
    with pytest.raises(
        ConfigError, match=r"row 0 has no text under 'response' \(keys: \['prompt'\]\)"
    ):
        monitor.observe(1, [{"prompt": "q"}], [0.1])


def test_the_jsonl_holds_one_run(tmp_path):
    path = tmp_path / "monitor.jsonl"
    path.write_text('{"step": 40, "monitor/reward_mean": 0.9}\n')  # a previous run's file
    monitor = RewardMonitor(words_reference, jsonl_path=path)
    for step in (1, 2):
        rows = batch(step)
        monitor.observe(step, rows, trained_from(rows))
    assert [r.step for r in read_records(path)] == [1, 2]


def test_length_counts_words_of_text_or_chat_messages():
    monitor = RewardMonitor(
        lambda rows: {"reference": [1.0] * len(rows)}, response_key="completion"
    )
    rows = [
        {"completion": "one two three"},
        {"completion": [{"role": "assistant", "content": "four five six seven eight"}]},
    ]
    assert monitor.observe(1, rows, [0.1, 0.2])["monitor/length_mean"] == 4.0
    with pytest.raises(ConfigError, match=r"row 0 has no text under 'completion'"):
        monitor.observe(2, [{"completion": [{"role": "assistant"}]}], [0.1])
