"""RewardLoggingCallback: rlreward's per-grader diagnostics in a transformers Trainer's logs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from transformers import TrainerCallback

from rlreward.errors import ConfigError
from rlreward.integrations._rows import trl_rows
from rlreward.integrations._runtime import run_sync
from rlreward.integrations._trl_state import RewardGroup, RewardStats

__all__ = ["RewardLoggingCallback"]


def _ours(f: Any) -> bool:
    return isinstance(getattr(f, "group", None), RewardGroup)


def _funcs(reward_funcs: Any) -> list[Any]:
    """The functions from make_reward_funcs in ``reward_funcs`` (RewardFuncs, a list or one)."""
    if _ours(reward_funcs):
        items: Iterable[Any] = [reward_funcs]
    elif isinstance(getattr(reward_funcs, "funcs", None), list):  # RewardFuncs
        items = reward_funcs.funcs
    elif isinstance(reward_funcs, Iterable) and not isinstance(reward_funcs, (str, bytes)):
        items = reward_funcs
    else:
        items = []
    funcs = [f for f in items if _ours(f)]
    if not funcs:
        raise ConfigError(
            "RewardLoggingCallback needs the functions from make_reward_funcs(...) "
            f"(the RewardFuncs or its .funcs), got {reward_funcs!r:.120}"
        )
    return funcs


class RewardLoggingCallback(TrainerCallback):
    """Adds ``<prefix>/<name>/<stat>`` to the logs: mean, std, error_rate, abstain_rate,
    latency_s, cache_hit_rate.

    ``<name>`` is every grader and monitor (raw scores, as the grader returned them),
    every aggregator (the reward's value among them), and ``<grader>__aligned`` for each
    grader the reward weighs (mean/std of the values it weighed, on the rows it scored).
    ``abstain_rate`` is the share of rows the column did not apply to; ``error_rate``
    the share of the others that failed. Values cover the reward
    calls since the previous log; on an evaluation log the keys get TRL's ``eval_``
    prefix. They land in ``state.log_history``; to send them to reporters (W&B,
    TensorBoard) as well, add the callback with ``install``, which places it before the
    reporting callbacks.

    ``grade(prompts, completions, **columns)`` grades evaluation generations with the
    same reward and returns (and logs at the next log) ``eval_<prefix>/...`` metrics.
    """

    def __init__(self, reward_funcs: Any, prefix: str = "rlreward") -> None:
        funcs = _funcs(reward_funcs)
        self.groups: list[RewardGroup] = []
        for f in funcs:
            if all(f.group is not g for g in self.groups):
                self.groups.append(f.group)
        self.reward = funcs[0].reward
        self.prefix = prefix
        self._pending: dict[str, float] = {}

    def pop_metrics(self) -> dict[str, float]:
        """The metrics gathered since the last call (resets them)."""
        out = dict(self._pending)
        self._pending.clear()
        for g in self.groups:
            out.update(g.stats.pop(self.prefix))
        return out

    def grade(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> dict[str, float]:
        """Grade evaluation generations; returns ``eval_<prefix>/<name>/...`` metrics."""
        rows = trl_rows(prompts, completions, columns)
        stats = RewardStats()
        stats.record(run_sync(self.reward.agrade(rows, on_missing="skip")), self.reward)
        metrics = stats.pop(f"eval_{self.prefix}")
        self._pending.update(metrics)
        return metrics

    def install(self, trainer: Any) -> RewardLoggingCallback:
        """Add this callback to ``trainer`` ahead of its reporting callbacks."""
        handler = trainer.callback_handler
        if self in handler.callbacks:
            handler.callbacks.remove(self)
        # right after DefaultFlowCallback, before the reporters that read the logs
        handler.callbacks.insert(1 if handler.callbacks else 0, self)
        return self

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        metrics = self.pop_metrics()
        if not metrics or logs is None:
            return
        if any(k.startswith("eval_") for k in logs):
            metrics = {k if k.startswith("eval_") else f"eval_{k}": v for k, v in metrics.items()}
        logs.update(metrics)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(metrics)
