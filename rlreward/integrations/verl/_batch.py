"""DataProto <-> rows and rewards: decoding prompts/responses, placing token-level scores.

Shared by the reward-loop manager and the legacy manager. VERL batches hold
left-padded ``prompts``, right-padded ``responses`` and one ``attention_mask`` over
both; the reward of a sample sits on its last valid response token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlreward.integrations._rows import verl_row

__all__ = ["item_row", "token_level_scores"]


def item_row(item: Any, tokenizer: Any, reward_fn_key: str = "data_source") -> dict[str, Any]:
    """A row from one ``DataProtoItem``: decoded prompt and response plus its non-tensor data."""
    prompt_ids = item.batch["prompts"]
    prompt_len = prompt_ids.shape[-1]
    mask = item.batch["attention_mask"]
    valid_prompt = int(mask[:prompt_len].sum())
    valid_response = int(mask[prompt_len:].sum())
    prompt = tokenizer.decode(prompt_ids[prompt_len - valid_prompt :], skip_special_tokens=True)
    response = tokenizer.decode(item.batch["responses"][:valid_response], skip_special_tokens=True)
    nt = item.non_tensor_batch
    reward_model = nt.get("reward_model")
    ground_truth = reward_model.get("ground_truth") if hasattr(reward_model, "get") else None
    return verl_row(
        data_source=nt.get(reward_fn_key),
        solution_str=response,
        ground_truth=ground_truth,
        extra_info=nt.get("extra_info"),
        prompt=prompt,
        raw_prompt=nt.get("raw_prompt"),
    )


def token_level_scores(data: Any, scores: Sequence[float]) -> Any:
    """``[batch, response_len]`` float32 zeros with each score at its last valid response token."""
    import torch

    responses = data.batch["responses"]
    prompt_len = data.batch["prompts"].shape[-1]
    valid = data.batch["attention_mask"][:, prompt_len:].sum(dim=-1).long()
    out = torch.zeros_like(responses, dtype=torch.float32)
    rows = torch.arange(out.shape[0], device=out.device)
    out[rows, (valid - 1).clamp(min=0)] = torch.tensor(
        list(scores), dtype=torch.float32, device=out.device
    )
    return out
