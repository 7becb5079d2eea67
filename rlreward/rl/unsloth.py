"""The unsloth backend: the policy loaded by unsloth's ``FastLanguageModel`` (4-bit + LoRA).

unsloth patches transformers and TRL when it is imported, so it must be imported before
either: ``require_unsloth`` (called by ``create_rl_trainer`` before anything else loads)
checks for a CUDA GPU and imports it. Without a GPU it raises
``BackendUnavailableError`` naming the cause and the alternative (``backend="trl"``);
it never switches backends behind the user's back.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from rlreward.errors import BackendUnavailableError, ConfigError, DependencyError

__all__ = ["BackendUnavailableError", "load_unsloth_policy", "require_unsloth"]

logger = logging.getLogger(__name__)

#: modules that unsloth must patch, i.e. that must not be imported before it
_PATCHED = ("trl", "transformers", "peft")


def require_unsloth() -> Any:
    """Import unsloth (a CUDA GPU and the package are required); returns the module."""
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "backend='unsloth' needs a CUDA GPU (unsloth's kernels are CUDA-only) and "
            "torch.cuda.is_available() is False on this machine; use backend='trl' to train "
            "the same model on CPU (or another accelerator) with plain TRL"
        )
    first_import = "unsloth" not in sys.modules
    late = [m for m in _PATCHED if m in sys.modules]
    try:
        import unsloth  # noqa: F401  (imported for its patches)
    except ImportError as exc:
        raise DependencyError(
            f"backend='unsloth' needs the unsloth package ({exc}); install it with: "
            "pip install 'rlreward[unsloth]', or use backend='trl'"
        ) from None
    if first_import and late:
        logger.warning(
            "%s were imported before unsloth, so its patches may be partial; create the "
            "trainer (or import unsloth) before importing them",
            ", ".join(late),
        )
    return sys.modules["unsloth"]


def load_unsloth_policy(
    model_name: str,
    *,
    max_seq_length: int,
    load_in_4bit: bool,
    lora: bool,
    lora_r: int,
    lora_alpha: int,
    seed: int,
) -> tuple[Any, Any]:
    """(model, tokenizer) from ``FastLanguageModel``, with LoRA adapters when asked."""
    require_unsloth()
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=os.fspath(model_name),
        max_seq_length=max_seq_length,
        load_in_4bit=load_in_4bit,
        dtype=None,  # unsloth picks bf16 where the GPU supports it
    )
    if lora:
        model = FastLanguageModel.get_peft_model(
            model,
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=0.0,
            target_modules=[
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ],
            use_gradient_checkpointing="unsloth",
            random_state=seed,
        )
    elif load_in_4bit:
        raise ConfigError(
            "load_in_4bit=True without LoRA cannot be trained (4-bit weights are frozen); set "
            "use_lora=True or load_in_4bit=False"
        )
    # some unsloth tokenizers wrap a processor; TRL wants the tokenizer itself
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    logger.info("policy %s loaded with unsloth (4-bit=%s, LoRA=%s)", model_name, load_in_4bit, lora)
    return model, tokenizer
