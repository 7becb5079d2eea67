"""Tokens, cost and time of judge calls: a record per grade, a summary per grader, a budget.

Every LLM-judge result (GraderScore or GraderError) carries one record under
``metadata["usage"]`` (``USAGE_KEY``), made by ``call_usage``::

    {"model": "gpt-4o-mini", "calls": 1, "prompt_tokens": 412, "completion_tokens": 38,
     "cached_tokens": 0, "latency_s": 0.81, "retries": 0, "cached": False, "reported": True}

``calls`` is 0 for a grade answered by the result cache or shared with an identical
call in flight (``cached: True``) and for a call a budget refused; the token counts are
what the server reported (``reported: False`` when it reported none; they are then 0).
``UsageSummary`` folds records into per-grader totals, latency percentiles, the
slowest rows and, given a price table, cost. ``UsageBudget`` is a ``max_tokens`` /
``max_cost`` limit shared by the judges of one run: once reached, no new call starts.

Prices are ``{model id: {"prompt": $ per 1M tokens, "completion": $ per 1M tokens,
"cached": $ per 1M cached prompt tokens (default: the prompt price)}}``.
"""

from __future__ import annotations

import heapq
import math
import threading
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.schema import GraderError, GraderResult

__all__ = [
    "USAGE_KEY",
    "Price",
    "UsageBudget",
    "UsageSummary",
    "call_usage",
    "check_prices",
    "format_usage",
]

USAGE_KEY = "usage"
#: rows listed under "slowest" per grader
SLOWEST = 5
_TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "cached_tokens")


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens of one model."""

    prompt: float
    completion: float
    cached: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """Dollars for these tokens (cached prompt tokens at the cached price)."""
        cached = min(cached_tokens, prompt_tokens)
        cached_price = self.prompt if self.cached is None else self.cached
        return (
            (prompt_tokens - cached) * self.prompt
            + cached * cached_price
            + completion_tokens * self.completion
        ) / 1e6


def check_prices(prices: Mapping[str, Any] | None, owner: str = "prices") -> dict[str, Price]:
    """A validated price table ``{model: Price}`` from ``{model: {"prompt", "completion"}}``."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise ConfigError(
            f"{owner} must be a mapping {{model: {{prompt: $/1M, completion: $/1M}}}}, "
            f"got {type(prices).__name__}"
        )
    out: dict[str, Price] = {}
    for model, entry in prices.items():
        where = f"{owner}.{model}"
        if isinstance(entry, Price):
            out[str(model)] = entry
            continue
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"{where} must be {{prompt: $/1M tokens, completion: $/1M tokens}}, got {entry!r}"
            )
        unknown = sorted(set(entry) - {"prompt", "completion", "cached"})
        if unknown:
            raise ConfigError(
                f"{where}: unknown keys {unknown}; allowed: cached, completion, prompt"
            )
        values: dict[str, float] = {}
        for key in ("prompt", "completion", "cached"):
            if key not in entry:
                if key == "cached":
                    continue
                raise ConfigError(f"{where}: missing {key!r} (dollars per million tokens)")
            rule = number_rule(entry[key], low=0)
            if rule is not None:
                raise ConfigError(
                    f"{where}.{key} must be {rule} ($ per 1M tokens), got {entry[key]!r}"
                )
            values[key] = float(entry[key])
        out[str(model)] = Price(**values)
    return out


def _tokens(usage: Mapping[str, Any] | None, key: str) -> int:
    value = usage.get(key) if usage else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def call_usage(
    model: str | None,
    *,
    calls: int,
    usage: Mapping[str, int] | None,
    latency_s: float,
    retries: int = 0,
    cached: bool = False,
) -> dict[str, Any]:
    """The ``metadata["usage"]`` record of one grade (see the module docstring).

    ``usage`` is a ChatReply's usage dict; a key it lacks (a custom ChatModel) counts 0.
    """
    return {
        "model": model,
        "calls": calls,
        "prompt_tokens": _tokens(usage, "prompt_tokens"),
        "completion_tokens": _tokens(usage, "completion_tokens"),
        "cached_tokens": _tokens(usage, "cached_tokens"),
        "latency_s": latency_s,
        "retries": retries,
        "cached": cached,
        "reported": usage is not None or calls == 0,
    }


