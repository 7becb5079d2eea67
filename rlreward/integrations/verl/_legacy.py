"""LegacyRLRewardManager: the ``reward_fn=`` manager for verl < 0.7.

Older VERL trainers call ``reward_fn(batch, return_dict=True)`` synchronously on the
driver. This manager holds one ``Reward``, decodes the batch, grades it in one
``Reward.agrade`` on the
process's background event loop (so judge clients survive from batch to batch) and
returns the token-level reward tensor, plus ``reward_extra_info`` when asked.
It imports only ``torch`` (not a particular VERL module), so it runs on old releases.
"""

from __future__ import annotations

from typing import Any

from rlreward.integrations._runtime import run_sync
from rlreward.integrations.verl._batch import item_row, token_level_scores
from rlreward.integrations.verl._columns import SCORE
from rlreward.integrations.verl._score import resolve_reward, score_rows

__all__ = ["LegacyRLRewardManager"]


class LegacyRLRewardManager:
    """``(data, return_dict=False) -> reward tensor | {reward_tensor, reward_extra_info}``.

    Args:
        tokenizer: the policy's tokenizer (decodes prompts and responses).
        num_examine: accepted for VERL's constructor signature; nothing is printed.
        compute_score: accepted for VERL's signature and ignored (the spec grades).
        reward_fn_key: non-tensor key holding the data source.
        spec: the reward (a Reward, or a spec path, dict, RewardSpec or GradingRunner);
            default ``$RLREWARD_SPEC``.
        aggregator: which aggregator is the reward (default: the reward's own).
    """

    def __init__(
        self,
        tokenizer: Any,
        num_examine: int = 0,
        compute_score: Any = None,
        reward_fn_key: str = "data_source",
        *,
        spec: Any = None,
        aggregator: str | None = None,
        **_: Any,
    ) -> None:
        self.tokenizer = tokenizer
        self.num_examine = num_examine
        self.reward_fn_key = reward_fn_key
        self.reward = resolve_reward(spec, aggregator)

    def __call__(self, data: Any, return_dict: bool = False) -> Any:
        # a reward model already scored it (VERL's rule); TensorDict wants .keys() here
        if "rm_scores" in data.batch.keys():  # noqa: SIM118
            if not return_dict:
                return data.batch["rm_scores"]
            keys = data.meta_info.get("reward_extra_keys", [])
            return {
                "reward_tensor": data.batch["rm_scores"],
                "reward_extra_info": {k: data.non_tensor_batch[k] for k in keys},
            }
        rows = [item_row(data[i], self.tokenizer, self.reward_fn_key) for i in range(len(data))]
        dicts = run_sync(score_rows(self.reward, rows))
        reward_tensor = token_level_scores(data, [d[SCORE] for d in dicts])
        if not return_dict:
            return reward_tensor
        info = {k: [d[k] for d in dicts] for k in (dicts[0] if dicts else {})}
        return {"reward_tensor": reward_tensor, "reward_extra_info": info}
