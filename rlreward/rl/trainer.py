"""RLTrainer, what ``create_rl_trainer`` returns: reward-model training (if asked), then PPO/GRPO.

``train()`` runs every stage in order; the stages are also public so that a script can
look at the policy between them (the recipe scores a fixed set of prompts before and
after PPO)::

    trainer.train_reward_model()   # only with train_custom_reward_model=True
    trainer.prepare()              # policy (+ warm-up), prompts, TRL trainer
    trainer.train()                # the RL loop
    trainer.save_model()           # the policy + tokenizer + rlreward_policy.json
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlreward.rl.config import RLTrainingConfig
from rlreward.rl.history import StepLogger

__all__ = ["POLICY_METADATA_FILE", "RLTrainer"]

logger = logging.getLogger(__name__)

POLICY_METADATA_FILE = "rlreward_policy.json"
#: supervised warm-up steps of the embedded tiny policy (a random policy does not learn under PPO)
EMBEDDED_WARMUP_STEPS = 300


class RLTrainer:
    """Reward-model training then RL, as one object with ``train()`` and ``save_model()``.

    Attributes filled as stages run: ``reward_model_path`` and ``reward_model_metrics``
    (held-out Spearman etc. of a model trained here), ``policy`` / ``tokenizer``,
    ``trl_trainer`` (TRL's PPOTrainer or GRPOTrainer), ``history`` (one dict per RL
    step; PPO's mean reward is ``objective/scores``, GRPO's ``reward``), ``timings``.
    """

    def __init__(self, config: RLTrainingConfig, *, family_report: Any = None) -> None:
        self.config = config
        self.family_report = family_report
        self.reward_model_path: str | None = (
            None if config.train_custom_reward_model else config.reward_model_source
        )
        self.reward_model_metrics: dict[str, Any] | None = None
        self.policy: Any = None
        self.tokenizer: Any = None
        self.trl_trainer: Any = None
        self.reward_adapter: Any = None
        self.step_logger: StepLogger | None = None
        self.warmup: Any = None
        self.timings: dict[str, float] = {}
        self._trained = False

    @property
    def algorithm(self) -> str:
        return self.config.algorithm

    @property
    def history(self) -> list[dict[str, float]]:
        return self.step_logger.records if self.step_logger is not None else []

    @property
    def reward_key(self) -> str:
        """The history key holding the mean reward of a step."""
        return "objective/scores" if self.algorithm == "ppo" else "reward"

    def _use_cpu(self) -> bool:
        import torch

        return not torch.cuda.is_available()

    # -- stage 1: reward model ----------------------------------------------------------
    def train_reward_model(self) -> str | None:
        """Train the reward model from the rule functions (train_custom_reward_model=True)."""
        cfg = self.config
        if not cfg.train_custom_reward_model or self.reward_model_path is not None:
            return self.reward_model_path
        from rlreward.models.reward_model_io import read_metadata
        from rlreward.training.trainer import RewardModelTrainer

        start = time.perf_counter()
        rm = RewardModelTrainer(
            base_model_name=cfg.reward_training_base_model,
            reward_functions=list(cfg.reward_functions or []),
            composite_weights=cfg.reward_function_weights,
            seed=cfg.seed,
        )
        data = rm.generate_training_data(
            list(cfg.reward_training_texts or []),
            prompts=cfg.reward_training_prompts,
            show_progress=cfg.show_progress,
        )
        path = rm.train_reward_model(
            data,
            output_dir=os.fspath(cfg.reward_training_output_dir),
            num_epochs=cfg.reward_training_epochs,
            learning_rate=cfg.reward_training_lr,
            batch_size=cfg.reward_training_batch_size,
        )
        self.reward_model_path = path
        self.reward_model_metrics = (read_metadata(path) or {}).get("metrics")
        self.timings["reward_model_s"] = time.perf_counter() - start
        logger.info("reward model trained in %.1f s: %s", self.timings["reward_model_s"], path)
        return path

    # -- stage 2: policy, prompts, TRL trainer --------------------------------------------
    def load_policy(self) -> tuple[Any, Any]:
        """The policy and tokenizer (unsloth or transformers), warmed up when configured."""
        if self.policy is not None:
            return self.policy, self.tokenizer
        from rlreward.rl.policy import is_embedded_policy, load_policy, warm_up_policy

        cfg = self.config
        start = time.perf_counter()
        embedded = is_embedded_policy(cfg.model_name)
        steps = cfg.policy_warmup_steps
        if steps is None:
            steps = EMBEDDED_WARMUP_STEPS if embedded else 0
        if cfg.backend == "unsloth" and not embedded and not steps:
            model, tokenizer = self._load_unsloth(cfg.model_name, cfg.load_in_4bit)
        else:
            bundle = load_policy(cfg.model_name, seed=cfg.seed)
            model, tokenizer = bundle.model, bundle.tokenizer
            if steps:
                texts, prompts = self._warmup_corpus()
                self.warmup = warm_up_policy(
                    model,
                    tokenizer,
                    texts,
                    prompts=prompts,
                    steps=steps,
                    seed=cfg.seed,
                    show_progress=cfg.show_progress,
                )
            if cfg.backend == "unsloth":  # unsloth loads from a directory: hand it this policy
                source = os.path.join(os.fspath(cfg.output_dir), "warmed_up_policy")
                model.save_pretrained(source)
                tokenizer.save_pretrained(source)
                del model, bundle
                # a tiny in-process policy is not worth quantising
                model, tokenizer = self._load_unsloth(source, cfg.load_in_4bit and not embedded)
        self.policy, self.tokenizer = model, tokenizer
        self.timings["policy_s"] = time.perf_counter() - start
        return model, tokenizer

    def _load_unsloth(self, source: str, load_in_4bit: bool) -> tuple[Any, Any]:
        from rlreward.rl.policy import prepare_policy_tokenizer, sync_generation_ids
        from rlreward.rl.unsloth import load_unsloth_policy

        cfg = self.config
        model, tokenizer = load_unsloth_policy(
            source,
            max_seq_length=cfg.max_seq_length,
            load_in_4bit=load_in_4bit,
            lora=cfg.lora,
            lora_r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            seed=cfg.seed,
        )
        tokenizer = prepare_policy_tokenizer(tokenizer)
        sync_generation_ids(model, tokenizer)
        return model, tokenizer

    def _warmup_corpus(self) -> tuple[list[str], list[str] | None]:
        """(answers, their prompts) to warm up on: the user's prompted reward texts, else
        the shipped question/answer records, so that the policy learns to answer queries."""
        cfg = self.config
        if cfg.reward_training_texts and cfg.reward_training_prompts:
            return list(cfg.reward_training_texts), list(cfg.reward_training_prompts)
        from rlreward.data import load_reward_records

        records = load_reward_records()
        return [r["text"] for r in records], [r["prompt"] for r in records]

    def _peft_config(self) -> Any:
        cfg = self.config
        if not cfg.lora or cfg.backend == "unsloth":  # unsloth already added its adapters
            return None
        from peft import LoraConfig

        return LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, task_type="CAUSAL_LM"
        )

    def prepare(self) -> Any:
        """Everything up to the RL loop; returns TRL's trainer (built once)."""
        if self.trl_trainer is not None:
            return self.trl_trainer
        cfg = self.config
        self.train_reward_model()
        policy, tokenizer = self.load_policy()
        from rlreward.rl.data import load_prompt_dataset

        dataset = load_prompt_dataset(
            cfg.dataset_name,
            split=cfg.dataset_split,
            prompt_column=cfg.prompt_column,
            max_samples=cfg.max_samples,
        )
        start = time.perf_counter()
        if cfg.algorithm == "ppo":
            self.trl_trainer = self._build_ppo(policy, tokenizer, dataset)
        else:
            self.trl_trainer = self._build_grpo(policy, tokenizer, dataset)
        self.timings["setup_s"] = time.perf_counter() - start
        return self.trl_trainer

    def _build_ppo(self, policy: Any, tokenizer: Any, dataset: Any) -> Any:
        from rlreward.graders.reward_model import RewardModelGrader
        from rlreward.rl.ppo import (
            PPOSettings,
            build_ppo_dataset,
            build_ppo_trainer,
            make_ppo_config,
        )
        from rlreward.rl.reward_adapter import TextRewardModel, build_value_model

        cfg = self.config
        assert self.reward_model_path is not None
        settings = PPOSettings(
            **{
                "response_length": cfg.max_new_tokens,
                "max_prompt_length": cfg.max_prompt_length,
                **cfg.ppo_options,
            }
        )
        grader = RewardModelGrader(self.reward_model_path)
        queries, lookup = build_ppo_dataset(
            list(dataset["prompt"]), tokenizer, settings.max_prompt_length
        )
        self.reward_adapter = TextRewardModel(
            grader.score_texts, tokenizer, settings.max_prompt_length, prompt_lookup=lookup
        )
        value_model = build_value_model(self.reward_model_path)
        self.step_logger = StepLogger(self.reward_adapter)
        config = make_ppo_config(
            os.fspath(cfg.output_dir),
            settings,
            batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            num_epochs=cfg.num_epochs,
            use_cpu=self._use_cpu(),
            seed=cfg.seed,
            bf16=not self._use_cpu(),
        )
        return build_ppo_trainer(
            policy=policy,
            tokenizer=tokenizer,
            reward_model=self.reward_adapter,
            value_model=value_model,
            dataset=queries,
            config=config,
            callbacks=[self.step_logger.callback()],
            peft_config=self._peft_config(),
        )

    def _build_grpo(self, policy: Any, tokenizer: Any, dataset: Any) -> Any:
        from rlreward.rl.grpo import build_grpo_reward_spec, build_grpo_trainer

        cfg = self.config
        spec = build_grpo_reward_spec(
            reward_functions=None if cfg.train_custom_reward_model else cfg.reward_functions,
            weights=None if cfg.train_custom_reward_model else cfg.reward_function_weights,
            reward_model=self.reward_model_path,
            reward_spec=cfg.reward_spec,
        )
        self.step_logger = StepLogger()
        trainer, _ = build_grpo_trainer(
            policy=policy,
            tokenizer=tokenizer,
            dataset=dataset,
            reward_spec=spec,
            config_kwargs={
                "output_dir": os.fspath(cfg.output_dir),
                "batch_size": cfg.batch_size,
                "learning_rate": cfg.learning_rate,
                "num_epochs": cfg.num_epochs,
                "max_new_tokens": cfg.max_new_tokens,
                "use_cpu": self._use_cpu(),
                "seed": cfg.seed,
                "bf16": not self._use_cpu(),
                "options": cfg.grpo_options,
            },
            callbacks=[self.step_logger.callback()],
            peft_config=self._peft_config(),
        )
        return trainer

    # -- stage 3: RL ------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Reward-model training (when asked), then the RL loop; returns ``summary()``."""
        trainer = self.prepare()
        start = time.perf_counter()
        trainer.train()
        self.timings["rl_s"] = time.perf_counter() - start
        self._trained = True
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """Reward-model fidelity, the reward trend over RL steps, and timings (JSON-ready)."""
        rewards = [r[self.reward_key] for r in self.history if self.reward_key in r]
        q = max(1, len(rewards) // 4)
        trend = None
        if rewards:
            trend = {
                "steps": len(rewards),
                "first_quarter_mean": sum(rewards[:q]) / q,
                "last_quarter_mean": sum(rewards[-q:]) / q,
            }
        return {
            "algorithm": self.algorithm,
            "backend": self.config.backend,
            "policy": self.config.model_name,
            "reward_model_path": self.reward_model_path,
            "reward_model_metrics": self.reward_model_metrics,
            "reward_trend": trend,
            "timings_s": dict(self.timings),
        }

    # -- using the policy ---------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Any],
        *,
        max_new_tokens: int | None = None,
        temperature: float = 0.7,
        seed: int = 0,
    ) -> list[str]:
        """The policy's responses to ``prompts`` (sampled like PPO's rollouts, seeded)."""
        from rlreward.rl.policy import generate_responses

        policy, tokenizer = self.load_policy()
        return generate_responses(
            policy,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens or self.config.max_new_tokens,
            max_prompt_length=self.config.max_prompt_length,
            temperature=temperature,
            seed=seed,
        )

    def save_model(self, output_dir: str | os.PathLike[str] | None = None) -> str:
        """Save the policy, its tokenizer and ``rlreward_policy.json``; returns the directory."""
        if not self._trained or self.trl_trainer is None:
            raise RuntimeError("save_model() was called before train(); call trainer.train() first")
        out = Path(output_dir if output_dir is not None else self.config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.trl_trainer.save_model(str(out))
        self.tokenizer.save_pretrained(str(out))
        meta = {**self.summary(), "history": self.history}
        (out / POLICY_METADATA_FILE).write_text(
            json.dumps(meta, indent=2, default=str), encoding="utf-8"
        )
        logger.info("policy saved to %s", out)
        return str(out)