class UsageBudget:
    """A token and/or cost limit shared by every judge given it (one run, one process).

    ``exhausted()`` says why no new call may start (``None`` while there is room);
    ``spend(record)`` counts a finished call. Calls already in flight when the limit is
    reached still finish and count, so the total can pass the limit by what they used.
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        max_cost: float | None = None,
        prices: Mapping[str, Any] | None = None,
    ) -> None:
        if max_tokens is not None and number_rule(max_tokens, integer=True, low=1) is not None:
            raise ConfigError(f"budget.max_tokens must be a whole number >= 1, got {max_tokens!r}")
        if max_cost is not None and number_rule(max_cost, low=0, low_inclusive=False) is not None:
            raise ConfigError(f"budget.max_cost must be a number > 0 (dollars), got {max_cost!r}")
        if max_tokens is None and max_cost is None:
            raise ConfigError("budget: give max_tokens and/or max_cost")
        self.max_tokens = max_tokens
        self.max_cost = None if max_cost is None else float(max_cost)
        self.prices = check_prices(prices)
        if self.max_cost is not None and not self.prices:
            raise ConfigError(
                "budget.max_cost needs a price table: add `prices: {<model>: {prompt: <$ per 1M "
                "tokens>, completion: <$ per 1M tokens>}}` to the spec (prices= in Python)"
            )
        self.used_tokens = 0
        self.used_cost = 0.0
        self.calls = 0
        self.refused = 0
        self._lock = threading.Lock()

    def check_model(self, model: str | None, owner: str) -> None:
        """Refuse a judge whose calls this budget cannot price (``max_cost`` only)."""
        if self.max_cost is not None and model not in self.prices:
            raise ConfigError(
                f"{owner}: budget.max_cost is set but model {model!r} has no price; add it to "
                f"prices (priced: {', '.join(sorted(self.prices)) or 'none'})"
            )

    def exhausted(self) -> str | None:
        """Why no new judge call may start, or None while the budget has room."""
        with self._lock:
            if self.max_tokens is not None and self.used_tokens >= self.max_tokens:
                self.refused += 1
                return (
                    f"budget exhausted: max_tokens={self.max_tokens} used {self.used_tokens}; "
                    "no new judge call starts (raise budget.max_tokens to grade the rest; "
                    "cached grades are reused)"
                )
            if self.max_cost is not None and self.used_cost >= self.max_cost:
                self.refused += 1
                return (
                    f"budget exhausted: max_cost={self.max_cost:g} used {self.used_cost:.6g}; "
                    "no new judge call starts (raise budget.max_cost to grade the rest; "
                    "cached grades are reused)"
                )
        return None

    def spend(self, record: Mapping[str, Any]) -> None:
        """Count one grade's ``call_usage`` record (a cached one costs nothing)."""
        if not record.get("calls"):
            return
        prompt, completion = record["prompt_tokens"], record["completion_tokens"]
        price = self.prices.get(record.get("model") or "")
        cost = price.cost(prompt, completion, record["cached_tokens"]) if price else 0.0
        with self._lock:
            self.calls += record["calls"]
            self.used_tokens += prompt + completion
            self.used_cost += cost

    @property
    def is_exhausted(self) -> bool:
        """True once a limit is reached (does not count a refusal)."""
        return (self.max_tokens is not None and self.used_tokens >= self.max_tokens) or (
            self.max_cost is not None and self.used_cost >= self.max_cost
        )

    def state(self) -> dict[str, Any]:
        """Limits, use so far and refused calls (JSON-ready)."""
        return {
            "max_tokens": self.max_tokens,
            "max_cost": self.max_cost,
            "used_tokens": self.used_tokens,
            "used_cost": self.used_cost if self.prices else None,
            "calls": self.calls,
            "refused_calls": self.refused,
            "exhausted": self.is_exhausted,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock", None)  # a pickled copy counts on its own (one budget per process)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"UsageBudget(max_tokens={self.max_tokens}, max_cost={self.max_cost}, "
            f"used_tokens={self.used_tokens}, used_cost={self.used_cost:.6g})"
        )


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class _GraderUsage:
    __slots__ = (
        "budget_refused",
        "cached_rows",
        "cached_tokens",
        "calls",
        "completion_tokens",
        "errors",
        "latencies",
        "model",
        "prompt_tokens",
        "retries",
        "rows",
        "slowest",
        "unreported",
    )

    def __init__(self) -> None:
        self.model: str | None = None
        self.rows = self.calls = self.cached_rows = self.errors = self.retries = 0
        self.prompt_tokens = self.completion_tokens = self.cached_tokens = 0
        self.unreported = self.budget_refused = 0
        self.latencies = array("d")
        self.slowest: list[tuple[float, int]] = []  # min-heap of the SLOWEST largest

    def add(self, row: int, record: Mapping[str, Any]) -> None:
        self.model = record.get("model") or self.model
        calls = int(record.get("calls") or 0)
        if record.get("cached"):
            self.cached_rows += 1
        if not calls:
            return
        self.calls += calls
        self.retries += int(record.get("retries") or 0)
        self.prompt_tokens += int(record.get("prompt_tokens") or 0)
        self.completion_tokens += int(record.get("completion_tokens") or 0)
        self.cached_tokens += int(record.get("cached_tokens") or 0)
        if not record.get("reported", True):
            self.unreported += calls
        latency = float(record.get("latency_s") or 0.0)
        self.latencies.append(latency)
        item = (latency, row)
        if len(self.slowest) < SLOWEST:
            heapq.heappush(self.slowest, item)
        elif item > self.slowest[0]:
            heapq.heapreplace(self.slowest, item)

    def summary(self, prices: Mapping[str, Price] | None) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        out: dict[str, Any] = {
            "model": self.model,
            "rows": self.rows,
            "calls": self.calls,
            "cached_rows": self.cached_rows,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "retries": self.retries,
            "errors": self.errors,
            "budget_refused": self.budget_refused,
            "calls_without_usage": self.unreported,
            "latency_p50_s": _quantile(ordered, 0.5) if ordered else None,
            "latency_p95_s": _quantile(ordered, 0.95) if ordered else None,
            "latency_max_s": ordered[-1] if ordered else None,
            "slowest": [
                {"row": row, "latency_s": latency}
                for latency, row in sorted(self.slowest, key=lambda t: (-t[0], t[1]))
            ],
        }
        if prices:
            price = prices.get(self.model or "")
            out["cost"] = (
                price.cost(self.prompt_tokens, self.completion_tokens, self.cached_tokens)
                if price is not None
                else None
            )
        return out


class UsageSummary:
    """Per-grader calls, tokens, errors, latency and cost, folded as rows stream by.

    Only graders whose results carry usage records (LLM judges) are reported. Latency
    percentiles are over grades that made a call (cache hits and refused calls are
    left out); ``slowest`` lists the rows (index + seconds) of the slowest such calls.
    ``cost`` appears when a price table is given (``None`` for an unpriced model).
    """

    def __init__(self, prices: Mapping[str, Any] | None = None) -> None:
        self.prices = check_prices(prices)
        self._graders: dict[str, _GraderUsage] = {}
        self._errors: dict[str, int] = {}
        self._rows: dict[str, int] = {}

    def add(self, name: str, row: int, result: GraderResult) -> None:
        """One row's result of grader ``name`` (results without a usage record count
        only as rows and errors)."""
        self._rows[name] = self._rows.get(name, 0) + 1
        if isinstance(result, GraderError):
            self._errors[name] = self._errors.get(name, 0) + 1
        record = result.metadata.get(USAGE_KEY)
        if not isinstance(record, Mapping):
            return
        grader = self._graders.get(name)
        if grader is None:
            grader = self._graders[name] = _GraderUsage()
        grader.add(row, record)
        if isinstance(result, GraderError) and result.metadata.get("budget_exhausted"):
            grader.budget_refused += 1

    def add_results(self, results: Mapping[str, Iterable[GraderResult]], offset: int = 0) -> None:
        """Every column of a ``GradingResults``; ``offset`` is the index of its first row."""
        for name, column in results.items():
            for i, result in enumerate(column):
                self.add(name, offset + i, result)

    def summary(self) -> dict[str, dict[str, Any]]:
        """``{grader: {calls, prompt_tokens, ..., latency_p50_s, slowest, cost?}}``."""
        out = {}
        for name, grader in self._graders.items():
            grader.rows = self._rows.get(name, 0)
            grader.errors = self._errors.get(name, 0)
            out[name] = grader.summary(self.prices)
        return out

    def totals(self) -> dict[str, Any]:
        """Calls, tokens (and cost, when priced) over every reported grader."""
        per = self.summary().values()
        out: dict[str, Any] = {
            key: sum(s[key] for s in per)
            for key in ("calls", "cached_rows", *_TOKEN_KEYS, "total_tokens", "errors")
        }
        if self.prices:
            costs = [s.get("cost") for s in per]
            out["cost"] = None if any(c is None for c in costs) else sum(c for c in costs if c)
        return out

    def format(self) -> str:
        return format_usage(self.summary())


def format_usage(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """A fixed-width table of ``UsageSummary.summary()``: one line per judge grader."""
    priced = any("cost" in s for s in summary.values())
    head = (
        f"{'judge':<24} {'calls':>7} {'cached':>7} {'prompt tok':>11} {'compl tok':>10} "
        f"{'p50 s':>7} {'p95 s':>7} {'max s':>7} {'errors':>7}"
        + (f" {'cost $':>10}" if priced else "")
    )
    lines = [head, "-" * len(head)]

    def sec(value: float | None) -> str:
        return f"{value:>7.3f}" if value is not None else f"{'-':>7}"

    for name, s in summary.items():
        line = (
            f"{name[:24]:<24} {s['calls']:>7} {s['cached_rows']:>7} {s['prompt_tokens']:>11} "
            f"{s['completion_tokens']:>10} {sec(s['latency_p50_s'])} {sec(s['latency_p95_s'])} "
            f"{sec(s['latency_max_s'])} {s['errors']:>7}"
        )
        if priced:
            cost = s.get("cost")
            line += f" {cost:>10.4f}" if cost is not None else f" {'unpriced':>10}"
        lines.append(line)
    return "\n".join(lines)
