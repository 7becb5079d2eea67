"""Labelled progress bars for transformers Trainers (reward model, policy warm-up, PPO).

transformers' own ``ProgressCallback`` draws an unlabelled bar and writes every log dict
(``{'loss': ..., 'grad_norm': ...}``) under it at each logging step; TRL's PPO prints a
metrics table per step. ``use_labelled_progress`` swaps those for one bar named after the
stage, with the latest loss (or reward) as its postfix, so a user sees which stage runs
and how far it is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LabelledProgress", "use_labelled_progress"]

#: log keys shown in the bar's postfix, first found wins
_POSTFIX_KEYS = ("loss", "objective/scores", "reward", "train_loss")


class LabelledProgress:
    """A ``TrainerCallback``-shaped object: one tqdm bar labelled ``desc`` over the max steps."""

    def __init__(self, desc: str, *, enabled: bool = True) -> None:
        self.desc = desc
        self.enabled = enabled
        self.bar: Any = None

    # transformers calls these by name; the base class's no-op methods cover the rest
    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        from tqdm.auto import tqdm

        if self.enabled:
            self.bar = tqdm(total=state.max_steps or None, desc=self.desc, unit="step")

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if self.bar is None or not logs:
            return
        key = next((k for k in _POSTFIX_KEYS if k in logs), None)
        if key is not None and isinstance(logs[key], (int, float)):
            self.bar.set_postfix({key.split("/")[-1]: f"{float(logs[key]):.4f}"}, refresh=False)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def use_labelled_progress(trainer: Any, desc: str, *, enabled: bool = True) -> Any:
    """Replace ``trainer``'s progress/printer callbacks by one labelled bar; returns trainer."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(cb)

    class _Callback(LabelledProgress, TrainerCallback):
        pass

    trainer.add_callback(_Callback(desc, enabled=enabled))
    return trainer
