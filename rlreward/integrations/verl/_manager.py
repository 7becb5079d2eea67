"""RLRewardManager: a verl 0.9 reward-loop manager that grades with one rlreward ``Reward``.

Select it with ``reward.reward_manager.source=importlib``,
``reward.reward_manager.name=RLRewardManager`` and
``reward.reward_manager.module.path=pkg://rlreward.integrations.verl``. Unlike the
naive manager it decodes the prompt from the batch when the batch has ``prompts`` (it
is optional, as for verl's own managers). VERL's reward loop calls ``run_single`` once
per sample, concurrently; the manager collects the calls of one loop tick into one
batch (``MicroBatcher``) and grades it with one ``Reward.agrade``. Options (constructor
keywords, or ``reward.reward_kwargs``): ``spec`` (a YAML path, a spec dict or a
``Reward``), ``aggregator``, ``max_batch_size``,
``reward_fn_key``, ``timeout`` (seconds per batch before its samples end as failed),
``monitor`` (the reward-hacking monitor: a mapping of ``MonitorConfig`` fields, e.g.
``{every: 5, sample_size: 32, jsonl_path: outputs/monitor-{pid}.jsonl}``, or a
``MonitorConfig``; see ``_monitor``: its ``monitor/...`` keys come back in
``reward_extra_info``), ``group_timeout`` (with group graders: seconds a sample waits
for the rest of its ``uid`` group, see ``_groups``; default 270).

With a group grader in the reward, ``run_single`` grades each ``uid`` group whole, in
one ``agrade``, whichever workers its rows reach (``_groups.GroupGate``); rows carry
verl's ``uid`` as the field ``uid`` (give the grader ``group_key: uid``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.graders.batching import MicroBatcher
from rlreward.integrations.verl._batch import item_row, token_level_scores
from rlreward.integrations.verl._columns import SCORE, columns_for
from rlreward.integrations.verl._groups import GroupGate
from rlreward.integrations.verl._monitor import BatchMonitor, Sample
from rlreward.integrations.verl._score import resolve_reward, score_rows

__all__ = ["RLRewardManager"]

log = logging.getLogger(__name__)
_OPTION_KEYS = frozenset(
    {
        "spec",
        "aggregator",
        "max_batch_size",
        "reward_fn_key",
        "timeout",
        "monitor",
        "group_timeout",
    }
)


def _options(config: Any) -> dict[str, Any]:
    """``reward.reward_kwargs`` overlaid with ``reward.custom_reward_function.reward_kwargs``."""
    reward = config.get("reward") if hasattr(config, "get") else None
    if reward is None:
        return {}
    opts: dict[str, Any] = {}
    crf = reward.get("custom_reward_function") or {}
    for node in (
        reward.get("reward_kwargs"),
        crf.get("reward_kwargs") if hasattr(crf, "get") else None,
    ):
        if node:
            opts.update({k: node[k] for k in node if k in _OPTION_KEYS})
    return opts


class RLRewardManager(RewardManagerBase):
    """Reward-loop manager: batch -> rows (decoded prompt) -> one Reward.agrade per batch."""

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
        *,
        spec: Any = None,
        aggregator: str | None = None,
        max_batch_size: int | None = None,
        reward_fn_key: str | None = None,
        timeout: float | None = None,
        monitor: Any = None,
        group_timeout: float | None = None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        opts = _options(config)
        self.reward = resolve_reward(
            spec if spec is not None else opts.get("spec"), aggregator or opts.get("aggregator")
        )
        self.reward_fn_key = reward_fn_key or opts.get("reward_fn_key", "data_source")
        size = max_batch_size or opts.get("max_batch_size", 1024)
        rule = number_rule(size, integer=True, low=1)
        if rule is not None:
            raise ConfigError(f"RLRewardManager: max_batch_size must be {rule}, got {size!r}")
        self.timeout = timeout if timeout is not None else opts.get("timeout")
        # build the reward now: a bad spec or a reserved name fails at start-up, not mid-run
        columns_for(self.reward)
        watch = monitor if monitor is not None else opts.get("monitor")
        self.monitor: BatchMonitor | None = (
            BatchMonitor(watch, self.reward, config) if watch not in (None, False) else None
        )
        # a reward with group graders grades whole uid groups across workers (_groups)
        self._groups = GroupGate.for_reward(
            self.reward,
            config,
            group_timeout if group_timeout is not None else opts.get("group_timeout"),
        )
        self._batcher: MicroBatcher[Sample, dict[str, float | int]] = MicroBatcher(
            self._grade, max_batch_size=size, run_in_thread=False
        )

    async def _grade(self, samples: list[Sample]) -> list[dict[str, float | int]]:
        dicts = await score_rows(self.reward, [s.row for s in samples], self.timeout)
        if self.monitor is not None:
            await self.monitor.add(samples, dicts)
        return dicts

    def _sample(self, item: Any, meta: Any) -> Sample:
        step = meta.get("global_steps") if hasattr(meta, "get") else None
        return Sample(
            item_row(item, self.tokenizer, self.reward_fn_key),
            uid=item.non_tensor_batch.get("uid"),
            global_step=step if isinstance(step, int) and not isinstance(step, bool) else None,
            validate=bool(meta.get("validate", False)) if hasattr(meta, "get") else False,
        )

    @classmethod
    def assemble_rm_scores(cls, data: DataProto, scores: list[float]) -> torch.Tensor:
        """Token-level scores; unlike the base class, works on a batch without ``prompts``."""
        return token_level_scores(data, scores)

    async def run_single(self, data: DataProto) -> dict[str, Any]:
        """Grade one sample (the last sequence of a multi-sequence output, as VERL does)."""
        item = data[-1:][0]
        sample = self._sample(item, data.meta_info)
        if self._groups is not None:
            result = await self._groups.grade(
                sample, sample.uid, self._grade, columns_for(self.reward).failed
            )
        else:
            result = await self._batcher.submit(sample)
        return {"reward_score": result[SCORE], "reward_extra_info": result}

    async def run_batch(self, data: DataProto) -> list[dict[str, Any]]:
        """Grade a whole batch in one ``agrade``: one ``run_single``-shaped dict per sample."""
        samples = [self._sample(data[i], data.meta_info) for i in range(len(data))]
        return [
            {"reward_score": d[SCORE], "reward_extra_info": d} for d in await self._grade(samples)
        ]
