"""Family matching on tiny models built from configs, with tokenizers built in-process."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.errors import ConfigError
from rlreward.training.family import (
    FamilyMismatchError,
    check_model_family,
    require_same_family,
)
from tests.training.tiny import tiny_gpt2_dir, tiny_llama_config, word_tokenizer


def test_same_vocab_passes_across_model_types(tmp_path):
    tok = word_tokenizer()
    gpt2 = tiny_gpt2_dir(tmp_path / "gpt2", tok)
    llama_cfg = tiny_llama_config(len(tok))
    report = check_model_family((llama_cfg, word_tokenizer()), str(gpt2))
    assert report.compatible and bool(report)
    assert report.compared_tokenizers
    assert (report.policy_model_type, report.reward_model_type) == ("llama", "gpt2")
    assert report.mismatches == []
    assert any("model types differ" in n for n in report.notes)
    assert require_same_family(str(gpt2), str(gpt2)).compatible


def test_different_vocab_fails_with_message(tmp_path):
    policy = tiny_gpt2_dir(tmp_path / "policy", word_tokenizer())
    reward = tiny_gpt2_dir(tmp_path / "reward", word_tokenizer(["zebra", "quokka"], offset=3))
    report = check_model_family(str(policy), str(reward))
    assert not report.compatible
    assert any("vocabularies differ" in m for m in report.mismatches)
    assert any("encodes differently" in m for m in report.mismatches)
    with pytest.raises(FamilyMismatchError) as info:
        require_same_family(str(policy), str(reward))
    msg = str(info.value)
    assert "vocabularies differ" in msg
    assert "reward_training_base_model=" in msg and "text-level reward" in msg
    assert isinstance(info.value, ConfigError)
    assert info.value.report is not None and not info.value.report.compatible


def test_embedded_minilm_vs_tiny_policy_mismatch(tmp_path):
    policy = tiny_gpt2_dir(tmp_path / "policy")
    report = check_model_family(str(policy), "embedded")
    assert not report.compatible
    assert report.reward_model_type == "bert" and report.reward_vocab_size == 30522


def test_special_token_mismatch_detected():
    a = word_tokenizer()
    b = word_tokenizer()
    b.eos_token = "the"  # same vocabulary, different eos
    report = check_model_family(a, b)
    assert not report.compatible
    assert any("eos token id differs" in m for m in report.mismatches)


def test_configs_only_compare_vocab_size():
    report = check_model_family(tiny_llama_config(100), tiny_llama_config(120))
    assert not report.compatible and "vocab_size differs (100 vs 120)" in report.mismatches[0]
    assert not report.compared_tokenizers


def test_bad_inputs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="model name is empty"):
        check_model_family("", "embedded")
    with pytest.raises(ConfigError, match="cannot load the config/tokenizer"):
        check_model_family(str(tmp_path / "nowhere"), "embedded")
    with pytest.raises(ConfigError, match="expected a model name or path"):
        check_model_family(42, "embedded")
