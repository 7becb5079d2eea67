"""Group graders: graders that score a prompt's rollouts together (a GRPO group).

A group grader declares ``group_size`` (rows per group) and optionally ``group_key`` (a
row field holding the group's id, e.g. verl's ``uid``), and implements
``async aevaluate_group(rows) -> list[GraderResult]``: one result per row, in order. The
runner forms the groups with ``form_groups`` and makes one guarded call per group.

What a group is:

- with ``group_key``: the rows sharing that field's value, wherever they sit in the batch;
- without: consecutive rows with the same ``query`` (rows the grader does not apply to
  are passed over); a run of ``k * group_size`` rows is ``k`` groups, in order.

A group of the wrong size is never judged as a smaller (or larger) group: every row of
it gets a GraderError naming the cause. A run whose length is not a multiple of
``group_size`` is refused whole, since nothing tells which of its rows belong together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rlreward.schema import GraderResult, ScoreRange

__all__ = ["Group", "GroupGrader", "form_groups", "group_key", "is_group_grader"]

_SPLIT_HINT = (
    "the host split the group (give every process / worker whole groups: a batch size that "
    "is a multiple of group_size), or group_size does not match the number of rollouts per "
    "prompt"
)


@runtime_checkable
class GroupGrader(Protocol):
    """The group-grader contract (see the module docstring)."""

    name: str
    score_range: ScoreRange | None
    higher_is_better: bool
    group_size: int
    group_key: str | None

    async def aevaluate_group(self, rows: list[dict[str, Any]]) -> list[GraderResult]: ...


def is_group_grader(grader: Any) -> bool:
    """True when ``grader`` declares an integer ``group_size`` and ``aevaluate_group``."""
    size = getattr(grader, "group_size", None)
    return (
        isinstance(size, int)
        and not isinstance(size, bool)
        and callable(getattr(grader, "aevaluate_group", None))
    )


@dataclass(frozen=True)
class Group:
    """Row indices of one group, or of rows that cannot form one (``error`` says why)."""

    indices: tuple[int, ...]
    error: str | None = None


def form_groups(
    entries: Sequence[Any],
    group_size: int,
    group_key: str | None = None,
    query_field: str = "query",
) -> list[Group]:
    """Groups over ``entries`` (one per row: the grader's fields as a dict, or an already
    decided result, which is passed over). Wrong-size groups come back with ``error``."""
    if group_key is not None:
        return _by_key(entries, group_size, group_key, query_field)
    groups: list[Group] = []
    run: list[int] = []
    prompt: Any = None
    for i, fields in enumerate(entries):
        if not isinstance(fields, Mapping):
            continue
        value = fields.get(query_field)
        if run and value == prompt:
            run.append(i)
            continue
        if run:
            groups.extend(_cut(run, group_size))
        run, prompt = [i], value
    if run:
        groups.extend(_cut(run, group_size))
    return groups


def _cut(run: list[int], size: int) -> list[Group]:
    if len(run) % size == 0:
        return [Group(tuple(run[k : k + size])) for k in range(0, len(run), size)]
    what = (
        f"group of {len(run)} rows, group_size {size}"
        if len(run) < size
        else f"{len(run)} consecutive rows share one prompt, not a multiple of group_size {size}"
    )
    return [Group(tuple(run), f"{what} (rows {_span(run)}): {_SPLIT_HINT}")]


def _by_key(entries: Sequence[Any], size: int, key: str, query_field: str) -> list[Group]:
    members: dict[Any, list[int]] = {}
    for i, fields in enumerate(entries):
        if isinstance(fields, Mapping):
            members.setdefault(group_key(fields.get(key)), []).append(i)
    groups: list[Group] = []
    for gid, idx in members.items():
        error = None
        if len(idx) != size:
            error = f"group {key}={gid!r} has {len(idx)} rows, group_size {size}: {_SPLIT_HINT}"
        elif any(entries[i].get(query_field) != entries[idx[0]].get(query_field) for i in idx):
            error = (
                f"rows of group {key}={gid!r} have different {query_field!r} values; a group "
                f"is one prompt's rollouts (check the {key!r} column)"
            )
        groups.append(Group(tuple(idx), error))
    return groups


def group_key(value: Any) -> Any:
    """A row's group-key value as a dict key: itself when hashable, else its repr (a chat
    message list groups by its text)."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _span(idx: Sequence[int]) -> str:
    return f"{idx[0]}..{idx[-1]}" if len(idx) > 1 else str(idx[0])
