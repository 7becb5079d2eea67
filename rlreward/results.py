"""GradingResults: ``{name: [result per row]}`` with helpers for scores and summaries."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rlreward.checks import mean_std
from rlreward.schema import GraderError, GraderResult, GraderScore
from rlreward.usage import UsageSummary

__all__ = ["GradingResults", "RunningSummary", "format_summary", "summarize"]


def summarize(results: list[GraderResult]) -> dict[str, float | int]:
    """count / mean / std / min / max over scores, and the error count and rate."""
    scores = [r.score for r in results if isinstance(r, GraderScore)]
    n, errors = len(results), sum(1 for r in results if isinstance(r, GraderError))
    out: dict[str, float | int] = {
        "count": n,
        "errors": errors,
        "error_rate": errors / n if n else 0.0,
    }
    if scores:
        mean, std = mean_std(scores)
        out.update(mean=mean, std=std, min=min(scores), max=max(scores))
    else:
        out.update(mean=math.nan, std=math.nan, min=math.nan, max=math.nan)
    return out


class GradingResults(dict[str, list[GraderResult]]):
    """A plain dict ``{grader or aggregator name: [result per row]}`` plus helpers."""

    def scores(self, name: str) -> list[float | None]:
        """Scores of one column, ``None`` where the grade failed."""
        return [r.score if isinstance(r, GraderScore) else None for r in self[name]]

    def errors(self, name: str) -> dict[int, str]:
        """``{row index: error message}`` for one column."""
        return {i: r.error for i, r in enumerate(self[name]) if isinstance(r, GraderError)}

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
        """Per row ``{name: {"score", "reason"} | {"error"}}``, JSON-ready."""
        n = len(next(iter(self.values()), []))
        records: list[dict[str, dict[str, Any]]] = [{} for _ in range(n)]
        for name, col in self.items():
            for rec, r in zip(records, col, strict=True):
                if isinstance(r, GraderScore):
                    rec[name] = {"score": r.score, "reason": r.reason}
                else:
                    rec[name] = {"error": r.error}
        return records

    def format_summary(self) -> str:
        """A fixed-width table: one line per grader/aggregator."""
        return format_summary(self.summary())


def format_summary(summary: Mapping[str, Mapping[str, float | int]]) -> str:
    """A fixed-width table of ``{name: summarize(...)}``: one line per column."""
    cols = ("n", "mean", "std", "min", "max", "errors", "err%")
    widths = (6, 8, 8, 8, 8, 7, 6)
    head = f"{'name':<24} " + " ".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        lines.append(
            f"{name[:24]:<24} {s['count']:>6} {s['mean']:>8.4f} {s['std']:>8.4f} "
            f"{s['min']:>8.4f} {s['max']:>8.4f} {s['errors']:>7} {100 * s['error_rate']:>5.1f}%"
        )
    return "\n".join(lines)


class _Column:
    __slots__ = ("count", "errors", "high", "low", "mean", "n_scores", "sq")

    def __init__(self) -> None:
        self.count = self.errors = self.n_scores = 0
        self.mean = self.sq = 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, score: float | None) -> None:
        self.count += 1
        if score is None:
            self.errors += 1
            return
        self.n_scores += 1  # Welford: one pass, no list of scores kept
        delta = score - self.mean
        self.mean += delta / self.n_scores
        self.sq += delta * (score - self.mean)
        self.low, self.high = min(self.low, score), max(self.high, score)

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "count": self.count,
            "errors": self.errors,
            "error_rate": self.errors / self.count if self.count else 0.0,
        }
        if self.n_scores:
            std = math.sqrt(max(self.sq, 0.0) / self.n_scores)
            out.update(mean=self.mean, std=std, min=self.low, max=self.high)
        else:
            out.update(mean=math.nan, std=math.nan, min=math.nan, max=math.nan)
        return out


class RunningSummary:
    """The same statistics as ``summarize``, kept in constant memory as rows stream by."""

    def __init__(self) -> None:
        self._columns: dict[str, _Column] = {}

    def add(self, name: str, score: float | None) -> None:
        """One row's result of column ``name``: its score, or None for an error."""
        column = self._columns.get(name)
        if column is None:
            column = self._columns[name] = _Column()
        column.add(score)

    def add_results(self, results: Mapping[str, list[GraderResult]]) -> None:
        for name, col in results.items():
            for r in col:
                self.add(name, r.score if isinstance(r, GraderScore) else None)

    def add_record(self, record: Mapping[str, Any]) -> None:
        """One row's ``to_records()`` entry (as written to JSONL) read back."""
        for name, rec in record.items():
            score = rec.get("score") if isinstance(rec, Mapping) and "error" not in rec else None
            self.add(name, float(score) if isinstance(score, (int, float)) else None)

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {name: col.summary() for name, col in self._columns.items()}

    def format(self) -> str:
        return format_summary(self.summary())
