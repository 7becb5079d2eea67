"""Reward hacking seen while it happens: per-step records, detectors, the monitor, the audit.

``RewardMonitor`` scores a bounded random subsample of every k-th step's rollouts with a
reference reward and its monitors, logs ``monitor/...`` metrics and a per-step JSONL, and
runs the detectors online; ``rlreward audit LOG`` runs the same detectors on any
trainer's per-step JSONL after the fact. See docs/reward-hacking.md.
"""

from rlreward.monitoring.detectors import (
    Detector,
    Divergence,
    FidelityFloor,
    GroupCollapse,
    LengthDrift,
    MonitorDrop,
    Verdict,
    default_detectors,
    run_detectors,
)
from rlreward.monitoring.monitor import MonitorCost, RewardMonitor
from rlreward.monitoring.records import PREFIX, StepRecord, read_records, write_record

__all__ = [
    "PREFIX",
    "Detector",
    "Divergence",
    "FidelityFloor",
    "GroupCollapse",
    "LengthDrift",
    "MonitorCost",
    "MonitorDrop",
    "RewardMonitor",
    "StepRecord",
    "Verdict",
    "default_detectors",
    "read_records",
    "run_detectors",
    "write_record",
]
