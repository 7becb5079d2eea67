"""The PPO reward invariant: what TRL's own ``get_reward`` computes through our adapter equals
``RewardModelGrader.score_texts`` for the same text; and the value model reads token ids causally.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.rl.conftest import PROMPTS

RESPONSES = [
    "Place the egg in cold water, boil it for nine minutes, then cool it.",
    "Air scatters blue light more than red light!",
    "idk",
    "Go to bed at the same time every day and keep the room dark.",
]


def _policy_tokenizer():
    from transformers import AutoTokenizer

    from rlreward.embedded import embedded_model_path
    from rlreward.rl.policy import prepare_policy_tokenizer

    return prepare_policy_tokenizer(AutoTokenizer.from_pretrained(embedded_model_path()))


def _query_responses(tok, prompts, responses, context_length):
    """Rows as TRL's PPO builds them: left-padded queries, responses truncated after eos, pad after."""
    from rlreward.rl.ppo import build_ppo_dataset

    queries, lookup = build_ppo_dataset(prompts, tok, context_length)
    resp = [tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for r in responses]
    width = max(len(r) for r in resp) + 3  # trailing pads, like a batch with longer responses
    rows = [
        q + r + [tok.pad_token_id] * (width - len(r))
        for q, r in zip(queries["input_ids"], resp, strict=True)
    ]
    return torch.tensor(rows), lookup


@pytest.mark.parametrize("with_prompts", [False, True])
def test_trl_get_reward_through_the_adapter_equals_the_grader(
    minilm_reward_dir: Path, with_prompts: bool
) -> None:
    from trl.experimental.utils import get_reward

    from rlreward.graders.reward_model import RewardModelGrader
    from rlreward.rl.reward_adapter import TextRewardModel

    tok = _policy_tokenizer()
    # "pair" encodes prompt + response: the adapter must hand the grader the original prompts
    grader = RewardModelGrader(
        str(minilm_reward_dir), prompt_template="pair" if with_prompts else "text"
    )
    context_length = 16
    ids, lookup = _query_responses(tok, PROMPTS[:4], RESPONSES, context_length)
    adapter = TextRewardModel(grader.score_texts, tok, context_length, prompt_lookup=lookup)
    with torch.no_grad():
        _, scores, _ = get_reward(adapter, ids, tok.pad_token_id, context_length)
    expected = grader.score_texts(RESPONSES, PROMPTS[:4])
    assert scores.tolist() == pytest.approx(expected, abs=1e-6)
    # the scores differ between texts, so equality is not a constant coincidence
    assert max(expected) - min(expected) > 1e-4
    if with_prompts:  # and the prompt really reached the reward model
        assert expected != pytest.approx(grader.score_texts(RESPONSES), abs=1e-6)
    assert adapter.history[-1]["n"] == 4


def test_the_raw_bert_reward_model_cannot_be_read_by_trl(minilm_reward_dir: Path) -> None:
    """Why the adapter exists: BERT classifiers pool [CLS] through .classifier and have no .score."""
    from transformers import AutoModelForSequenceClassification
    from trl.experimental.utils import get_reward

    tok = _policy_tokenizer()
    ids, _ = _query_responses(tok, PROMPTS[:2], RESPONSES[:2], 16)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_reward_dir)
    with pytest.raises(AttributeError, match="score"):
        get_reward(model, ids, tok.pad_token_id, 16)


def test_split_and_decode_uses_the_original_prompt_text() -> None:
    from rlreward.rl.reward_adapter import split_and_decode

    tok = _policy_tokenizer()
    ids, lookup = _query_responses(tok, ["Why is the SKY blue?"], ["Because of scattering."], 12)
    prompts, responses = split_and_decode(tok, ids, ids != tok.pad_token_id, 12, lookup)
    assert prompts == ["Why is the SKY blue?"]  # as written, not the uncased decode
    assert responses == ["because of scattering."]
    prompts, _ = split_and_decode(tok, ids, ids != tok.pad_token_id, 12)
    assert prompts == ["why is the sky blue?"]


