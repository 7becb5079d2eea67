"""Reference-based rewards: exact_match, math_answer, bleu, rouge (all need a reference).

- ``exact_match``: 1.0 when the response's answer equals the reference after SQuAD-style
  normalisation (lowercase, punctuation and articles removed, spaces collapsed); the
  answer is the last ``<answer>`` block or ``\\boxed{}`` when present, else the text.
- ``math_answer``: 1.0 when the final answer equals the reference's as a number
  (fractions, ``\\frac{a}{b}``, decimals, thousands separators, ``$``/``%``, ``x = ``
  prefixes), or as normalised LaTeX text when either is not a number. The final answer
  is the last ``\\boxed{}``, else the ``<answer>`` block, else after ``####`` or
  "answer is", else the last number in the text. Inside an ``<answer>`` block the same
  markers are read (``<answer>#### 42</answer>``, ``<answer>The answer is 42</answer>``).
- ``bleu``: sacrebleu sentence BLEU (effective order, exp smoothing) / 100.
- ``rouge``: rouge-score F-measure (``rougeL`` by default; its tokenizer keeps ASCII
  letters and digits only, so text in other scripts scores 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from rlreward.rewards.base import RewardFunction, check_choice, check_param
from rlreward.rewards.format import extract_tag

__all__ = [
    "BleuReward",
    "ExactMatchReward",
    "MathAnswerReward",
    "RougeReward",
    "extract_boxed",
    "extract_final_answer",
    "parse_number",
]

_PUNCT = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_WS = re.compile(r"\s+")


def normalise_answer(s: str) -> str:
    """SQuAD normalisation: lowercase, no punctuation or articles, single spaces."""
    s = _PUNCT.sub(" ", s.lower())
    return _WS.sub(" ", _ARTICLES.sub(" ", s)).strip()


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces kept), or None."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is|:|=)\s*:?\s*\**\s*([^\n]+)", re.I)
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def extract_final_answer(text: str) -> str | None:
    """The final answer of a solution (see module docstring), or None."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    tagged = extract_tag(text, "answer")
    if tagged:  # the block may still mark its answer: ####, "the answer is", \boxed
        return _marked_answer(tagged) or tagged.strip()
    marked = _marked_answer(text)
    if marked is not None:
        return marked
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def _marked_answer(text: str) -> str | None:
    """The answer a marker points at (``\\boxed{}``, ``####``, "answer is"), or None."""
    boxed = extract_boxed(text)
    if boxed:
        return boxed
    for pattern in (_HASHES, _ANSWER_IS):
        found = pattern.findall(text)
        if found:
            answer = found[-1].strip().lstrip("*").strip()
            while answer and answer[-1] in "*.":  # markdown bold and a closing full stop
                answer = answer[:-1].rstrip()
            if answer:
                return answer
    return None


_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_FRAC_SHORT = re.compile(r"\\[dt]?frac(\d)(\d)")
_TEXT_CMD = re.compile(r"\\(?:text|mathrm|mbox|textbf)\s*\{([^{}]*)\}")
_LATEX_NOISE = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\ |\\displaystyle|\$|\\\$")
_VAR_PREFIX = re.compile(r"^[a-z]\s*=\s*", re.I)
_TEXT_NOISE = re.compile(r"[\s{}]")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def _clean(s: str) -> str:
    s = _TEXT_CMD.sub(r"\1", s)
    s = _FRAC.sub(r"(\1)/(\2)", s)
    s = _FRAC_SHORT.sub(r"\1/\2", s)
    s = _LATEX_NOISE.sub("", s).strip()
    s = _VAR_PREFIX.sub("", s).strip().rstrip(".").strip()
    return s


def parse_number(s: str) -> Fraction | None:
    """``s`` as an exact number (``"1/2"``, ``"\\frac{1}{2}"``, ``"1,000"``, ``"50%"``), or None."""
    s = _clean(s).replace(" ", "").replace("{", "").replace("}", "")
    s = s.removesuffix("\\%").removesuffix("%")
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    m = re.fullmatch(r"(-?)\((-?[\d.]+)\)/\((-?[\d.]+)\)", s)
    if m:
        s = f"{m.group(1)}{m.group(2)}/{m.group(3)}"
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            value = Fraction(num) / Fraction(den)
        else:
            value = Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return value


