"""GraderConfig and GradingRunner: many graders over many rows, concurrently, losing none.

The runner checks every (row, grader) pair's fields up front, then runs all calls
through one pool of workers bounded by one per-event-loop semaphore (so the bound
also holds across concurrent ``arun`` calls, as the VERL adapter makes), and finally
applies aggregators per row. Loop-bound state is created inside the running loop, so
one runner serves any number of ``asyncio.run`` calls in a row.

Group graders (``rlreward.graders.group``: a ``group_size`` and ``aevaluate_group``) get
one call per group instead of one per row: the runner forms the groups from the batch
(``form_groups``), gives every row of a wrong-size group a GraderError naming the cause,
and runs each group call under the same concurrency bound (one slot per group) and the
same timeout (per group call). A failed group call gives each member a GraderError; the
other groups are unaffected. Per-row graders take the same path as before.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tqdm.auto import tqdm

from rlreward.aggregators import AggregatorLike, bind_aggregators
from rlreward.checks import number_rule
from rlreward.dataset import load_rows
from rlreward.errors import ConfigError, MissingFieldsError
from rlreward.graders.base import BaseGrader, ProtocolGrader, to_result
from rlreward.graders.function import FunctionGrader
from rlreward.graders.group import form_groups, is_group_grader
from rlreward.results import GradingResults
from rlreward.schema import GraderAbstention, GraderError, GraderResult

__all__ = ["GraderConfig", "GradingRunner"]

Mapper = Mapping[str, str] | Callable[[dict[str, Any]], Mapping[str, Any]]
OnMissing = Literal["raise", "skip"]
_MISSING = object()


def _resolve(sample: Mapping[str, Any], path: str) -> Any:
    """Look up ``a.b.0.c`` in nested mappings / sequences; _MISSING when absent."""
    if path in sample:
        return sample[path]
    node: Any = sample
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Sequence) and not isinstance(node, str) and part.isdigit():
            idx = int(part)
            if idx >= len(node):
                return _MISSING
            node = node[idx]
        else:
            return _MISSING
    return node


@dataclass
class GraderConfig:
    """A grader plus how to get its fields out of a row.

    ``mapper`` is ``{grader_field: row_field_or.dotted.path}`` (renames and overlays:
    unmapped row fields stay available) or a callable ``row -> dict`` whose result
    is used as the grader's fields. A plain callable as ``grader`` is wrapped in a
    FunctionGrader.
    """

    grader: Any
    mapper: Mapper | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.grader, BaseGrader):
            if hasattr(self.grader, "aevaluate"):
                pass  # follows the Grader protocol: the runner guards it (ProtocolGrader)
            elif callable(self.grader):
                self.grader = FunctionGrader(self.grader)
            else:
                raise ConfigError(
                    f"GraderConfig.grader must be a Grader or a callable, "
                    f"got {type(self.grader).__name__}"
                )
        m = self.mapper
        if m is not None and not callable(m):
            if not isinstance(m, Mapping):
                raise ConfigError(
                    f"GraderConfig.mapper must be a dict {{grader_field: row_field}} or a "
                    f"callable row -> dict, got {type(m).__name__}"
                )
            bad = {k: v for k, v in m.items() if not isinstance(k, str) or not isinstance(v, str)}
            if bad:
                raise ConfigError(
                    f"GraderConfig.mapper entries must map str -> str (dotted paths allowed), "
                    f"got {bad!r}"
                )

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The fields a grader sees for ``row`` (a mapped path that is absent is left out)."""
        m = self.mapper
        if m is None:
            return dict(row)
        if callable(m):
            out = m(dict(row))
            if not isinstance(out, Mapping):
                raise TypeError(f"mapper returned {type(out).__name__}, expected a dict")
            return dict(out)
        fields = dict(row)
        for target, path in m.items():
            value = _resolve(row, path)
            if value is not _MISSING:
                fields[target] = value
            elif target in fields and target != path:
                del fields[target]  # a mapped field must come from its mapping, not by accident
        return fields


def _normalise_configs(configs: Any) -> dict[str, GraderConfig]:
    if isinstance(configs, Mapping):
        items = list(configs.items())
    elif isinstance(configs, (list, tuple)):
        items = []
        for c in configs:
            cfg = c if isinstance(c, GraderConfig) else GraderConfig(c)
            items.append((getattr(cfg.grader, "name", None), cfg))
    else:
        raise ConfigError(
            "grader_configs must be a dict {name: GraderConfig | Grader} or a list of them, "
            f"got {type(configs).__name__}"
        )
    out: dict[str, GraderConfig] = {}
    for name, cfg in items:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"every grader needs a non-empty string name, got {name!r}")
        if name in out:
            raise ConfigError(f"two graders are named {name!r}; grader names must be unique")
        out[name] = cfg if isinstance(cfg, GraderConfig) else GraderConfig(cfg)
    if not out:
        raise ConfigError("grader_configs is empty; give at least one grader")
    return out


