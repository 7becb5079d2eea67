"""Rows from trainer data: what VERL and TRL hand a reward, turned into grader fields.

Standard fields set here: ``query`` (the prompt text), ``response`` (the completion
text) and, when a ground truth is known, ``ground_truth`` and ``reference_response``
(one rule for both trainers: ``ground_truth_fields``).
Everything else the trainer knows (VERL's ``data_source`` and ``extra_info``, TRL's
dataset columns, the raw prompt/completion) stays in the row, for mappers.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from rlreward.graders.fields import Unusable
from rlreward.messages import prompt_text, response_text

__all__ = [
    "QUERY_KEYS",
    "VerlRow",
    "ground_truth_fields",
    "query_from",
    "trl_rows",
    "verl_row",
]

log = logging.getLogger(__name__)

#: ``extra_info`` keys read as the prompt, in this order (verl's example preprocessors
#: store the question under "question"; "raw_prompt" is a chat message list).
QUERY_KEYS: tuple[str, ...] = ("query", "question", "prompt", "problem", "raw_prompt")


def query_from(extra_info: Mapping[str, Any] | None, raw_prompt: Any = None) -> str | None:
    """The prompt text from ``extra_info`` (keys in ``QUERY_KEYS`` order), else ``raw_prompt``."""
    for key in QUERY_KEYS:
        value = extra_info.get(key) if isinstance(extra_info, Mapping) else None
        text = prompt_text(value) if value is not None else None
        if text:
            return text
    return prompt_text(raw_prompt) if raw_prompt is not None else None


def _number_text(value: numbers.Real) -> str | None:
    """A finite number as text (numpy scalars print their shortest form); None for NaN/inf."""
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if not math.isfinite(float(value)):
        return None
    return str(value) if type(value).__module__ == "numpy" else repr(float(value))


def _refused(reason: str) -> tuple[dict[str, Any], str]:
    bad = Unusable(reason)
    return {"ground_truth": bad, "reference_response": bad}, reason


def ground_truth_fields(ground_truth: Any) -> tuple[dict[str, Any], str | None]:
    """Row fields for a ground truth, and why it gives no reference answer (or None).

    The one rule for VERL's ``ground_truth`` argument and TRL's ``ground_truth`` column:

    - text is used as is; a finite number (Python or numpy) becomes text, so
      ``np.int64(42)`` is ``"42"``; both fill ``ground_truth`` and ``reference_response``;
    - None gives no field: the row has no answer, graders that need one do not apply;
    - a list, tuple, dict or array (test cases, several answers) stays under
      ``ground_truth`` for mappers (e.g. ``reference_response: ground_truth.0``) but
      gives no ``reference_response``;
    - NaN, infinities, bools and other objects are refused: both fields hold an
      ``Unusable`` naming the cause, so the graders that read them get an error value
      saying so (never a ``"nan"`` reference) and the other graders grade the row.
    """
    gt = ground_truth
    if type(gt).__name__ == "ndarray":  # parquet list columns arrive as numpy arrays
        gt = gt.tolist() if gt.ndim else gt.item()
    if isinstance(gt, str):
        return {"ground_truth": gt, "reference_response": gt}, None
    if isinstance(gt, bool) or type(gt).__name__ == "bool_":
        return _refused(f"ground_truth is a bool ({gt!r}); give the answer as text or a number")
    if isinstance(gt, numbers.Real):
        text = _number_text(gt)
        if text is None:
            return _refused(f"ground_truth is {float(gt)!r}, not an answer; fix the dataset row")
        return {"ground_truth": text, "reference_response": text}, None
    if gt is None:
        return {}, "ground_truth is None (the dataset row has no answer)"
    if isinstance(gt, (list, tuple, Mapping)):
        kind = "a dict" if isinstance(gt, Mapping) else f"a {type(gt).__name__} of {len(gt)}"
        return {"ground_truth": gt}, (
            f"ground_truth is {kind}, not one answer; map the field the grader needs from it "
            "(e.g. mapper: {reference_response: ground_truth.0})"
        )
    return _refused(f"ground_truth is a {type(gt).__name__} ({gt!r:.60}); give text or a number")


class VerlRow(NamedTuple):
    """A row from one VERL sample, and why its ground truth is unusable (None when it is fine)."""

    row: dict[str, Any]
    ground_truth_problem: str | None


def verl_row(
    *,
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None,
    query: str | None = None,
    prompt: str | None = None,
    raw_prompt: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> VerlRow:
    """One row from what VERL gives a reward (plus the decoded prompt when a manager has it).

    ``query`` order: an explicit ``query``; ``extra_info`` keys in ``QUERY_KEYS`` order;
    ``raw_prompt`` (last user message); the decoded ``prompt`` ids. Ground truth: see
    ``ground_truth_fields``.
    """
    info = dict(extra_info) if isinstance(extra_info, Mapping) else {}
    row: dict[str, Any] = dict(extra or {})
    row.update(data_source=data_source, response=solution_str, extra_info=info)
    fields, problem = ground_truth_fields(ground_truth)
    row.update(fields)
    if prompt is not None:
        row["prompt"] = prompt
    q = query or query_from(info, raw_prompt) or prompt
    if q is not None:
        row["query"] = q
    return VerlRow(row, problem)


_TRL_INTERNAL = frozenset(
    {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}
)


def trl_rows(
    prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows from a TRL reward call: dataset columns, then prompt/completion and their texts.

    ``response`` is always the completion's text; ``query`` is the prompt's text unless
    the dataset has a ``query`` column. A ``ground_truth`` column goes through
    ``ground_truth_fields``, as VERL's argument does (a ``reference_response`` column
    is kept as given).
    """
    n = len(completions)
    if len(prompts) != n:
        raise ValueError(f"got {len(prompts)} prompts for {len(completions)} completions")
    cols = {}
    for k, v in columns.items():
        # per-sample dataset columns only; anything else a trainer passes is not row data
        if k in _TRL_INTERNAL or isinstance(v, str) or not isinstance(v, Sequence) or len(v) != n:
            log.debug("trl_rows: keyword %r is not a per-completion column; left out of rows", k)
            continue
        cols[k] = v
    rows = []
    for i in range(n):
        row = {k: v[i] for k, v in cols.items()}
        if "ground_truth" in row:  # a reference_response column is the dataset's own
            for key, value in ground_truth_fields(row.pop("ground_truth"))[0].items():
                row.setdefault(key, value)
        row["prompt"], row["completion"] = prompts[i], completions[i]
        q = prompt_text(prompts[i])
        if q is not None and "query" not in row:  # a dataset "query" column is deliberate
            row["query"] = q
        row["response"] = response_text(completions[i])
        rows.append(row)
    return rows