def _same_answer(answer: str, reference: str, tolerance: float) -> bool:
    a, r = parse_number(answer), parse_number(reference)
    if a is not None and r is not None:
        if a == r:
            return True
        return abs(float(a) - float(r)) <= tolerance * max(1.0, abs(float(r)))
    na = _TEXT_NOISE.sub("", _clean(answer)).lower()
    nr = _TEXT_NOISE.sub("", _clean(reference)).lower()
    return bool(nr) and na == nr


@dataclass
class ExactMatchReward(RewardFunction):
    """1.0 when the (extracted) answer equals the reference after normalisation."""

    name = "exact_match"
    needs_reference = True
    normalize: bool = True
    extract_answer: bool = True

    def _score_one(self, text: str, prompt: str | None, reference: str | None) -> float:
        assert reference is not None  # guaranteed by needs_reference
        answer = text
        if self.extract_answer:
            answer = extract_tag(text, "answer") or extract_boxed(text) or text
        if not self.normalize:
            return 1.0 if answer.strip() == reference.strip() else 0.0
        na, nr = normalise_answer(answer), normalise_answer(reference)
        if not na and not nr:  # only punctuation/emoji: compare as written
            return 1.0 if answer.strip() == reference.strip() else 0.0
        return 1.0 if na == nr else 0.0


@dataclass
class MathAnswerReward(RewardFunction):
    """1.0 when the final answer equals the reference's (numerically or as LaTeX text)."""

    name = "math_answer"
    needs_reference = True
    tolerance: float = 1e-6

    def __post_init__(self) -> None:
        check_param(self.name, "tolerance", self.tolerance, low=0.0, high=1.0)

    def _score_one(self, text: str, prompt: str | None, reference: str | None) -> float:
        assert reference is not None
        answer = extract_final_answer(text)
        if answer is None:
            return 0.0
        ref = extract_boxed(reference)
        if ref is None:
            hashes = _HASHES.findall(reference)
            ref = hashes[-1].strip() if hashes else reference.strip()
        return 1.0 if ref and _same_answer(answer, ref, self.tolerance) else 0.0


@lru_cache(maxsize=8)
def _bleu(tokenize: str, smooth_method: str) -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True, tokenize=tokenize, smooth_method=smooth_method)


@dataclass
class BleuReward(RewardFunction):
    """sacrebleu sentence BLEU against the reference, scaled to [0, 1]."""

    name = "bleu"
    needs_reference = True
    tokenize: str = "13a"
    smooth_method: str = "exp"

    def __post_init__(self) -> None:
        from sacrebleu.metrics.bleu import BLEU

        check_choice(self.name, "tokenize", self.tokenize, list(BLEU.TOKENIZERS))
        check_choice(self.name, "smooth_method", self.smooth_method, list(BLEU.SMOOTH_DEFAULTS))

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        bleu = _bleu(self.tokenize, self.smooth_method)
        return [
            min(1.0, max(0.0, bleu.sentence_score(t, [r]).score / 100.0))
            for t, r in zip(texts, references, strict=True)
        ]


ROUGE_VARIANTS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_MEASURES = ("fmeasure", "precision", "recall")


@lru_cache(maxsize=16)
def _rouge(variant: str, use_stemmer: bool) -> Any:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer([variant], use_stemmer=use_stemmer)


@dataclass
class RougeReward(RewardFunction):
    """rouge-score ``variant`` (default rougeL) ``measure`` against the reference."""

    name = "rouge"
    needs_reference = True
    variant: str = "rougeL"
    measure: str = "fmeasure"
    use_stemmer: bool = True

    def __post_init__(self) -> None:
        check_choice(self.name, "variant", self.variant, ROUGE_VARIANTS)
        check_choice(self.name, "measure", self.measure, ROUGE_MEASURES)

    def _score_batch(self, texts: list[str], prompts: Any, references: Any) -> list[float]:
        scorer = _rouge(self.variant, bool(self.use_stemmer))
        v, m = self.variant, self.measure
        return [
            float(getattr(scorer.score(r, t)[v], m)) for t, r in zip(texts, references, strict=True)
        ]
