"""Where a fresh regression head starts: fitted to the labels before any fine-tuning.

A new 1-output head outputs random values around 0 while composite labels sit near 0.75,
so the first steps go to learning the offset and undoing the noise instead of the
ranking. ``init_head`` starts it where the data says:

- a head with a bias (BERT's ``classifier``): bias = the label mean, weights = 0.
  Measured on the embedded MiniLM (400 shipped texts, 3 epochs, batch 16, lr 2e-4):
  held-out Spearman 0.946 with this start, 0.930 with the bias alone, 0.908 with the
  default head.
- a bias-free head (Llama, Qwen, GPT-2 ``score``, which read the last real token's final
  hidden state): a ridge regression of the labels on those pooled features of the
  training texts, i.e. a linear probe fitted before fine-tuning (LP-FT). The ridge
  strength is chosen by generalised cross-validation, and the weights carry the features'
  mean direction so that the mean output is exactly the label mean. Measured on the main
  job's SmolLM2 reward model (issue 13: 48 shipped texts + 5 policy samples for each of
  36 prompts, 182 trained; LoRA lr 5e-4, one epoch; Spearman on 96 held-out policy
  samples): 0.77 from a start that only matched the label mean, 0.90-0.91 from this one
  (ridge strength 0.01-0.1; 0.85 at 1.0), and the probe alone, before any fine-tuning,
  0.91; a random head gave 0.22-0.31.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

__all__ = ["init_head", "mean_direction", "pooled_features", "ridge_head"]

logger = logging.getLogger(__name__)

#: ridge strengths tried, as fractions of the features' mean squared norm (centred)
RIDGE_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)

#: texts per forward pass when reading the pooled features
FEATURE_BATCH = 32


def _score_head(model: Any) -> Any:
    import torch

    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    return heads[-1] if heads else None


def pooled_features(model: Any, sample_ids: Sequence[list[int]], pad_id: int | None) -> Any:
    """The last real token's final hidden state of each input (what a bias-free head reads),
    as an (n, hidden) float64 tensor; None when the model has no separate backbone."""
    import torch

    base = getattr(model, model.base_model_prefix, None)
    if base is None:
        return None
    pad = 0 if pad_id is None else pad_id
    device = next(model.parameters()).device
    rows = list(sample_ids)
    feats = []
    with torch.inference_mode():
        for start in range(0, len(rows), FEATURE_BATCH):
            chunk = rows[start : start + FEATURE_BATCH]
            width = max(len(r) for r in chunk)
            ids = torch.tensor([r + [pad] * (width - len(r)) for r in chunk], device=device)
            mask = torch.tensor(
                [[1] * len(r) + [0] * (width - len(r)) for r in chunk], device=device
            )
            hidden = base(input_ids=ids, attention_mask=mask)[0]
            last = mask.sum(1) - 1  # right-padded here: the last real token
            feats.append(hidden[torch.arange(len(chunk), device=device), last].double().cpu())
    return torch.cat(feats)


def mean_direction(mu: Any, value: float) -> Any:
    """The multiple of ``mu`` whose dot product with ``mu`` is ``value``: added to a
    bias-free head, it sets the output at the mean feature vector."""
    return value * mu / mu.pow(2).sum().clamp_min(1e-12)


def ridge_head(features: Any, labels: Sequence[float]) -> tuple[Any, float, float]:
    """Bias-free weights ``w`` with ``features @ w`` fitted to ``labels`` by ridge regression.

    Fits the centred problem for each strength in ``RIDGE_GRID`` and keeps the one with
    the lowest generalised cross-validation error; the mean feature direction then takes
    the intercept (``mean(features) @ w == mean(labels)``). Returns (w, chosen strength as
    a fraction of the mean squared centred norm, GCV error).
    """
    import torch

    x = features.double()
    y = torch.tensor(list(labels), dtype=torch.float64)
    n = x.shape[0]
    mu = x.mean(0)
    xc, yc = x - mu, y - y.mean()
    u, s, vt = torch.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc
    s2 = s.pow(2)
    scale = float(s2.sum()) / n
    best: tuple[float, float, Any] | None = None
    for frac in RIDGE_GRID:
        shrink = s2 / (s2 + frac * scale)
        fitted = u @ (shrink * uty)
        dof = float(shrink.sum())
        gcv = float((yc - fitted).pow(2).sum()) * n / max(n - dof, 1e-6) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, frac, vt.T @ (s / (s2 + frac * scale) * uty))
    assert best is not None
    gcv, frac, wc = best
    w = wc + mean_direction(mu, float(y.mean() - mu @ wc))
    return w, frac, gcv


def init_head(
    model: Any,
    labels: Sequence[float],
    sample_ids: Sequence[list[int]] | None = None,
    pad_id: int | None = None,
) -> bool:
    """Start a 1-output head from the training labels (see the module docstring).

    ``sample_ids`` are the training inputs (token ids, unpadded) in the order of
    ``labels``; a bias-free head needs them. Returns whether the head was changed.
    """
    import torch

    head = _score_head(model)
    if head is None or not labels:
        return False
    mean = sum(labels) / len(labels)
    if head.bias is not None:
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(float(mean))
        return True
    if not sample_ids or len(sample_ids) != len(labels):
        return False
    feats = pooled_features(model, sample_ids, pad_id)
    if feats is None:
        return False
    if len(labels) < 3:  # nothing to fit: the mean output alone
        w, frac = mean_direction(feats.mean(0), mean), float("nan")
    else:
        w, frac, _ = ridge_head(feats, labels)
    with torch.no_grad():
        head.weight.copy_(w.to(head.weight.dtype).view_as(head.weight))
    logger.info(
        "reward head started as a ridge probe on %d texts' pooled features (strength %g)",
        len(labels),
        frac,
    )
    return True
