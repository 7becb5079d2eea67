"""Rows from trainer data: what VERL and TRL hand a reward, turned into grader fields.

Standard fields set here: ``query`` (the prompt text), ``response`` (the completion
text) and, when a ground truth is known, ``ground_truth`` and ``reference_response``.
Everything else the trainer knows (VERL's ``data_source`` and ``extra_info``, TRL's
dataset columns, the raw prompt/completion) stays in the row, for mappers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rlreward.messages import prompt_text, response_text

__all__ = [
    "QUERY_KEYS",
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


def _reference(ground_truth: Any) -> str | None:
    if isinstance(ground_truth, str):
        return ground_truth
    if isinstance(ground_truth, (int, float)) and not isinstance(ground_truth, bool):
        return str(ground_truth)
    return None  # lists / dicts (test cases, several answers): map them yourself


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
) -> dict[str, Any]:
    """One row from what VERL gives a reward (plus the decoded prompt when a manager has it).

    ``query`` order: an explicit ``query``; ``extra_info`` keys in ``QUERY_KEYS`` order;
    ``raw_prompt`` (last user message); the decoded ``prompt`` ids.
    """
    info = dict(extra_info) if isinstance(extra_info, Mapping) else {}
    row: dict[str, Any] = dict(extra or {})
    row.update(data_source=data_source, response=solution_str, extra_info=info)
    if ground_truth is not None:
        row["ground_truth"] = ground_truth
        ref = _reference(ground_truth)
        if ref is not None:
            row["reference_response"] = ref
    if prompt is not None:
        row["prompt"] = prompt
    q = query or query_from(info, raw_prompt) or prompt
    if q is not None:
        row["query"] = q
    return row


_TRL_INTERNAL = frozenset(
    {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}
)


def trl_rows(
    prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows from a TRL reward call: dataset columns, then prompt/completion and their texts.

    ``response`` is always the completion's text; ``query`` is the prompt's text unless
    the dataset has a ``query`` column.
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
        if "ground_truth" in row and "reference_response" not in row:
            ref = _reference(row["ground_truth"])
            if ref is not None:
                row["reference_response"] = ref
        row["prompt"], row["completion"] = prompts[i], completions[i]
        q = prompt_text(prompts[i])
        if q is not None and "query" not in row:  # a dataset "query" column is deliberate
            row["query"] = q
        row["response"] = response_text(completions[i])
        rows.append(row)
    return rows
