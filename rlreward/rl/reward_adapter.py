"""Text-level reward for TRL's PPO, through the runner, and the PPO value model.

TRL's PPOTrainer computes rewards with ``get_reward(model, query_responses, pad_id,
context_length)``: it runs ``getattr(model, model.base_model_prefix)`` on the *policy's*
token ids and reads ``model.score(hidden_states[-1])`` at the last non-pad token.

``TextRewardModel`` makes any text scorer look like that reward model: its backbone
decodes the policy's ids and broadcasts each text's score over the sequence so that TRL
reads exactly the score the scorer returns. Queries are padded to a fixed
``context_length`` so the backbone knows where the prompt ends.

The scorer PPO uses is ``RewardScorer``: the rows ``{"query": prompt, "response": text}``
are graded by the trainer's one ``Reward`` (a reward model, rule functions, LLM judges, a
spec, or any mix; ``rlreward.rl.reward``) and the value is that reward's value for each
row, the same number ``reward.aevaluate(query=prompt, response=text)`` gives. PPO has
no way to skip one sample and a made-up score would be trained on, so a row whose
reward failed stops the step with the reason, and so does a row the reward does not
apply to (every weighted grader abstained), with its own message.

The value model must read the policy's ids token by token (it is trained, and TRL calls
it inside the policy/value wrapper): it is a sequence-classification network with its
head applied at every position, built from the reward model when there is one of the
policy's tokenizer family (a good start for values), else from the policy's own base.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from rlreward.checks import RunningStats, number_rule, short_repr
from rlreward.errors import ConfigError

__all__ = [
    "FrozenFeatures",
    "RewardScorer",
    "TextRewardModel",
    "TextScorer",
    "build_value_model",
    "split_and_decode",
    "train_value_weights",
]

logger = logging.getLogger(__name__)

#: ``scorer(texts, prompts) -> one float per text``; prompts is None when not used
TextScorer = Callable[[list[str], "list[str] | None"], Sequence[float]]


def split_and_decode(
    tokenizer: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: int,
    prompt_lookup: Mapping[tuple[int, ...], str] | None = None,
) -> tuple[list[str], list[str]]:
    """(prompts, responses) as text from left-padded ``query + response`` rows.

    A prompt is looked up by its token ids in ``prompt_lookup`` (the original text, e.g.
    without the chat template's role markers) and decoded when it is not there.
    """
    prompts, responses = [], []
    for ids, mask in zip(input_ids.tolist(), attention_mask.bool().tolist(), strict=True):
        kept = [t for t, m in zip(ids, mask, strict=True) if m]
        n_prompt = sum(mask[:context_length])
        q, r = kept[:n_prompt], kept[n_prompt:]
        known = prompt_lookup.get(tuple(q)) if prompt_lookup else None
        prompts.append(
            known if known is not None else tokenizer.decode(q, skip_special_tokens=True).strip()
        )
        responses.append(tokenizer.decode(r, skip_special_tokens=True).strip())
    return prompts, responses


class RewardScorer:
    """``scorer(texts, prompts)``: a ``Reward``'s value per text (what PPO trains on).

    Args:
        reward: the ``Reward`` (``trainer.reward``); anything ``load_reward`` takes.
        show_progress: show the runner's progress bar (off: PPO calls it every step).
    """

    def __init__(self, reward: Any, *, show_progress: bool = False) -> None:
        from rlreward.integrations.spec import load_reward

        self.reward = load_reward(reward)
        self.reward_name = self.reward.name
        self.show_progress = show_progress
        #: the reward's results of the last call (every grader's and monitor's value per row)
        self.last_results: Any = None

    def rows(self, texts: Sequence[str], prompts: Sequence[str] | None) -> list[dict[str, Any]]:
        """The rows the reward grades: ``response`` and, when known, ``query``."""
        if prompts is None:
            return [{"response": t} for t in texts]
        return [{"query": p, "response": t} for t, p in zip(texts, prompts, strict=True)]

    def __call__(self, texts: list[str], prompts: list[str] | None = None) -> list[float]:
        from rlreward.schema import GraderAbstention, GraderError

        results = self.reward.grade(self.rows(texts, prompts), show_progress=self.show_progress)
        self.last_results = results
        column = self.reward.results(results)
        name, n = self.reward_name, len(texts)
        failed = {i: r.error for i, r in enumerate(column) if isinstance(r, GraderError)}
        if failed:
            first = next(iter(failed))
            raise RuntimeError(
                f"the PPO reward {name!r} failed for {len(failed)} of {n} responses (row "
                f"{first}: {failed[first]}); PPO cannot skip a sample and a made-up score "
                "would be trained on, so fix the grader (or, in a reward spec, choose its "
                "aggregator's on_error)"
            )
        skipped = {i: r.reason for i, r in enumerate(column) if isinstance(r, GraderAbstention)}
        if skipped:
            first = next(iter(skipped))
            raise RuntimeError(
                f"the PPO reward {name!r} does not apply to {len(skipped)} of {n} responses "
                f"(row {first}: {skipped[first]}); PPO cannot skip a sample, so give every "
                "row the fields its graders need, or add a grader that applies to every row"
            )
        return [float(v) for v in self.reward.values(results)]  # type: ignore[arg-type]


class _DecodeAndScore(nn.Module):
    """The "backbone" TRL calls: ids -> texts -> scores, as a (batch, seq, 1) hidden state."""

    def __init__(self, owner: TextRewardModel) -> None:
        super().__init__()
        self._owner = [owner]  # a list, so the parent is not registered as a submodule

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any
    ) -> BaseModelOutput:
        owner = self._owner[0]
        if attention_mask is None:
            attention_mask = input_ids != owner.tokenizer.pad_token_id
        prompts, responses = split_and_decode(
            owner.tokenizer, input_ids, attention_mask, owner.context_length, owner.prompt_lookup
        )
        scores = owner.score_texts(responses, prompts if owner.include_prompt else None)
        value = torch.tensor(scores, dtype=torch.float32, device=input_ids.device)
        hidden = value.view(-1, 1, 1).expand(input_ids.shape[0], input_ids.shape[1], 1)
        hidden_f = cast(torch.FloatTensor, hidden)  # transformers annotates the legacy type
        return BaseModelOutput(last_hidden_state=hidden_f, hidden_states=(hidden_f,))


class TextRewardModel(nn.Module):
    """A text scorer in the shape TRL's PPO reads rewards from (see the module docstring).

    Args:
        scorer: ``scorer(texts, prompts) -> scores`` (e.g. ``RewardModelGrader.score_texts``).
        tokenizer: the policy's tokenizer (decodes the ids TRL passes in).
        context_length: the fixed, left-padded length of every query.
        include_prompt: pass the prompts to the scorer (``RewardModelGrader`` then encodes
            them as the model was trained: a response-only model ignores them);
            ``False`` scores the response alone.
        prompt_lookup: ``{query token ids: prompt text}`` for the queries of the PPO
            dataset, so the scorer sees each prompt as written rather than decoded.
    """

    base_model_prefix = "backbone"

    def __init__(
        self,
        scorer: TextScorer,
        tokenizer: Any,
        context_length: int,
        *,
        include_prompt: bool = True,
        prompt_lookup: Mapping[tuple[int, ...], str] | None = None,
    ) -> None:
        super().__init__()
        allowed = number_rule(context_length, integer=True, low=1)
        if allowed is not None:
            raise ConfigError(
                f"TextRewardModel: context_length={short_repr(context_length)} is not allowed; "
                f"use {allowed} (the policy's context window in tokens)"
            )
        self.scorer = scorer
        self.tokenizer = tokenizer
        self.context_length = int(context_length)
        self.include_prompt = include_prompt
        self.prompt_lookup = dict(prompt_lookup or {})
        self.backbone = _DecodeAndScore(self)
        self.score = nn.Identity()
        #: ``observe(texts, prompts, scores)`` called after every scored batch
        self.observers: list[Callable[[list[str], list[str] | None, list[float]], None]] = []
        #: one entry per scored batch: {"mean", "std", "min", "max", "n"}
        self.history: list[dict[str, float]] = []

    def score_texts(self, texts: list[str], prompts: list[str] | None) -> list[float]:
        """Score texts through the wrapped scorer and record the batch's statistics."""
        scores = [float(s) for s in self.scorer(texts, prompts)]
        if len(scores) != len(texts):
            raise RuntimeError(
                f"reward scorer returned {len(scores)} scores for {len(texts)} texts"
            )
        bad = [i for i, s in enumerate(scores) if not math.isfinite(s)]
        if bad:  # a NaN reward would silently poison the PPO update
            raise RuntimeError(f"reward scorer returned non-finite scores at rows {bad[:10]}")
        self.history.append(RunningStats(scores).as_dict())
        for observe in self.observers:  # e.g. the reward-hacking monitor: sees what PPO scored
            observe(texts, prompts, scores)
        return scores

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kw: Any
    ) -> torch.Tensor:
        """Scores of whole ``query + response`` rows, shape (batch,)."""
        return self.backbone(input_ids, attention_mask)[0][:, -1, 0]


