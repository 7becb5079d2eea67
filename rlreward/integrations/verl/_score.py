"""Rows -> VERL score dicts, and the ``compute_score`` entry points every VERL manager calls.

Every entry point holds one ``Reward`` (``resolve_reward``: ``as_reward(spec,
aggregator)``) and writes its values: ``score`` is what ``Reward.aevaluate`` gives for
the same row. One implementation, ``score_rows`` (rows -> one ``Reward.agrade`` ->
score dicts with the same keys for every sample, see ``_columns``), behind four
signatures:

- ``compute_score`` (async): the reward-loop managers of verl >= 0.7 (naive, dapo,
  rate_limited, gdpo) await it;
- ``compute_score_sync``: the pre-reward-loop managers (``verl.workers.reward_manager``
  naive and dapo) call a plain function per sample;
- ``compute_score_scalar``: the same, returning only the reward as a float, for
  ``PrimeRewardManager`` (it keeps numbers only, and pickles the function into a
  process pool);
- ``compute_score_batch``: ``BatchRewardManager``'s batched signature.

They are module-level functions (they pickle by reference) and a ``Reward`` given as
``spec=`` pickles with them; paths and dicts are built once per process. The sync
entries run the coroutine on the process's background loop, so judge clients and the
cache live as long as the process. None of them raises for one bad sample: a failed
grader, an abstaining grader or reward and our own time limit all end as NaN values
with their flags. Only a wrong configuration (no spec, a reserved name, a field no
sample has) raises, before any grading.

VERL has no per-sample mask: a NaN reward (failed, or abstained because no weighted
grader applied) makes the GRPO group mean NaN, so that group's advantages, the loss and
the grad norm are NaN and the actor skips the update. For training, give the aggregator
``on_error: renormalize`` (or ``zero``) and a weighted grader that applies to every row.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from rlreward.checks import number_rule, short_repr
from rlreward.errors import ConfigError
from rlreward.integrations._rows import VerlRow, verl_row
from rlreward.integrations._runtime import as_reward, run_sync
from rlreward.integrations.verl._columns import (
    SCORE,
    SCORE_ABSTAINED,
    SCORE_ERROR,
    Columns,
    columns_for,
)
from rlreward.results import GradingResults
from rlreward.reward import Reward

__all__ = [
    "DEFAULT_SAMPLE_TIMEOUT",
    "ENV_SPEC",
    "compute_score",
    "compute_score_batch",
    "compute_score_scalar",
    "compute_score_sync",
    "resolve_reward",
    "score_rows",
]

log = logging.getLogger(__name__)

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

#: Rewards derived from an object the caller passed (a GradingRunner, a RewardSpec, or a
#: Reward with another ``aggregator``): ``as_reward`` builds a new one for each call, so
#: the adapter keeps it for as long as the object lives and every call shares its runner
_lock = threading.Lock()
_derived: dict[tuple[int, str | None], tuple[weakref.ref[Any], Reward]] = {}


def _derived_from(obj: Any, aggregator: str | None) -> Reward:
    key = (id(obj), aggregator)
    with _lock:
        found = _derived.get(key)
        if found is not None and found[0]() is obj:
            return found[1]
    reward = as_reward(obj, aggregator)
    if reward is not obj:
        with _lock:
            _derived[key] = (weakref.ref(obj), reward)
        weakref.finalize(obj, _derived.pop, key, None)
    return reward


def resolve_reward(spec: Any = None, aggregator: str | None = None) -> Reward:
    """The Reward to grade with: ``spec`` (a Reward, RewardSpec, GradingRunner, YAML path
    or spec dict), else ``$RLREWARD_SPEC``; ``aggregator`` picks the reward's aggregator."""
    if spec is None:
        spec = os.environ.get(ENV_SPEC) or None
    if spec is None:
        raise ConfigError(
            "no reward spec given to the rlreward VERL adapter; pass "
            "+reward.custom_reward_function.reward_kwargs.spec=/abs/path/reward.yaml "
            f"(or +reward.reward_kwargs.spec=... for the reward manager), or set {ENV_SPEC}"
        )
    if isinstance(spec, Reward) and aggregator in (None, spec.name):
        return spec
    if isinstance(spec, (str, os.PathLike, Mapping)):
        return as_reward(spec, aggregator)  # built once per process by _runtime
    return _derived_from(spec, aggregator)


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


#: warnings already given, per Reward (once per process, not once per sample)
_warned: weakref.WeakKeyDictionary[Reward, set[str]] = weakref.WeakKeyDictionary()


