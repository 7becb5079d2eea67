"""GradingResults: ``{name: [result per row]}`` with helpers for scores and summaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlreward.checks import RunningStats
from rlreward.schema import GraderAbstention, GraderError, GraderResult, GraderScore
from rlreward.usage import UsageSummary

__all__ = ["GradingResults", "RunningSummary", "format_summary", "summarize"]


def summarize(results: list[GraderResult]) -> dict[str, float | int]:
    """count / mean / std / min / max over scores, the error count and rate, and how many
    rows the grader abstained on (not applicable: neither a score nor an error)."""
    scores = RunningStats(r.score for r in results if isinstance(r, GraderScore))
    errors = sum(1 for r in results if isinstance(r, GraderError))
    abstained = sum(1 for r in results if isinstance(r, GraderAbstention))
    return _summary(len(results), errors, abstained, scores)


def _summary(
    count: int, errors: int, abstained: int, scores: RunningStats
) -> dict[str, float | int]:
    return {
        "count": count,
        "errors": errors,
        "error_rate": errors / count if count else 0.0,
        "abstained": abstained,
        "mean": scores.mean,
        "std": scores.std,
        "min": scores.min,
        "max": scores.max,
    }


class GradingResults(dict[str, list[GraderResult]]):
    """A plain dict ``{grader or aggregator name: [result per row]}`` plus helpers."""

    def scores(self, name: str) -> list[float | None]:
        """Scores of one column, ``None`` where the grade failed."""
        return [r.score if isinstance(r, GraderScore) else None for r in self[name]]

    def errors(self, name: str) -> dict[int, str]:
        """``{row index: error message}`` for one column (abstentions are not errors)."""
        return {i: r.error for i, r in enumerate(self[name]) if isinstance(r, GraderError)}

    def abstentions(self, name: str) -> dict[int, str]:
        """``{row index: reason}`` of the rows where ``name`` did not apply."""
        return {i: r.reason for i, r in enumerate(self[name]) if isinstance(r, GraderAbstention)}

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {name: summarize(col) for name, col in self.items()}

    def usage_summary(self, prices: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Per judge grader: calls, tokens, errors, latency p50/p95/max, the slowest rows
        and, given ``prices`` (``{model: {"prompt": $/1M, "completion": $/1M}}``), cost;
        see ``rlreward.usage.UsageSummary``."""
        usage = UsageSummary(prices)
        usage.add_results(self)
        return usage.summary()

    def row(self, index: int) -> dict[str, GraderResult]:
        return {name: col[index] for name, col in self.items()}

    def to_records(self) -> list[dict[str, dict[str, Any]]]:
        """Per row ``{name: {"score", "reason"} | {"error"} | {"abstained"}}``, JSON-ready."""
        n = len(next(iter(self.values()), []))
        records: list[dict[str, dict[str, Any]]] = [{} for _ in range(n)]
        for name, col in self.items():
            for rec, r in zip(records, col, strict=True):
                if isinstance(r, GraderScore):
                    rec[name] = {"score": r.score, "reason": r.reason}
                elif isinstance(r, GraderAbstention):
                    rec[name] = {"abstained": r.reason}
                else:
                    rec[name] = {"error": r.error}
        return records

    def format_summary(self) -> str:
        """A fixed-width table: one line per grader/aggregator."""
        return format_summary(self.summary())


def format_summary(summary: Mapping[str, Mapping[str, float | int]]) -> str:
    """A fixed-width table of ``{name: summarize(...)}``: one line per column."""
    cols = ("n", "mean", "std", "min", "max", "errors", "err%", "n/a")
    widths = (6, 8, 8, 8, 8, 7, 6, 6)
    head = f"{'name':<24} " + " ".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        lines.append(
            f"{name[:24]:<24} {s['count']:>6} {s['mean']:>8.4f} {s['std']:>8.4f} "
            f"{s['min']:>8.4f} {s['max']:>8.4f} {s['errors']:>7} {100 * s['error_rate']:>5.1f}% "
            f"{s.get('abstained', 0):>6}"
        )
    return "\n".join(lines)


class _Column:
    __slots__ = ("abstained", "count", "errors", "scores")

    def __init__(self) -> None:
        self.count = self.errors = self.abstained = 0
        self.scores = RunningStats()  # one pass, no list of scores kept

    def add(self, score: float | None, abstained: bool = False) -> None:
        self.count += 1
        if abstained:
            self.abstained += 1
            return
        if score is None:
            self.errors += 1
        else:
            self.scores.add(score)

    def summary(self) -> dict[str, float | int]:
        return _summary(self.count, self.errors, self.abstained, self.scores)


class RunningSummary:
    """The same statistics as ``summarize``, kept in constant memory as rows stream by."""

    def __init__(self) -> None:
        self._columns: dict[str, _Column] = {}

    def add(self, name: str, score: float | None, abstained: bool = False) -> None:
        """One row's result of column ``name``: its score, None for an error, or
        ``abstained=True`` when the grader did not apply to the row."""
        column = self._columns.get(name)
        if column is None:
            column = self._columns[name] = _Column()
        column.add(score, abstained)

    def add_results(self, results: Mapping[str, list[GraderResult]]) -> None:
        for name, col in results.items():
            for r in col:
                score = r.score if isinstance(r, GraderScore) else None
                self.add(name, score, isinstance(r, GraderAbstention))

    def add_record(self, record: Mapping[str, Any]) -> None:
        """One row's ``to_records()`` entry (as written to JSONL) read back."""
        for name, rec in record.items():
            abstained = isinstance(rec, Mapping) and "abstained" in rec
            score = rec.get("score") if isinstance(rec, Mapping) and "error" not in rec else None
            self.add(name, float(score) if isinstance(score, (int, float)) else None, abstained)

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {name: col.summary() for name, col in self._columns.items()}

    def format(self) -> str:
        return format_summary(self.summary())
