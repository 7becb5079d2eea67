"""Tiny models and tokenizers built in-process (never downloaded), shared by the tests.

Test models are built from configs (``tiny_config``, ``tiny_gpt2_dir``) over one of
two tokenizers: ``word_tokenizer`` (a word-level vocabulary of everyday words) or
``minilm_tokenizer`` (the embedded MiniLM's WordPiece, on disk in the package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WORDS = [
    "the",
    "a",
    "an",
    "is",
    "are",
    "was",
    "be",
    "good",
    "bad",
    "great",
    "awful",
    "helpful",
    "rude",
    "answer",
    "question",
    "this",
    "that",
    "it",
    "you",
    "i",
    "we",
    "they",
    "and",
    "or",
    "but",
    "not",
    "no",
    "yes",
    "very",
    "really",
    "thanks",
    "please",
    "sorry",
    "help",
    "water",
    "boil",
    "egg",
    "sky",
    "blue",
    "sleep",
    "plant",
    "light",
    "code",
    "python",
    "run",
    "hike",
    "pack",
    "letter",
    "money",
    "save",
    "bread",
    "bake",
    "dog",
    "cat",
    "tree",
    "leaf",
    "sun",
    "moon",
    "rain",
    "snow",
    "cold",
    "hot",
    "fast",
    "slow",
    "safe",
    "kill",
    "hate",
    "love",
    "nice",
    "idiot",
    "stupid",
    "step",
    "first",
    "then",
    "next",
    "finally",
]


def word_tokenizer(extra: list[str] | None = None, *, pad: bool = False, offset: int = 0):
    """A word-level fast tokenizer with <unk>/<eos> (and <pad> when asked)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<eos>"] + (["<pad>"] if pad else [])
    filler = [f"x{i}" for i in range(offset)]  # shifts every id when offset > 0
    words = specials + filler + WORDS + (extra or [])
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    kwargs = {"pad_token": "<pad>"} if pad else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", bos_token="<eos>", **kwargs
    )


def tiny_gpt2_dir(path: Path, tokenizer=None) -> Path:
    """Save a 2-layer GPT-2 sequence classifier (no pad token, like DialoGPT) + tokenizer."""
    from transformers import GPT2Config, GPT2ForSequenceClassification, set_seed

    tok = tokenizer or word_tokenizer()
    set_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=256,
        num_labels=1,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2ForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def minilm_tokenizer():
    """The embedded MiniLM's tokenizer (30,522 WordPiece tokens), loaded from the package."""
    from transformers import AutoTokenizer

    from rlreward.embedded import embedded_model_path

    return AutoTokenizer.from_pretrained(embedded_model_path())


def tiny_config(
    model_type: str,
    vocab_size: int,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int | None = 256,
    **extra: Any,
):
    """A transformers config of ``model_type`` ("llama", "bert", ...) at test size.

    The MLP is twice the hidden width; ``max_positions=None`` keeps the model type's
    default; ``extra`` sets any other field (``num_labels``, ``num_key_value_heads``, ...).
    """
    from transformers import AutoConfig

    sizes: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
    }
    if max_positions is not None:
        sizes["max_position_embeddings"] = max_positions
    return AutoConfig.for_model(model_type, **sizes, **extra)


def tiny_llama_config(vocab_size: int):
    """The 2-layer Llama (hidden 32) of the training tests, with id 1 as bos and eos."""
    return tiny_config("llama", vocab_size, bos_token_id=1, eos_token_id=1)