def _warn_once(reward: Reward, key: str, msg: str, *args: Any) -> None:
    with _lock:
        seen = _warned.setdefault(reward, set())
        if key in seen:
            return
        seen.add(key)
    log.warning(msg, *args)


async def _results(reward: Reward, rows: Sequence[VerlRow]) -> GradingResults:
    plain = [r.row for r in rows]
    bad = {i: r.ground_truth_problem for i, r in enumerate(rows) if r.ground_truth_problem}
    if not bad:
        return await reward.agrade(plain, on_missing="raise")
    good = [row for i, row in enumerate(plain) if i not in bad]
    if good:  # a field every good sample lacks is still a configuration error, raised now
        reward.runner.prepare(good)
    # a sample whose ground truth is no answer: the graders that need one abstain (no
    # field) or fail (a refused value), by the one rule in _rows.ground_truth_fields
    results = await reward.agrade(plain, on_missing="skip")
    i, problem = next(iter(bad.items()))
    hit = {
        n: "abstains" if i in results.abstentions(n) else "fails"
        for n in reward.graders
        if i in results.abstentions(n) or i in results.errors(n)
    }
    if hit:
        _warn_once(
            reward,
            "ground_truth",
            "rlreward: a sample's %s; on such samples the graders that need the answer "
            "abstain or fail (%s), the others grade it (logged once)",
            problem,
            hit,
        )
    return results


async def _grade(reward: Reward, cols: Columns, rows: Sequence[VerlRow]) -> list[ScoreDict]:
    results = await _results(reward, rows)
    dicts = cols.score_dicts(results)
    for d, value in zip(dicts, reward.results(results), strict=True):
        if d[SCORE_ERROR]:
            _warn_once(
                reward,
                "failed",
                "reward %r failed for a sample (%s); VERL gets score=NaN, score__error=1. A NaN "
                "reward makes VERL skip the update of its mini-batch: set on_error: renormalize "
                "(or zero) on the aggregator for training",
                cols.reward,
                getattr(value, "error", "no result"),
            )
        elif d[SCORE_ABSTAINED]:
            _warn_once(
                reward,
                "abstained",
                "reward %r did not apply to a sample (%s); VERL gets score=NaN, "
                "score__abstained=1. VERL has no per-sample mask: a NaN reward makes VERL skip "
                "the update of its mini-batch; give the reward a weighted grader that applies "
                "to every sample, or drop such samples from the data",
                cols.reward,
                getattr(value, "reason", ""),
            )
    return dicts


async def score_rows(
    reward: Reward, rows: Sequence[VerlRow], timeout: float | None = None
) -> list[ScoreDict]:
    """Grade rows with ``reward`` (one ``agrade``); one score dict per row.

    ``timeout``: seconds for the whole call; when it expires every row is a failed
    sample (same keys, NaN values, flags 1) instead of the host's own timeout value.
    """
    timeout = _check_timeout(timeout)
    cols = columns_for(reward)
    if timeout is None:
        return await _grade(reward, cols, rows)
    try:
        return await asyncio.wait_for(_grade(reward, cols, rows), timeout)
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

    Configure with ``reward_kwargs`` (``spec``: the YAML path, a spec dict or a
    ``Reward``; ``aggregator``: which aggregator is the reward; ``timeout``: seconds
    before the sample ends as failed) or ``$RLREWARD_SPEC``. The prompt comes from
    ``query`` / ``prompt`` when given, else from ``extra_info`` (``query``, ``question``,
    ``prompt``, ``problem``, ``raw_prompt``). Other keyword arguments become row fields
    (for mappers), except VERL's reward-model routing arguments. Concurrent calls share
    the Reward's one runner, so one concurrency limit, HTTP client and cache per worker
    process.
    """
    reward = resolve_reward(spec, aggregator)
    row = _sample(data_source, solution_str, ground_truth, extra_info, query, prompt, kwargs)
    return (await score_rows(reward, [row], timeout))[0]


def _run_blocking(
    make: Callable[[], Awaitable[list[ScoreDict]]], reward: Reward, n: int
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
        return [columns_for(reward).failed() for _ in range(n)]


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
    reward = resolve_reward(spec, aggregator)
    row = _sample(data_source, solution_str, ground_truth, extra_info, query, prompt, kwargs)
    return _run_blocking(lambda: score_rows(reward, [row], timeout), reward, 1)[0]


def compute_score_scalar(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> float:
    """``compute_score_sync`` reduced to the reward (NaN when it failed or did not apply), for
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
    """``BatchRewardManager``'s ``compute_score``: the whole batch in one ``Reward.agrade``.

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
    reward = resolve_reward(spec, aggregator)
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
    return _run_blocking(lambda: score_rows(reward, rows, timeout), reward, n)
