"""DataProto <-> rows and rewards: decoding prompts/responses, placing token-level scores.

Shared by the reward-loop manager and the legacy manager. VERL batches hold
right-padded ``responses``, one ``attention_mask`` whose last ``response_len`` columns
cover the responses and, usually, left-padded ``prompts`` before them. ``prompts`` is
optional (verl's own managers read only responses and the mask), so it is decoded only
when present. The reward of a sample sits on its last valid response token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlreward.integrations._rows import VerlRow, verl_row

__all__ = ["item_row", "token_level_scores"]


def _has(batch: Any, key: str) -> bool:
    return key in batch.keys()  # noqa: SIM118 (TensorDict: `in` on it is deprecated)


def item_row(item: Any, tokenizer: Any, reward_fn_key: str = "data_source") -> VerlRow:
    """A row from one ``DataProtoItem``: decoded response (and prompt) plus its non-tensor data
    (and verl's ``uid``, as the row field ``uid``, when the batch has one)."""
    responses = item.batch["responses"]
    mask = item.batch["attention_mask"]
    valid_response = int(mask[-responses.shape[-1] :].sum())
    response = tokenizer.decode(responses[:valid_response], skip_special_tokens=True)
    prompt = None
    if _has(item.batch, "prompts"):
        prompt_ids = item.batch["prompts"]
        valid_prompt = int(mask[: prompt_ids.shape[-1]].sum())
        prompt_ids = prompt_ids[prompt_ids.shape[-1] - valid_prompt :]
        prompt = tokenizer.decode(prompt_ids, skip_special_tokens=True)
    nt = item.non_tensor_batch
    reward_model = nt.get("reward_model")
    ground_truth = reward_model.get("ground_truth") if hasattr(reward_model, "get") else None
    uid = nt.get("uid")  # verl's group id (one per prompt, shared by its rollout.n rows)
    return verl_row(
        data_source=nt.get(reward_fn_key),
        solution_str=response,
        ground_truth=ground_truth,
        extra_info=nt.get("extra_info"),
        prompt=prompt,
        raw_prompt=nt.get("raw_prompt"),
        extra={"uid": uid.item() if hasattr(uid, "item") else uid} if uid is not None else None,
    )


def token_level_scores(data: Any, scores: Sequence[float]) -> Any:
    """``[batch, response_len]`` float32 zeros with each score at its last valid response token."""
    import torch

    responses = data.batch["responses"]
    valid = data.batch["attention_mask"][:, -responses.shape[-1] :].sum(dim=-1).long()
    out = torch.zeros_like(responses, dtype=torch.float32)
    rows = torch.arange(out.shape[0], device=out.device)
    out[rows, (valid - 1).clamp(min=0)] = torch.tensor(
        list(scores), dtype=torch.float32, device=out.device
    )
    return out