def _bert_like_head(model: Any) -> nn.Module | None:
    """``pooler.dense -> tanh -> classifier``: a BERT classifier applied at every token."""
    base = getattr(model, model.base_model_prefix, None)
    pooler = getattr(base, "pooler", None)
    classifier = getattr(model, "classifier", None)
    if pooler is None or classifier is None or not hasattr(pooler, "dense"):
        return None
    return nn.Sequential(pooler.dense, nn.Tanh(), classifier)


def build_value_model(reward_model_path: str, *, trust_remote_code: bool = False) -> Any:
    """The reward model's network as a per-token, causal value model for TRL's PPO.

    Models with a ``score`` head (Llama, Qwen, GPT-2, ... sequence classifiers) are used
    as they are; BERT-family models are loaded with ``is_decoder=True`` (causal
    attention: a value at token t sees tokens <= t) and get ``score`` = their pooler
    and classifier applied at every position.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(reward_model_path, trust_remote_code=trust_remote_code)
    config.num_labels = 1
    with torch.device("meta"):  # architecture only: no weights allocated
        probe = AutoModelForSequenceClassification.from_config(
            config, trust_remote_code=trust_remote_code
        )
    needs_head = not isinstance(getattr(probe, "score", None), nn.Module)
    del probe
    if needs_head:
        config.is_decoder = True
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    # from a policy checkpoint the value head is new by design: no "MISSING" load report
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            reward_model_path, config=config, trust_remote_code=trust_remote_code
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    if needs_head:
        head = _bert_like_head(model)
        if head is None:
            raise ConfigError(
                f"cannot build a PPO value model from {reward_model_path!r} "
                f"({type(model).__name__}): it has neither a `score` head nor a BERT-style "
                "pooler + classifier; use a reward model of a causal-LM family (Llama, Qwen, "
                "GPT-2, ...) or BERT family, or train with algorithm='grpo' (no value model)"
            )
        model.score = head
    if getattr(model.config, "pad_token_id", None) is None:
        logger.info("value model config has no pad_token_id; PPO passes an attention mask instead")
    return model


class FrozenFeatures(nn.Module):
    """A frozen backbone that reads each row once.

    TRL's PPO runs the value model's backbone on a rollout batch to collect values, then
    again in every PPO epoch and mini-batch. When no weight of the backbone learns
    (``value_trainable="head"``), a row's hidden states are the same every time, so they
    are kept, keyed by the row's ids, mask and positions, for the ``keep`` most recent rows
    (one rollout batch: more would only hold memory, a sequence's hidden states each).
    Only rows not seen yet go through the backbone. It returns what TRL reads:
    ``last_hidden_state`` and ``hidden_states[-1]``, both the last layer's.
    """

    def __init__(self, backbone: nn.Module, keep: int = 64) -> None:
        super().__init__()
        self.backbone = backbone
        self.keep = keep
        self._rows: OrderedDict[tuple[bytes, ...], torch.Tensor] = OrderedDict()
        #: rows read through the backbone, rows answered from what was kept
        self.computed = 0
        self.reused = 0

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> BaseModelOutput:
        # one copy to the host per tensor (not per row), then each row's bytes
        parts = [
            t.detach().cpu().numpy()
            for t in (input_ids, attention_mask, position_ids)
            if t is not None
        ]
        keys = [tuple(a[i].tobytes() for a in parts) for i in range(input_ids.shape[0])]
        new = [i for i, k in enumerate(keys) if k not in self._rows]
        if new:
            with torch.no_grad():
                hidden = self.backbone(
                    input_ids=input_ids[new],
                    attention_mask=None if attention_mask is None else attention_mask[new],
                    position_ids=None if position_ids is None else position_ids[new],
                    use_cache=False,
                ).last_hidden_state
            for j, i in enumerate(new):
                self._rows[keys[i]] = hidden[j].detach()
        self.computed += len(new)
        self.reused += len(keys) - len(new)
        for k in keys:
            self._rows.move_to_end(k)
        out = torch.stack([self._rows[k] for k in keys])
        while len(self._rows) > max(self.keep, len(keys)):
            self._rows.popitem(last=False)
        hidden_f = cast(torch.FloatTensor, out)
        return BaseModelOutput(last_hidden_state=hidden_f, hidden_states=(hidden_f,))


def train_value_weights(model: Any, which: str, start: float = 0.0, keep: int = 64) -> int:
    """Let ``which`` of the value model's weights learn; returns how many learn.

    - "head": a new linear head on the last hidden state learns, every value starting
      at ``start`` (weight 0, bias ``start``: the expected reward, so that the first
      advantages are signed by whether a rollout beat it). The backbone is frozen, so
      PPO's update neither backpropagates through it nor keeps optimizer state for it.
      The reward model's own head is not kept: read at every token it is not a value (it
      learned finished answers only; on the main job it swings from -1.7 to 1.2 along
      one answer whose reward is 0.3), and PPO's advantages would carry that noise.
      The backbone becomes a ``FrozenFeatures``: each rollout row is read once per PPO
      step, not once per epoch; it keeps the features of the last ``keep`` rows (PPO's
      rollout batch: per-device batch x gradient accumulation x mini-batches).
    - "all": every weight learns, from the reward model's head (TRL's way).
    """
    from rlreward.rl.options import VALUE_TRAINABLE

    if which not in VALUE_TRAINABLE:
        raise ConfigError(f"value_trainable must be 'head' or 'all', got {which!r}")
    for p in model.parameters():
        p.requires_grad_(which == "all")
    if which == "head":
        head = nn.Linear(int(model.config.hidden_size), 1)
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(float(start))
        model.score = head.to(next(model.parameters()).dtype)
        prefix = model.base_model_prefix  # the module TRL calls for the features
        setattr(model, prefix, FrozenFeatures(getattr(model, prefix), keep=keep))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
