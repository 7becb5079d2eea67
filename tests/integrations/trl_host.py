"""The real TRL host for the adapter tests: a tiny GRPO/RLOO trainer and what it trained on.

Importable by the tests (trl 1.12, in-process) and by ``trl116_checks`` (trl 1.16, in a
subprocess with ``PYTHONPATH=.trl116``), so both versions run the same code.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from rlreward.integrations._rows import trl_rows
from rlreward.schema import GraderScore
from tests.training.tiny import tiny_llama_config


def grpo_trainer(
    tok: Any,
    funcs: Any,
    weights: Any,
    dataset: Any,
    out_dir: Any,
    callbacks: Any = (),
    rloo: bool = False,
    **options: Any,
) -> Any:
    """A GRPOTrainer (or RLOOTrainer) on a 2-layer Llama built from a config, on CPU."""
    from transformers import LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    torch.manual_seed(0)
    config = tiny_llama_config(len(tok))  # the training tests' 2-layer Llama, built in-process
    config.pad_token_id, config.bos_token_id, config.eos_token_id = (
        tok.pad_token_id,
        None,
        tok.sep_token_id,
    )
    config_cls, trainer_cls = (RLOOConfig, RLOOTrainer) if rloo else (GRPOConfig, GRPOTrainer)
    extra = {"beta": 0.0} if rloo else {}  # RLOO's KL reference would be loaded from a hub id
    kwargs = {
        "output_dir": str(out_dir),
        "use_cpu": True,
        "bf16": False,
        "max_completion_length": 8,
        "num_generations": 2,
        "per_device_train_batch_size": 2,
        "max_steps": 2,
        "logging_steps": 1,
        "learning_rate": 1e-3,
        "report_to": [],
        "save_strategy": "no",
        "reward_weights": weights,
        "seed": 0,
        **extra,
        **options,
    }
    return trainer_cls(
        model=LlamaForCausalLM(config),
        reward_funcs=funcs,
        args=config_cls(**kwargs),
        train_dataset=dataset,
        processing_class=tok,
        callbacks=list(callbacks),
    )


def arith_rows(n: int = 4) -> Any:
    from datasets import Dataset

    rows = [{"prompt": f"what is {i} plus {i}", "ground_truth": str(2 * i)} for i in range(n)]
    return Dataset.from_list(rows)


class RewardTap(TorchFunctionMode):
    """Records what TRL's own reduction ``(rewards_per_func * weights).nansum(dim=1)`` yields."""

    def __init__(self) -> None:
        super().__init__()
        self.sums: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is torch.Tensor.nansum and kwargs.get("dim") == 1:
            self.sums.append(out.detach().clone())
        return out


def expected(
    reward: Any, prompts: list[Any], completions: list[Any], columns: Any = None
) -> list[float | None]:
    """``Reward.aevaluate`` on the rows TRL's call makes of these prompts and completions."""
    rows = trl_rows(prompts, completions, columns or {})

    async def each() -> list[Any]:
        return [await reward.aevaluate(**row) for row in rows]

    return [r.score if isinstance(r, GraderScore) else None for r in asyncio.run(each())]


def train_once(tok: Any, funcs: Any, weights: Any, out_dir: Any, **options: Any) -> dict[str, Any]:
    """One GRPO step on 8 generations of one prompt; what TRL trained on, row by row.

    ``trl``: TRL's reward per completion (its nansum, before unscorable rows are masked);
    ``unscorable``: rows where every function returned None; ``advantages``; ``logs``.
    """
    trainer = grpo_trainer(
        tok,
        funcs,
        weights,
        arith_rows(1),
        out_dir,
        max_steps=1,
        num_generations=8,
        per_device_train_batch_size=8,
        **options,
    )
    tap = RewardTap()
    with tap:
        trainer.train()
    per_func = list(zip(*trainer._logs["rewards"].values(), strict=True))
    return {
        "prompts": list(trainer._logs["prompt"]),
        "completions": list(trainer._logs["completion"]),
        "trl": tap.sums[0].tolist(),
        "unscorable": [all(math.isnan(v) for v in row) for row in per_func],
        "advantages": list(trainer._logs["advantages"]),
        "logs": trainer.state.log_history,
    }


def compare(reward: Any, run: dict[str, Any]) -> dict[str, Any]:
    """The reward per row next to what TRL trained on; raises AssertionError on a mismatch."""
    want = expected(reward, run["prompts"], run["completions"])
    assert len(want) == len(run["trl"]) == 8
    for i, value in enumerate(want):
        if value is None:  # no value: TRL must see the row as unscorable (advantage 0)
            assert run["unscorable"][i], (i, run["completions"][i])
            assert run["advantages"][i] == 0.0
        else:
            assert not run["unscorable"][i]
            assert math.isclose(run["trl"][i], value, abs_tol=1e-6), (i, run["trl"][i], value)
    scored = [v for v in want if v is not None]
    logged = run["logs"][0]["reward"]  # TRL's own logged mean over the scorable rows
    assert math.isclose(logged, sum(scored) / len(scored), abs_tol=1e-5), (logged, scored)
    return {"expected": want, "trl": run["trl"], "unscorable": run["unscorable"]}
