"""score_ids: length-sorted, right-padded batches and the shared-prefix cache are exact."""

from __future__ import annotations

import pytest

from rlreward.models import reward_model_io
from rlreward.models.reward_model_io import score_ids
from tests.training.tiny import tiny_config, tiny_llama_config, word_tokenizer

PROMPT = "first then next finally the main steps are"
RESPONSES = ["good", "the dog and the cat", "no", "thanks please help", "very very nice and safe"]


def _llama(tok):
    from transformers import LlamaForSequenceClassification, set_seed

    set_seed(0)
    cfg = tiny_llama_config(len(tok))
    cfg.num_labels = 1
    cfg.pad_token_id = tok.pad_token_id
    return LlamaForSequenceClassification(cfg).eval()


def _bert(tok):
    from transformers import BertForSequenceClassification, set_seed

    set_seed(0)
    cfg = tiny_config(
        "bert", len(tok), max_positions=512, num_labels=1, pad_token_id=tok.pad_token_id
    )
    return BertForSequenceClassification(cfg).eval()


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer(pad=True)


def _ids(tok, texts):
    return tok(texts)["input_ids"]


@pytest.fixture
def prefix_calls(monkeypatch):
    calls: list[int] = []
    real = reward_model_io._prefix_cache

    def spy(model, prefix, device):
        calls.append(len(prefix))
        return real(model, prefix, device)

    monkeypatch.setattr(reward_model_io, "_prefix_cache", spy)
    return calls


def test_decoder_prefix_is_run_once_and_scores_match_one_at_a_time(tok, prefix_calls):
    model = _llama(tok)
    ids = _ids(tok, [f"{PROMPT} {r}" for r in RESPONSES])
    single = [score_ids(model, tok, [x], 1)[0] for x in ids]
    assert prefix_calls == []  # one input: nothing shared to reuse
    shared = score_ids(model, tok, ids, 2)
    assert prefix_calls == [len(_ids(tok, [PROMPT])[0])]  # the shared words, run once
    plain = score_ids(model, tok, ids, 2, reuse_prefix=False)
    assert shared == pytest.approx(single, abs=1e-5)
    assert plain == pytest.approx(single, abs=1e-5)
    assert len(set(round(s, 6) for s in shared)) == len(RESPONSES)  # order kept, not shuffled


def test_left_padding_tokenizer_still_scores_like_one_at_a_time(tok):
    """Batches are padded on the right whatever the tokenizer says (Llama positions)."""
    left = word_tokenizer(pad=True)
    left.padding_side = "left"
    model = _llama(left)
    ids = _ids(left, RESPONSES)  # no shared prefix: plain padded batches
    single = [score_ids(model, left, [x], 1)[0] for x in ids]
    assert score_ids(model, left, ids, 3) == pytest.approx(single, abs=1e-5)


def test_bidirectional_encoders_never_reuse_a_prefix(tok, prefix_calls):
    model = _bert(tok)
    ids = _ids(tok, [f"{PROMPT} {r}" for r in RESPONSES])
    single = [score_ids(model, tok, [x], 1)[0] for x in ids]
    assert score_ids(model, tok, ids, 2) == pytest.approx(single, abs=1e-5)
    assert prefix_calls == []
    assert not reward_model_io._is_causal(model)
    assert reward_model_io._is_causal(_llama(tok))


def test_shared_prefix_leaves_every_input_a_token_of_its_own():
    assert reward_model_io._shared_prefix([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]) == 4
    assert reward_model_io._shared_prefix([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 9]]) == 4
    assert reward_model_io._shared_prefix([[1, 2, 3, 9], [1, 2, 3, 4, 5]]) == 0  # too short
    assert reward_model_io._shared_prefix([[7, 2, 3, 4, 5], [1, 2, 3, 4, 5]]) == 0
    assert score_ids(_llama(word_tokenizer(pad=True)), word_tokenizer(pad=True), [], 4) == []


def test_length_batches_cut_before_much_shorter_inputs_and_keep_every_index():
    from rlreward.models.reward_model_io import length_batches

    lengths = [10, 100, 12, 90, 11, 80, 40, 9]
    batches = length_batches(lengths, 2)
    assert batches == [[1, 3], [5], [6], [2, 4], [0, 7]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert length_batches([5] * 5, 2) == [[0, 1], [2, 3], [4]]  # ties keep input order
    assert length_batches([], 4) == []
