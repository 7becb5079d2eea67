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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlreward.reward import Reward
from rlreward.rl.config import RLTrainingConfig
from rlreward.rl.history import StepLogger

__all__ = ["POLICY_METADATA_FILE", "RLTrainer"]

logger = logging.getLogger(__name__)

POLICY_METADATA_FILE = "rlreward_policy.json"


class RLTrainer:
    """Reward-model training then RL, as one object with ``train()`` and ``save_model()``.

    ``reward`` is the one ``Reward`` PPO and GRPO optimise (``rlreward.rl.reward`` has the
    rule), built here before any model loads; ``label_reward`` the rule functions'
    ``Reward`` that labels a reward model trained in stage 1 (None without functions).
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
        self._label_reward: Reward | None = None
        self._model_label_reward: Reward | None = None
        #: the reward-hacking monitor (``monitor=`` given; PPO): records and alerts
        self.monitor: Any = None
        self.reward: Reward = self._build_reward()
        self.policy: Any = None
        self.tokenizer: Any = None
        self.trl_trainer: Any = None
        self.reward_adapter: Any = None
        self.scorer: Any = None
        self.step_logger: StepLogger | None = None
        #: PPO: which value-model weights learn ("head" or "all"; ``ppo_options``)
        self.value_trainable: str | None = None
        self.warmup: Any = None
        self.timings: dict[str, float] = {}
        self._trained = False
        self._dataset: Any = None

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

    @property
    def label_reward(self) -> Reward | None:
        """The rule functions' Reward (``training.labels.label_reward``), gated by
        ``reward_function_gates``: the true composite a reward model trained here stands
        for (the monitor's reference); None without ``reward_functions``. Built once."""
        cfg = self.config
        if self._label_reward is None and cfg.reward_functions:
            from rlreward.training.labels import label_reward

            self._label_reward = label_reward(
                list(cfg.reward_functions),
                cfg.reward_function_weights,
                gates=cfg.reward_function_gates,
            )
        return self._label_reward

    @property
    def model_label_reward(self) -> Reward | None:
        """What the reward model trained here learns: ``label_reward`` without its gates.
        The gates are graded exactly on every RL row and applied to the model's score in
        ``reward`` (a learned gate is one more thing a policy can game). Without gates,
        ``label_reward`` itself."""
        cfg = self.config
        if not cfg.reward_function_gates:
            return self.label_reward
        if self._model_label_reward is None and cfg.reward_functions:
            from rlreward.training.labels import label_reward

            self._model_label_reward = label_reward(
                list(cfg.reward_functions), cfg.reward_function_weights
            )
        return self._model_label_reward

    # -- stage 1: reward model ----------------------------------------------------------
    def train_reward_model(self) -> str | None:
        """Train the reward model from the rule functions (train_custom_reward_model=True).

        As ``config.reward_model_training`` says: its ``training_texts`` plus, with
        ``policy_samples=k``, k samples of the policy per training prompt at the RL
        response length (what PPO will score), every text labelled by
        ``model_label_reward`` (the rule functions' weighted sum, without the gates that
        ``reward`` applies exactly), trained with its hyperparameters.
        """
        cfg = self.config
        rmt = cfg.training
        if rmt is None or self.reward_model_path is not None:
            return self.reward_model_path
        from datasets import Dataset

        from rlreward.models.reward_model_io import read_metadata
        from rlreward.training.trainer import RewardModelTrainer

        start = time.perf_counter()
        texts = list(rmt.training_texts)
        prompts = list(rmt.prompts) if rmt.prompts else None
        sampled: list[str] = []
        sampled_prompts: list[str] = []
        if rmt.policy_samples:
            asked = [p for p in self.train_prompts() for _ in range(rmt.policy_samples)]
            sampled = self.generate(
                asked, seed=cfg.seed + 1, desc="policy samples for the reward model"
            )
            sampled_prompts = asked
            self.timings["policy_samples_s"] = time.perf_counter() - start
        if sampled and prompts is None:
            prompts = [""] * len(texts)  # the shipped texts' questions are unknown: none
        all_texts = texts + sampled
        all_prompts = None if prompts is None else prompts + sampled_prompts
        labels = self.label_texts(all_texts, all_prompts, reward=self.model_label_reward)
        columns: dict[str, list[Any]] = {"text": all_texts, "composite": labels}
        if all_prompts is not None:
            columns["prompt"] = all_prompts
        rm = RewardModelTrainer(
            base_model_name=rmt.base_model_name,
            reward_functions=list(rmt.reward_functions),
            composite_weights=rmt.reward_weights,
            objective=rmt.objective,
            use_lora=rmt.use_lora,
            lora_config=dict(rmt.lora_config)
            if isinstance(rmt.lora_config, Mapping)
            else rmt.lora_config,
            seed=rmt.seed,
        )
        path = rm.train_reward_model(
            Dataset.from_dict(columns),
            os.fspath(rmt.output_dir),
            **rmt.hyperparameters(),
            show_progress=cfg.show_progress,
        )
        self.reward_model_path = path
        self.reward_model_metrics = (read_metadata(path) or {}).get("metrics")
        if self.reward_model_metrics is not None:
            self.reward_model_metrics["n_policy_samples"] = len(sampled)
        self.timings["reward_model_s"] = time.perf_counter() - start
        logger.info("reward model trained in %.1f s: %s", self.timings["reward_model_s"], path)
        return path

    def label_texts(
        self,
        texts: Sequence[str],
        prompts: Sequence[str] | None = None,
        *,
        reward: Reward | None = None,
    ) -> list[float]:
        """``label_reward``'s value per text (``reward``: another of the trainer's label
        rewards, e.g. ``model_label_reward``); GradingFailedError naming the function,
        text and error where a label cannot be computed."""
        from rlreward.errors import ConfigError
        from rlreward.training.labels import label_rows, label_values

        if self.label_reward is None:
            raise ConfigError(
                "label_texts needs reward_functions: the labels are their weighted sum; pass "
                "reward_functions=[...] to create_rl_trainer"
            )
        if prompts is not None and not any(prompts):
            prompts = None
        _, labels = label_values(reward or self.label_reward, label_rows(list(texts), prompts))
        return labels

    # -- stage 2: policy, prompts, TRL trainer --------------------------------------------
    def load_policy(self) -> tuple[Any, Any]:
        """The policy and tokenizer (unsloth or transformers), warmed up when configured."""
        if self.policy is not None:
            return self.policy, self.tokenizer
        from rlreward.rl.policy import is_embedded_policy, load_policy, warm_up_policy

        cfg = self.config
        start = time.perf_counter()
        steps = cfg.policy_warmup_steps or 0
        if cfg.backend == "unsloth" and not steps:
            from rlreward.rl.policy import policy_source

            model, tokenizer = self._load_unsloth(policy_source(cfg.model_name), cfg.load_in_4bit)
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
                small = is_embedded_policy(cfg.model_name)  # 135M: not worth quantising
                model, tokenizer = self._load_unsloth(source, cfg.load_in_4bit and not small)
        self.policy, self.tokenizer = model, tokenizer
        self.timings["policy_s"] = time.perf_counter() - start
        return model, tokenizer

    def prompt_dataset(self) -> Any:
        """The RL prompts (a ``datasets.Dataset`` with a ``prompt`` column), loaded once."""
        if self._dataset is None:
            from rlreward.rl.data import load_prompt_dataset

            cfg = self.config
            self._dataset = load_prompt_dataset(
                cfg.dataset_name,
                split=cfg.dataset_split,
                prompt_column=cfg.prompt_column,
                max_samples=cfg.max_samples,
            )
        return self._dataset

    def train_prompts(self) -> list[Any]:
        return list(self.prompt_dataset()["prompt"])

    def prompt_length(self, extra: Sequence[Any] = ()) -> int:
        """``max_prompt_length``, else the longest RL prompt (and ``extra``) as encoded."""
        if self.config.max_prompt_length is not None:
            return self.config.max_prompt_length
        from rlreward.rl.policy import encode_prompt

        _, tokenizer = self.load_policy()
        prompts = [*self.train_prompts(), *extra]
        return max(len(encode_prompt(tokenizer, p, max_length=1 << 20)) for p in prompts)

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
        rmt = cfg.training
        if rmt is not None and rmt.prompts:
            return list(rmt.training_texts), list(rmt.prompts)
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
        dataset = self.prompt_dataset()
        start = time.perf_counter()
        if cfg.algorithm == "ppo":
            self.trl_trainer = self._build_ppo(policy, tokenizer, dataset)
        else:
            self.trl_trainer = self._build_grpo(policy, tokenizer, dataset)
        from rlreward.training.progress import use_labelled_progress

        use_labelled_progress(self.trl_trainer, cfg.algorithm.upper(), enabled=cfg.show_progress)
        self.timings["setup_s"] = time.perf_counter() - start
        return self.trl_trainer

    def _build_reward(self) -> Reward:
        """What RL optimises (the rule in ``rlreward.rl.reward``); loads no model."""
        from rlreward.rl.reward import DeferredRewardModel, build_reward, measured_bounds

        cfg = self.config
        custom = bool(cfg.train_custom_reward_model)
        model, known = None, None
        source = cfg.reward_model_source
        if source is not None:
            model = DeferredRewardModel(source, normalize=cfg.reward_model_normalize)
            if custom:  # it learns the label reward's values: their range is its scale
                learned = self.model_label_reward
                known = learned.score_range if learned else None
            else:
                known = measured_bounds(source)
        return build_reward(
            spec=cfg.reward_spec,
            spec_weight=cfg.reward_spec_weight,
            functions=None if custom else cfg.reward_functions,
            function_weights=None if custom else cfg.reward_function_weights,
            reward_model=model,
            reward_model_weight=cfg.reward_model_weight,
            reward_model_bounds=cfg.reward_model_bounds,
            known_bounds=known,
            gates=cfg.reward_function_gates if custom else None,
        )

    def _build_ppo(self, policy: Any, tokenizer: Any, dataset: Any) -> Any:
        from rlreward.rl.options import split_ppo_options
        from rlreward.rl.policy import policy_source
        from rlreward.rl.ppo import (
            PPOSettings,
            build_ppo_dataset,
            build_ppo_trainer,
            make_ppo_config,
        )
        from rlreward.rl.reward_adapter import (
            RewardScorer,
            TextRewardModel,
            build_value_model,
            train_value_weights,
        )

        cfg = self.config
        named, extra = split_ppo_options(cfg.ppo_options)
        settings = PPOSettings(
            **{
                "response_length": cfg.max_new_tokens,
                "max_prompt_length": self.prompt_length(),
                **named,
            },
            extra=extra,
        )
        self.scorer = RewardScorer(self.reward)
        queries, lookup = build_ppo_dataset(
            list(dataset["prompt"]), tokenizer, settings.max_prompt_length
        )
        self.reward_adapter = TextRewardModel(
            self.scorer, tokenizer, settings.max_prompt_length, prompt_lookup=lookup
        )
        # the reward model passed the family check: its network is the value model's start
        value_source = self.reward_model_path or policy_source(cfg.model_name)
        value_model = build_value_model(value_source)
        self.value_trainable = settings.value_trainable or ("head" if cfg.lora else "all")
        from rlreward.rl.reward import expected_reward

        start = expected_reward(self.reward_model_path)
        rollout = cfg.batch_size * settings.gradient_accumulation_steps * settings.num_mini_batches
        learning = train_value_weights(value_model, self.value_trainable, start, keep=rollout)
        logger.info(
            "PPO value model: %s learns (%d weights; a new head starts at %.3f)",
            self.value_trainable,
            learning,
            start,
        )
        self.step_logger = StepLogger(self.reward_adapter)
        if cfg.monitor is not None:
            self._attach_ppo_monitor(self.reward_adapter)
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

    def _attach_ppo_monitor(self, adapter: Any) -> None:
        """The reward-hacking monitor on PPO's rollouts: every scored batch is a step; its
        reference is the label reward (the true composite) when the reward model was
        trained here, else ``monitor.reference`` or the trained reward itself."""
        from rlreward.integrations.reward_monitor import MonitorConfig, build_monitor

        config = MonitorConfig.from_options(self.config.monitor, "create_rl_trainer")
        if config.on_alert != "log":
            from rlreward.errors import ConfigError

            raise ConfigError(
                f"create_rl_trainer: monitor on_alert={config.on_alert!r} is not available for "
                "PPO (TRL's PPO loop has no stop hook); use on_alert='log' and audit the JSONL"
            )
        if config.reference is None and self.config.train_custom_reward_model:
            config = MonitorConfig(**{**config.__dict__, "reference": self.label_reward})
        self.monitor, _ = build_monitor(config, self.reward)
        step = [0]

        def observe(texts: list[str], prompts: list[str] | None, scores: list[float]) -> None:
            step[0] += 1
            rows = [
                {"response": t, **({"query": prompts[i]} if prompts else {})}
                for i, t in enumerate(texts)
            ]
            self.monitor.observe(step[0], rows, scores)

        adapter.observers.append(observe)

    def _build_grpo(self, policy: Any, tokenizer: Any, dataset: Any) -> Any:
        from rlreward.rl.grpo import build_grpo_trainer

        cfg = self.config
        self.step_logger = StepLogger()
        trainer, _ = build_grpo_trainer(
            policy=policy,
            tokenizer=tokenizer,
            dataset=dataset,
            reward=self.reward,
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
        from rlreward.rl.ppo import quiet_trl_generation

        trainer = self.prepare()
        start = time.perf_counter()
        with quiet_trl_generation():
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
            "monitor": None if self.monitor is None else self.monitor.summary(),
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
        desc: str | None = None,
    ) -> list[str]:
        """The policy's responses to ``prompts`` (sampled like PPO's rollouts, seeded)."""
        from rlreward.rl.policy import generate_responses

        policy, tokenizer = self.load_policy()
        return generate_responses(
            policy,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens or self.config.max_new_tokens,
            max_prompt_length=self.prompt_length(prompts),
            temperature=temperature,
            seed=seed,
            desc=desc if self.config.show_progress else None,
        )

    def save_model(self, output_dir: str | os.PathLike[str] | None = None) -> str:
        """Save the policy, its tokenizer and ``rlreward_policy.json``; returns the directory."""
        if not self._trained or self.trl_trainer is None:
            raise RuntimeError("save_model() was called before train(); call trainer.train() first")
        out = Path(output_dir if output_dir is not None else self.config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        model = self.trl_trainer.accelerator.unwrap_model(self.trl_trainer.model)
        model = getattr(model, "policy", model)  # PPO wraps policy + value model
        if hasattr(model, "merge_and_unload"):  # LoRA: save a plain model, not an adapter
            model = model.merge_and_unload()
            self.policy = model
        model.save_pretrained(str(out))
        self.tokenizer.save_pretrained(str(out))
        meta = {**self.summary(), "history": self.history}
        (out / POLICY_METADATA_FILE).write_text(
            json.dumps(meta, indent=2, default=str), encoding="utf-8"
        )
        logger.info("policy saved to %s", out)
        return str(out)
