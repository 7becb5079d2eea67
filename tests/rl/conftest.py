"""Tiny models built from configs for the RL tests (nothing is downloaded).

The library's own embedded policy is SmolLM2-135M-Instruct (too slow for most tests);
these fixtures share the embedded MiniLM's WordPiece tokenizer, so the PPO family check
passes between them:
- ``policy_dir``: a 2-layer Llama causal LM (hidden 16) saved with its tokenizer;
- ``tiny_reward_base``: a 1-layer BERT (hidden 32) as a fast reward-model training base;
- ``minilm_reward_dir``: the real MiniLM as a sequence classifier (seeded head).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.training.tiny import minilm_tokenizer, tiny_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _free_cores_only():
    """Train with the cores other processes leave free (see rlreward.rl.threads); restore after."""
    import torch

    from rlreward.rl.threads import set_cpu_threads

    before = torch.get_num_threads()
    set_cpu_threads()
    yield
    torch.set_num_threads(before)


PROMPTS = [
    "How do I boil an egg?",
    "Why is the sky blue?",
    "How can I sleep better?",
    "What is photosynthesis?",
    "How do I start learning Python?",
    "What is a healthy breakfast?",
    "How can I keep my houseplants alive?",
    "How does compound interest work?",
]


def build_tiny_policy(
    tokenizer,
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    max_positions: int = 256,
    seed: int = 0,
    **extra: Any,
):
    """A small Llama-shaped causal LM over ``tokenizer``'s vocabulary, built from a config.

    ``extra`` sets other config fields (``num_key_value_heads``, ...).
    """
    import torch
    from transformers import LlamaForCausalLM

    from rlreward.rl.policy import sync_generation_ids

    config = tiny_config(
        "llama",
        len(tokenizer),
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        max_positions=max_positions,
        tie_word_embeddings=True,
        **extra,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    sync_generation_ids(model, tokenizer)
    return model


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rlreward.rl.policy import prepare_policy_tokenizer

    out = tmp_path_factory.mktemp("policy")
    tok = prepare_policy_tokenizer(minilm_tokenizer())
    model = build_tiny_policy(
        tok, hidden_size=16, num_heads=2, max_positions=128, num_key_value_heads=1
    )
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_reward_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertForSequenceClassification

    out = tmp_path_factory.mktemp("tiny_bert")
    tok = minilm_tokenizer()
    torch.manual_seed(0)
    cfg = tiny_config("bert", len(tok), num_layers=1, num_labels=1)
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def minilm_reward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification

    from rlreward.embedded import embedded_model_path

    out = tmp_path_factory.mktemp("minilm_rm")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(embedded_model_path(), num_labels=1)
    model.save_pretrained(out)
    minilm_tokenizer().save_pretrained(out)
    return out
