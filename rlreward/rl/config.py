"""RLTrainingConfig: every argument of ``create_rl_trainer``, validated before any model loads.

The rules (each failure is a ConfigError naming the argument, the value and the fix):

- ``algorithm`` is "ppo" or "grpo", ``backend`` is "trl" or "unsloth";
- PPO and GRPO take any reward through the runner: rule functions, a reward model and/or
  a reward spec (LLM judges), with at most one reward model source
  (``train_custom_reward_model``: trained here from ``reward_functions``, which then only
  label its training texts; ``reward_model_name``: hub; ``reward_model_path``: directory);
- training a reward model needs known ``reward_functions``, at least 10 training texts
  and positive weights, one per function; its config is ONE typed object,
  ``reward_model_training`` (a ``RewardModelTrainingConfig``: data fields plus the
  hyperparameters declared once in ``RewardModelHyperparameters``). The seed's flat
  keywords (``reward_training_texts``, ``reward_training_epochs``, ...; the table is
  ``FLAT_REWARD_TRAINING``) keep working: ``create_rl_trainer`` maps them into it, and
  its errors name the keyword that was given;
- numbers are positive, counts are integers, local paths exist.

The policy/reward-model family check loads tokenizers, so it runs in
``create_rl_trainer`` right after this (still before any model weights load).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rlreward.checks import is_number, is_weight, number_rule
from rlreward.errors import ConfigError, UnknownNameError
from rlreward.training.config import (
    MIN_TRAINING_TEXTS,
    RewardModelTrainingConfig,
    validate_reward_functions,
    validate_weights,
)

__all__ = ["ALGORITHMS", "BACKENDS", "FLAT_REWARD_TRAINING", "RLTrainingConfig"]

ALGORITHMS = ("ppo", "grpo")
BACKENDS = ("trl", "unsloth")
_OWNER = "create_rl_trainer"
_LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt", ".arrow")


DEFAULT_REWARD_MODEL_DIR = "./reward_models/custom"
#: the seed's flat keywords of create_rl_trainer -> fields of reward_model_training
FLAT_REWARD_TRAINING = {
    "reward_training_texts": "training_texts",
    "reward_training_prompts": "prompts",
    "reward_training_base_model": "base_model_name",
    "reward_training_output_dir": "output_dir",
    "reward_training_epochs": "num_epochs",
    "reward_training_lr": "learning_rate",
    "reward_training_batch_size": "batch_size",
    "reward_training_max_length": "max_length",
    "reward_training_use_lora": "use_lora",
    "reward_training_lora_config": "lora_config",
    "reward_training_policy_samples": "policy_samples",
}
_FIELD_TO_FLAT = {v: k for k, v in FLAT_REWARD_TRAINING.items()}
_TRAINING_FIELDS = tuple(f.name for f in fields(RewardModelTrainingConfig))


def _flat_names(given: Mapping[str, Any]) -> list[str]:
    return [_FIELD_TO_FLAT.get(k, f"reward_model_training.{k}") for k in given]


def _flat_message(message: str) -> str:
    """A RewardModelTrainingConfig message with each field named as create_rl_trainer's
    keyword (``reward_training_epochs``), or ``reward_model_training.<field>``."""

    def name(match: re.Match[str]) -> str:
        field_ = match.group(1)
        return _FIELD_TO_FLAT.get(field_, f"reward_model_training.{field_}")

    return f"{_OWNER}: " + re.sub(r"RewardModelTrainingConfig\.(\w+)", name, message)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(
    name: str, value: Any, *, integer: bool = False, low: float = 0.0, allow_none: bool = False
) -> None:
    """``value`` > low (>= 1 for integers), else a ConfigError naming the argument."""
    if value is None and allow_none:
        return
    allowed = (
        number_rule(value, integer=True, low=max(low, 1))
        if integer
        else number_rule(value, low=low, low_inclusive=False)
    )
    if allowed is not None:
        what, none = allowed, " (or None)" if allow_none else ""
        raise ConfigError(f"{_OWNER}: {name}={_short(value)} is not allowed; use {what}{none}")


@dataclass
class RLTrainingConfig:
    """What ``create_rl_trainer`` was asked to do (see its docstring for each argument)."""

    model_name: str
    dataset_name: Any = None
    algorithm: str = "ppo"
    backend: str = "trl"
    # rule-based reward functions: the reward (no reward model trained here), or the
    # labels of a reward model trained here
    reward_functions: Sequence[Any] | None = None
    reward_function_weights: Sequence[float] | None = None
    #: {rule function: {mode, floor, bounds}}: gates of the functions' composite
    #: (``trainer.label_reward``): constraints it cannot trade away. The reward model
    #: learns the ungated sum; the gates are graded on every RL row and applied to its score
    reward_function_gates: Mapping[str, Mapping[str, Any]] | None = None
    # a reward model trained here: one typed object (a dict of its fields, or the seed's
    # flat reward_training_* keywords, is turned into one; see FLAT_REWARD_TRAINING)
    train_custom_reward_model: bool = False
    reward_model_training: RewardModelTrainingConfig | Mapping[str, Any] | None = None
    # a ready reward model, and/or a reward spec (e.g. LLM judges); how they join
    # (rlreward.rl.reward): the spec's Reward nested as "spec", weighted with the rest
    reward_model_name: str | None = None
    reward_model_path: str | None = None
    reward_spec: Any = None
    reward_spec_weight: float = 1.0
    reward_model_weight: float = 1.0
    #: the reward model's scale when it joins bounded graders: "sigmoid" or (low, high)
    reward_model_normalize: str | None = None
    reward_model_bounds: Sequence[float] | None = None
    # the RL run
    num_epochs: float = 1
    batch_size: int = 8
    learning_rate: float = 1e-5
    max_samples: int | None = None
    output_dir: str = "./outputs/rl"
    dataset_split: str | None = None
    prompt_column: str | None = None
    max_prompt_length: int | None = None
    max_new_tokens: int = 48
    policy_warmup_steps: int | None = None
    seed: int = 0
    # unsloth / LoRA
    use_lora: bool | None = None
    load_in_4bit: bool = True
    lora_r: int = 16
    lora_alpha: int = 16
    max_seq_length: int = 1024
    # algorithm-specific knobs: PPOSettings fields / GRPOConfig fields
    ppo_options: Mapping[str, Any] = field(default_factory=dict)
    grpo_options: Mapping[str, Any] = field(default_factory=dict)
    #: the reward-hacking monitor during PPO (a ``MonitorConfig``, a dict of its fields, or
    #: True for the defaults; ``rlreward.integrations.reward_monitor``)
    monitor: Any = None
    show_progress: bool = True

    def __post_init__(self) -> None:
        if (
            not isinstance(self.model_name, (str, os.PathLike))
            or not os.fspath(self.model_name).strip()
        ):
            raise ConfigError(
                f"{_OWNER}: model_name={_short(self.model_name)} is not allowed; give a hub id "
                "(e.g. 'Qwen/Qwen3-0.6B'), a local directory, or 'embedded' for the offline "
                "SmolLM2-135M-Instruct"
            )
        self.model_name = os.fspath(self.model_name)
        if isinstance(self.reward_model_training, RewardModelTrainingConfig):
            self.train_custom_reward_model = True  # given whole: it says what to train
        if self.algorithm not in ALGORITHMS:
            raise UnknownNameError("algorithm", str(self.algorithm), ALGORITHMS)
        if self.backend not in BACKENDS:
            raise UnknownNameError("backend", str(self.backend), BACKENDS)
        self._check_reward_sources()
        self._check_numbers()
        self._check_reward_training()
        self._check_dataset()
        self._check_options()

    # -- rules -----------------------------------------------------------------------
    def _check_reward_sources(self) -> None:
        given = [
            name
            for name, on in (
                ("train_custom_reward_model=True", bool(self.train_custom_reward_model)),
                (
                    f"reward_model_name={self.reward_model_name!r}",
                    self.reward_model_name is not None,
                ),
                (
                    f"reward_model_path={self.reward_model_path!r}",
                    self.reward_model_path is not None,
                ),
            )
            if on
        ]
        if len(given) > 1:
            raise ConfigError(
                f"{_OWNER}: give exactly one reward model source, got {len(given)}: "
                f"{', '.join(given)}; "
                "keep one of train_custom_reward_model=True, reward_model_name=<hub id> or "
                "reward_model_path=<local directory>"
            )
        for name in ("reward_model_name", "reward_model_path"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip()
            ):
                raise ConfigError(f"{_OWNER}: {name}={_short(value)} must be a non-empty string")
        if self.reward_model_path is not None:
            path = Path(os.fspath(self.reward_model_path)).expanduser()
            if not path.is_dir():
                raise ConfigError(
                    f"{_OWNER}: reward_model_path={os.fspath(self.reward_model_path)!r} is not a "
                    "directory; give the output directory of a trained reward model, or use "
                    "reward_model_name=<hub id> for a model on the Hugging Face Hub"
                )
        for name in ("reward_spec_weight", "reward_model_weight"):
            if not is_weight(getattr(self, name)):
                raise ConfigError(
                    f"{_OWNER}: {name}={_short(getattr(self, name))} is not allowed; use a "
                    "finite number > 0 (the member's weight in the trainer's reward)"
                )
        if self.reward_model_normalize not in (None, "sigmoid"):
            raise ConfigError(
                f"{_OWNER}: reward_model_normalize={_short(self.reward_model_normalize)} is not "
                "allowed; use 'sigmoid' (scores squashed to (0, 1)) or None (raw scores)"
            )
        if self.reward_model_bounds is not None:
            b = self.reward_model_bounds
            ok = isinstance(b, Sequence) and not isinstance(b, str) and len(b) == 2
            ok = ok and all(is_number(v) for v in b) and b[0] < b[1]
            if not ok:
                raise ConfigError(
                    f"{_OWNER}: reward_model_bounds={_short(b)} is not allowed; give (low, high), "
                    "two finite numbers with low < high (the reward model's scores that count "
                    "as worst and best; scores outside are clipped)"
                )
            if self.reward_model_normalize is not None:
                raise ConfigError(
                    f"{_OWNER}: give reward_model_normalize or reward_model_bounds, not both "
                    "(a sigmoid-normalised model is already on (0, 1))"
                )
            self.reward_model_bounds = (float(b[0]), float(b[1]))
        if not given and self.reward_functions is None and self.reward_spec is None:
            raise ConfigError(
                f"{_OWNER}: algorithm={self.algorithm!r} needs a reward: reward_functions=[...], "
                "a reward_spec (YAML path/dict with LLM judges), reward_model_name or "
                "reward_model_path, or train_custom_reward_model=True"
            )

    def _check_reward_training(self) -> None:
        funcs = self.reward_functions
        rmt = self.reward_model_training
        if isinstance(rmt, RewardModelTrainingConfig):  # given whole: it says what to train
            self.train_custom_reward_model = True
            if funcs is None:
                funcs = self.reward_functions = list(rmt.reward_functions)
                if self.reward_function_weights is None:
                    self.reward_function_weights = rmt.reward_weights
            elif list(funcs) != list(rmt.reward_functions):
                raise ConfigError(
                    f"{_OWNER}: reward_functions={_short(funcs)} differ from "
                    f"reward_model_training.reward_functions={_short(rmt.reward_functions)}; "
                    "give the label functions once (in reward_model_training)"
                )
        if funcs is not None:
            self.reward_functions = validate_reward_functions(_OWNER, "reward_functions", funcs)
        if self.reward_function_weights is not None:
            if funcs is None:
                raise ConfigError(
                    f"{_OWNER}: reward_function_weights={_short(self.reward_function_weights)} "
                    "given "
                    "without reward_functions; give the functions too, one weight per function"
                )
            self.reward_function_weights = validate_weights(
                _OWNER,
                "reward_function_weights",
                self.reward_function_weights,
                len(self.reward_functions or []),
            )
        if rmt is not None and not isinstance(rmt, (Mapping, RewardModelTrainingConfig)):
            raise ConfigError(
                f"{_OWNER}: reward_model_training must be a RewardModelTrainingConfig or a dict "
                f"of its fields, got {type(rmt).__name__}"
            )
        if self.reward_function_gates is not None:
            gates = self.reward_function_gates
            if not isinstance(gates, Mapping) or not gates:
                raise ConfigError(
                    f"{_OWNER}: reward_function_gates={_short(gates)} is not allowed; give "
                    "{rule function name: {mode: cap|multiply|floor, floor: x, bounds: [lo, hi]}}"
                )
            if not self.train_custom_reward_model:
                raise ConfigError(
                    f"{_OWNER}: reward_function_gates gate the composite a reward model trained "
                    "here stands for (train_custom_reward_model=True); for an RL reward of gated "
                    "rule functions, give a reward_spec whose weighted_sum has `gates:`"
                )
        if not self.train_custom_reward_model:
            if isinstance(rmt, Mapping) and rmt:
                given = ", ".join(_flat_names(rmt))
                raise ConfigError(
                    f"{_OWNER}: {given} given without train_custom_reward_model=True; set it to "
                    "train a reward model here, or drop them"
                )
            self.reward_model_training = None
            return
        if funcs is None:
            raise ConfigError(
                f"{_OWNER}: train_custom_reward_model=True needs reward_functions, e.g. "
                "['length', 'sentiment', 'safety'] (the reward model learns their composite)"
            )
        if isinstance(rmt, RewardModelTrainingConfig):
            return
        self.reward_model_training = self._training_config(dict(rmt or {}))

    def _training_config(self, given: dict[str, Any]) -> RewardModelTrainingConfig:
        """The typed reward-model training config from a dict of its fields (the flat
        keywords mapped), with the RL defaults; its errors name the keyword given."""
        if given.get("training_texts") is None:
            raise ConfigError(
                f"{_OWNER}: train_custom_reward_model=True needs reward_training_texts (at least "
                f"{MIN_TRAINING_TEXTS}); e.g. rlreward.data.load_reward_texts()"
            )
        fields_: dict[str, Any] = {
            "output_dir": DEFAULT_REWARD_MODEL_DIR,
            **given,
            "reward_functions": list(self.reward_functions or []),
            "reward_weights": self.reward_function_weights,
        }
        if fields_.get("base_model_name") is None:
            fields_["base_model_name"] = self._policy_family()
        fields_.setdefault("seed", self.seed)
        unknown = sorted(set(fields_) - set(_TRAINING_FIELDS))
        if unknown:
            raise ConfigError(
                f"{_OWNER}: reward_model_training has unknown fields {unknown}; known: "
                f"{', '.join(_TRAINING_FIELDS)}"
            )
        try:
            return RewardModelTrainingConfig(**fields_)
        except ConfigError as exc:
            raise ConfigError(_flat_message(str(exc))) from None

    def _policy_family(self) -> str:
        from rlreward.rl.policy import is_embedded_policy

        return "embedded-smollm2" if is_embedded_policy(self.model_name) else self.model_name

    def _check_numbers(self) -> None:
        _number("num_epochs", self.num_epochs)
        _number("batch_size", self.batch_size, integer=True)
        _number("learning_rate", self.learning_rate)
        _number("max_samples", self.max_samples, integer=True, allow_none=True)
        _number("max_prompt_length", self.max_prompt_length, integer=True, allow_none=True)
        _number("max_new_tokens", self.max_new_tokens, integer=True)
        _number("lora_r", self.lora_r, integer=True)
        _number("lora_alpha", self.lora_alpha, integer=True)
        _number("max_seq_length", self.max_seq_length, integer=True)
        warmup = self.policy_warmup_steps
        allowed = None if warmup is None else number_rule(warmup, integer=True, low=0)
        if allowed is not None:
            raise ConfigError(
                f"{_OWNER}: policy_warmup_steps={_short(warmup)} is not allowed; "
                f"use {allowed} (0 = no warm-up) or None (none)"
            )
        if number_rule(self.seed, integer=True) is not None:
            raise ConfigError(f"{_OWNER}: seed={_short(self.seed)} is not allowed; use an integer")
        if not isinstance(self.output_dir, (str, os.PathLike)) or not os.fspath(self.output_dir):
            raise ConfigError(
                f"{_OWNER}: output_dir={_short(self.output_dir)} must be a directory path"
            )

    def _check_dataset(self) -> None:
        ds = self.dataset_name
        if ds is None or not isinstance(ds, (str, os.PathLike)):
            return  # None: the shipped prompts; objects are checked when read
        text = os.fspath(ds)
        path = Path(text).expanduser()
        looks_local = text.startswith((".", "/", "~")) or path.suffix.lower() in _LOCAL_SUFFIXES
        if looks_local and not path.exists():
            raise ConfigError(
                f"{_OWNER}: dataset_name={text!r} looks like a local file but does not exist; "
                "give an "
                "existing JSONL/JSON/CSV/Parquet file or directory, a hub id such as "
                "'HuggingFaceH4/ultrafeedback_binarized', a datasets.Dataset, or None for the "
                "shipped prompts"
            )

    def _check_options(self) -> None:
        for name in ("ppo_options", "grpo_options"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ConfigError(f"{_OWNER}: {name} must be a dict, got {_short(value)}")
        if self.backend == "unsloth" and self.load_in_4bit and self.use_lora is False:
            raise ConfigError(
                f"{_OWNER}: backend='unsloth' with load_in_4bit=True and use_lora=False cannot "
                "train (4-bit weights are frozen); set use_lora=True (the default) or "
                "load_in_4bit=False"
            )
        if self.algorithm == "grpo":
            from rlreward.rl.grpo import check_num_generations

            check_num_generations(self.batch_size, self.grpo_options.get("num_generations"))

    # -- derived ---------------------------------------------------------------------
    @property
    def lora(self) -> bool:
        """Train LoRA adapters: asked for, else on with unsloth and for PPO (the reference
        policy is then the base with the adapter disabled: no second copy in memory), off
        for GRPO with plain TRL."""
        if self.use_lora is not None:
            return bool(self.use_lora)
        return self.backend == "unsloth" or self.algorithm == "ppo"

    @property
    def training(self) -> RewardModelTrainingConfig | None:
        """The reward-model training config (None: no reward model is trained here)."""
        rmt = self.reward_model_training
        return rmt if isinstance(rmt, RewardModelTrainingConfig) else None

    @property
    def reward_base_model(self) -> str:
        """The base of a reward model trained here: given, else the policy's own family
        (the embedded SmolLM2 for the embedded policy), so PPO's family check passes."""
        rmt = self.reward_model_training
        if isinstance(rmt, RewardModelTrainingConfig):
            return rmt.base_model_name
        return self._policy_family()

    @property
    def reward_model_source(self) -> str | None:
        """What the PPO value model / reward grader load once any training is done."""
        rmt = self.reward_model_training
        if isinstance(rmt, RewardModelTrainingConfig):
            return os.fspath(rmt.output_dir)
        if self.reward_model_path is not None:
            return os.fspath(self.reward_model_path)
        return self.reward_model_name

    @property
    def reward_family_reference(self) -> str | None:
        """The model whose tokenizer the reward model will have (for the family check)."""
        if self.train_custom_reward_model:
            return self.reward_base_model
        return self.reward_model_source
