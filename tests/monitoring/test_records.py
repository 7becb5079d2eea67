"""Step records: the logged monitor/ keys and the JSONL round trip."""

import json

import pytest

from rlreward.errors import DatasetError
from rlreward.monitoring.records import PREFIX, StepRecord, read_records, write_record


def full_record(step=3):
    return StepRecord(
        step=step,
        reward_mean=0.8,
        reference_mean=0.6,
        rank_corr=0.7,
        gap=0.2,
        components={"length": 0.9, "format": 1.0},
        monitors={"relevance": 0.55},
        length_mean=21.5,
        kl=0.04,
        entropy=1.3,
        zero_spread_groups=0.25,
        rows_scored=32,
    )


def test_every_logged_key_is_under_the_one_prefix():
    metrics = full_record().to_metrics()
    assert all(k.startswith(PREFIX) for k in metrics)
    assert metrics == {
        "monitor/reward_mean": 0.8,
        "monitor/reference_mean": 0.6,
        "monitor/rank_corr": 0.7,
        "monitor/gap": 0.2,
        "monitor/length_mean": 21.5,
        "monitor/kl": 0.04,
        "monitor/entropy": 1.3,
        "monitor/zero_spread_groups": 0.25,
        "monitor/rows_scored": 32.0,
        "monitor/component/length": 0.9,
        "monitor/component/format": 1.0,
        "monitor/monitor/relevance": 0.55,
    }


def test_values_not_measured_are_left_out_not_invented():
    metrics = StepRecord(step=1, reward_mean=0.5).to_metrics()
    assert metrics == {"monitor/reward_mean": 0.5}


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "sub" / "monitor.jsonl"
    records = [full_record(1), StepRecord(step=2, reward_mean=0.1, monitors={"r": 0.2})]
    for r in records:
        write_record(path, r)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["step"] == 1
    assert read_records(path) == records


def test_value_by_signal_name():
    r = full_record()
    assert r.value("reference_mean") == 0.6
    assert r.value("monitor/relevance") == 0.55 and r.value("monitor/nope") is None
    assert r.value("component/length") == 0.9
    with pytest.raises(KeyError, match="unknown signal 'rewrd'"):
        r.value("rewrd")


def test_a_bad_line_names_its_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "monitor/reward_mean": 0.5}\n{"step": 2, "monitor/kl": "high"}\n')
    with pytest.raises(DatasetError, match=r"m.jsonl:2: 'monitor/kl' must be a finite number"):
        read_records(path)
    path.write_text('{"monitor/reward_mean": 0.5}\n')
    with pytest.raises(DatasetError, match=r":1: 'step' must be an integer, got None"):
        read_records(path)
