"""Names a grader or aggregator may not take, because a trainer host owns them.

VERL merges every key of a reward's ``reward_extra_info`` into the batch
(``batch.non_tensor_batch.update(reward_extra_infos)`` in ``RayPPOTrainer.fit``), so a
grader named ``uid`` would overwrite GRPO's group ids and one named ``data_source`` the
dataset column. The list below is verl 0.9.1's non-tensor batch keys (dataset columns,
agent-loop fields, trainer bookkeeping), the keys verl's own reward managers write into
``reward_extra_info`` (``acc``, ``timeout``, ``error``, ``overlong*``), and our own score
keys. The spec refuses these names when it loads; the VERL adapter checks them again for
runners built in Python.
"""

from __future__ import annotations

from rlreward.aggregators import ABSTAINED_SUFFIX, ALIGNED_SUFFIX, ERROR_SUFFIX

__all__ = ["RESERVED_NAMES", "RESERVED_SUFFIXES", "reserved_reason"]

#: keys of VERL's batch (``DataProto.non_tensor_batch``) and of the score dicts
RESERVED_NAMES: frozenset[str] = frozenset(
    {
        # our own score-dict keys (the reward and its error flag)
        "score",
        # keys verl 0.9.1's reward managers write into reward_extra_info: "acc" for a
        # number-only reward, "timeout"/"error" on RateLimitedRewardManager's timeout and
        # exception paths, "overlong_reward"/"overlong" for DAPO's overlong penalty
        "acc",
        "error",
        "timeout",
        "overlong_reward",
        "overlong",
        # verl 0.9.1 non-tensor batch keys: dataset columns (RLHFDataset)
        "uid",
        "data_source",
        "reward_model",
        "extra_info",
        "index",
        "ability",
        "raw_prompt",
        "raw_prompt_ids",
        "multi_modal_data",
        "multi_modal_inputs",
        "tools_kwargs",
        "interaction_kwargs",
        "agent_name",
        # agent loop / trainer bookkeeping
        "request_id",
        "reward_scores",
        "tool_extra_fields",
        "turn_scores",
        "tool_rewards",
        "min_global_steps",
        "max_global_steps",
        "extras",
        "teacher_ids",
        "teacher_logprobs",
        "priority",
        "__num_turns__",
        "__do_sample__",
    }
)
#: suffixes the adapters append to a grader's name for its extra columns
RESERVED_SUFFIXES: tuple[str, ...] = (ERROR_SUFFIX, ALIGNED_SUFFIX, ABSTAINED_SUFFIX)


def reserved_reason(name: str) -> str | None:
    """Why ``name`` cannot be a grader/aggregator name, or None when it can."""
    if name in RESERVED_NAMES:
        return (
            f"{name!r} is a reserved name (VERL batch keys and score keys: "
            f"{', '.join(sorted(RESERVED_NAMES))}); rename the grader or aggregator"
        )
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return (
                f"{name!r} ends with the reserved suffix {suffix!r} (the adapters add "
                f"'<name>{suffix}' columns); rename it"
            )
    return None
