"""RewardModelGrader: any sequence-classification reward model as a grader.

The model may be a hub id, a local directory (a model trained by
``RewardModelTrainer``, a full model, or a LoRA adapter directory), or a
``(model, tokenizer)`` pair already in memory. A ``RewardModelSourceConfig`` is
materialised by whoever holds it (``RewardModelGrader(source.materialize())``), so this
grader never imports the training layer above it. Inputs
are built by ``rlreward.models.reward_model_io.encode_pairs`` exactly as in training (the
input format of a model trained here is read from its ``rlreward_reward_model.json``).
Scoring runs in length-sorted batches, each padded to its own longest input, under
``torch.inference_mode``; a decoder-only model runs a token prefix shared by the whole
batch (the chat template's system turn, a GRPO group's prompt) once and reuses its cache.
Precision: bf16 on GPU; fp32 on CPU unless ``dtype="bfloat16"`` is asked for (~3x faster
on CPUs with AVX512-BF16/AMX; scores move by up to ~0.004 on a MiniLM reward model and
~0.035 on a SmolLM2 one, see docs/reward-models.md). Concurrent ``aevaluate`` calls from
the runner are gathered into batches by a MicroBatcher, so the grader is as fast inside
GradingRunner as ``score_texts``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlreward.checks import number_rule
from rlreward.embedded import resolve_model_name
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader
from rlreward.graders.batching import MicroBatcher
from rlreward.messages import field_text
from rlreward.models.reward_model_io import (
    check_input_format,
    default_input_format,
    encode_pairs,
    ensure_pad_token,
    read_metadata,
    score_ids,
)

__all__ = ["RewardModelGrader"]

logger = logging.getLogger(__name__)

NORMALIZERS = (None, "sigmoid", "minmax")
#: how many model batches one runner micro-batch may hold
MICRO_BATCHES = 8
#: dtype names the grader accepts (torch dtypes of the same names too)
DTYPES = ("float32", "bfloat16", "float16")
_Item = tuple[str | None, str]


def _check_dtype(dtype: Any, device: str, owner: str) -> Any:
    """The torch dtype for ``dtype`` on ``device`` (None: bf16 on CUDA, else fp32)."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    name = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ConfigError(
            f"{owner}: dtype={dtype!r} is not allowed; use one of {list(DTYPES)} (or the torch "
            "dtype of that name), or None for the device default"
        )
    if device.startswith("cpu"):
        if name == "float16":
            raise ConfigError(
                f"{owner}: dtype='float16' on CPU is slower than float32 (no fp16 matrix "
                "units); use dtype='bfloat16' on a CPU with AVX512-BF16/AMX, or 'float32'"
            )
        if name == "bfloat16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise ConfigError(
                f"{owner}: dtype='bfloat16' on this CPU would be slower than float32: it has "
                "no AVX512-BF16/AMX instructions; use dtype='float32' (the CPU default)"
            )
    return getattr(torch, name)


