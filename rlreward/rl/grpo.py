"""GRPO through TRL's ``GRPOTrainer`` with rlreward rewards via the TRL adapter.

GRPO needs no value model and reads rewards from text, so any grader works: rule
functions, LLM judges (a reward spec), and reward models (``RewardModelGrader``). They
are combined into one ``RewardSpec`` and handed to TRL by
``rlreward.integrations.trl.make_reward_funcs`` (one function per grader, weighted by
``GRPOConfig.reward_weights``, so TRL logs ``rewards/<grader>/mean``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rlreward.errors import ConfigError
from rlreward.training.arguments import run_args

__all__ = [
    "build_grpo_reward_spec",
    "build_grpo_trainer",
    "check_num_generations",
    "make_grpo_config",
]

logger = logging.getLogger(__name__)


def build_grpo_reward_spec(
    *,
    reward_functions: Sequence[Any] | None = None,
    weights: Sequence[float] | None = None,
    reward_model: str | None = None,
    reward_model_weight: float = 1.0,
    reward_spec: Any = None,
) -> Any:
    """One RewardSpec: the given spec's graders, plus rule functions and a reward model.

    Weights: the rule functions get ``weights`` (equal when None), the reward model
    ``reward_model_weight``, and the spec's graders the weights of its first aggregator.
    """
    from rlreward.aggregators import WeightedSumAggregator
    from rlreward.graders.registry import as_grader
    from rlreward.integrations.spec import load_spec
    from rlreward.runner import GraderConfig

    graders: dict[str, GraderConfig] = {}
    agg_weights: dict[str, float] = {}
    runner_opts: dict[str, Any] = {}
    if reward_spec is not None:
        spec = load_spec(reward_spec)
        graders.update(spec.graders)
        first = spec.aggregators[0] if spec.aggregators else None
        spec_weights = dict(getattr(first, "weights", None) or {}) or dict.fromkeys(
            spec.graders, 1.0
        )
        agg_weights.update(spec_weights)
        runner_opts = {"max_concurrency": spec.max_concurrency, "timeout": spec.timeout}
    funcs = list(reward_functions or [])
    fw = list(weights) if weights is not None else [1.0] * len(funcs)
    for fn, w in zip(funcs, fw, strict=True):
        grader = as_grader(fn)  # the grader a spec builds from the same name or function
        if grader.name in graders:
            raise ConfigError(
                f"two rewards are named {grader.name!r}; rename one in the reward spec"
            )
        graders[grader.name] = GraderConfig(grader)
        agg_weights[grader.name] = float(w)
    if reward_model is not None:
        from rlreward.graders.reward_model import RewardModelGrader

        graders["reward_model"] = GraderConfig(RewardModelGrader(reward_model, name="reward_model"))
        agg_weights["reward_model"] = float(reward_model_weight)
    if not graders:
        raise ConfigError(
            "GRPO needs at least one reward: rule functions, a reward model or a reward spec"
        )
    from rlreward.integrations.spec import RewardSpec

    aggregator = WeightedSumAggregator("reward", weights=agg_weights, on_error="renormalize")
    return RewardSpec(graders, [aggregator], **runner_opts)


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
    reward_spec: Any,
    config_kwargs: Mapping[str, Any],
    callbacks: Sequence[Any] = (),
    peft_config: Any | None = None,
) -> tuple[Any, Any]:
    """(GRPOTrainer, RewardLoggingCallback) over ``reward_spec`` through the TRL adapter."""
    from trl import GRPOTrainer

    from rlreward.integrations.trl import RewardLoggingCallback, make_reward_funcs

    funcs, weights = make_reward_funcs(reward_spec, mode="combined")  # exact under any on_error
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
