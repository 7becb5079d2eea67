"""Model-family matching: can a reward model score a policy's token ids directly?

Token-level reward (TRL's PPO feeds the *policy's* token ids to the reward and value
models) is only correct when both models read the same token ids the same way: the
same vocabulary and the same special tokens. ``check_model_family`` decides that from
configs and tokenizers only (never weights) and says what differs;
``require_same_family`` raises ``FamilyMismatchError`` with the fix. Model types are
reported but do not decide: two architectures may share a tokenizer (that is fine),
and one model type may ship different vocabularies (that is not).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from rlreward.errors import ConfigError, FamilyMismatchError

__all__ = ["FamilyMismatchError", "FamilyReport", "check_model_family", "require_same_family"]

#: encoded by both tokenizers; any difference in ids means different tokenization
SAMPLE_TEXT = (
    "The quick brown fox jumps over the lazy dog. Reward 42 points, then 3.14! "
    "Ünïcödé, emoji 🙂, and code: def f(x): return x * 2"
)
_SPECIAL = ("bos", "eos", "pad", "unk")


@dataclass(frozen=True)
class FamilyReport:
    """What was compared between a policy and a reward model, and what differed."""

    compatible: bool
    policy: str
    reward: str
    policy_model_type: str | None
    reward_model_type: str | None
    policy_vocab_size: int | None
    reward_vocab_size: int | None
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compared_tokenizers: bool = False

    def __bool__(self) -> bool:
        return self.compatible

    def describe(self) -> str:
        """A multi-line summary for logs and error messages."""
        head = (
            f"policy {self.policy!r} (model_type={self.policy_model_type}, "
            f"vocab={self.policy_vocab_size}) vs reward model {self.reward!r} "
            f"(model_type={self.reward_model_type}, vocab={self.reward_vocab_size}): "
            + ("compatible" if self.compatible else "NOT compatible")
        )
        lines = [head]
        lines += [f"  mismatch: {m}" for m in self.mismatches]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class _Side:
    label: str
    config: Any = None
    tokenizer: Any = None


def _load(ref: Any, role: str) -> _Side:
    """Config and tokenizer for a name/path, a tokenizer, a config, a model, or a pair."""
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    if isinstance(ref, tuple) and len(ref) == 2:
        a, b = _load(ref[0], role), _load(ref[1], role)
        return _Side(a.label, a.config or b.config, a.tokenizer or b.tokenizer)
    if isinstance(ref, PreTrainedTokenizerBase):
        return _Side(getattr(ref, "name_or_path", "") or type(ref).__name__, tokenizer=ref)
    if isinstance(ref, PretrainedConfig):
        return _Side(getattr(ref, "_name_or_path", "") or ref.model_type, config=ref)
    if isinstance(ref, PreTrainedModel) or hasattr(ref, "config"):
        cfg = getattr(ref, "config", None)
        return _Side(getattr(cfg, "_name_or_path", "") or type(ref).__name__, config=cfg)
    if isinstance(ref, (str, os.PathLike)):
        return _load_named(os.fspath(ref), role)
    raise ConfigError(
        f"{role}: expected a model name or path, a tokenizer, a config, a model, or a "
        f"(config, tokenizer) pair; got {type(ref).__name__}"
    )


def _load_named(name: str, role: str) -> _Side:
    from transformers import AutoConfig, AutoTokenizer

    from rlreward.embedded import resolve_model_name

    if not name:
        raise ConfigError(f"{role}: model name is empty; give a hub id or a local directory")
    resolved = resolve_model_name(name)
    try:
        config = AutoConfig.from_pretrained(resolved)
        tokenizer = AutoTokenizer.from_pretrained(resolved)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{role}: cannot load the config/tokenizer of {name!r} ({type(exc).__name__}: {exc}); "
            "give an existing local directory, or a hub id that is cached or reachable"
        ) from exc
    return _Side(name, config, tokenizer)


def _model_type(side: _Side) -> str | None:
    return getattr(side.config, "model_type", None) if side.config is not None else None


def _embedding_size(side: _Side) -> int | None:
    cfg = side.config
    if cfg is None:
        return None
    size = getattr(cfg, "vocab_size", None)
    if size is None and hasattr(cfg, "get_text_config"):
        size = getattr(cfg.get_text_config(), "vocab_size", None)
    return size


def _special_ids(side: _Side) -> dict[str, int | None]:
    if side.tokenizer is not None:
        return {k: getattr(side.tokenizer, f"{k}_token_id", None) for k in _SPECIAL}
    return {k: getattr(side.config, f"{k}_token_id", None) for k in _SPECIAL}


def _compare_tokenizers(p: Any, r: Any, mismatches: list[str]) -> None:
    pv, rv = p.get_vocab(), r.get_vocab()
    if pv != rv:
        only_p = sorted(set(pv) - set(rv))
        only_r = sorted(set(rv) - set(pv))
        moved = sum(1 for t in set(pv) & set(rv) if pv[t] != rv[t])
        detail = f"{len(pv)} vs {len(rv)} tokens"
        if only_p or only_r:
            detail += f"; {len(only_p)} only in the policy's (e.g. {only_p[:3]}), "
            detail += f"{len(only_r)} only in the reward model's (e.g. {only_r[:3]})"
        if moved:
            detail += f"; {moved} shared tokens have different ids"
        mismatches.append(f"tokenizer vocabularies differ ({detail})")
    ids_p = p(SAMPLE_TEXT, add_special_tokens=False)["input_ids"]
    ids_r = r(SAMPLE_TEXT, add_special_tokens=False)["input_ids"]
    if ids_p != ids_r:
        mismatches.append(
            f"the same sample text encodes differently ({len(ids_p)} vs {len(ids_r)} ids; "
            f"first ids {ids_p[:6]} vs {ids_r[:6]})"
        )


def check_model_family(policy: Any, reward: Any) -> FamilyReport:
    """Compare a policy and a reward model for token-level reward (configs/tokenizers only).

    Each side may be a hub id or local path (an embedded alias such as ``"embedded"``
    works), a tokenizer, a config, a model, or a ``(config, tokenizer)`` pair. With
    tokenizers on both sides the vocabularies, a sample encoding and the special
    tokens are compared; with configs only, vocabulary sizes and special token ids.
    """
    p, r = _load(policy, "policy"), _load(reward, "reward model")
    mismatches: list[str] = []
    notes: list[str] = []
    both_tok = p.tokenizer is not None and r.tokenizer is not None
    if both_tok:
        _compare_tokenizers(p.tokenizer, r.tokenizer, mismatches)
    p_emb, r_emb = _embedding_size(p), _embedding_size(r)
    if not both_tok:
        notes.append(
            "tokenizers were not both given: compared config vocab sizes and special ids only"
        )
        if p_emb is not None and r_emb is not None and p_emb != r_emb:
            mismatches.append(f"config vocab_size differs ({p_emb} vs {r_emb})")
    elif p_emb is not None and r_emb is not None:
        if p_emb != r_emb:
            notes.append(
                f"embedding sizes differ ({p_emb} vs {r_emb}); fine while both cover the vocabulary"
            )
        n_policy = len(p.tokenizer)  # policy ids are fed to both models
        for side, size in ((p, p_emb), (r, r_emb)):
            if size < n_policy:
                mismatches.append(
                    f"{side.label!r} has {size} embeddings but the policy tokenizer has "
                    f"{n_policy} tokens"
                )
    ps, rs = _special_ids(p), _special_ids(r)
    for key in _SPECIAL:
        a, b = ps[key], rs[key]
        if a is not None and b is not None and a != b:
            mismatches.append(f"{key} token id differs ({a} vs {b})")
        elif (a is None) != (b is None) and key in ("eos", "pad"):
            notes.append(
                f"{key} token set on one side only (policy {a}, reward {b}); set it the same "
                "way on both"
            )
    pt, rt = _model_type(p), _model_type(r)
    if pt and rt and pt != rt and not mismatches:
        notes.append(f"model types differ ({pt} vs {rt}) but they share a tokenizer")
    p_size = len(p.tokenizer) if p.tokenizer is not None else p_emb
    r_size = len(r.tokenizer) if r.tokenizer is not None else r_emb
    return FamilyReport(
        compatible=not mismatches,
        policy=p.label,
        reward=r.label,
        policy_model_type=pt,
        reward_model_type=rt,
        policy_vocab_size=p_size,
        reward_vocab_size=r_size,
        mismatches=mismatches,
        notes=notes,
        compared_tokenizers=both_tok,
    )


def require_same_family(policy: Any, reward: Any) -> FamilyReport:
    """``check_model_family`` that raises ``FamilyMismatchError`` (with the fix) on mismatch."""
    report = check_model_family(policy, reward)
    if report.compatible:
        return report
    raise FamilyMismatchError(
        f"policy and reward model cannot share token-level rewards:\n{report.describe()}\n"
        f"fix: train the reward model from a base of the policy's family "
        f"(e.g. reward_training_base_model={report.policy!r}, model_type "
        f"{report.policy_model_type}), or use a text-level reward (RewardModelGrader or "
        "rule functions through the TRL adapter), which decodes the policy's text and "
        "re-tokenizes it for the reward model",
        report,
    )
