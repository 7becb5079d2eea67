"""TrainSettings: the hyperparameters of one reward-model training run, validated.

``RewardModelTrainer.train_reward_model`` and ``prepare`` build one from their keyword
arguments, so every option is checked (with the field, the value and the fix) before a
model is loaded, and ``hf_kwargs`` turns it into CPU-safe ``TrainingArguments`` fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from rlreward.errors import ConfigError
from rlreward.models.reward_model_io import check_input_format
from rlreward.training.arguments import run_args
from rlreward.training.validation import (
    SEED_HYPERPARAMETERS,
    check_hyperparameters,
    nonempty_str,
)

__all__ = ["TrainSettings"]


@dataclass
class TrainSettings:
    """Options of ``train_reward_model`` (see its docstring).

    ``learning_rate`` and ``head_learning_rate`` are resolved (never None) by
    ``RewardModelTrainer.settings``.
    """

    output_dir: str
    learning_rate: float
    head_learning_rate: float
    num_epochs: float = 3
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    eval_fraction: float = 0.2
    label_column: str = "composite"
    input_format: str = "auto"
    min_spearman: float | None = None
    lora_merge: bool = True
    freeze_embeddings: bool = False
    save_checkpoints: bool = False
    show_progress: bool = True
    logging_steps: int = 10
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    training_args: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        o = "train_reward_model"
        fix = "give a directory to save the model in"
        self.output_dir = nonempty_str(o, "output_dir", self.output_dir, fix)
        check_hyperparameters(o, {f.name: getattr(self, f.name) for f in fields(self)})
        if self.input_format != "auto":
            check_input_format(self.input_format, o)
        if self.training_args is not None and not isinstance(self.training_args, dict):
            raise ConfigError(
                f"{o}.training_args must be a dict of TrainingArguments fields, "
                f"got {type(self.training_args).__name__}"
            )

    def hf_kwargs(self, seed: int) -> dict[str, Any]:
        """TrainingArguments fields that run anywhere: CPU without CUDA, bf16 only on CUDA."""
        import torch

        cuda = torch.cuda.is_available()
        kwargs: dict[str, Any] = {
            **run_args(use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(), seed=seed),
            "output_dir": self.output_dir,
            "num_train_epochs": self.num_epochs,
            "learning_rate": self.learning_rate,
            "per_device_train_batch_size": self.batch_size,
            "per_device_eval_batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "save_strategy": "epoch" if self.save_checkpoints else "no",
            "eval_strategy": "no",  # the held-out split is scored once, after training
            "logging_steps": self.logging_steps,
            "disable_tqdm": not self.show_progress,
            "seed": seed,
            "data_seed": seed,
            "dataloader_num_workers": 0,
            "warmup_steps": float(self.warmup_ratio),  # a float in [0, 1) is a ratio of steps
            "weight_decay": self.weight_decay,
        }
        kwargs.update(self.training_args or {})
        return kwargs

    def as_metadata(self) -> dict[str, Any]:
        """The JSON-able settings recorded in the model's metadata."""
        keep = (
            *SEED_HYPERPARAMETERS,
            "head_learning_rate",
            "freeze_embeddings",
            "warmup_ratio",
            "weight_decay",
        )
        d = asdict(self)
        return {k: d[k] for k in keep}
