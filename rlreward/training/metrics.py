"""Fidelity metrics of a reward model against its target.

A reward model is only useful if it reproduces the composite it was trained on, so
every training run reports held-out Spearman/Pearson/MSE and writes them, with
everything needed to reload and normalise the model, to its metadata file
(``rlreward.models.reward_model_io.write_metadata``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlreward.checks import mean_std
from rlreward.errors import RewardModelFidelityError

__all__ = [
    "RewardModelFidelityError",
    "evaluate_run",
    "fidelity_metrics",
    "report_fidelity",
    "summary_stats",
]

logger = logging.getLogger(__name__)


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def summary_stats(values: Any) -> dict[str, float]:
    """min / max / mean / std of a 1-D array of numbers."""
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0, "std": 0.0}
    mean, std = mean_std(a.tolist())
    return {"min": float(a.min()), "max": float(a.max()), "mean": mean, "std": std}


def fidelity_metrics(pred: Any, target: Any) -> dict[str, float | int | None]:
    """Spearman, Pearson, MSE, MAE, the MSE of always predicting the mean, and pair accuracy.

    ``pair_accuracy`` is the share of pairs with different targets that the predictions
    order the same way (what a pairwise-trained model is judged by; its raw outputs are
    on another scale, so its MSE means little). Correlations of a constant are None.
    """
    from scipy.stats import pearsonr, spearmanr

    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(target, dtype=np.float64).reshape(-1)
    n = int(p.size)
    out: dict[str, float | int | None] = {"n": n}
    if n < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        out.update(spearman=None, pearson=None)
    else:
        out["spearman"] = _finite_or_none(spearmanr(p, t)[0])
        out["pearson"] = _finite_or_none(pearsonr(p, t)[0])
    out["mse"] = float(np.mean((p - t) ** 2)) if n else None
    out["mae"] = float(np.mean(np.abs(p - t))) if n else None
    out["baseline_mse"] = float(np.var(t)) if n else None
    dt = t[:, None] - t[None, :]
    dp = p[:, None] - p[None, :]
    mask = dt > 0
    out["pair_accuracy"] = float((dp[mask] > 0).mean()) if mask.any() else None
    return out


def evaluate_run(run: Any, label_column: str, batch_size: int) -> dict[str, Any]:
    """Fidelity on the training and held-out rows of a trained run, plus score statistics."""
    from rlreward.models.reward_model_io import score_ids

    model, tok = run.model, run.tokenizer
    train_pred = score_ids(model, tok, run.train_ids, batch_size)
    metrics: dict[str, Any] = {"train": fidelity_metrics(train_pred, run.train_rows[label_column])}
    all_pred = list(train_pred)
    metrics["eval"] = None
    if run.eval_rows is not None and run.eval_ids is not None:
        eval_pred = score_ids(model, tok, run.eval_ids, batch_size)
        metrics["eval"] = fidelity_metrics(eval_pred, run.eval_rows[label_column])
        all_pred += eval_pred
    metrics["score_stats"] = summary_stats(all_pred)
    return metrics


def report_fidelity(ev: dict[str, Any] | None, out: Path, min_spearman: float | None) -> None:
    """Log the held-out fidelity; raise RewardModelFidelityError below ``min_spearman``."""
    if ev is None:
        logger.warning(
            "no held-out split (eval_fraction=0): the reward model's fidelity is unmeasured"
        )
        if min_spearman is not None:
            raise RewardModelFidelityError(
                f"min_spearman={min_spearman} needs a held-out split; set eval_fraction > 0"
            )
        return
    rho = ev.get("spearman")
    logger.info(
        "reward model saved to %s; held-out Spearman %s, Pearson %s, MSE %.4g (predicting the "
        "mean: %.4g), n=%d",
        out,
        rho,
        ev.get("pearson"),
        ev["mse"],
        ev["baseline_mse"],
        ev["n"],
    )
    if rho is None or rho < 0.5:
        logger.warning("the reward model reproduces its target poorly (held-out Spearman %s)", rho)
    if min_spearman is not None and (rho is None or rho < min_spearman):
        raise RewardModelFidelityError(
            f"held-out Spearman {rho} is below min_spearman={min_spearman} (model saved to "
            f"{str(out)!r} for inspection); train longer, raise the learning rate, or give "
            "more texts"
        )
