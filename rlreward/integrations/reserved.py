"""Names a grader or aggregator may not take, because a trainer host owns them.

VERL merges every key of a reward's ``reward_extra_info`` into the batch
(``batch.non_tensor_batch.update(reward_extra_infos)``), so a grader named ``uid``
would overwrite GRPO's group ids. The spec refuses these names when it loads.
"""

from __future__ import annotations

__all__ = ["RESERVED_NAMES", "RESERVED_SUFFIXES", "reserved_reason"]

#: keys of VERL's batch (``DataProto.non_tensor_batch``) and of its score dicts
RESERVED_NAMES: frozenset[str] = frozenset(
    {
        # our own score-dict keys
        "score",
        "error",
        # verl 0.9.1 non-tensor batch keys (dataset columns and trainer bookkeeping)
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
        "request_id",
        "__num_turns__",
    }
)
#: suffixes the adapters append to a grader's name for its extra columns
RESERVED_SUFFIXES: tuple[str, ...] = ("__error", "__aligned")  # aggregators.ALIGNED_SUFFIX


def reserved_reason(name: str) -> str | None:
    """Why ``name`` cannot be a grader/aggregator name, or None when it can."""
    if name in RESERVED_NAMES:
        return (
            f"{name!r} is a reserved name (VERL batch keys and rlreward score keys: "
            f"{', '.join(sorted(RESERVED_NAMES))}); rename the grader or aggregator"
        )
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"{name!r} ends with the reserved suffix {suffix!r}; rename it"
    return None
