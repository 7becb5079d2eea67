"""StepLogger: one record per RL step, from TRL's logs plus the text-level reward's statistics."""

from __future__ import annotations

from typing import Any

from rlreward.checks import is_number

__all__ = ["StepLogger"]


class StepLogger:
    """One record per logged RL step: TRL's metrics plus, for PPO, the reward batch statistics."""

    def __init__(self, reward_model: Any | None = None) -> None:
        self.reward_model = reward_model
        self.records: list[dict[str, float]] = []

    def record(self, logs: dict[str, Any], step: int) -> None:
        if "train_runtime" in logs:
            return  # the end-of-training summary, not a step
        rec = {"step": float(step), **{k: float(v) for k, v in logs.items() if is_number(v)}}
        hist = getattr(self.reward_model, "history", None)
        if hist:  # the text-level reward's batches scored since the last log
            n = sum(h["n"] for h in hist)
            rec["reward/mean"] = sum(h["mean"] * h["n"] for h in hist) / n
            rec["reward/min"] = min(h["min"] for h in hist)
            rec["reward/max"] = max(h["max"] for h in hist)
            hist.clear()
        self.records.append(rec)

    def callback(self) -> Any:
        """A ``transformers.TrainerCallback`` feeding this logger."""
        from transformers import TrainerCallback

        owner = self

        class _StepLogCallback(TrainerCallback):
            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any
            ) -> None:
                if logs:
                    owner.record(dict(logs), state.global_step)

        return _StepLogCallback()
