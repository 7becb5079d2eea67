"""Rows -> VERL score dicts, and the ``compute_score`` entry points every VERL manager calls.

One implementation, ``score_rows`` (rows -> one ``runner.arun`` -> score dicts with the
same keys for every sample, see ``_columns``), behind four signatures:

- ``compute_score`` (async): the reward-loop managers of verl >= 0.7 (naive, dapo,
  rate_limited, gdpo) await it;
- ``compute_score_sync``: the pre-reward-loop managers (``verl.workers.reward_manager``
  naive and dapo) call a plain function per sample;
- ``compute_score_scalar``: the same, returning only the reward as a float, for
  ``PrimeRewardManager`` (it keeps numbers only, and pickles the function into a
  process pool);
- ``compute_score_batch``: ``BatchRewardManager``'s batched signature.

The sync entries run the coroutine on the process's background loop, so judge clients
and the cache live as long as the process. None of them raises for one bad sample: a
ground truth that cannot be an answer, a failed grader and our own time limit all end
as NaN values with error flags. Only a wrong configuration (no spec, a reserved name, a
field no sample has) raises, before any grading.

VERL has no per-sample mask: a NaN reward makes the GRPO group mean NaN, so that group's
advantages, the loss and the grad norm are NaN and the actor skips the update. For
training, give the aggregator ``on_error: renormalize`` (or ``zero``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

from rlreward.checks import number_rule, short_repr
from rlreward.errors import ConfigError
from rlreward.integrations._rows import VerlRow, verl_row
from rlreward.integrations._runtime import RewardHandle, RewardSource, get_handle, run_sync
from rlreward.integrations.verl._columns import SCORE, SCORE_ERROR, Columns, columns_for
from rlreward.schema import GraderAbstention, GraderError

__all__ = [
    "DEFAULT_SAMPLE_TIMEOUT",
    "ENV_SPEC",
    "compute_score",
    "compute_score_batch",
    "compute_score_scalar",
    "compute_score_sync",
    "resolve_source",
    "score_rows",
]

log = logging.getLogger(__name__)

_GROUND_TRUTH_FIELDS = ("ground_truth", "reference_response")

#: environment variable read for the spec path when no ``spec`` kwarg is given
ENV_SPEC = "RLREWARD_SPEC"
#: seconds one per-sample call may take before it ends as a failed sample. It is below
#: the 300 s after which verl's RateLimitedRewardManager and PrimeRewardManager give up
#: and write their own values (0.0 and other keys); lower it below your
#: ``reward.timeout`` / ``compute_score_timeout`` with ``reward_kwargs.timeout``.
DEFAULT_SAMPLE_TIMEOUT = 270.0
#: kwargs VERL itself may pass (reward-model routing); they are not row fields
_VERL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})

ScoreDict = dict[str, float | int]


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


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    allowed = number_rule(timeout, low=0, low_inclusive=False)
    if allowed is not None:
        raise ConfigError(
            f"rlreward VERL adapter: timeout={short_repr(timeout)} is not allowed; use {allowed} "
            "(seconds, reward_kwargs.timeout) or null for no limit"
        )
    return float(timeout)


def _warn_once(handle: RewardHandle, key: str, msg: str, *args: Any) -> None:
    if not handle.notes.get(key):
        handle.notes[key] = True
        log.warning(msg, *args)


async def _grade(handle: RewardHandle, cols: Columns, rows: Sequence[VerlRow]) -> list[ScoreDict]:
    runner = handle.runner
    plain = [r.row for r in rows]
    bad = {i: r.ground_truth_problem for i, r in enumerate(rows) if r.ground_truth_problem}
    if not bad:
        results = await runner.arun(plain)
    else:
        good = [row for i, row in enumerate(plain) if i not in bad]
        if good:  # a field every sample lacks is still a configuration error, raised now
            runner.prepare(good)
        # a grader that needs the missing ground truth fails for that sample only
        results = await runner.arun(plain, on_missing="skip")
        for i, problem in bad.items():
            hit = [
                n
                for n in cols.graders
                if isinstance(results[n][i], GraderAbstention)
                or (
                    isinstance(results[n][i], GraderError)
                    and results[n][i].metadata.get("invalid_field") in _GROUND_TRUTH_FIELDS
                )
            ]
            if hit:
                log.warning("sample %d: %s; graders %s abstain or fail", i, problem, hit)
    dicts = cols.score_dicts(results)
    for d, reward in zip(dicts, results[cols.reward], strict=True):
        if d[SCORE_ERROR]:
            _warn_once(
                handle,
                "nan_warned",
                "reward %r failed for a sample (%s); VERL gets score=NaN, score__error=1. A NaN "
                "reward makes VERL skip the update of its mini-batch: set on_error: renormalize "
                "(or zero) on the aggregator for training",
                cols.reward,
                getattr(reward, "error", "no result"),
            )
            break
    return dicts


async def score_rows(
    source: RewardSource, rows: Sequence[VerlRow], timeout: float | None = None
) -> list[ScoreDict]:
    """Grade rows through the process's shared runner for ``source``; one score dict per row.

    ``timeout``: seconds for the whole call; when it expires every row is a failed
    sample (same keys, NaN values, flags 1) instead of the host's own timeout value.
    """
    timeout = _check_timeout(timeout)
    handle = get_handle(source)
    cols = columns_for(handle)
    if timeout is None:
        return await _grade(handle, cols, rows)
    try:
        return await asyncio.wait_for(_grade(handle, cols, rows), timeout)
    except asyncio.TimeoutError:
        log.warning(
            "rlreward: grading %d sample(s) took over %s s; they get score=NaN and error flags "
            "(raise reward_kwargs.timeout, or the runner's per-call timeout, if this is normal)",
            len(rows),
            timeout,
        )
        return [cols.failed() for _ in rows]


def _sample(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Any,
    query: str | None,
    prompt: str | None,
    kwargs: dict[str, Any],
) -> VerlRow:
    extra = {k: v for k, v in kwargs.items() if k not in _VERL_KWARGS}
    return verl_row(
        data_source=data_source,
        solution_str=solution_str,
        ground_truth=ground_truth,
        extra_info=extra_info,
        query=query or prompt,
        prompt=prompt,
        extra=extra,
    )


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
    timeout: float | None = DEFAULT_SAMPLE_TIMEOUT,
    **kwargs: Any,
) -> ScoreDict:
    """VERL ``custom_reward_function`` for the reward-loop managers: grade one sample.

    Configure with ``reward_kwargs`` (``spec``: the YAML path, ``aggregator``: which
    aggregator is the reward, ``timeout``: seconds before the sample ends as failed)
    or ``$RLREWARD_SPEC``. The prompt comes from ``query`` / ``prompt`` when given, else
    from ``extra_info`` (``query``, ``question``, ``prompt``, ``problem``,
    ``raw_prompt``). Other keyword arguments become row fields (for mappers), except
    VERL's reward-model routing arguments. Concurrent calls share one runner, so one
    concurrency limit, HTTP client and cache per worker process.
    """
    source = resolve_source(spec, aggregator)
    row = _sample(data_source, solution_str, ground_truth, extra_info, query, prompt, kwargs)
    return (await score_rows(source, [row], timeout))[0]


def _run_blocking(
    make: Callable[[], Awaitable[list[ScoreDict]]], source: RewardSource, n: int
) -> list[ScoreDict]:
    """Run ``make()`` on the background loop; if the host's SIGALRM timeout interrupts the
    wait (verl's NaiveRewardManager ``compute_score_timeout``), cancel the grading and
    return failed samples with the usual keys instead of letting verl write 0.0."""
    running: dict[str, Any] = {}

    async def main() -> list[ScoreDict]:
        running["loop"], running["task"] = asyncio.get_running_loop(), asyncio.current_task()
        return await make()

    try:
        return run_sync(main())
    except TimeoutError:
        loop, task = running.get("loop"), running.get("task")
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        log.warning(
            "rlreward: the host's time limit interrupted grading of %d sample(s); they get "
            "score=NaN and error flags (set reward_kwargs.timeout below the host's limit)",
            n,
        )
        cols = columns_for(get_handle(source))
        return [cols.failed() for _ in range(n)]


def compute_score_sync(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    *,
    spec: Any = None,
    aggregator: str | None = None,
    prompt: str | None = None,
    query: str | None = None,
    timeout: float | None = DEFAULT_SAMPLE_TIMEOUT,
    **kwargs: Any,
) -> ScoreDict:
    """``compute_score`` for the pre-reward-loop managers (``verl.workers.reward_manager``
    naive, dapo): the same arguments and dict, returned synchronously."""
    source = resolve_source(spec, aggregator)
    row = _sample(data_source, solution_str, ground_truth, extra_info, query, prompt, kwargs)
    return _run_blocking(lambda: score_rows(source, [row], timeout), source, 1)[0]


def compute_score_scalar(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> float:
    """``compute_score_sync`` reduced to the reward (NaN when it failed), for
    ``PrimeRewardManager``, which keeps only numbers (a dict becomes an all-zero batch
    there). It is picklable, as prime's process pool needs."""
    out = compute_score_sync(data_source, solution_str, ground_truth, extra_info, **kwargs)
    return float(out[SCORE])


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    *,
    spec: Any = None,
    aggregator: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> list[ScoreDict]:
    """``BatchRewardManager``'s ``compute_score``: the whole batch in one ``runner.arun``.

    Keyword arguments become row fields, as in ``compute_score``: a list (or array) as
    long as the batch gives one value per sample, anything else the same value to all.
    """
    n = len(solution_strs)
    if len(data_sources) != n or len(ground_truths) != n:
        raise ConfigError(
            f"compute_score_batch: got {len(data_sources)} data_sources, {n} solution_strs "
            f"and {len(ground_truths)} ground_truths; they must be equally long"
        )
    infos: Sequence[Any] = [None] * n if extra_infos is None else extra_infos
    if len(infos) != n:
        raise ConfigError(f"compute_score_batch: got {len(infos)} extra_infos for {n} samples")
    per_sample = {
        k: v
        for k, v in kwargs.items()
        if not isinstance(v, (str, bytes)) and hasattr(v, "__len__") and len(v) == n
    }
    source = resolve_source(spec, aggregator)
    rows = [
        _sample(
            data_sources[i],
            solution_strs[i],
            ground_truths[i],
            infos[i],
            None,
            None,
            {**kwargs, **{k: v[i] for k, v in per_sample.items()}},
        )
        for i in range(n)
    ]
    return _run_blocking(lambda: score_rows(source, rows, timeout), source, n)
