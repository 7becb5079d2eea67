"""recipes/ppo_verl.sh cannot run here (it needs GPUs); check what can be checked on CPU:
its Hydra overrides compose against verl's own config and pass verl's validate_config,
the custom reward resolves to our compute_score and grades with recipes/verl_reward.yaml,
and recipes/verl_data.py writes the parquet columns VERL's dataset reads.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from pathlib import Path

import pytest

from tests.training.tiny import minilm_tokenizer, tiny_config

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _overrides(tmp_path: Path) -> list[str]:
    """The script's override lines, with its shell variables filled in.

    MODEL is a local directory with a tiny Qwen3 config and a tokenizer (verl reads both).
    """
    model = tmp_path / "model"
    tok = minilm_tokenizer()
    config = tiny_config(
        "qwen3",
        len(tok),
        hidden_size=64,
        num_heads=4,
        max_positions=None,
        num_key_value_heads=2,
        architectures=["Qwen3ForCausalLM"],
    )
    config.save_pretrained(model)
    tok.save_pretrained(model)
    text = (RECIPES / "ppo_verl.sh").read_text()
    block = text[text.index("python3 -m verl.trainer.main_ppo") :]
    env = {
        "DATA": str(tmp_path),
        "MODEL": str(model),
        "SPEC": str(RECIPES / "verl_reward.yaml"),
        "N_GPUS": "1",
    }
    out = []
    for line in block.splitlines()[1:]:
        line = line.strip().rstrip("\\").strip()
        if not line or line == '"$@"':
            continue
        line = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], line)
        out.extend(shlex.split(line))
    return out


def test_overrides_compose_and_pass_verls_validation(tmp_path: Path) -> None:
    pytest.importorskip("verl")
    import verl
    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    overrides = _overrides(tmp_path)
    assert "algorithm.adv_estimator=gae" in overrides  # PPO with a critic, not GRPO
    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=overrides)  # unknown keys raise here
    assert cfg.reward.custom_reward_function.reward_kwargs.spec == str(RECIPES / "verl_reward.yaml")
    assert need_critic(cfg)
    validate_config(
        cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg)
    )


def test_the_custom_reward_resolves_to_rlreward_and_grades(tmp_path: Path) -> None:
    pytest.importorskip("verl")
    import verl
    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.reward import get_custom_reward_fn

    from rlreward.integrations.verl import compute_score

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=_overrides(tmp_path))
    fn = get_custom_reward_fn(cfg)
    assert fn.func.__name__ == "_call_with_kwargs_async" and fn.args[0] is compute_score
    good = asyncio.run(
        fn(
            data_source="rlreward",
            solution_str="Great question! Boil the egg for nine minutes, then cool it.",
            ground_truth="",
            extra_info={"question": "How do I boil an egg?"},
        )
    )
    bad = asyncio.run(
        fn(
            data_source="rlreward",
            solution_str="asdf asdf asdf asdf asdf asdf asdf asdf",
            ground_truth="",
            extra_info={"question": "How do I boil an egg?"},
        )
    )
    keys = {"score", "length", "sentiment", "safety", "coherence", "helpfulness"}
    assert keys <= set(good) and set(good) == set(bad)
    assert good["score"] > bad["score"]


def test_verl_data_writes_the_columns_verl_reads(tmp_path: Path) -> None:
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("verl_data", RECIPES / "verl_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, test = module.main(["--out", str(tmp_path)])
    df = pd.read_parquet(train)
    assert {"prompt", "data_source", "reward_model", "extra_info"} <= set(df.columns)
    row = df.iloc[0]
    assert row["prompt"][0]["role"] == "user"
    assert row["extra_info"]["question"] == row["prompt"][0]["content"]
    assert len(df) + len(pd.read_parquet(test)) == 48  # the shipped questions
