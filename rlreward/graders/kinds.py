"""What kind of grader an object is, decided from the object (never from its results)."""

from __future__ import annotations

from typing import Any

from rlreward.graders.group_judge_base import GroupJudge
from rlreward.graders.llm import LLMGrader

__all__ = ["is_judge"]


def is_judge(grader: Any) -> bool:
    """Whether a grader calls an LLM judge, so its results carry usage records.

    Adapters that report usage decide their keys from this, not from the results of one
    batch: a batch whose judge grades all came from the cache, or a process in a
    multi-process run that graded none of the rows itself, must report the same keys
    (TRL gathers every logged key across processes; VERL needs the same keys per sample).
    """
    if isinstance(grader, (LLMGrader, GroupJudge)):
        return True
    return callable(getattr(getattr(grader, "model", None), "achat", None))
