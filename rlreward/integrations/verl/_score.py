"""Rows -> VERL score dicts: the one function all three VERL entrances share.

Every sample gets the same keys, because VERL stacks ``reward_extra_info`` per key
across the batch (a key missing from one sample is a KeyError there)::

    {"score": <reward>, "error": 0|1,
     "<grader>": <raw score>, "<grader>__error": 0|1, ...       # every grader
     "<aggregator>": <score>, "<aggregator>__error": 0|1, ...}  # other aggregators

A failed grader is NaN with its flag 1. ``score`` is the reward aggregator's result;
when the aggregate itself failed (``on_error="error"`` and a grader failed), ``score``
is NaN and ``error`` is 1. VERL has no per-sample mask: a NaN reward makes the GRPO
group mean NaN, so that group's advantages, the loss and the grad norm are NaN and the
actor skips the whole update ("grad_norm is not finite"). For training, give the
aggregator ``on_error: renormalize`` (or ``zero``); keep ``error`` for evaluation.
"""

from __future__ import annotations

import logging
import math
import os
from functools import lru_cache
from typing import Any

from rlreward.errors import ConfigError
from rlreward.integrations._rows import verl_row
from rlreward.integrations._runtime import RewardHandle, RewardSource, get_handle
from rlreward.results import GradingResults
from rlreward.schema import GraderScore

__all__ = ["ENV_SPEC", "compute_score", "resolve_source", "score_rows"]

log = logging.getLogger(__name__)

#: environment variable read for the spec path when no ``spec`` kwarg is given
ENV_SPEC = "RLREWARD_SPEC"
#: kwargs VERL itself may pass (reward-model routing); they are not row fields
_VERL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})
_RESERVED = ("score", "error")


@lru_cache(maxsize=64)
def _source_for(spec: str, aggregator: str | None) -> RewardSource:
    return RewardSource.coerce(spec, aggregator)


def resolve_source(spec: Any = None, aggregator: str | None = None) -> RewardSource:
    """The reward to grade with: ``spec`` (path / dict / object), else ``$RLREWARD_SPEC``."""
    if spec is None:
        spec = os.environ.get(ENV_SPEC) or None
    if spec is None:
        raise ConfigError(
            "no reward spec given to the rlreward VERL adapter; pass "
            "+reward.custom_reward_function.reward_kwargs.spec=/abs/path/reward.yaml "
            f"(or +reward.reward_kwargs.spec=... for the reward manager), or set {ENV_SPEC}"
        )
    if isinstance(spec, (str, os.PathLike)):
        return _source_for(os.fspath(spec), aggregator)
    return RewardSource.coerce(spec, aggregator)


def _check_names(handle: RewardHandle) -> None:
    if handle.notes.get("verl_names_ok"):
        return
    for name in [*handle.graders, *handle.aggregators]:
        if name in _RESERVED or name.endswith("__error"):
            raise ConfigError(
                f"grader/aggregator name {name!r} clashes with the VERL score keys "
                f"{list(_RESERVED)} and '<name>__error'; rename it in the spec"
            )
    handle.notes["verl_names_ok"] = True


def _value(result: Any) -> tuple[float, int]:
    if isinstance(result, GraderScore):
        return result.score, 0
    return math.nan, 1


def score_dicts(handle: RewardHandle, results: GradingResults) -> list[dict[str, float | int]]:
    """One dict per row, all with the same keys (see the module docstring)."""
    _check_names(handle)
    others = [a for a in handle.aggregators if a != handle.reward]
    columns = [*handle.graders, *others]
    out: list[dict[str, float | int]] = []
    for i, reward in enumerate(results[handle.reward]):
        score, failed = _value(reward)
        d: dict[str, float | int] = {"score": score, "error": failed}
        for name in columns:
            d[name], d[f"{name}__error"] = _value(results[name][i])
        out.append(d)
        if failed and not handle.notes.get("nan_warned"):
            handle.notes["nan_warned"] = True
            log.warning(
                "reward %r failed for a sample (%s); VERL gets score=NaN, error=1. A NaN reward "
                "makes VERL skip the update of its mini-batch: set on_error: renormalize (or zero) "
                "on the aggregator for training",
                handle.reward,
                getattr(reward, "error", "no result"),
            )
    return out


async def score_rows(
    source: RewardSource, rows: list[dict[str, Any]]
) -> list[dict[str, float | int]]:
    """Grade rows through the process's shared runner for ``source``; one score dict per row."""
    handle = get_handle(source)
    results = await handle.runner.arun(rows)
    return score_dicts(handle, results)


async def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    *,
    spec: Any = None,
    aggregator: str | None = None,
    prompt: str | None = None,
    query: str | None = None,
    **kwargs: Any,
) -> dict[str, float | int]:
    """VERL ``custom_reward_function``: grade one sample with the reward spec.

    Configure with ``reward_kwargs`` (``spec``: the YAML path, ``aggregator``: which
    aggregator is the reward) or ``$RLREWARD_SPEC``. The prompt comes from ``query`` /
    ``prompt`` when given, else from ``extra_info`` (``query``, ``question``, ``prompt``,
    ``problem``, ``raw_prompt``). Other keyword arguments become row fields (for
    mappers), except VERL's reward-model routing arguments. Concurrent calls share one
    runner, so one concurrency limit, HTTP client and cache per worker process.
    """
    source = resolve_source(spec, aggregator)
    extra = {k: v for k, v in kwargs.items() if k not in _VERL_KWARGS}
    row = verl_row(
        data_source=data_source,
        solution_str=solution_str,
        ground_truth=ground_truth,
        extra_info=extra_info,
        query=query or prompt,
        prompt=prompt,
        extra=extra,
    )
    return (await score_rows(source, [row]))[0]
