"""``create_rl_trainer``: the seed's one-call entry point: reward-model training, then PPO/GRPO.

Everything is checked before any model weights load: the arguments
(``RLTrainingConfig``), the backend (unsloth needs a CUDA GPU and is imported first,
before transformers and TRL), and for PPO the policy/reward-model family (their
tokenizers must match, because PPO's value model reads the policy's token ids).
"""

from __future__ import annotations

import logging
from dataclasses import fields
from difflib import get_close_matches
from typing import Any

from rlreward.errors import ConfigError
from rlreward.rl.config import RLTrainingConfig
from rlreward.rl.trainer import RLTrainer

__all__ = ["create_rl_trainer"]

logger = logging.getLogger(__name__)


def create_rl_trainer(model_name: str, dataset_name: Any = None, **kwargs: Any) -> RLTrainer:
    """Build an ``RLTrainer``: ``trainer.train()`` then ``trainer.save_model()``.

    Args:
        model_name: the policy: a hub id, a local directory, or ``"embedded"`` (a tiny
            causal LM built in-process on the embedded MiniLM's tokenizer, warmed up on
            the shipped texts; offline).
        dataset_name: prompts: a hub id, a local JSONL/JSON/CSV/Parquet file or dataset
            directory, a ``datasets.Dataset``, a list of prompts, or None (the shipped
            everyday questions). Prompts come from ``prompt_column`` (default: the first
            of prompt, query, question, instruction, input); ``dataset_split`` picks a
            split; ``max_samples`` keeps the first N rows.
        algorithm: ``"ppo"`` (reward from one reward model) or ``"grpo"``.
        backend: ``"trl"`` or ``"unsloth"`` (CUDA GPU only: 4-bit + LoRA policy; on a
            machine without one this raises instead of switching).
        train_custom_reward_model: train the reward model first from
            ``reward_functions`` (registry names or callables) weighted by
            ``reward_function_weights`` on ``reward_training_texts`` (>= 10; optional
            ``reward_training_prompts``), from ``reward_training_base_model`` (None: the
            embedded MiniLM) into ``reward_training_output_dir`` with
            ``reward_training_epochs`` / ``_lr`` (None: the trainer's default) /
            ``_batch_size``.
        reward_model_name / reward_model_path: a ready reward model (hub id / directory).
        reward_spec: GRPO only: a reward spec (YAML path, dict or RewardSpec), e.g. LLM
            judges, combined with ``reward_functions`` and any reward model.
        num_epochs, batch_size, learning_rate, output_dir, seed: the RL run.
        max_prompt_length / max_new_tokens: query and response lengths in tokens.
        policy_warmup_steps: supervised warm-up before RL (None: 300 for the embedded
            policy, 0 for real models).
        use_lora, load_in_4bit, lora_r, lora_alpha, max_seq_length: the policy's
            adapters (LoRA defaults on with unsloth, off with TRL).
        ppo_options: ``PPOSettings`` fields (total_episodes, num_ppo_epochs, kl_coef,
            temperature, ..., ``extra`` for any other PPOConfig field).
        grpo_options: GRPOConfig fields (num_generations, beta, max_steps, ...).

    Raises:
        ConfigError (and its subclasses UnknownNameError, FamilyMismatchError,
        BackendUnavailableError): a bad argument, with the fix in the message.
    """
    known = {f.name for f in fields(RLTrainingConfig)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        close = {u: get_close_matches(u, known, n=1) for u in unknown}
        hints = "; ".join(
            f"{u!r} (did you mean {c[0]!r}?)" if c else repr(u) for u, c in close.items()
        )
        raise ConfigError(
            f"create_rl_trainer: unknown arguments {hints}; known: {', '.join(sorted(known))}"
        )
    config = RLTrainingConfig(model_name=model_name, dataset_name=dataset_name, **kwargs)
    if config.backend == "unsloth":
        from rlreward.rl.unsloth import require_unsloth

        require_unsloth()  # before transformers/TRL load, so its patches apply
    report = None
    if config.algorithm == "ppo":
        from rlreward.training.family import require_same_family

        reward_ref = config.reward_family_reference
        assert reward_ref is not None  # PPO validation guarantees one reward model source
        report = require_same_family(config.model_name, reward_ref)
        logger.info("family check: %s", report.describe())
    return RLTrainer(config, family_report=report)
