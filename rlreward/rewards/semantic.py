"""semantic_relevance and semantic_similarity: cosine similarity of MiniLM embeddings.

The model is the embedded all-MiniLM-L6-v2 (``rlreward.embedded``), loaded once per
process on first use with sentence-transformers on the CPU, from the installed files
only (``local_files_only``; nothing is downloaded). torch is imported only then. A
process keeps the ``MAX_EMBEDDERS`` most recently used embedders loaded and drops the
least recently used beyond that, so a run that tries many models does not hold them all.

- ``semantic_relevance``: response vs its prompt (needs prompts);
- ``semantic_similarity``: response vs its reference (needs references).

Score = ``max(0, cosine)`` of the L2-normalised embeddings: MiniLM puts unrelated
sentences near 0 and paraphrases around 0.6 to 0.9, so clipping the (rare) negative
values to 0 keeps the useful range rather than squeezing everything into [0.5, 1] as
``(cos + 1) / 2`` would. An empty or whitespace-only response scores 0. Each batch
embeds its distinct strings once (GRPO groups share a prompt).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from rlreward.rewards.base import RewardFunction, check_param

__all__ = [
    "MAX_EMBEDDERS",
    "SemanticRelevanceReward",
    "SemanticSimilarityReward",
    "embed",
    "load_embedder",
]

logger = logging.getLogger(__name__)

#: embedders kept loaded at once (MiniLM is ~90 MB); the least recently used goes first
MAX_EMBEDDERS = 2
_MODELS: OrderedDict[str, Any] = OrderedDict()  # path -> SentenceTransformer, LRU order
_LOAD_LOCK = threading.Lock()
_ENCODE_LOCK = threading.Lock()  # one encode at a time: torch already uses every core

#: texts per encode batch. sentence-transformers sorts each call by length, so smaller
#: batches pad less: on 256 (text, reference) pairs of shipped texts, against its own
#: ``encode`` (batch 32) of the same texts, 16 ran 1.17-1.19x, 32 1.07x, 64 0.86x (1 and 2
#: threads, scripts/bench_scoring.py, BENCHMARKS.md "Scoring speed")
EMBED_BATCH = 16


def load_embedder(model: str | None = None) -> Any:
    """The SentenceTransformer for ``model`` (None = embedded MiniLM), loaded once and
    kept while it is among the ``MAX_EMBEDDERS`` most recently used."""
    from rlreward.embedded import resolve_model_name

    path = resolve_model_name(model)
    with _LOAD_LOCK:
        st = _MODELS.get(path)
        if st is not None:
            _MODELS.move_to_end(path)
            return st
        from sentence_transformers import SentenceTransformer

        logger.info("loading sentence embedder from %s", path)
        st = SentenceTransformer(path, device="cpu", local_files_only=True)
        _MODELS[path] = st
        while len(_MODELS) > MAX_EMBEDDERS:
            dropped, _ = _MODELS.popitem(last=False)
            logger.info("dropping sentence embedder %s (least recently used)", dropped)
    return st


def embed(texts: list[str], model: str | None = None, batch_size: int = EMBED_BATCH) -> Any:
    """L2-normalised embeddings (numpy, one row per text) of ``texts``."""
    st = load_embedder(model)
    with _ENCODE_LOCK:
        return st.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )


def _cosines(left: list[str], right: list[str], model: str | None, batch_size: int) -> list[float]:
    keep = [i for i, t in enumerate(left) if t.strip()]
    out = [0.0] * len(left)
    if not keep:
        return out
    unique = list(dict.fromkeys([left[i] for i in keep] + [right[i] for i in keep]))
    index = {s: k for k, s in enumerate(unique)}
    vectors = embed(unique, model, batch_size)
    for i in keep:
        cos = float(vectors[index[left[i]]] @ vectors[index[right[i]]])
        out[i] = min(1.0, max(0.0, cos))
    return out


@dataclass
class _SemanticBase(RewardFunction):
    model: str | None = None
    batch_size: int = EMBED_BATCH
    expensive = True

    def __post_init__(self) -> None:
        check_param(self.name, "batch_size", self.batch_size, low=1, integer=True)


@dataclass
class SemanticRelevanceReward(_SemanticBase):
    """max(0, cosine) between the response and its prompt (MiniLM embeddings)."""

    name = "semantic_relevance"
    needs_prompt = True

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        return _cosines(texts, prompts, self.model, self.batch_size)


@dataclass
class SemanticSimilarityReward(_SemanticBase):
    """max(0, cosine) between the response and its reference (MiniLM embeddings)."""

    name = "semantic_similarity"
    needs_reference = True

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        return _cosines(texts, references, self.model, self.batch_size)
