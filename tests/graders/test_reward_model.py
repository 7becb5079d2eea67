"""RewardModelGrader on a tiny GPT-2 reward model built in-process (and in a runner/spec)."""

from __future__ import annotations

import asyncio
import math
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlreward.aggregators import WeightedSumAggregator
from rlreward.errors import ConfigError
from rlreward.graders.reward_model import RewardModelGrader
from rlreward.integrations.spec import RewardSpec
from rlreward.runner import GraderConfig, GradingRunner
from tests.training.tiny import tiny_gpt2_dir

TEXTS = [
    "this is a good answer",
    "bad",
    "thanks please help the dog and the cat in the rain",
    "it is very very really good and nice and helpful and safe",
    "no",
    "love the sun and the moon",
    "you are rude",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_gpt2_dir(tmp_path_factory.mktemp("rm")))


@pytest.fixture(scope="module")
def grader(model_dir):
    return RewardModelGrader(model_dir, batch_size=3)


def test_batched_length_sorted_scores_match_one_at_a_time(grader):
    batched = grader.score_texts(TEXTS)
    single = [grader.score_texts([t])[0] for t in TEXTS]
    assert batched == pytest.approx(single, abs=1e-5)
    assert len(set(batched)) == len(TEXTS)  # distinct texts, distinct scores (order kept)
    assert grader.score_range is None  # raw scores are unbounded
    assert grader.model.config.pad_token_id == grader.tokenizer.eos_token_id  # GPT-2: pad = eos


def test_query_changes_the_input(grader):
    assert grader.prompt_template == "pair"  # no metadata, no chat template
    with_q = grader.score_texts(TEXTS[:2], prompts=["is this good", "is this good"])
    assert with_q != pytest.approx(grader.score_texts(TEXTS[:2]), abs=1e-6)


def test_normalisation(model_dir, grader):
    raw = grader.score_texts(TEXTS)
    sig = RewardModelGrader(model_dir, normalize="sigmoid")
    assert sig.score_range == (0.0, 1.0)
    assert sig.score_texts(TEXTS) == pytest.approx([1 / (1 + math.exp(-r)) for r in raw], abs=1e-5)
    lo, hi = min(raw), max(raw)
    mm = RewardModelGrader(model_dir, normalize="minmax", score_bounds=(lo, (lo + hi) / 2))
    scores = mm.score_texts(TEXTS)
    assert min(scores) == pytest.approx(0.0, abs=1e-5) and max(scores) == 1.0  # clipped
    with pytest.raises(ConfigError, match="normalize='minmax' needs score_bounds"):
        RewardModelGrader(model_dir, normalize="minmax")
    with pytest.raises(ConfigError, match="normalize='tanh' is not allowed"):
        RewardModelGrader(model_dir, normalize="tanh")
    with pytest.raises(ConfigError, match="input format 'xml' is not allowed"):
        RewardModelGrader(model_dir, prompt_template="xml")


def test_bad_models_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot load reward model"):
        RewardModelGrader(str(tmp_path / "missing"))
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from tests.training.tiny import word_tokenizer

    two = GPT2ForSequenceClassification(
        GPT2Config(vocab_size=120, n_embd=16, n_layer=1, n_head=2, num_labels=2)
    )
    with pytest.raises(ConfigError, match="num_labels=2; a reward model outputs one score"):
        RewardModelGrader((two, word_tokenizer()))


def test_inside_grading_runner_with_micro_batching(model_dir):
    grader = RewardModelGrader(model_dir, name="rm", normalize="sigmoid", batch_size=4)
    rows = [{"prompt": "is this good", "answer": t} for t in TEXTS]
    runner = GradingRunner(
        [GraderConfig(grader, mapper={"query": "prompt", "response": "answer"})],
        aggregators=WeightedSumAggregator("reward"),
        show_progress=False,
    )
    results = runner.run(rows)
    expected = grader.score_texts(TEXTS, prompts=["is this good"] * len(TEXTS))
    assert results.scores("rm") == pytest.approx(expected, abs=1e-5)
    assert results.scores("reward") == pytest.approx(expected, abs=1e-5)
    assert max(grader._batcher.batch_sizes) > 1  # concurrent calls were batched
    # and again in a fresh event loop
    assert asyncio.run(runner.arun(rows)).scores("rm") == pytest.approx(expected, abs=1e-5)


