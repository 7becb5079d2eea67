"""GraderConfig and GradingRunner: many graders over many rows, concurrently, losing none.

The runner checks every (row, grader) pair's fields up front, then runs all calls
through one pool of workers bounded by one per-event-loop semaphore (so the bound
also holds across concurrent ``arun`` calls, as the VERL adapter makes), and finally
applies aggregators per row. Loop-bound state is created inside the running loop, so
one runner serves any number of ``asyncio.run`` calls in a row.
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
from rlreward.results import GradingResults
from rlreward.schema import GraderError, GraderResult

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
        # the one guarded call per grader: a BaseGrader guards itself, anything else that
        # follows the Grader protocol is wrapped once here
        self._guarded: dict[str, BaseGrader] = {
            n: g if isinstance(g, BaseGrader) else ProtocolGrader(g)
            for n, g in self.graders.items()
        }
        self.aggregators = bind_aggregators(aggregators, self.graders)
        clash = set(self.aggregators) & set(self.graders)
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
    ) -> dict[str, list[dict[str, Any] | GraderError]]:
        """Map every row for every grader.

        ``on_missing="raise"`` (default): raise one MissingFieldsError listing all gaps.
        ``on_missing="skip"``: a (row, grader) pair whose fields are missing gets a
        GraderError with ``metadata["not_applicable"] = True`` instead of a call (the
        trainer adapters use this for "this grader does not apply to this row"); a
        mapper that raises becomes an ordinary GraderError for that pair.
        """
        if on_missing not in ("raise", "skip"):
            raise ConfigError(f"on_missing={on_missing!r} is not allowed; choose 'raise' or 'skip'")
        skip = on_missing == "skip"
        missing: dict[str, dict[str, list[int]]] = {}
        calls: dict[str, list[dict[str, Any] | GraderError]] = {}
        for name, cfg in self.grader_configs.items():
            grader = self._guarded[name]
            per_row: list[dict[str, Any] | GraderError] = []
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
                        GraderError(
                            name,
                            f"not applicable: the row lacks fields {gaps}",
                            {"not_applicable": True, "missing_fields": list(gaps)},
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

    async def arun(self, dataset: Any, on_missing: OnMissing = "raise") -> GradingResults:
        """Grade every row with every grader, then aggregate; results keep row order.

        ``on_missing``: see ``prepare`` ("skip" turns rows lacking a grader's fields
        into not-applicable GraderErrors instead of raising MissingFieldsError).
        """
        rows = load_rows(dataset)
        calls = self.prepare(rows, on_missing)
        names = list(calls)
        n_rows, n_graders = len(rows), len(names)
        grader_list = [self._guarded[n] for n in names]
        call_lists = [calls[n] for n in names]
        out: list[list[Any]] = [[None] * n_rows for _ in names]
        total = n_rows * n_graders
        sem = self._state().semaphore
        jobs = iter(range(total))  # row-major: every grader of row i before row i+1
        bar = tqdm(
            total=total, desc="grading", unit="call", disable=not self.show_progress or total == 0
        )

        timeout = self.timeout
        progress = not bar.disable

        async def worker() -> None:
            for j in jobs:
                r, g = divmod(j, n_graders)
                fields = call_lists[g][r]
                if isinstance(fields, GraderError):  # not applicable (on_missing="skip")
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
            n_workers = min(self.max_concurrency, total)
            if n_workers:
                await asyncio.gather(*(worker() for _ in range(n_workers)))
        finally:
            bar.close()
        results = GradingResults(zip(names, out, strict=True))
        self._aggregate(results, n_rows)
        return results

    def _aggregate(self, results: GradingResults, n_rows: int) -> None:
        names = list(results)
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
        for g in self.graders.values():
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
            f"max_concurrency={self.max_concurrency})"
        )
