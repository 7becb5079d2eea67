"""Every validation rule of the training/source configs, each with its exact failing input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rlreward
from rlreward.errors import ConfigError
from rlreward.training.config import RewardModelSourceConfig, RewardModelTrainingConfig

TEXTS = [f"text number {i} is here." for i in range(10)]


def cfg(**overrides):
    kwargs = {
        "base_model_name": "embedded",
        "training_texts": TEXTS,
        "reward_functions": ["length", "sentiment"],
        "output_dir": "/tmp/rm",
    }
    kwargs.update(overrides)
    return RewardModelTrainingConfig(**kwargs)


def test_valid_config_keeps_values():
    c = cfg(reward_weights=[1, 3])
    assert c.reward_weights == [1.0, 3.0]
    assert c.training_texts == TEXTS and c.learning_rate is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # no empty required fields
        (
            {"base_model_name": ""},
            r"base_model_name is required and must be a non-empty string, got ''",
        ),
        ({"base_model_name": None}, r"base_model_name is required .* got None; .*'embedded'"),
        ({"output_dir": "  "}, r"output_dir is required .* got '  '"),
        ({"training_texts": []}, r"training_texts is empty; give at least 10 texts"),
        ({"reward_functions": []}, r"reward_functions is empty"),
        # at least 10 training texts
        ({"training_texts": TEXTS[:9]}, r"training_texts has 9 texts; at least 10 are needed"),
        (
            {"training_texts": "one long string"},
            r"training_texts must be a list of strings, got str",
        ),
        ({"training_texts": [*TEXTS[:9], 7]}, r"training_texts\[9\] must be a str, got int 7"),
        # every function name exists (the known ones are listed)
        (
            {"reward_functions": ["length", "sentimnt"]},
            r"reward_functions\[1\]: unknown reward function 'sentimnt'; known: .*coherence.*length.*sentiment",
        ),
        (
            {"reward_functions": [42]},
            r"reward_functions\[0\] must be a registry name or a callable",
        ),
        ({"reward_functions": ["length", "length"]}, r"lists \['length'\] more than once"),
        # weights positive, finite, one per function
        ({"reward_weights": [1.0]}, r"got 1 weights for 2 reward functions"),
        (
            {"reward_weights": [1.0, 0.0]},
            r"reward_weights\[1\] = 0.0 is not allowed; weights must be positive finite",
        ),
        ({"reward_weights": [-0.5, 1.0]}, r"reward_weights\[0\] = -0.5 is not allowed"),
        ({"reward_weights": [float("nan"), 1.0]}, r"reward_weights\[0\] = nan is not allowed"),
        ({"reward_weights": [float("inf"), 1.0]}, r"reward_weights\[0\] = inf is not allowed"),
        ({"reward_weights": [True, 1.0]}, r"reward_weights\[0\] = True is not allowed"),
        ({"reward_weights": "0.5,0.5"}, r"reward_weights must be a list of numbers"),
        # optional fields
        ({"num_epochs": 0}, r"num_epochs = 0 is not allowed; use a number > 0"),
        ({"learning_rate": -1e-5}, r"learning_rate = -1e-05 is not allowed"),
        ({"batch_size": 0}, r"batch_size = 0 is not allowed; use an integer >= 1"),
        ({"batch_size": 2.5}, r"batch_size = 2.5 is not allowed"),
        ({"gradient_accumulation_steps": 0}, r"gradient_accumulation_steps = 0"),
        ({"max_length": 4}, r"max_length = 4 is not allowed; use an integer >= 8"),
        ({"prompts": ["q"] * 3}, r"prompts has 3 items for 10 training_texts; give one per text"),
        ({"reference_texts": ["r"] * 11}, r"reference_texts has 11 items for 10 training_texts"),
        (
            {"objective": "listwise"},
            r"objective = 'listwise' is not allowed; use one of \['regression', 'pairwise'\]",
        ),
        ({"eval_fraction": 1.0}, r"eval_fraction = 1.0 is not allowed; use a number >= 0 and < 1"),
        ({"min_spearman": 2}, r"min_spearman = 2 is not allowed"),
    ],
)
def test_training_config_rules(overrides, expected):
    with pytest.raises(ConfigError, match=expected):
        cfg(**overrides)


def test_callable_reward_function_is_accepted():
    @rlreward.batched
    def shout(response):
        return [min(1.0, t.count("!") / 3) for t in response]

    assert cfg(reward_functions=["length", shout]).reward_functions[1] is shout


def _local_model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return d


def test_source_configs_valid(tmp_path):
    local = _local_model_dir(tmp_path)
    assert RewardModelSourceConfig("pretrained_local", model_path=str(local)).materialize() == str(
        local
    )
    hub = RewardModelSourceConfig(
        "pretrained_hf", model_name="Skywork/Skywork-Reward-V2-Qwen3-0.6B"
    )
    assert hub.materialize() == "Skywork/Skywork-Reward-V2-Qwen3-0.6B"
    custom = RewardModelSourceConfig("custom_trained", training_config=cfg())
    assert custom.identifier == "/tmp/rm"
    from_dict = RewardModelSourceConfig(
        "custom_trained",
        training_config={
            "base_model_name": "embedded",
            "training_texts": TEXTS,
            "reward_functions": ["length"],
            "output_dir": "/tmp/rm2",
        },
    )
    assert isinstance(from_dict.training_config, RewardModelTrainingConfig)
    assert (
        RewardModelSourceConfig.from_sources(model_path=str(local)).source_type
        == "pretrained_local"
    )


def test_source_config_rules(tmp_path):
    local = _local_model_dir(tmp_path)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    cases = [
        (
            dict(source_type="hub", model_name="x/y"),
            r"source_type = 'hub' is not allowed; use one of \['custom_trained', 'pretrained_hf', 'pretrained_local'\]",
        ),
        (
            dict(source_type="pretrained_hf", model_name="x/y", model_path=str(local)),
            r"exactly one reward-model source is allowed, and source_type='pretrained_hf' needs model_name; got model_name='x/y', model_path=",
        ),
        (
            dict(source_type="pretrained_hf"),
            r"exactly one reward-model source .* needs model_name; got none",
        ),
        (
            dict(source_type="custom_trained", model_path=str(local)),
            r"source_type='custom_trained' needs training_config; got model_path=",
        ),
        (
            dict(source_type="pretrained_hf", model_name=""),
            r"model_name is required and must be a non-empty string, got ''",
        ),
        (
            dict(source_type="pretrained_local", model_path=str(tmp_path / "nope")),
            r"model_path = '.*nope' does not exist",
        ),
        (dict(source_type="pretrained_local", model_path=str(empty_dir)), r"holds no config.json"),
        (
            dict(source_type="custom_trained", training_config=["not", "a", "config"]),
            r"training_config must be a RewardModelTrainingConfig or a dict of its fields, got list",
        ),
        (
            dict(
                source_type="custom_trained",
                training_config={
                    "base_model_name": "embedded",
                    "training_texts": TEXTS[:3],
                    "reward_functions": ["length"],
                    "output_dir": "/tmp/x",
                },
            ),
            r"training_texts has 3 texts",
        ),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ConfigError, match=expected):
            RewardModelSourceConfig(**kwargs)
    with pytest.raises(
        ConfigError,
        match=r"exactly one reward-model source is needed.*\['model_name', 'model_path'\]",
    ):
        RewardModelSourceConfig.from_sources(model_name="x/y", model_path=str(local))
    with pytest.raises(ConfigError, match="got none"):
        RewardModelSourceConfig.from_sources()


def test_validation_loads_no_model():
    """Configs validate (and fail) before torch or transformers is even imported."""
    code = (
        "import sys\n"
        "from rlreward.training import RewardModelTrainingConfig, RewardModelSourceConfig\n"
        "c = RewardModelTrainingConfig('embedded', ['t'] * 10, ['length', 'safety'], '/tmp/x')\n"
        "RewardModelSourceConfig('custom_trained', training_config=c)\n"
        "try:\n"
        "    RewardModelTrainingConfig('embedded', ['t'] * 10, ['nope'], '/tmp/x')\n"
        "except ValueError as e:\n"
        "    assert 'known:' in str(e)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
