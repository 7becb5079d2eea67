"""GradingResults: ``{name: [result per row]}`` with helpers for scores and summaries."""

from __future__ import annotations

import math
from typing import Any

from rlreward.checks import mean_std
from rlreward.schema import GraderError, GraderResult, GraderScore

__all__ = ["GradingResults", "summarize"]


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
        cols = ("n", "mean", "std", "min", "max", "errors", "err%")
        widths = (6, 8, 8, 8, 8, 7, 6)
        head = f"{'name':<24} " + " ".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))
        lines = [head, "-" * len(head)]
        for name, s in self.summary().items():
            lines.append(
                f"{name[:24]:<24} {s['count']:>6} {s['mean']:>8.4f} {s['std']:>8.4f} "
                f"{s['min']:>8.4f} {s['max']:>8.4f} {s['errors']:>7} {100 * s['error_rate']:>5.1f}%"
            )
        return "\n".join(lines)
