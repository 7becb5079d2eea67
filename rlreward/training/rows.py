"""Training rows: read labelled texts from any table shape, check them, split them.

A constant label column is an error here: it is what the original's string-named reward
functions silently produced (all zeros), and a model trained on it learns nothing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from rlreward.checks import is_number
from rlreward.errors import ConfigError
from rlreward.training.validation import MIN_TRAINING_TEXTS, validate_texts

__all__ = ["Rows", "labelled_columns", "split_rows"]

logger = logging.getLogger(__name__)

Rows = dict[str, list[Any]]


def labelled_columns(data: Any, label_column: str) -> Rows:
    """Columns of a Dataset / list of dicts / dict of lists, checked for text and labels."""
    if hasattr(data, "column_names") and hasattr(data, "to_dict"):
        cols = data.to_dict()
    elif isinstance(data, Mapping):
        cols = {k: list(v) for k, v in data.items()}
    elif isinstance(data, Sequence) and data and all(isinstance(r, Mapping) for r in data):
        cols = {k: [r.get(k) for r in data] for k in data[0]}
    else:
        raise ConfigError(
            "training_data must be a datasets.Dataset (from generate_training_data), a list of "
            f"dicts or a dict of lists, got {type(data).__name__}"
        )
    for col in ("text", label_column):
        if col not in cols:
            raise ConfigError(
                f"training_data has no {col!r} column (columns: {sorted(cols)}); build it with "
                "generate_training_data(texts) or give label_column=<your score column>"
            )
    validate_texts("training_data", "text", cols["text"], min_count=MIN_TRAINING_TEXTS)
    labels = cols[label_column]
    for i, y in enumerate(labels):
        if not is_number(y):
            raise ConfigError(
                f"training_data[{label_column!r}][{i}] = {y!r}; labels must be finite numbers"
            )
    if max(labels) == min(labels):
        raise ConfigError(
            f"every training label ({label_column!r}) is {labels[0]!r}: there is nothing to "
            "learn. Check that the reward functions score these texts (a constant column means "
            "a function ignores them) and give more varied texts"
        )
    return cols


def split_rows(
    cols: Rows, label_column: str, eval_fraction: float, seed: int
) -> tuple[Rows, Rows | None]:
    """(train, held-out) rows, shuffled with ``seed``; held-out is None when the fraction is 0."""
    keep = [c for c in ("text", "prompt", label_column) if c in cols]
    n = len(cols["text"])
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_eval = max(2, round(n * eval_fraction)) if eval_fraction else 0  # a correlation needs 2
    if n_eval and n - n_eval < 2:
        raise ConfigError(
            f"eval_fraction={eval_fraction} leaves {n - n_eval} training texts; lower it or add "
            "texts"
        )
    if 0 < n_eval < 10:
        logger.warning("only %d held-out texts: the fidelity metrics are noisy", n_eval)
    held, train = order[:n_eval], order[n_eval:]
    train_rows = {c: [cols[c][i] for i in train] for c in keep}
    return train_rows, ({c: [cols[c][i] for i in held] for c in keep} if held else None)
