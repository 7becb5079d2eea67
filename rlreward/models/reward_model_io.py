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
    "length_batches",
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


#: shortest shared token prefix worth running once and reusing (below it, plain batches)
MIN_SHARED_PREFIX = 4


#: a batch ends before an input shorter than this fraction of the batch's longest, so
#: padding never wastes more than about a quarter of a batch's compute
MIN_FILL = 0.75


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first.

    At most ``batch_size`` per batch, and a batch is cut early when the next input is
    shorter than ``MIN_FILL`` times the batch's longest: unsorted micro-batches from the
    runner (lengths anywhere from 10 to 500 tokens) then cost about what their tokens
    cost, not ``batch_size`` times the longest one.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    for i in order:
        last = batches[-1] if batches else None
        if last and len(last) < batch_size and lengths[i] >= MIN_FILL * lengths[last[0]]:
            last.append(i)
        else:
            batches.append([i])
    return batches


def _is_causal(model: Any) -> bool:
    """True when every attention module of ``model`` is causal (decoder-only models).

    Only then can a shared prefix be run once and its key/value cache reused: in a
    bidirectional encoder (BERT) the prefix tokens attend to what follows them.
    """
    if getattr(model.config, "is_encoder_decoder", False):
        return False
    flags = [getattr(m, "is_causal", None) for m in model.modules()]
    known = [f for f in flags if isinstance(f, bool)]
    return bool(known) and all(known)


def _shared_prefix(ids: Sequence[list[int]]) -> int:
    """Length of the token prefix every input shares, leaving each at least one own token."""
    first = ids[0]
    n = min(len(x) for x in ids) - 1
    for x in ids[1:]:
        k = 0
        while k < n and x[k] == first[k]:
            k += 1
        n = k
        if n < MIN_SHARED_PREFIX:
            return 0
    return n


def _prefix_cache(model: Any, prefix: list[int], device: Any) -> Any:
    """The key/value cache of ``prefix`` (batch 1), or None when the model gives none."""
    import torch
    from transformers import DynamicCache

    out = model(
        input_ids=torch.tensor([prefix], device=device),
        attention_mask=torch.ones(1, len(prefix), dtype=torch.long, device=device),
        use_cache=True,
    )
    cache = getattr(out, "past_key_values", None)
    # only the plain cache is known to repeat per batch row correctly
    return cache if type(cache) is DynamicCache else None


def score_ids(
    model: Any,
    tokenizer: Any,
    ids: Sequence[list[int]],
    batch_size: int,
    *,
    reuse_prefix: bool = True,
) -> list[float]:
    """Raw scalar outputs for pre-encoded inputs, in length-sorted padded batches.

    Batches of similar length (``length_batches``), each padded on the right only to its
    own longest input, keep wasted compute small; results come back in the original order. For a
    decoder-only model, a token prefix shared by every input (the chat template's system
    turn, a GRPO group's prompt) is run once and its key/value cache reused by every batch
    (``reuse_prefix``): the scores are those of the full inputs up to float rounding. The
    model must output one logit per sequence (``num_labels=1``).
    """
    import copy

    import torch

    n = len(ids)
    out = [0.0] * n
    if n == 0:
        return out
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            skip, cache = 0, None
            if reuse_prefix and n > 1 and _is_causal(model):
                skip = _shared_prefix(ids)
                cache = _prefix_cache(model, list(ids[0][:skip]), device) if skip else None
                skip = skip if cache is not None else 0
            for idx in length_batches([len(x) - skip for x in ids], batch_size):
                rows = [ids[i][skip:] for i in idx]
                width = len(rows[0])  # longest first: the batch's own max length
                input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), skip + width), dtype=torch.long)
                mask[:, :skip] = 1
                for r, row in enumerate(rows):
                    input_ids[r, : len(row)] = torch.as_tensor(row, dtype=torch.long)
                    mask[r, skip : skip + len(row)] = 1
                kwargs: dict[str, Any] = {}
                if cache is not None:
                    past = copy.deepcopy(cache)
                    past.batch_repeat_interleave(len(rows))
                    kwargs = {"past_key_values": past, "use_cache": False}
                logits = model(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device), **kwargs
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
