"""PPO through TRL's ``PPOTrainer`` (``trl.experimental.ppo``; TRL 1.12 is its last release).

What this module wires, and why:
- TRL's "reward model" is a ``TextRewardModel`` over a ``RewardScorer`` of the trainer's
  one ``Reward`` (``rl/reward_adapter.py``): it decodes the policy's ids and grades the
  texts, so the reward TRL reads for a (prompt, response) is that ``Reward``'s value for
  it (a reward model, rule functions, judges, or any mix);
- the value model is the reward model's network, causal and with a head on every
  token (``build_value_model``); with a LoRA policy its backbone is frozen and only a
  new head of its own learns, from the expected reward (``value_trainable``): TRL
  trains policy and value with one optimizer at one learning rate, and a rate sized for
  adapters (1e-4 to 1e-3) is far too high for every weight of a full network; the frozen
  backbone reads each rollout row once per PPO step, not once per epoch
  (``FrozenFeatures``);
- queries are left-padded to one fixed ``context_length`` (the text adapter splits
  prompt from response there);
- CPU needs ``use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False``
  (PPOConfig defaults to bf16 and checkpointing), and ``num_sample_generations=0``
  (sample generations need an eval set we do not pass);
- ``stop_token="eos"``: generation stops at the tokenizer's eos ([SEP] for BERT
  tokenizers), and TRL truncates each response after it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rlreward.rl.policy import encode_prompt
from rlreward.training.arguments import run_args

__all__ = [
    "PPOSettings",
    "build_ppo_dataset",
    "build_ppo_trainer",
    "make_ppo_config",
    "quiet_trl_generation",
    "trl_ppo",
]

logger = logging.getLogger(__name__)


def trl_ppo() -> Any:
    """``trl.experimental.ppo``, imported without TRL's "experimental API" warning.

    We pin TRL 1.12 because it is the last release with PPOTrainer; the warning would only
    repeat that on every run.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*trl.experimental")
        from trl.experimental import ppo

    return ppo


@dataclass
class PPOSettings:
    """PPO knobs that ``create_rl_trainer`` does not name (passed as ``ppo_options``, with
    any other ``PPOConfig`` field, which goes to ``extra``)."""

    total_episodes: int | None = None
    num_ppo_epochs: int = 4
    num_mini_batches: int = 1
    gradient_accumulation_steps: int = 1
    response_length: int = 24
    max_prompt_length: int = 16
    temperature: float = 0.7
    kl_coef: float = 0.05
    cliprange: float = 0.2
    vf_coef: float = 0.1
    missing_eos_penalty: float | None = None
    include_prompt_in_reward: bool | None = None
    #: which value-model weights learn: "head" (a new head from the expected reward; the
    #: backbone stays the reward model's frozen network) or "all" (TRL's way, from the
    #: reward model's head); None: "head" when the policy trains LoRA adapters, else "all"
    value_trainable: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_ppo_dataset(
    prompts: Sequence[Any], tokenizer: Any, context_length: int
) -> tuple[Any, dict]:
    """(queries, prompt lookup): a Dataset of queries left-padded to exactly ``context_length``.

    The lookup maps each query's token ids to its prompt text, for ``TextRewardModel``.
    """
    from datasets import Dataset

    from rlreward.rl.data import prompt_text

    rows, lookup = [], {}
    for p in prompts:
        ids = encode_prompt(tokenizer, p, max_length=context_length)
        lookup[tuple(ids)] = prompt_text(p)
        rows.append([tokenizer.pad_token_id] * (context_length - len(ids)) + ids)
    return Dataset.from_dict({"input_ids": rows}), lookup


def make_ppo_config(
    output_dir: str,
    settings: PPOSettings,
    *,
    batch_size: int,
    learning_rate: float,
    num_epochs: float,
    use_cpu: bool,
    seed: int = 0,
    bf16: bool = False,
) -> Any:
    """A TRL ``PPOConfig`` with the settings that make PPO run on CPU and on one GPU."""
    PPOConfig = trl_ppo().PPOConfig

    kwargs: dict[str, Any] = {
        "output_dir": output_dir,
        "per_device_train_batch_size": batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "num_mini_batches": settings.num_mini_batches,
        "num_train_epochs": num_epochs,
        "total_episodes": settings.total_episodes,
        "num_ppo_epochs": settings.num_ppo_epochs,
        "local_rollout_forward_batch_size": batch_size * settings.gradient_accumulation_steps,
        "response_length": settings.response_length,
        "temperature": settings.temperature,
        "kl_coef": settings.kl_coef,
        "cliprange": settings.cliprange,
        "vf_coef": settings.vf_coef,
        "missing_eos_penalty": settings.missing_eos_penalty,
        "learning_rate": learning_rate,
        "stop_token": "eos",
        "num_sample_generations": 0,
        **run_args(use_cpu=use_cpu, bf16=bf16, seed=seed),
    }
    kwargs.update(settings.extra)
    return PPOConfig(**kwargs)


def build_ppo_trainer(
    *,
    policy: Any,
    tokenizer: Any,
    reward_model: Any,
    value_model: Any,
    dataset: Any,
    config: Any,
    callbacks: Sequence[Any] = (),
    peft_config: Any | None = None,
) -> Any:
    """TRL's PPOTrainer over our pieces (policy eos/pad ids already on its generation_config)."""
    PPOTrainer = trl_ppo().PPOTrainer

    policy.generation_config.eos_token_id = tokenizer.eos_token_id
    policy.generation_config.pad_token_id = tokenizer.pad_token_id
    trainer = PPOTrainer(
        args=config,
        processing_class=tokenizer,
        model=policy,
        ref_model=None,
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=dataset,
        callbacks=list(callbacks) or None,
        peft_config=peft_config,
    )
    _drop_banner(trainer.accelerator)
    return trainer


#: what TRL's PPOTrainer.train prints before its loop; our labelled progress bar says it
TRL_BANNER = "===training policy==="
#: transformers' deprecation notice for TRL's own ``generate`` call (not the user's to fix)
TRL_GENERATE_NOTICE = "Passing `generation_config` together with generation-related arguments"


class _DropTrlGenerateNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TRL_GENERATE_NOTICE)


@contextmanager
def quiet_trl_generation() -> Iterator[None]:
    """While TRL's PPO loop runs, drop transformers' notice about how TRL calls ``generate``."""
    log = logging.getLogger("transformers.generation.utils")
    drop = _DropTrlGenerateNotice()
    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def _drop_banner(accelerator: Any) -> None:
    """Keep ``accelerator.print`` except for TRL's banner (this accelerator only)."""
    say = accelerator.print

    def print_(*args: Any, **kwargs: Any) -> None:
        if args != (TRL_BANNER,):
            say(*args, **kwargs)

    accelerator.print = print_