def test_value_model_is_causal_and_scores_every_token(minilm_reward_dir: Path) -> None:
    from trl.experimental.utils import get_reward

    from rlreward.rl.reward_adapter import build_value_model

    value = build_value_model(str(minilm_reward_dir)).eval()
    assert value.config.is_decoder
    tok = _policy_tokenizer()
    ids, _ = _query_responses(tok, PROMPTS[:2], RESPONSES[:2], 16)
    changed = ids.clone()
    changed[:, -1] = tok.convert_tokens_to_ids("blue")  # alter only the last position
    with torch.no_grad():
        full, _, _ = get_reward(value, ids, tok.pad_token_id, 16)
        full2, _, _ = get_reward(value, changed, tok.pad_token_id, 16)
    assert full.shape == (*ids.shape, 1)
    assert torch.allclose(full[:, :-1], full2[:, :-1], atol=1e-5)  # earlier values cannot see it
    assert not torch.allclose(full[:, -1], full2[:, -1])


def test_a_value_head_of_its_own_starts_at_the_expected_reward(
    minilm_reward_dir: Path, tmp_path: Path
) -> None:
    """With "head", a new head on the frozen backbone: every value at the expected reward (the
    mean label recorded by rlreward's reward-model training)."""
    import json
    import shutil

    from trl.experimental.utils import get_reward

    from rlreward.errors import ConfigError
    from rlreward.rl.reward import expected_reward
    from rlreward.rl.reward_adapter import build_value_model, train_value_weights

    model_dir = Path(shutil.copytree(minilm_reward_dir, tmp_path / "rm"))
    meta_file = model_dir / "rlreward_reward_model.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    meta["label_stats"] = {"min": 0.1, "max": 0.9, "mean": 0.625, "std": 0.2}
    meta_file.write_text(json.dumps(meta))
    start = expected_reward(str(model_dir))
    assert start == 0.625
    assert expected_reward(None) == 0.0 and expected_reward("org/hub-model") == 0.0
    value = build_value_model(str(minilm_reward_dir))
    assert train_value_weights(value, "head", start) == value.config.hidden_size + 1
    assert {n for n, p in value.named_parameters() if p.requires_grad} == {
        "score.weight",
        "score.bias",
    }
    tok = _policy_tokenizer()
    ids, _ = _query_responses(tok, PROMPTS[:2], RESPONSES[:2], 16)
    with torch.no_grad():
        values, _, _ = get_reward(value.eval(), ids, tok.pad_token_id, 16)
    assert torch.allclose(values, torch.full_like(values, start))
    full = build_value_model(str(minilm_reward_dir))
    head = [p.detach().clone() for p in full.score.parameters()]
    assert train_value_weights(full, "all") == sum(p.numel() for p in full.parameters())
    assert all(torch.equal(a, b) for a, b in zip(head, full.score.parameters(), strict=True))
    with pytest.raises(ConfigError, match="value_trainable must be 'head' or 'all'"):
        train_value_weights(full, "lora")


def test_a_frozen_value_backbone_reads_each_row_once(minilm_reward_dir: Path) -> None:
    """With "head", PPO's calls on the same rows (rollout, then every epoch, in a shuffled
    order) run the frozen backbone once per row and give the same values as reading it."""
    from trl.experimental.utils import get_reward

    from rlreward.rl.reward_adapter import FrozenFeatures, build_value_model, train_value_weights

    value = build_value_model(str(minilm_reward_dir))
    train_value_weights(value, "head", 0.5)
    with torch.no_grad():
        value.score.weight.normal_()  # a head that reads the features
    feats = getattr(value, value.base_model_prefix)
    assert isinstance(feats, FrozenFeatures)
    tok = _policy_tokenizer()
    ids, _ = _query_responses(tok, PROMPTS[:3], RESPONSES[:3], 16)
    order = [2, 0, 1]  # a PPO mini-batch: the same rows, shuffled
    with torch.no_grad():
        first, _, _ = get_reward(value.eval(), ids, tok.pad_token_id, 16)
        again, _, _ = get_reward(value, ids[order], tok.pad_token_id, 16)
        mask = ids != tok.pad_token_id
        direct = feats.backbone(
            input_ids=ids.masked_fill(~mask, 0),
            attention_mask=mask,
            position_ids=mask.cumsum(1) - mask.long(),
        ).last_hidden_state
    assert (feats.computed, feats.reused) == (3, 3)
    assert torch.allclose(again, first[order], atol=1e-5)
    assert torch.allclose(first, value.score(direct), atol=1e-5)
    with torch.no_grad():  # a new row is read; the kept ones are not read again
        get_reward(value, ids[:1].roll(1, dims=1), tok.pad_token_id, 16)
    assert (feats.computed, feats.reused) == (4, 3)
    # it keeps one rollout batch, not every row it ever read
    small = FrozenFeatures(feats.backbone, keep=2)
    with torch.no_grad():
        small(input_ids=ids, attention_mask=mask)  # a call's own rows all stay for it
        assert len(small._rows) == 3
        small(input_ids=ids[:1].roll(1, dims=1), attention_mask=mask[:1])
    assert len(small._rows) == 2 and small.computed == 4


