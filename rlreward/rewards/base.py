"""RewardFunction: the base of every rule-based reward, batch-first.

A reward function scores a batch of texts (optionally with one prompt and/or one
reference per text) and returns one float per text inside its declared ``score_range``.
Built-ins are small dataclasses whose fields are their parameters, so they pickle (TRL,
Ray and multiprocessing pickle rewards) and validate themselves at construction.

Subclasses implement ``_score_one(text, prompt, reference)`` or, where a whole batch
is cheaper (embeddings), ``_score_batch(texts, prompts, references)``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from rlreward.checks import number_rule
from rlreward.errors import ConfigError

__all__ = ["RewardFunction", "as_text_batch", "check_choice", "check_param"]


def as_text_batch(texts: Any, owner: str, what: str = "texts") -> list[str]:
    """``texts`` as a list of str; a bare string or a non-str item is a ConfigError."""
    if isinstance(texts, str):
        raise ConfigError(
            f"reward function {owner!r}: {what} must be a list of strings, got one str; "
            f"wrap it in a list, or call .score(text) for a single text"
        )
    try:
        batch = list(texts)
    except TypeError:
        raise ConfigError(
            f"reward function {owner!r}: {what} must be a list of strings, "
            f"got {type(texts).__name__}"
        ) from None
    for i, t in enumerate(batch):
        if type(t) is not str and not isinstance(t, str):
            raise ConfigError(
                f"reward function {owner!r}: {what}[{i}] must be a str, got {type(t).__name__} "
                f"{t!r:.60}"
            )
    return batch


def check_param(
    owner: str,
    param: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
    low_inclusive: bool = True,
) -> None:
    """Raise ConfigError naming the parameter, its value and what is allowed."""
    allowed = number_rule(value, integer=integer, low=low, high=high, low_inclusive=low_inclusive)
    if allowed is not None:
        raise ConfigError(
            f"reward function {owner!r}: {param}={value!r} is not allowed; use {allowed}"
        )


def check_choice(owner: str, param: str, value: Any, choices: Collection[str]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices`` (listed in the message)."""
    if value not in choices:
        raise ConfigError(
            f"reward function {owner!r}: {param}={value!r} is not allowed; "
            f"choose one of {', '.join(choices)}"
        )


class RewardFunction:
    """Base class of reward functions: ``fn(texts, *, prompts=None, references=None)``.

    Class attributes declare the contract (instances may override them):

    - ``name``: registry name and result key.
    - ``score_range``: ``(low, high)`` every score lies in.
    - ``higher_is_better``: direction (composites and aggregators turn the others around).
    - ``needs_prompt`` / ``needs_reference``: the call fails without prompts / references.
    - ``uses_prompt`` / ``uses_reference``: optional inputs that change the score.
    - ``expensive``: slow per call (a model); graders batch concurrent calls for it.
    """

    name: str = "reward"
    score_range: tuple[float, float] = (0.0, 1.0)
    higher_is_better: bool = True
    needs_prompt: bool = False
    needs_reference: bool = False
    uses_prompt: bool = False
    uses_reference: bool = False
    expensive: bool = False

    def __call__(
        self,
        texts: Sequence[str],
        *,
        prompts: Sequence[str] | None = None,
        references: Sequence[str] | None = None,
    ) -> list[float]:
        """Score a batch: one float per text, in order."""
        batch = as_text_batch(texts, self.name)
        n = len(batch)
        p = self._aux("prompts", prompts, n, self.needs_prompt)
        r = self._aux("references", references, n, self.needs_reference)
        return self._score_batch(batch, p, r)

    def score(self, text: str, *, prompt: str | None = None, reference: str | None = None) -> float:
        """Score one text (a convenience over the batch call)."""
        return self(
            [text],
            prompts=None if prompt is None else [prompt],
            references=None if reference is None else [reference],
        )[0]

    def _aux(
        self, what: str, values: Sequence[str] | None, n: int, needed: bool
    ) -> list[str] | None:
        if values is None:
            if needed:
                field = "query" if what == "prompts" else "reference_response"
                raise ConfigError(
                    f"reward function {self.name!r} needs {what} (one per text); pass "
                    f"{what}=[...] (as a grader: map the {field!r} field)"
                )
            return None
        out = as_text_batch(values, self.name, what)
        if len(out) != n:
            raise ConfigError(
                f"reward function {self.name!r}: got {len(out)} {what} for {n} texts; "
                f"give one per text"
            )
        return out

    def _score_batch(
        self, texts: list[str], prompts: list[str] | None, references: list[str] | None
    ) -> list[float]:
        one = self._score_one
        if prompts is None and references is None:
            return [one(t, None, None) for t in texts]
        ps = prompts if prompts is not None else [None] * len(texts)
        rs = references if references is not None else [None] * len(texts)
        return [one(t, p, r) for t, p, r in zip(texts, ps, rs, strict=False)]

    def _score_one(self, text: str, prompt: str | None, reference: str | None) -> float:
        raise NotImplementedError(
            f"{type(self).__name__} must implement _score_one or _score_batch"
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (for metadata files and logs)."""
        from dataclasses import asdict, is_dataclass

        params: dict[str, Any] = asdict(self) if is_dataclass(self) else {}
        return {
            "name": self.name,
            "type": type(self).__name__,
            "params": {k: v for k, v in params.items() if _jsonable(v)},
            "score_range": list(self.score_range),
            "higher_is_better": self.higher_is_better,
        }


def _jsonable(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool, list, tuple))
