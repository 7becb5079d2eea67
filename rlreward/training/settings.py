"""The hyperparameters of reward-model training, declared once, and one run's settings.

``RewardModelHyperparameters`` is the one declaration (names, defaults, validation) of
how a reward model is trained. ``RewardModelTrainingConfig`` (the seed's config),
``RewardModelTrainer.train_reward_model(**options)`` and ``create_rl_trainer``'s
``reward_model_training`` (and its flat ``reward_training_*`` keywords) all take these
fields; ``TrainSettings`` adds what one run needs (its directory, the progress bar) with
the learning rates resolved, and ``hf_kwargs`` turns it into CPU-safe
``TrainingArguments`` fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from difflib import get_close_matches
from typing import Any

from rlreward.errors import ConfigError
from rlreward.models.reward_model_io import check_input_format
from rlreward.training.arguments import run_args
from rlreward.training.validation import (
    SEED_HYPERPARAMETERS,
    check_hyperparameters,
    nonempty_str,
)

__all__ = ["HYPERPARAMETERS", "RewardModelHyperparameters", "TrainSettings", "check_options"]


@dataclass(kw_only=True)
class RewardModelHyperparameters:
    """How a reward model is trained (every field is validated at construction).

    ``learning_rate=None`` / ``head_learning_rate=None``: the trainer's measured
    defaults (``RewardModelTrainer.default_learning_rate`` /
    ``default_head_learning_rate``). ``min_spearman``: raise RewardModelFidelityError
    (after saving) when the held-out Spearman falls short. ``input_format``: "auto",
    "text", "pair", "chat" or a template. ``lora_merge``: merge a LoRA adapter into the
    saved model. ``training_args``: extra TrainingArguments fields.
    """

    num_epochs: float = 3
    learning_rate: float | None = None
    head_learning_rate: float | None = None
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    eval_fraction: float = 0.2
    min_spearman: float | None = None
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    logging_steps: int = 10
    freeze_embeddings: bool = False
    lora_merge: bool = True
    save_checkpoints: bool = False
    label_column: str = "composite"
    input_format: str = "auto"
    training_args: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.check_hyperparameters(type(self).__name__)

    def check_hyperparameters(self, owner: str) -> None:
        check_hyperparameters(owner, self.hyperparameters())
        if self.input_format != "auto":
            check_input_format(self.input_format, owner)
        if self.training_args is not None and not isinstance(self.training_args, dict):
            raise ConfigError(
                f"{owner}.training_args must be a dict of TrainingArguments fields, "
                f"got {type(self.training_args).__name__}"
            )

    def hyperparameters(self) -> dict[str, Any]:
        """``{field: value}`` of the hyperparameters alone (not a subclass's other fields)."""
        return {name: getattr(self, name) for name in HYPERPARAMETERS}


#: the hyperparameter names, in declaration order
HYPERPARAMETERS = tuple(f.name for f in fields(RewardModelHyperparameters))


def check_options(owner: str, options: dict[str, Any], extra: tuple[str, ...] = ()) -> None:
    """A ConfigError naming every option that is not a hyperparameter (or in ``extra``)."""
    known = (*HYPERPARAMETERS, *extra)
    unknown = [k for k in options if k not in known]
    if unknown:
        hints = []
        for k in unknown:
            close = get_close_matches(k, known, n=1)
            hints.append(f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k))
        raise ConfigError(
            f"{owner}: unknown options {', '.join(hints)}; the hyperparameters are "
            f"{', '.join(known)}"
        )


@dataclass(kw_only=True)
class TrainSettings(RewardModelHyperparameters):
    """One run of ``train_reward_model``: the hyperparameters with both learning rates
    resolved (by ``RewardModelTrainer.settings``), its directory and progress bar."""

    output_dir: str
    learning_rate: float
    head_learning_rate: float
    show_progress: bool = True

    def __post_init__(self) -> None:
        o = "train_reward_model"
        fix = "give a directory to save the model in"
        self.output_dir = nonempty_str(o, "output_dir", self.output_dir, fix)
        self.check_hyperparameters(o)

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
