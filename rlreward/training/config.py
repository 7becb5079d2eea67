"""Reward-model training and source configs, validated at construction (no model loads).

``RewardModelTrainingConfig`` says how to train a reward model from rule-based rewards;
``RewardModelSourceConfig`` says where a reward model comes from (trained here, the hub,
or a local directory) and turns that into a path with ``materialize()``. Every rule of
the seed's "strict validation" is checked in ``__post_init__`` and fails with a
ConfigError naming the field, the value and the fix: exactly one source, no empty
required fields, at least 10 training texts, known reward-function names (listed),
positive finite weights, one per function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from rlreward.checks import number_rule, short_repr
from rlreward.errors import ConfigError
from rlreward.training.settings import RewardModelHyperparameters
from rlreward.training.validation import (
    MIN_TRAINING_TEXTS,
    RewardFunctionRef,
    check_hyperparameters,
    nonempty_str,
    validate_reward_functions,
    validate_texts,
    validate_weights,
)

__all__ = [
    "MIN_TRAINING_TEXTS",
    "SOURCE_TYPES",
    "RewardModelSourceConfig",
    "RewardModelTrainingConfig",
    # re-exported from rlreward.training.validation (the RL trainer factory uses them)
    "validate_reward_functions",
    "validate_texts",
    "validate_weights",
]

SourceType = Literal["custom_trained", "pretrained_hf", "pretrained_local"]

SOURCE_TYPES = ("custom_trained", "pretrained_hf", "pretrained_local")
#: files that make a directory loadable as a (possibly adapter-only) model
MODEL_MARKERS = ("config.json", "adapter_config.json")


@dataclass
class RewardModelTrainingConfig(RewardModelHyperparameters):
    """How to train a reward model that learns a weighted composite of rule-based rewards.

    The data and model fields are here; the hyperparameters (``num_epochs``,
    ``learning_rate``, ``batch_size``, ``gradient_accumulation_steps``, ``max_length``,
    ...) are ``RewardModelHyperparameters``, declared once there (keyword-only).

    ``base_model_name`` is a hub id, a local directory, or ``"embedded"`` for the MiniLM
    shipped with rlreward (offline). ``learning_rate=None`` picks 2e-4 for the embedded
    MiniLM (measured: held-out Spearman about 0.95 in 3 epochs on 400 texts, where the
    seed's 1e-5 reaches 0.72) and the seed's 1e-5 for any other base (the usual setting
    for 0.5B+ models). ``head_learning_rate=None`` lets the fresh reward head learn at
    ``max(learning_rate, 1e-3)`` in a full fine-tune of the embedded MiniLM, and at
    ``learning_rate`` otherwise (LoRA, other bases); see ``RewardModelTrainer``.
    ``policy_samples`` is read by ``create_rl_trainer`` only: samples of the policy per
    training prompt added to the texts (at the RL response length), 0 = none.
    """

    base_model_name: str
    training_texts: list[str]
    reward_functions: list[RewardFunctionRef]
    output_dir: str
    reward_weights: list[float] | None = None
    prompts: list[str] | None = None
    reference_texts: list[str] | None = None
    objective: Literal["regression", "pairwise"] = "regression"
    use_lora: bool = False
    lora_config: Any = None
    seed: int = 0
    policy_samples: int = 0

    def __post_init__(self) -> None:
        o = "RewardModelTrainingConfig"
        self.base_model_name = nonempty_str(
            o,
            "base_model_name",
            self.base_model_name,
            "give a hub id, a local model directory, or 'embedded' for the offline MiniLM",
        )
        self.output_dir = nonempty_str(
            o, "output_dir", self.output_dir, "give a directory to save the model in"
        )
        self.training_texts = validate_texts(
            o, "training_texts", self.training_texts, min_count=MIN_TRAINING_TEXTS
        )
        n = len(self.training_texts)
        for aux in ("prompts", "reference_texts"):
            values = getattr(self, aux)
            if values is not None:
                values = validate_texts(o, aux, values)
                if len(values) != n:
                    raise ConfigError(
                        f"{o}.{aux} has {len(values)} items for {n} training_texts; give one "
                        "per text"
                    )
                setattr(self, aux, values)
        self.reward_functions = validate_reward_functions(
            o, "reward_functions", self.reward_functions
        )
        self.reward_weights = validate_weights(
            o, "reward_weights", self.reward_weights, len(self.reward_functions)
        )
        self.check_hyperparameters(o)
        check_hyperparameters(o, {"objective": self.objective})
        if self.lora_config is not None and not self.use_lora:
            raise ConfigError(
                f"{o}.lora_config is given but {o}.use_lora=False; set use_lora=True or drop "
                "the config"
            )
        if number_rule(self.seed, integer=True) is not None:
            raise ConfigError(f"{o}.seed = {short_repr(self.seed)} is not allowed; use an integer")
        allowed = number_rule(self.policy_samples, integer=True, low=0)
        if allowed is not None:
            raise ConfigError(
                f"{o}.policy_samples = {short_repr(self.policy_samples)} is not allowed; use "
                f"{allowed} (0 = train on the training texts only)"
            )

    def build_trainer(self) -> Any:
        """A RewardModelTrainer with this config's model, functions and weights."""
        from rlreward.training.trainer import RewardModelTrainer

        return RewardModelTrainer(
            base_model_name=self.base_model_name,
            reward_functions=self.reward_functions,
            composite_weights=self.reward_weights,
            objective=self.objective,
            use_lora=self.use_lora,
            lora_config=self.lora_config,
            seed=self.seed,
        )

    def train(self, *, show_progress: bool = True) -> str:
        """Score the texts, train, evaluate and save; returns ``output_dir``."""
        trainer = self.build_trainer()
        data = trainer.generate_training_data(
            self.training_texts,
            reference_texts=self.reference_texts,
            prompts=self.prompts,
            show_progress=show_progress,
        )
        return trainer.train_reward_model(
            data, self.output_dir, **self.hyperparameters(), show_progress=show_progress
        )


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in MODEL_MARKERS)


