"""Reward-model IO shared by training and scoring: input encoding and the metadata file.

A reward model only reproduces its training target when it is scored on inputs built
exactly as in training, so the trainer and ``RewardModelGrader`` both call
``encode_pairs`` and the trainer records the input format in the model's metadata
(``rlreward_reward_model.json``, written by ``write_metadata``, read by ``read_metadata``).
This module sits below both (``rlreward.models``), so the grader never imports training.

Input formats:

- ``"text"``: the response alone (a prompt, if any, is ignored);
- ``"pair"``: the tokenizer's sentence-pair encoding (``[CLS] prompt [SEP] response
  [SEP]`` for BERT); the response alone when there is no prompt;
- ``"chat"``: the tokenizer's chat template over a user turn (the prompt) and an
  assistant turn (the response), as hub reward models such as Skywork-Reward expect;
- any string containing ``{response}`` (and optionally ``{query}``): a format template.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlreward.errors import ConfigError

__all__ = [
    "INPUT_FORMATS",
    "METADATA_FILE",
    "METADATA_VERSION",
    "check_input_format",
    "default_input_format",
    "encode_pairs",
    "ensure_pad_token",
    "read_metadata",
    "score_ids",
    "write_metadata",
]

logger = logging.getLogger(__name__)

INPUT_FORMATS = ("text", "pair", "chat")
METADATA_FILE = "rlreward_reward_model.json"
METADATA_VERSION = 1


def check_input_format(fmt: str, owner: str) -> str:
    """A known format name or a template with ``{response}``; else a ConfigError."""
    if fmt in INPUT_FORMATS or (isinstance(fmt, str) and "{response}" in fmt):
        if fmt not in INPUT_FORMATS:
            try:
                fmt.format(query="", response="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"{owner}: prompt template {fmt!r} is not a valid format string ({exc}); "
                    "use only {query} and {response} placeholders"
                ) from None
        return fmt
    raise ConfigError(
        f"{owner}: input format {fmt!r} is not allowed; use one of {list(INPUT_FORMATS)}, "
        "'auto', or a template containing '{response}' such as 'Q: {query}\\nA: {response}'"
    )


def default_input_format(tokenizer: Any, has_prompts: bool) -> str:
    """``chat`` when the tokenizer has a chat template, else ``pair`` (``text`` without prompts)."""
    if not has_prompts:
        return "text"
    return "chat" if getattr(tokenizer, "chat_template", None) else "pair"


def ensure_pad_token(tokenizer: Any, model: Any = None) -> None:
    """Give GPT-2-family tokenizers (DialoGPT, GPT-2, ...) a pad token: eos, else unk.

    Without one, any batch above 1 fails to pad; the model's ``config.pad_token_id`` must
    match so sequence classification finds the last real token.
    """
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ConfigError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no pad, eos or unk "
                "token; set tokenizer.pad_token to a token of its vocabulary before training "
                "or scoring"
            )
        tokenizer.pad_token = fallback
        logger.info("tokenizer has no pad token; using %r", fallback)
    if model is not None and getattr(model.config, "pad_token_id", None) != tokenizer.pad_token_id:
        model.config.pad_token_id = tokenizer.pad_token_id


def _chat_text(tokenizer: Any, prompt: str | None, response: str) -> str:
    messages = [{"role": "user", "content": prompt}] if prompt is not None else []
    messages.append({"role": "assistant", "content": response})
    return tokenizer.apply_chat_template(messages, tokenize=False)


def encode_pairs(
    tokenizer: Any,
    responses: Sequence[str],
    prompts: Sequence[str | None] | None,
    input_format: str,
    max_length: int,
) -> list[list[int]]:
    """Token ids (unpadded, truncated to ``max_length``) for each (prompt, response)."""
    n = len(responses)
    ps: Sequence[str | None] = prompts if prompts is not None else [None] * n
    if len(ps) != n:
        raise ConfigError(f"got {len(ps)} prompts for {n} responses; give one per response")
    responses = list(responses)
    kw: dict[str, Any] = {"truncation": True, "max_length": max_length}
    if input_format == "text":
        return tokenizer(responses, **kw)["input_ids"]
    if input_format == "pair":
        with_p = [i for i, p in enumerate(ps) if p is not None]
        out: list[list[int]] = [[] for _ in range(n)]
        if len(with_p) < n:
            rest = [i for i in range(n) if ps[i] is None]
            for i, ids in zip(
                rest, tokenizer([responses[i] for i in rest], **kw)["input_ids"], strict=True
            ):
                out[i] = ids
        if with_p:
            enc = tokenizer([ps[i] for i in with_p], [responses[i] for i in with_p], **kw)[
                "input_ids"
            ]
            for i, ids in zip(with_p, enc, strict=True):
                out[i] = ids
        return out
    if input_format == "chat":
        texts = [_chat_text(tokenizer, p, r) for p, r in zip(ps, responses, strict=True)]
        return tokenizer(texts, add_special_tokens=False, **kw)["input_ids"]
    texts = [
        input_format.format(query=p or "", response=r) for p, r in zip(ps, responses, strict=True)
    ]
    return tokenizer(texts, **kw)["input_ids"]


def score_ids(model: Any, tokenizer: Any, ids: Sequence[list[int]], batch_size: int) -> list[float]:
    """Raw scalar outputs for pre-encoded inputs, in length-sorted padded batches.

    Sorting by length keeps padding (wasted compute) small; results come back in the
    original order. The model must output one logit per sequence (``num_labels=1``).
    """
    import torch

    n = len(ids)
    out = [0.0] * n
    order = sorted(range(n), key=lambda i: len(ids[i]), reverse=True)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                batch = tokenizer.pad(
                    {"input_ids": [list(ids[i]) for i in idx]}, return_tensors="pt"
                )
                logits = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                ).logits
                if logits.ndim != 2 or logits.shape[-1] != 1:
                    raise ConfigError(
                        f"the reward model returned logits of shape {tuple(logits.shape)}; a "
                        "reward model must output one score per sequence (num_labels=1)"
                    )
                for i, v in zip(idx, logits[:, 0].float().cpu().tolist(), strict=True):
                    out[i] = v
    finally:
        model.train(was_training)
    return out


def write_metadata(directory: str | Path, data: dict[str, Any]) -> Path:
    """Write ``rlreward_reward_model.json`` (strict JSON: non-finite floats become null)."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    path = Path(directory) / METADATA_FILE
    payload = {"metadata_version": METADATA_VERSION, **data}
    path.write_text(json.dumps(clean(payload), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def read_metadata(directory: str | Path) -> dict[str, Any] | None:
    """The metadata of a reward model trained by rlreward, or None for any other model."""
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc}); it tells how the model reads its inputs, so "
            "restore it from the training run or retrain the model"
        ) from None
