"""The policy side of RL: a causal LM (hub, local, or the embedded tiny one) and its tokenizer.

The embedded default is a tiny Llama-shaped causal LM built from a config in-process
that shares the embedded MiniLM's BERT WordPiece tokenizer, so the PPO family check
against a MiniLM reward model passes without downloading anything. A randomly
initialised policy does not learn under PPO within a few hundred episodes (its output
stays near-uniform over 30k tokens), so ``warm_up_policy`` gives it a short supervised
warm-up on plain texts first. Real models (``Qwen/Qwen3-0.6B``,
``microsoft/DialoGPT-medium``) take the same path through AutoModelForCausalLM.

Token conventions for PPO (TRL's PPOTrainer relies on them): the tokenizer pads on the
left; BERT tokenizers have no eos, so ``[SEP]`` becomes the eos and ``[CLS]`` the bos;
a tokenizer without a pad token pads with its eos; eos/pad ids are copied onto the
policy's ``generation_config``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlreward.embedded import EMBEDDED_ALIASES, resolve_model_name

__all__ = [
    "EMBEDDED_POLICY",
    "PolicyBundle",
    "WarmupResult",
    "build_tiny_policy",
    "encode_prompt",
    "generate_responses",
    "is_embedded_policy",
    "load_policy",
    "prepare_policy_tokenizer",
    "sync_generation_ids",
    "warm_up_policy",
]

logger = logging.getLogger(__name__)

#: the name that selects the embedded tiny policy (any embedded alias works too)
EMBEDDED_POLICY = "embedded"


def is_embedded_policy(model_name: str | None) -> bool:
    """True when ``model_name`` means the tiny in-process policy."""
    return model_name is None or model_name in EMBEDDED_ALIASES


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


def build_tiny_policy(
    tokenizer: Any,
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    max_positions: int = 256,
    seed: int = 0,
) -> Any:
    """A small Llama-shaped causal LM over ``tokenizer``'s vocabulary, built from a config."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    sync_generation_ids(model, tokenizer)
    return model


def load_policy(
    model_name: str | None, *, seed: int = 0, trust_remote_code: bool = False
) -> PolicyBundle:
    """The embedded tiny policy (untrained) or a causal LM from the hub / a local path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if is_embedded_policy(model_name):
        tokenizer = prepare_policy_tokenizer(
            AutoTokenizer.from_pretrained(resolve_model_name(None))
        )
        model = build_tiny_policy(tokenizer, seed=seed)
        return PolicyBundle(model, tokenizer, EMBEDDED_POLICY, embedded=True)
    assert model_name is not None
    tokenizer = prepare_policy_tokenizer(
        AutoTokenizer.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    )
    model = AutoModelForCausalLM.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    sync_generation_ids(model, tokenizer)
    return PolicyBundle(model, tokenizer, model_name, embedded=False)


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
) -> WarmupResult:
    """Short supervised (next-token) training so that PPO starts from a fluent policy.

    Sequences are ``query + text + eos`` (the query as ``encode_prompt`` builds it, so the
    policy learns to answer PPO's queries), or ``bos + text + eos`` without prompts. A
    plain PyTorch loop (AdamW, linear decay); the model is left in eval mode.
    """
    import torch
    from tqdm.auto import tqdm

    if not texts:
        raise ValueError("warm_up_policy needs at least one text")
    if prompts is not None and len(prompts) != len(texts):
        raise ValueError(f"warm_up_policy: got {len(prompts)} prompts for {len(texts)} texts")
    pairs = zip(texts, prompts if prompts is not None else [None] * len(texts), strict=True)
    encoded = [_encode_text(tokenizer, t, p, max_length) for t, p in pairs if t.strip()]
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.05, 1.0 - s / max(1, steps)))
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    model.train()
    start = time.perf_counter()
    losses: list[float] = []
    order: list[int] = []
    bar = tqdm(range(steps), desc="policy warm-up", unit="step", disable=not show_progress)
    for _ in bar:
        if len(order) < batch_size:
            order += rng.sample(range(len(encoded)), len(encoded))
        batch = [encoded[order.pop()] for _ in range(min(batch_size, len(encoded)))]
        width = max(len(b) for b in batch)
        ids = torch.tensor([b + [pad] * (width - len(b)) for b in batch], device=device)
        mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch], device=device)
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    seconds = time.perf_counter() - start
    tail = losses[-max(1, len(losses) // 10) :]
    result = WarmupResult(steps, seconds, losses[0] if losses else math.nan, sum(tail) / len(tail))
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
    batch_size: int = 32,
) -> list[str]:
    """Sampled responses (seeded; temperature 0 = greedy), decoded without special tokens."""
    import torch

    pad = tokenizer.pad_token_id
    out: list[str] = []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    try:
        for start in range(0, len(prompts), batch_size):
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
            with torch.no_grad():
                gen = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
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
