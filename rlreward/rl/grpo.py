"""GRPO through TRL's ``GRPOTrainer``, rewarded by the trainer's one ``Reward``.

GRPO needs no value model and reads rewards from text, so any reward works: rule
functions, LLM judges (a reward spec), reward models, or a mix (``rlreward.rl.reward``
builds it). ``build_grpo_trainer`` hands that ``Reward`` to
``rlreward.integrations.trl.make_reward_funcs(reward, mode="combined")``: ONE TRL reward
function whose value per completion is the reward's value (None where it failed or did
not apply), with weight 1.0, so what GRPO optimises is exactly ``reward.aevaluate``'s
score; the graders' values are logged beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rlreward.errors import ConfigError
from rlreward.training.arguments import run_args

__all__ = [
    "build_grpo_trainer",
    "check_grpo_options",
    "check_num_generations",
    "make_grpo_config",
]

logger = logging.getLogger(__name__)


def check_grpo_options(options: Mapping[str, Any], owner: str = "create_rl_trainer") -> None:
    """Every key of ``grpo_options`` is a field of the installed TRL's ``GRPOConfig``
    (imports TRL, loads no model); else a ConfigError naming it, with a close match."""
    import dataclasses

    from trl import GRPOConfig

    from rlreward.rl.options import check_option_names

    known = {f.name for f in dataclasses.fields(GRPOConfig) if f.init}
    check_option_names(owner, "grpo_options", options, known, "GRPOConfig")


def check_num_generations(batch_size: int, num_generations: Any = None) -> int:
    """Completions per prompt (default: 4, 3 or 2, whichever divides the batch first)."""
    default = next((k for k in (4, 3, 2) if batch_size % k == 0), 2)
    n = default if num_generations is None else num_generations
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(
            f"GRPO: num_generations={n!r} is not allowed; use an integer >= 2 (GRPO compares "
            "completions of one prompt)"
        )
    if batch_size % n:
        raise ConfigError(
            f"GRPO: batch_size={batch_size} must be a multiple of num_generations={n} "
            "(each prompt's completions form one group); change batch_size or "
            "grpo_options={'num_generations': ...}"
        )
    return n


def make_grpo_config(
    output_dir: str,
    *,
    batch_size: int,
    learning_rate: float,
    num_epochs: float,
    max_new_tokens: int,
    use_cpu: bool,
    reward_weights: Sequence[float],
    seed: int = 0,
    bf16: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """A TRL ``GRPOConfig``; ``options`` override any field (e.g. ``num_generations``)."""
    from trl import GRPOConfig

    opts = dict(options or {})
    num_generations = check_num_generations(batch_size, opts.pop("num_generations", None))
    kwargs: dict[str, Any] = {
        "output_dir": output_dir,
        "per_device_train_batch_size": batch_size,
        "num_generations": num_generations,
        "max_completion_length": max_new_tokens,
        "learning_rate": learning_rate,
        "num_train_epochs": num_epochs,
        "reward_weights": list(reward_weights),
        **run_args(use_cpu=use_cpu, bf16=bf16, seed=seed),
    }
    kwargs.update(opts)
    return GRPOConfig(**kwargs)


def build_grpo_trainer(
    *,
    policy: Any,
    tokenizer: Any,
    dataset: Any,
    reward: Any,
    config_kwargs: Mapping[str, Any],
    callbacks: Sequence[Any] = (),
    peft_config: Any | None = None,
) -> tuple[Any, Any]:
    """(GRPOTrainer, RewardLoggingCallback): GRPO on ``reward`` (a ``Reward``) through the
    TRL adapter's combined function (exact under every on_error and with abstentions)."""
    from trl import GRPOTrainer

    from rlreward.integrations.trl import RewardLoggingCallback, make_reward_funcs

    funcs, weights = make_reward_funcs(reward, mode="combined")
    config = make_grpo_config(reward_weights=weights, **config_kwargs)
    logging_cb = RewardLoggingCallback(funcs)
    reward_funcs: list[Any] = list(funcs)  # async callables: TRL awaits them (its hint is sync)
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks),
        peft_config=peft_config,
    )
    logging_cb.install(trainer)
    return trainer, logging_cb