def test_spec_type(model_dir, tmp_path):
    spec = RewardSpec.from_dict(
        {"graders": {"rm": {"type": "reward_model", "model": model_dir, "normalize": "sigmoid"}}}
    )
    grader = spec.graders["rm"].grader
    assert isinstance(grader, RewardModelGrader) and grader.name == "rm"
    with pytest.raises(ConfigError, match="needs 'model: <hub id or path>'"):
        RewardSpec.from_dict({"graders": {"rm": {"type": "reward_model"}}})


def test_a_base_model_with_a_random_head_is_refused():
    """The embedded MiniLM is a base, not a reward model: its head would be random."""
    with pytest.raises(
        ConfigError, match=r"is not a trained reward model: its weights lack \['classifier"
    ):
        RewardModelGrader("embedded")


def test_pickle_round_trip(grader):
    """TRL and Ray pickle reward callables; the loop-bound batcher is rebuilt."""
    import pickle

    clone = pickle.loads(pickle.dumps(grader))
    assert clone.score_texts(TEXTS) == pytest.approx(grader.score_texts(TEXTS), abs=1e-6)

    async def one():
        return await clone.aevaluate(response=TEXTS[0])

    assert asyncio.run(one()).score == pytest.approx(grader.score_texts(TEXTS[:1])[0], abs=1e-6)


def test_a_source_config_is_materialised_by_whoever_holds_it(tmp_path):
    """The grader takes a path or (model, tokenizer); it never imports the training layer."""
    from rlreward.training.config import RewardModelSourceConfig

    (tmp_path / "config.json").write_text("{}")
    source = RewardModelSourceConfig("pretrained_local", model_path=str(tmp_path))
    with pytest.raises(ConfigError, match=r"pass source.materialize\(\)"):
        RewardModelGrader(source)


@pytest.fixture(scope="module")
def minilm_rm_dir(tmp_path_factory):
    """The embedded MiniLM with a fixed score head whose raw scores spread over about 1."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlreward.embedded import embedded_model_path

    base = embedded_model_path()
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    torch.manual_seed(0)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 0.5)
        model.classifier.bias.fill_(0.5)
    out = tmp_path_factory.mktemp("minilm_rm")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return str(out)


def test_bfloat16_on_cpu_stays_within_0_01_of_float32(minilm_rm_dir):
    import torch

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no AVX512-BF16/AMX: dtype='bfloat16' is refused here")
    texts = [*TEXTS, "A healthy breakfast combines protein, fibre and some fruit."]
    exact = RewardModelGrader(minilm_rm_dir, device="cpu").score_texts(texts)
    fast = RewardModelGrader(minilm_rm_dir, device="cpu", dtype="bfloat16")
    low = fast.score_texts(texts)
    assert max(exact) - min(exact) > 0.2  # a spread on which a 0.01 bound means something
    assert max(abs(a - b) for a, b in zip(low, exact, strict=True)) <= 0.01
    assert next(fast.model.bert.parameters()).dtype == torch.bfloat16
    assert fast.model.classifier.weight.dtype == torch.float32  # the head stays fp32
    assert fast.describe()["dtype"] == "bfloat16"
    # bf16 kernels round differently per batch shape: alone or batched, still within 0.01
    alone = [fast.score_texts([t])[0] for t in texts]
    assert max(abs(a - b) for a, b in zip(alone, exact, strict=True)) <= 0.01


@pytest.mark.parametrize(
    ("dtype", "words"),
    [
        ("int8", ["dtype='int8'", "float32", "bfloat16"]),
        ("float64", ["dtype='float64'", "None for the device default"]),
        ("float16", ["dtype='float16' on CPU", "use dtype='bfloat16'"]),
    ],
)
def test_dtype_is_validated_with_the_fix(model_dir, dtype, words):
    with pytest.raises(ConfigError) as err:
        RewardModelGrader(model_dir, device="cpu", dtype=dtype)
    for w in words:
        assert w in str(err.value)


def test_bfloat16_is_refused_on_a_cpu_without_bf16_units(model_dir, monkeypatch):
    import torch

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.raises(ConfigError, match="no AVX512-BF16/AMX.*use dtype='float32'"):
        RewardModelGrader(model_dir, device="cpu", dtype=torch.bfloat16)