def _load(ref: str, device: str, dtype: Any) -> tuple[Any, Any]:
    """(model, tokenizer) from a hub id or a directory (full model or LoRA adapter)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(ref).expanduser()
    missing: list[str] = []
    try:
        if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            from peft import AutoPeftModelForSequenceClassification

            model = AutoPeftModelForSequenceClassification.from_pretrained(
                str(path), num_labels=1, dtype=dtype
            )
            model = model.merge_and_unload()
        else:
            model, info = AutoModelForSequenceClassification.from_pretrained(
                ref, dtype=dtype, output_loading_info=True
            )
            missing = sorted(info.get("missing_keys") or ())
        tokenizer = AutoTokenizer.from_pretrained(ref)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"RewardModelGrader: cannot load reward model {ref!r} ({type(exc).__name__}: "
            f"{exc}); give a local directory holding config.json (or adapter_config.json), "
            "or a cached/reachable hub id"
        ) from exc
    if missing:
        raise ConfigError(
            f"RewardModelGrader: {ref!r} is not a trained reward model: its weights lack "
            f"{missing[:4]}{' ...' if len(missing) > 4 else ''}, which would be random. Train "
            "one with RewardModelTrainer, or give a sequence-classification reward model"
        )
    return model.to(device), tokenizer


def _inputs_to_fp32(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    import torch

    return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)


def _keep_head_fp32(model: Any) -> None:
    """Run the score head in fp32 on a half-precision model.

    A bf16 logit is rounded to 2^-8 near 1 (0.004 of a typical reward range); the head is
    one small matrix, so computing it in fp32 costs nothing and removes that rounding.
    """
    import torch

    head = getattr(model, "score", None) or getattr(model, "classifier", None)
    if isinstance(head, torch.nn.Module):
        head.float()
        head.register_forward_pre_hook(_inputs_to_fp32)


class RewardModelGrader(BaseGrader):
    """Score ``response`` (with an optional ``query``) with a reward model.

    Args:
        model: hub id, local path or ``(model, tokenizer)`` (for a
            ``RewardModelSourceConfig``, pass ``source.materialize()``).
        normalize: ``None`` (raw scores, unbounded range), ``"sigmoid"`` (to (0, 1)) or
            ``"minmax"`` (to [0, 1] by ``score_bounds``, default: the min/max of the
            model's scores on its training texts, from its metadata; clipped).
        prompt_template: ``"auto"`` (the trained model's own format, else the chat
            template when the tokenizer has one, else sentence pairs), ``"text"``,
            ``"pair"``, ``"chat"``, or a template such as ``"Q: {query}\\nA: {response}"``.
        device / dtype: default CUDA + bfloat16 when available, else CPU + float32.
            ``dtype`` is one of ``"float32"``, ``"bfloat16"``, ``"float16"`` (GPU only) or
            a torch dtype; ``"bfloat16"`` on a CPU with AVX512-BF16/AMX scores ~3x faster
            than float32 and moves raw scores slightly (measure it on your model:
            ``scripts/bench_scoring.py`` reports the max difference).
    """

    required_fields = ("response",)
    optional_fields = ("query",)

    def __init__(
        self,
        model: Any,
        name: str = "reward_model",
        *,
        normalize: str | None = None,
        score_bounds: tuple[float, float] | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        device: str | None = None,
        dtype: Any = None,
        prompt_template: str = "auto",
        higher_is_better: bool = True,
    ) -> None:
        import torch

        owner = f"RewardModelGrader {name!r}"
        if not isinstance(name, str) or not name:
            raise ConfigError(f"RewardModelGrader: name must be a non-empty str, got {name!r}")
        if normalize not in NORMALIZERS:
            raise ConfigError(
                f"{owner}: normalize={normalize!r} is not allowed; use one of {list(NORMALIZERS)}"
            )
        for field, value in (("batch_size", batch_size), ("max_length", max_length)):
            allowed = None if value is None else number_rule(value, integer=True, low=1)
            if allowed is not None:
                raise ConfigError(f"{owner}: {field}={value!r} is not allowed; use {allowed}")
        if prompt_template != "auto":
            check_input_format(prompt_template, owner)
        self.name = name
        self.higher_is_better = bool(higher_is_better)
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._dtype_given = dtype is not None
        self.dtype = _check_dtype(dtype, self.device, owner)
        self.metadata: dict[str, Any] | None = None
        self.source = self._load_model(model, owner)
        meta: dict[str, Any] = self.metadata or {}
        self.max_length = max_length or int(meta.get("max_length") or 512)
        if prompt_template == "auto":
            prompt_template = meta.get("input_format") or default_input_format(self.tokenizer, True)
        self.prompt_template = prompt_template
        self.normalize = normalize
        self.score_bounds = self._bounds(normalize, score_bounds, owner)
        self.score_range = None if normalize is None else (0.0, 1.0)
        self._lock = threading.Lock()
        self._batcher: MicroBatcher[_Item, float] = self._new_batcher()

    def _new_batcher(self) -> MicroBatcher[_Item, float]:
        # a micro-batch may hold several model batches: score_ids regroups its items by
        # length, which an arrival-order chunk of ``batch_size`` could not be
        return MicroBatcher(self._score_items, MICRO_BATCHES * self.batch_size, run_in_thread=True)

    def _load_model(self, model: Any, owner: str) -> str:
        import torch

        if isinstance(model, tuple) and len(model) == 2:
            self.model, self.tokenizer = model
            if self._dtype_given:
                self.model.to(self.device, self.dtype)
            else:
                self.model.to(self.device)
            source = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
            if os.path.isdir(source):
                self.metadata = read_metadata(source)
        elif isinstance(model, (str, os.PathLike)) and os.fspath(model):
            ref = resolve_model_name(os.fspath(model))
            self.model, self.tokenizer = _load(ref, self.device, self.dtype)
            source = ref
            if os.path.isdir(ref):
                self.metadata = read_metadata(ref)
        else:
            raise ConfigError(
                f"{owner}: model must be a hub id, a local path or a (model, tokenizer) pair, "
                f"got {type(model).__name__}"
                + (
                    "; pass source.materialize() for a RewardModelSourceConfig"
                    if hasattr(model, "materialize")
                    else ""
                )
            )
        if getattr(self.model.config, "num_labels", 1) != 1:
            raise ConfigError(
                f"{owner}: {source!r} has num_labels={self.model.config.num_labels}; a reward "
                "model outputs one score per sequence (num_labels=1)"
            )
        ensure_pad_token(self.tokenizer, self.model)
        if self.dtype != torch.float32:
            _keep_head_fp32(self.model)
        self.model.eval()
        return source

    def _bounds(self, normalize: str | None, bounds: Any, owner: str) -> tuple[float, float] | None:
        if normalize != "minmax":
            return None
        if bounds is None:
            stats = (self.metadata or {}).get("score_stats")
            if not stats:
                raise ConfigError(
                    f"{owner}: normalize='minmax' needs score_bounds=(low, high); this model "
                    "has no rlreward metadata to take them from (use normalize='sigmoid' or "
                    "give the bounds)"
                )
            bounds = (stats["min"], stats["max"])
        try:
            lo, hi = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{owner}: score_bounds must be (low, high), got {bounds!r}"
            ) from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(
                f"{owner}: score_bounds must be finite with low < high, got {bounds!r}"
            )
        return (lo, hi)

    # -- scoring ---------------------------------------------------------------------
    def _normalise(self, raw: float) -> float:
        if self.normalize == "sigmoid":
            return (
                1.0 / (1.0 + math.exp(-raw)) if raw >= 0 else math.exp(raw) / (1.0 + math.exp(raw))
            )
        if self.normalize == "minmax":
            lo, hi = self.score_bounds  # type: ignore[misc]
            return min(1.0, max(0.0, (raw - lo) / (hi - lo)))
        return raw

    def score_raw(
        self, texts: Sequence[str], prompts: Sequence[str | None] | None = None
    ) -> list[float]:
        """The model's raw outputs for ``texts`` (with optional prompts), batched."""
        ids = encode_pairs(
            self.tokenizer, list(texts), prompts, self.prompt_template, self.max_length
        )
        with self._lock:  # one forward at a time: threads would only fight over the cores
            return score_ids(self.model, self.tokenizer, ids, self.batch_size)

    def score_texts(
        self, texts: Sequence[str], prompts: Sequence[str | None] | None = None
    ) -> list[float]:
        """Scores as the grader returns them (normalised when asked), for a batch."""
        return [self._normalise(r) for r in self.score_raw(texts, prompts)]

    def _score_items(self, items: list[_Item]) -> list[float]:
        prompts = [q for q, _ in items]
        return self.score_texts(
            [r for _, r in items], None if all(q is None for q in prompts) else prompts
        )

    async def _aevaluate(self, **fields: Any) -> float:
        text = field_text(fields["response"], "response")
        query = fields.get("query")
        prompt = None if query is None else field_text(query, "query")
        return await self._batcher.submit((prompt, text))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock", None)
        state["_batcher"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._batcher = self._new_batcher()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "model": self.source,
            "normalize": self.normalize,
            "prompt_template": self.prompt_template,
            "dtype": str(self.dtype).removeprefix("torch."),
            "trained_by_rlreward": self.metadata is not None,
        }

    def __repr__(self) -> str:
        return (
            f"RewardModelGrader({self.source!r}, name={self.name!r}, normalize={self.normalize!r})"
        )