def test_trl_get_reward_equals_the_reward_for_functions_and_a_reward_model(
    minilm_reward_dir: Path,
) -> None:
    """PPO's reward is any Reward: a reward model plus rule functions here.

    What TRL's ``get_reward`` reads through the adapter is, row by row, the reward's value
    for the same (prompt, response).
    """
    from trl.experimental.utils import get_reward

    from rlreward.rl.reward import DeferredRewardModel, build_reward
    from rlreward.rl.reward_adapter import RewardScorer, TextRewardModel

    reward = build_reward(
        functions=["length", "safety"],
        function_weights=[0.5, 0.25],
        reward_model=DeferredRewardModel(str(minilm_reward_dir), normalize="sigmoid"),
        reward_model_weight=0.25,
    )
    scorer = RewardScorer(reward)
    tok = _policy_tokenizer()
    ids, lookup = _query_responses(tok, PROMPTS[:4], RESPONSES, 16)
    adapter = TextRewardModel(scorer, tok, 16, prompt_lookup=lookup)
    with torch.no_grad():
        _, scores, _ = get_reward(adapter, ids, tok.pad_token_id, 16)
    # the adapter decodes the policy's uncased ids: the reward gets that same text
    texts = [tok.decode(tok(r, add_special_tokens=False)["input_ids"]) for r in RESPONSES]
    rows = [{"query": p, "response": t} for p, t in zip(PROMPTS[:4], texts, strict=True)]
    results = reward.grade(rows)
    expected = reward.values(results)
    assert scores.tolist() == pytest.approx(expected, abs=1e-6)
    assert max(expected) - min(expected) > 1e-3  # type: ignore[operator]
    # every grader took part: the value is not the reward model's alone
    assert expected != pytest.approx([r.score for r in results["reward_model"]], abs=1e-3)


def test_a_failed_reward_row_stops_the_step_with_the_reason() -> None:
    from rlreward.aggregators import WeightedSumAggregator
    from rlreward.graders.function import FunctionGrader
    from rlreward.reward import Reward
    from rlreward.rl.reward_adapter import RewardScorer

    def picky(response: str) -> float:
        if "idk" in response:
            raise ValueError("cannot grade 'idk'")
        return 1.0

    reward = Reward(
        {"picky": FunctionGrader(picky, name="picky")},
        WeightedSumAggregator("reward", on_error="error"),
    )
    with pytest.raises(RuntimeError, match=r"failed for 1 of 4 responses \(row 2: .*idk"):
        RewardScorer(reward)(RESPONSES)


def test_an_abstaining_reward_row_stops_the_step_with_its_own_message() -> None:
    from rlreward.graders.function import FunctionGrader
    from rlreward.reward import Reward
    from rlreward.rl.reward_adapter import RewardScorer
    from rlreward.schema import GraderAbstention

    def only_long(response: str) -> float | GraderAbstention:
        if len(response) < 5:
            return GraderAbstention("only_long", "too short to judge")
        return 1.0

    scorer = RewardScorer(Reward({"only_long": FunctionGrader(only_long, name="only_long")}))
    with pytest.raises(RuntimeError, match=r"does not apply to 1 of 4 responses \(row 2: .*"):
        scorer(RESPONSES)


@pytest.mark.parametrize("bad", [0, True, 16.0, "16"])
def test_context_length_is_checked_by_the_one_number_rule(bad):
    from rlreward.errors import ConfigError
    from rlreward.rl.reward_adapter import TextRewardModel

    with pytest.raises(ConfigError, match=r"context_length=.* is not allowed; use an integer >= 1"):
        TextRewardModel(lambda texts, prompts: [0.0] * len(texts), None, bad)