def _format_missing(missing: dict[str, dict[str, list[int]]], n_rows: int) -> str:
    lines = ["samples lack fields their graders need (nothing was graded):"]
    for grader, fields in missing.items():
        for field, idx in fields.items():
            shown = ", ".join(map(str, idx[:10])) + (
                f" and {len(idx) - 10} more" if len(idx) > 10 else ""
            )
            lines.append(
                f"  grader {grader!r}: field {field!r} missing in {len(idx)}/{n_rows} samples "
                f"(indices {shown})"
            )
    lines.append(
        "fix: add the field to the rows, or map it from another field with "
        "GraderConfig(grader, mapper={'<grader field>': '<row field or dotted.path>'})"
    )
    return "\n".join(lines)


class _LoopState:
    __slots__ = ("semaphore",)

    def __init__(self, limit: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)


class GradingRunner:
    """Run graders over rows concurrently and aggregate the results per row.

    Args:
        grader_configs: ``{name: GraderConfig | Grader | callable}`` or a list of them.
        aggregators: one aggregator or a list (``WeightedSumAggregator`` or any callable
            ``{name: result} -> GraderScore``; keyed by its ``name``, else ``__name__``).
        monitors: graders (same forms as ``grader_configs``) computed for every row and
            reported beside the graders, never given to the aggregators: what a
            reward-hacking check watches.
        max_concurrency: bound on grader calls in flight, across all graders and all
            concurrent ``arun`` calls in one event loop.
        timeout: seconds per grader call; a call past it becomes a GraderError.
        show_progress: show a tqdm progress bar.
    """

    def __init__(
        self,
        grader_configs: Any,
        aggregators: AggregatorLike | Sequence[AggregatorLike] | None = None,
        max_concurrency: int = 32,
        show_progress: bool = True,
        timeout: float | None = None,
        *,
        monitors: Any = None,
    ) -> None:
        rule = number_rule(max_concurrency, integer=True, low=1)
        if rule is not None:
            raise ConfigError(f"max_concurrency must be {rule}, got {max_concurrency!r}")
        if timeout is not None and number_rule(timeout, low=0, low_inclusive=False) is not None:
            raise ConfigError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        self.grader_configs = _normalise_configs(grader_configs)
        self.graders: dict[str, Any] = {n: c.grader for n, c in self.grader_configs.items()}
        self.monitor_configs = _normalise_configs(monitors) if monitors else {}
        self.monitors: dict[str, Any] = {n: c.grader for n, c in self.monitor_configs.items()}
        both = sorted(set(self.monitors) & set(self.graders))
        if both:
            raise ConfigError(
                f"monitors {both} have the names of graders; a monitor is reported beside the "
                "reward and never weighed, so give it its own name"
            )
        self._all_configs = {**self.grader_configs, **self.monitor_configs}
        # the one guarded call per grader: a BaseGrader guards itself, anything else that
        # follows the Grader protocol is wrapped once here
        self._guarded: dict[str, BaseGrader] = {
            n: c.grader if isinstance(c.grader, BaseGrader) else ProtocolGrader(c.grader)
            for n, c in self._all_configs.items()
        }
        #: graders scored a group per call (see the module docstring)
        self._group_graders: dict[str, Any] = {
            n: c.grader for n, c in self._all_configs.items() if is_group_grader(c.grader)
        }
        for n, g in self._group_graders.items():
            if g.group_size < 1:
                raise ConfigError(f"grader {n!r}: group_size must be >= 1, got {g.group_size}")
        self.aggregators = bind_aggregators(aggregators, self.graders)  # monitors never weighed
        clash = set(self.aggregators) & set(self._all_configs)
        if clash:
            raise ConfigError(f"aggregator names clash with grader names: {sorted(clash)}")
        self.max_concurrency = max_concurrency
        self.show_progress = show_progress
        self.timeout = timeout
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    # -- preparation -----------------------------------------------------------------
    def prepare(
        self, rows: Sequence[Mapping[str, Any]], on_missing: OnMissing = "raise"
    ) -> dict[str, list[dict[str, Any] | GraderError | GraderAbstention]]:
        """Map every row for every grader.

        ``on_missing="raise"`` (default): raise one MissingFieldsError listing all gaps.
        ``on_missing="skip"``: a (row, grader) pair whose fields are missing gets a
        GraderAbstention (the grader does not apply to this row) instead of a call; a
        mapper that raises becomes an ordinary GraderError for that pair.
        """
        if on_missing not in ("raise", "skip"):
            raise ConfigError(f"on_missing={on_missing!r} is not allowed; choose 'raise' or 'skip'")
        skip = on_missing == "skip"
        missing: dict[str, dict[str, list[int]]] = {}
        calls: dict[str, list[dict[str, Any] | GraderError | GraderAbstention]] = {}
        for name, cfg in self._all_configs.items():
            grader = self._guarded[name]
            per_row: list[dict[str, Any] | GraderError | GraderAbstention] = []
            for i, row in enumerate(rows):
                try:
                    fields = cfg.map(row)
                except Exception as exc:  # a mapper bug is a config error for that row
                    reason = f"mapper raised {type(exc).__name__}: {exc}"
                    missing.setdefault(name, {}).setdefault(f"<{reason}>", []).append(i)
                    per_row.append(GraderError(name, reason, {"mapper_error": True}))
                    continue
                gaps = grader.missing_fields(fields)
                for f in gaps:
                    missing.setdefault(name, {}).setdefault(f, []).append(i)
                if gaps and skip:
                    per_row.append(
                        GraderAbstention(
                            name, f"the row lacks fields {gaps}", {"missing_fields": list(gaps)}
                        )
                    )
                else:
                    per_row.append(fields if gaps else grader.select_fields(fields))
            calls[name] = per_row
        if missing and not skip:
            raise MissingFieldsError(_format_missing(missing, len(rows)), missing)
        return calls

    # -- execution -------------------------------------------------------------------
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState(self.max_concurrency)
        return state

    async def _call(self, name: str, grader: BaseGrader, fields: dict[str, Any]) -> GraderResult:
        """One guarded grader call (BaseGrader.aevaluate never raises) under the timeout."""
        if self.timeout is None:
            return await grader.aevaluate(**fields)
        try:
            return await asyncio.wait_for(grader.aevaluate(**fields), self.timeout)
        except asyncio.TimeoutError:
            return GraderError(name, f"timed out after {self.timeout} s", {"timeout": True})

    async def _call_group(self, name: str, rows: list[dict[str, Any]]) -> list[GraderResult]:
        """One guarded group call under the timeout: exactly one result per row."""
        grader = self._group_graders[name]
        n = len(rows)
        try:
            coro = grader.aevaluate_group(rows)
            got = await (coro if self.timeout is None else asyncio.wait_for(coro, self.timeout))
        except asyncio.TimeoutError:
            reason = f"group call timed out after {self.timeout} s"
            return [GraderError(name, reason, {"timeout": True}) for _ in rows]
        except Exception as exc:  # a failed group is a value for each of its rows
            reason = f"group call raised {type(exc).__name__}: {exc}"
            return [GraderError(name, reason, {"exception_type": type(exc).__name__}) for _ in rows]
        if not isinstance(got, (list, tuple)) or len(got) != n:
            size = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
            reason = f"aevaluate_group returned {size} results for a group of {n} rows"
            return [GraderError(name, reason) for _ in rows]
        out: list[GraderResult] = []
        for value in got:
            try:
                result = to_result(name, value)
            except (TypeError, ValueError) as exc:
                result = GraderError(name, f"{type(exc).__name__}: {exc}")
            if isinstance(grader, BaseGrader):
                result = grader._check_range(result)
            out.append(result)
        return out

    async def arun(self, dataset: Any, on_missing: OnMissing = "raise") -> GradingResults:
        """Grade every row with every grader, then aggregate; results keep row order.

        ``on_missing``: see ``prepare`` ("skip" turns rows lacking a grader's fields
        into not-applicable GraderErrors instead of raising MissingFieldsError).
        """
        rows = load_rows(dataset)
        calls = self.prepare(rows, on_missing)
        all_names = list(calls)
        n_rows = len(rows)
        grouped = [n for n in all_names if n in self._group_graders]
        names = [n for n in all_names if n not in self._group_graders] if grouped else all_names
        n_graders = len(names)
        grader_list = [self._guarded[n] for n in names]
        call_lists = [calls[n] for n in names]
        out: list[list[Any]] = [[None] * n_rows for _ in names]
        group_out, group_jobs = self._group_jobs(grouped, calls)
        total = n_rows * len(all_names)
        sem = self._state().semaphore
        jobs = iter(range(n_rows * n_graders))  # row-major: every grader of row i before i+1
        group_iter = iter(group_jobs)  # whole groups first: each is the longest call
        bar = tqdm(
            total=total, desc="grading", unit="call", disable=not self.show_progress or total == 0
        )
        if grouped:
            bar.update(sum(v is not None for col in group_out.values() for v in col))

        async def group_worker() -> None:
            for name, idx in group_iter:
                fields = [calls[name][i] for i in idx]
                async with sem:
                    results = await self._call_group(name, fields)  # type: ignore[arg-type]
                for i, result in zip(idx, results, strict=True):
                    group_out[name][i] = result
                bar.update(len(idx))

        timeout = self.timeout
        progress = not bar.disable

        async def worker() -> None:
            if group_jobs:
                await group_worker()
            for j in jobs:
                r, g = divmod(j, n_graders)
                fields = call_lists[g][r]
                if not isinstance(fields, dict):  # abstention or mapper error, decided up front
                    out[g][r] = fields
                else:
                    async with sem:
                        # BaseGrader.aevaluate never raises; without a timeout it is
                        # awaited directly (one coroutine less per call on the hot path)
                        out[g][r] = await (
                            grader_list[g].aevaluate(**fields)
                            if timeout is None
                            else self._call(names[g], grader_list[g], fields)
                        )
                if progress:
                    bar.update(1)

        try:
            n_workers = min(self.max_concurrency, n_rows * n_graders + len(group_jobs))
            if n_workers:
                await asyncio.gather(*(worker() for _ in range(n_workers)))
        finally:
            bar.close()
        if grouped:
            columns = {**dict(zip(names, out, strict=True)), **group_out}
            results = GradingResults((n, columns[n]) for n in all_names)
        else:
            results = GradingResults(zip(names, out, strict=True))
        self._aggregate(results, n_rows)
        return results

    def _group_jobs(
        self, grouped: list[str], calls: Mapping[str, list[Any]]
    ) -> tuple[dict[str, list[Any]], list[tuple[str, tuple[int, ...]]]]:
        """Each group grader's column, filled where decided up front (rows it does not
        apply to, wrong-size groups), and the ``(grader, row indices)`` calls to make."""
        columns: dict[str, list[Any]] = {}
        jobs: list[tuple[str, tuple[int, ...]]] = []
        for name in grouped:
            grader = self._group_graders[name]
            column = [e if not isinstance(e, dict) else None for e in calls[name]]
            key = getattr(grader, "group_key", None)
            for group in form_groups(calls[name], grader.group_size, key):
                if group.error is None:
                    jobs.append((name, group.indices))
                    continue
                for i in group.indices:
                    column[i] = GraderError(name, group.error, {"group_error": True})
            columns[name] = column
        return columns, jobs

    def _aggregate(self, results: GradingResults, n_rows: int) -> None:
        names = list(self.graders)
        for agg_name, agg in self.aggregators.items():
            column = []
            for i in range(n_rows):
                per_row = {n: results[n][i] for n in names}
                try:
                    column.append(to_result(agg_name, agg(per_row)))
                except Exception as exc:  # a custom aggregator bug fails that row only
                    column.append(
                        GraderError(agg_name, f"aggregator raised {type(exc).__name__}: {exc}")
                    )
            results[agg_name] = column

    def run(self, dataset: Any, on_missing: OnMissing = "raise") -> GradingResults:
        """Synchronous ``arun`` (its own event loop); closes loop-bound grader resources."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run_and_close(dataset, on_missing))
        raise RuntimeError(
            "GradingRunner.run() was called inside a running event loop; "
            "use `await runner.arun(...)`"
        )

    async def _run_and_close(self, dataset: Any, on_missing: OnMissing) -> GradingResults:
        try:
            return await self.arun(dataset, on_missing)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Release resources the graders bound to the running loop (HTTP clients, caches)."""
        seen: set[int] = set()
        for g in (*self.graders.values(), *self.monitors.values()):
            for obj in (g, getattr(g, "model", None)):
                close = getattr(obj, "aclose", None)
                if close is not None and id(obj) not in seen:
                    seen.add(id(obj))
                    await close()

    def __getstate__(self) -> dict[str, Any]:
        # per-loop state (semaphores) cannot be pickled and is rebuilt on use
        state = dict(self.__dict__)
        state.pop("_states", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._states = weakref.WeakKeyDictionary()

    async def __aenter__(self) -> GradingRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"GradingRunner(graders={list(self.graders)}, aggregators={list(self.aggregators)}, "
            f"monitors={list(self.monitors)}, max_concurrency={self.max_concurrency})"
        )
