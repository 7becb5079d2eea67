"""Semantic reward functions on the embedded MiniLM (loaded once for this module)."""

from __future__ import annotations

import asyncio
import math
import pickle
import subprocess
import sys

import pytest

from rlreward import GradingRunner, RewardFunctionGrader
from rlreward.rewards import get_reward_function
from tests.rewards.conftest import EDGE_TEXTS


@pytest.fixture(scope="module")
def relevance():
    import torch

    # One intra-op thread: on a shared 2-core test machine torch's spinning worker threads
    # make every small batch several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    fn = get_reward_function("semantic_relevance")
    fn(["warm up"], prompts=["load the model once"])
    yield fn
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def similarity(relevance):
    return get_reward_function("semantic_similarity")


def test_importing_does_not_import_torch():
    code = (
        "import sys, rlreward.rewards.semantic, rlreward.graders.reward_function; "
        "from rlreward.rewards import get_reward_function as g; g('semantic_relevance'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_relevance_orders_on_topic_above_off_topic(relevance):
    prompt = "How do I bake sourdough bread at home?"
    on = "Mix your starter with flour and water, let the dough rise overnight, then bake it hot."
    off = "The stock market closed lower on Tuesday after interest rate worries."
    a, b = relevance([on, off], prompts=[prompt, prompt])
    assert 0.0 <= b < a <= 1.0 and a - b > 0.2


def test_similarity_orders_paraphrase_above_unrelated(similarity):
    ref = "The cat is sleeping on the sofa."
    para, other = "A cat naps on the couch.", "Quarterly revenue grew by eight percent."
    a, b = similarity([para, other], references=[ref, ref])
    assert a > 0.5 > b
    assert similarity([ref], references=[ref])[0] == pytest.approx(1.0, abs=1e-5)


def test_edge_cases_in_range_and_deterministic(relevance, similarity, no_network):
    texts = list(EDGE_TEXTS.values())
    others = list(reversed(texts))
    for fn, kw in ((relevance, "prompts"), (similarity, "references")):
        first = fn(texts, **{kw: others})
        assert first == fn(texts, **{kw: others})
        assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in first)
        assert first[0] == 0.0 and first[1] == 0.0  # empty / whitespace response
    # batch composition does not change a text's score
    solo = relevance([texts[3]], prompts=[others[3]])[0]
    assert solo == pytest.approx(relevance(texts, prompts=others)[3], abs=1e-6)


def test_pickles_and_scores_the_same(relevance):
    clone = pickle.loads(pickle.dumps(relevance))
    args = (["bread recipe with flour"],)
    kw = {"prompts": ["how to bake bread"]}
    assert clone(*args, **kw) == pytest.approx(relevance(*args, **kw), abs=1e-6)


def test_grader_batches_concurrent_calls(relevance):
    grader = RewardFunctionGrader("semantic_relevance")
    rows = [
        {"query": f"Question {i} about baking bread?", "response": f"Answer {i}: knead and bake."}
        for i in range(40)
    ]
    results = GradingRunner([grader], max_concurrency=32, show_progress=False).run(rows)
    scores = results.scores("semantic_relevance")
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    assert grader._batcher is not None and max(grader._batcher.batch_sizes) > 1
    assert sum(grader._batcher.batch_sizes) == 40
    direct = relevance([r["response"] for r in rows], prompts=[r["query"] for r in rows])
    assert scores == pytest.approx(direct, abs=1e-5)
    # a second event loop works (the batcher is per loop)
    again = asyncio.run(grader.aevaluate(query=rows[0]["query"], response=rows[0]["response"]))
    assert again.score == pytest.approx(direct[0], abs=1e-5)


def test_loaded_embedders_are_bounded_least_recently_used_first(monkeypatch, tmp_path):
    from collections import OrderedDict

    import rlreward.rewards.semantic as semantic
    from rlreward.embedded import embedded_model_path

    monkeypatch.setattr(semantic, "_MODELS", OrderedDict())
    paths = []
    for name in "abc":  # three distinct model paths (links to the embedded MiniLM)
        link = tmp_path / name
        link.symlink_to(embedded_model_path(), target_is_directory=True)
        paths.append(str(link))
    a, b, c = paths
    first_a = semantic.load_embedder(a)
    semantic.load_embedder(b)
    assert semantic.load_embedder(a) is first_a  # cached, and now the most recent
    semantic.load_embedder(c)  # over MAX_EMBEDDERS: b, the least recently used, goes
    assert semantic.MAX_EMBEDDERS == 2 and list(semantic._MODELS) == [a, c]
    assert semantic.load_embedder(b) is not None and list(semantic._MODELS) == [c, b]