@dataclass
class RewardModelSourceConfig:
    """Where the reward model comes from: exactly one of three sources.

    - ``source_type="custom_trained"`` with ``training_config`` (a
      RewardModelTrainingConfig or a dict of its fields): trained by ``materialize()``;
    - ``source_type="pretrained_hf"`` with ``model_name`` (a hub id);
    - ``source_type="pretrained_local"`` with ``model_path`` (a directory holding a
      ``config.json``, or a LoRA adapter's ``adapter_config.json``).
    """

    source_type: SourceType
    training_config: RewardModelTrainingConfig | dict[str, Any] | None = None
    model_name: str | None = None
    model_path: str | None = None
    _materialized: str | None = field(default=None, init=False, repr=False, compare=False)

    _FIELD: ClassVar[dict[SourceType, str]] = {
        "custom_trained": "training_config",
        "pretrained_hf": "model_name",
        "pretrained_local": "model_path",
    }

    def __post_init__(self) -> None:
        o = "RewardModelSourceConfig"
        if self.source_type not in SOURCE_TYPES:
            raise ConfigError(
                f"{o}.source_type = {self.source_type!r} is not allowed; use one of "
                f"{list(SOURCE_TYPES)}"
            )
        given = {f: getattr(self, f) for f in self._FIELD.values() if getattr(self, f) is not None}
        wanted = self._FIELD[self.source_type]
        if list(given) != [wanted]:
            shown = ", ".join(f"{k}={short_repr(v, 40)}" for k, v in given.items()) or "none"
            raise ConfigError(
                f"{o}: exactly one reward-model source is allowed, and source_type="
                f"{self.source_type!r} needs {wanted}; got {shown}. "
                f"Set only {wanted} (drop the others), or change source_type"
            )
        if self.source_type == "custom_trained":
            tc = self.training_config
            if isinstance(tc, dict):
                self.training_config = RewardModelTrainingConfig(**tc)
            elif not isinstance(tc, RewardModelTrainingConfig):
                raise ConfigError(
                    f"{o}.training_config must be a RewardModelTrainingConfig or a dict of its "
                    f"fields, got {type(tc).__name__}"
                )
        elif self.source_type == "pretrained_hf":
            self.model_name = nonempty_str(
                o,
                "model_name",
                self.model_name,
                "give a hub id such as 'Skywork/Skywork-Reward-V2-Qwen3-0.6B'",
            )
        else:
            self.model_path = nonempty_str(
                o, "model_path", self.model_path, "give a local model directory"
            )
            path = Path(self.model_path).expanduser()
            if not path.exists():
                raise ConfigError(
                    f"{o}.model_path = {self.model_path!r} does not exist; give the directory a "
                    "reward model was saved to (use source_type='pretrained_hf' for a hub id)"
                )
            if not _is_model_dir(path):
                raise ConfigError(
                    f"{o}.model_path = {self.model_path!r} holds no config.json (nor "
                    "adapter_config.json); give the directory that save_pretrained wrote"
                )

    @classmethod
    def from_sources(
        cls,
        *,
        training_config: RewardModelTrainingConfig | dict[str, Any] | None = None,
        model_name: str | None = None,
        model_path: str | None = None,
    ) -> RewardModelSourceConfig:
        """The source config for whichever one of the three is given (two or none: an error)."""
        given = [
            k
            for k, v in (
                ("training_config", training_config),
                ("model_name", model_name),
                ("model_path", model_path),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise ConfigError(
                "exactly one reward-model source is needed: a training config (custom_trained), "
                f"model_name (hub) or model_path (local); got {given or 'none'}"
            )
        source_type = {v: k for k, v in cls._FIELD.items()}[given[0]]
        return cls(
            source_type,
            training_config=training_config,
            model_name=model_name,
            model_path=model_path,
        )

    @property
    def identifier(self) -> str:
        """What the source points at (output dir when custom trained), without loading."""
        if self.source_type == "custom_trained":
            assert isinstance(self.training_config, RewardModelTrainingConfig)
            return self.training_config.output_dir
        return str(self.model_name if self.source_type == "pretrained_hf" else self.model_path)

    def materialize(self, *, show_progress: bool = True, retrain: bool = False) -> str:
        """A name or path that ``from_pretrained`` loads; trains first when custom_trained.

        A custom model is trained once per config object (``retrain=True`` forces it);
        hub ids are returned as they are (transformers caches them on first load).
        """
        if self.source_type != "custom_trained":
            return self.identifier
        if self._materialized is None or retrain:
            assert isinstance(self.training_config, RewardModelTrainingConfig)
            self._materialized = self.training_config.train(show_progress=show_progress)
        return self._materialized
