"""Group judges: an LLM judge that sees a prompt's rollouts together (listwise, pairwise).

Both are group graders (``rlreward.graders.group``): the runner hands each one whole
group of ``group_size`` rows sharing a ``query``; scores come back per row, in order.

- ``ListwiseJudgeGrader`` shows the query once and every distinct candidate as
  ``<response id="K">``, K = 1..N in the order shown, and asks for
  ``{"scores": [{"id": 1, "reason": "...", "score": <0..1>}, ...]}``. A reply without
  exactly one valid score per shown id is a failed call, never a guess.
- ``PairwiseJudgeGrader`` shows two candidates per call and asks for
  ``{"reason": "...", "winner": 1}``; a candidate's score is its win rate on [0, 1]
  (a tie counts 0.5) over the pairs it took part in.

Calls per group of M distinct candidates (identical responses are judged once and share
the result, with ``metadata["duplicate_of"]``):

====================================  ==============  =================================
setting                               calls           what cancels position bias
====================================  ==============  =================================
listwise, ``debias=False``            1               nothing
listwise, ``orders="reversed"``       2               a bias linear in position only
listwise, ``orders="rotations"``      M               any per-position shift: each
                                                      candidate takes each position once
pairwise ``all``, ``debias=False``    M(M-1)/2        nothing (the earlier row first)
pairwise ``all``, ``debias=True``     M(M-1)          both orders; disagreement = tie
pairwise ``circular``, no debias      M (1 if M=2)    nothing (each first in one pair)
pairwise ``circular``, ``debias``     2M (2 if M=2)   both orders; disagreement = tie
====================================  ==============  =================================

An unusable reply is asked again up to ``reply_retries`` times (HTTP failures are
retried inside the model); a call that still fails fails the whole group: every row
gets a GraderError with the reason, since a partial set of orders or pairs would
bring the bias back. Successful calls go into the optional ResultCache, keyed by the
exact messages sent, so a rerun repeats no paid call.

Every row carries a usage record under ``metadata["usage"]`` (calls, the tokens the
server reported, latency, retries; the shape of ``rlreward.usage``'s records): a
group's calls are counted once, on its first row, the other rows record 0 calls and
``counted_in_row: 0``. A budget given with ``set_budget`` (``exhausted()`` / ``spend``)
stops new calls once spent; the groups not judged fail naming it.

Group-relative scores rank a prompt's rollouts; they are not comparable across groups.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any, ClassVar, Literal

from rlreward.cache import CachedGrade, ResultCache, cache_key, resolve_cache
from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader
from rlreward.graders.fields import TEXT, FieldType
from rlreward.graders.judge_io import (
    JudgeReplyError,
    as_text,
    neutralise,
    parse_pairwise,
    parse_scores,
)
from rlreward.graders.llm import _as_model, _placeholders, load_prompt
from rlreward.models.base import ChatModelError
from rlreward.schema import GraderAbstention, GraderError, GraderResult, GraderScore

__all__ = ["USAGE_KEY", "ListwiseJudgeGrader", "PairwiseJudgeGrader", "usage_record"]

DEFAULT_CRITERIA = (
    "overall quality: how correctly, completely and helpfully the response answers the query"
)


#: where a grade's usage record lives (``rlreward.usage.USAGE_KEY`` where that module is)
USAGE_KEY = "usage"
_TOKENS = ("prompt_tokens", "completion_tokens", "cached_tokens")


# -- one judge call ----------------------------------------------------------------------
@dataclass
class _Call:
    """One judge call's outcome: the parsed verdict or why there is none."""

    verdict: Any = None
    error: str | None = None
    raw: str | None = None
    cached: bool = False
    attempts: int = 0
    requests: int = 0  # chat calls made (re-asks included)
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TOKENS, 0))
    reported: bool = True  # every reply reported its usage
    meta: dict[str, Any] = field(default_factory=dict)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _reply_tokens(usage: Any) -> dict[str, int] | None:
    """The token counts a reply reported (flat, or OpenAI's nested cached tokens)."""
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details")
    cached = usage.get("cached_tokens")
    if cached is None and isinstance(details, Mapping):
        cached = details.get("cached_tokens")
    return {
        "prompt_tokens": _count(usage.get("prompt_tokens")),
        "completion_tokens": _count(usage.get("completion_tokens")),
        "cached_tokens": _count(cached),
    }


def usage_record(
    model: str | None,
    calls: int,
    tokens: Mapping[str, int],
    latency_s: float,
    *,
    retries: int = 0,
    cached: bool = False,
    reported: bool = True,
) -> dict[str, Any]:
    """A usage record in the shape every judge grade carries under ``metadata["usage"]``."""
    return {
        "model": model,
        "calls": calls,
        **{k: tokens.get(k, 0) for k in _TOKENS},
        "latency_s": latency_s,
        "retries": retries,
        "cached": cached,
        "reported": reported,
    }


class _GroupJudge(BaseGrader):
    """What the listwise and pairwise judges share: fields, prompt, calls, cache, duplicates."""

    required_fields: tuple[str, ...] = ("query", "response")
    default_field_type: FieldType = TEXT
    score_range = (0.0, 1.0)
    system_file: ClassVar[str] = "group_system.txt"
    template_file: ClassVar[str] = ""
    schema_name: ClassVar[str] = ""

    def __init__(
        self,
        model: Any,
        name: str | None = None,
        cache: ResultCache | str | bool | None = None,
        *,
        group_size: int,
        group_key: str | None = None,
        debias: bool = True,
        criteria: str | None = None,
        template: str | None = None,
        reply_retries: int = 1,
    ) -> None:
        owner = type(self).__name__
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{owner}: name must be a non-empty string, got {name!r}")
            self.name = name
        rule = number_rule(group_size, integer=True, low=2)
        if rule is not None:
            raise ConfigError(
                f"{owner}: group_size must be {rule} (the rollouts per prompt), got {group_size!r}"
            )
        self.group_size = int(group_size)
        if group_key is not None and (not isinstance(group_key, str) or not group_key):
            raise ConfigError(f"{owner}: group_key must be a field name, got {group_key!r}")
        self.group_key = group_key
        if group_key is not None:
            self.required_fields = (*type(self).required_fields, group_key)
        if not isinstance(debias, bool):
            raise ConfigError(f"{owner}: debias must be true or false, got {debias!r}")
        self.debias = debias
        if criteria is not None and (not isinstance(criteria, str) or not criteria.strip()):
            raise ConfigError(f"{owner}: criteria must be non-empty text, got {criteria!r}")
        self.criteria = (criteria or DEFAULT_CRITERIA).strip()
        rule = number_rule(reply_retries, integer=True, low=0)
        if rule is not None:
            raise ConfigError(f"{owner}: reply_retries must be {rule}, got {reply_retries!r}")
        self.reply_retries = int(reply_retries)
        self.system_prompt = load_prompt(self.system_file)
        self.template = Template(
            template if template is not None else load_prompt(self.template_file)
        )
        try:  # a stray "$" fails here, not on every group
            self.template.substitute(dict.fromkeys(_placeholders(self.template), ""))
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"{owner}: bad prompt template ({exc}); placeholders are $criteria, $query, "
                "$responses, $count, $ids; write $$ for a literal dollar sign"
            ) from None
        text = self.system_prompt + "\x00" + self.template.template
        self.template_version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        self.model = _as_model(model, owner)
        self.cache = resolve_cache(cache)
        self.budget: Any = None

    def disable_cache(self) -> None:
        """Stop reading and writing the result cache (the CLI's ``--no-cache``)."""
        self.cache = None

    async def _aevaluate(self, **fields: Any) -> Any:
        return GraderError(
            self.name,
            f"{type(self).__name__} grades whole groups of {self.group_size} rows; grade the "
            "rows through a Reward or GradingRunner, which forms the groups",
        )

    # -- prompt ------------------------------------------------------------------------
    def build_messages(self, query: Any, responses: Sequence[Any]) -> list[dict[str, str]]:
        """The chat messages of one call: the query once, the responses numbered 1..n."""
        blocks = [
            f'<response id="{k}">\n{neutralise(as_text(r, "response"))}\n</response>'
            for k, r in enumerate(responses, 1)
        ]
        ids = ", ".join(str(k) for k in range(1, len(responses) + 1))
        user = self.template.substitute(
            criteria=self.criteria,
            query=neutralise(as_text(query, "query")),
            responses="\n\n".join(blocks),
            count=str(len(responses)),
            ids=ids,
        )
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": user},
        ]

    # -- the group -----------------------------------------------------------------------
    async def aevaluate_group(self, rows: list[dict[str, Any]]) -> list[GraderResult]:
        """One result per row of one whole group, in order (never raises)."""
        n = len(rows)
        if n != self.group_size:
            reason = f"group of {n} rows, group_size {self.group_size}: never judged smaller"
            return [GraderError(self.name, reason, {"group_error": True}) for _ in rows]
        for k, row in enumerate(rows):
            bad = self.check_fields(row)
            if bad is not None:
                reason = f"row {k} of the group: {bad.error}; the group was not judged"
                return [GraderError(self.name, reason, dict(bad.metadata)) for _ in rows]
        start = time.perf_counter()
        texts = [as_text(r["response"], "response") for r in rows]
        first: dict[str, int] = {}
        owner = [first.setdefault(t, k) for k, t in enumerate(texts)]  # row -> first copy
        distinct = sorted(set(owner))
        try:
            per_distinct, calls = await self._judge_group(
                rows[0]["query"], [rows[k] for k in distinct]
            )
        except Exception as exc:  # a bug in the scoring must not lose the batch
            reason = f"group judge raised {type(exc).__name__}: {exc}"
            return [GraderError(self.name, reason) for _ in rows]
        latency = time.perf_counter() - start
        requests = sum(c.requests for c in calls)
        attempts = sum(c.attempts for c in calls)
        common = {
            "calls": requests,
            "cached_calls": sum(c.cached for c in calls),
            "attempts": attempts,
            "distinct": len(distinct),
            "latency_s": latency,
        }
        tokens = {k: sum(c.tokens[k] for c in calls) for k in _TOKENS}
        group_usage = usage_record(
            self._model_id(),
            requests,
            tokens,
            latency,
            retries=max(attempts - requests, 0),
            cached=requests == 0 and bool(calls),
            reported=all(c.reported for c in calls),
        )
        # the group's calls are counted once, on its first row; the others point there
        rest = {**usage_record(self._model_id(), 0, {}, latency), "counted_in_row": 0}
        usage = [group_usage] + [rest] * (n - 1)
        failed = next((c for c in calls if c.error is not None), None)
        if failed is not None:
            k = calls.index(failed)
            meta = {**common, **failed.meta, "raw": failed.raw}
            reason = f"call {k + 1} of {len(calls)} failed: {failed.error}"
            return [
                GraderError(self.name, reason, {**meta, USAGE_KEY: dict(usage[i])})
                for i in range(n)
            ]
        out: list[GraderResult] = []
        for k in range(n):
            j = distinct.index(owner[k])
            result = per_distinct[j]
            meta = {**common, **result.metadata, USAGE_KEY: dict(usage[k])}
            if owner[k] != k:
                meta.update(
                    duplicate_of=owner[k],
                    note=f"identical to row {owner[k]} of the group: judged once, shared",
                )
            if isinstance(result, GraderScore):
                out.append(GraderScore(self.name, result.score, result.reason, meta))
            elif isinstance(result, GraderAbstention):
                out.append(GraderAbstention(self.name, result.reason, meta))
            else:
                out.append(GraderError(self.name, result.error, meta))
        return out

    async def _judge_group(
        self, query: Any, rows: list[dict[str, Any]]
    ) -> tuple[list[GraderResult], list[_Call]]:
        raise NotImplementedError

    # -- calls -------------------------------------------------------------------------
    def _key(self, messages: list[dict[str, str]]) -> str | None:
        if self.cache is None:
            return None
        return cache_key(
            model=self.model.cache_identity(),
            template=self.template_version,
            grader=type(self).__qualname__,
            messages=messages,
        )

    async def _ask(self, messages: list[dict[str, str]], parse: Any) -> _Call:
        """One judge call: the model's retries for HTTP faults, ``reply_retries`` re-asks
        for an unusable reply; the outcome as a value."""
        call = _Call()
        for _ in range(self.reply_retries + 1):
            refused = self.budget.exhausted() if self.budget is not None else None
            if refused:  # no new call once the budget is spent; never cached
                call.error = f"not judged: {refused}"
                call.meta = {"budget_exhausted": True}
                return call
            call.requests += 1
            try:
                reply = await self.model.achat(messages, response_format=self._response_format())
            except ChatModelError as exc:
                call.attempts += exc.attempts
                self._count(call, getattr(exc, "usage", None), exc.attempts, exc.latency_s)
                call.error = f"judge call failed: {exc}"
                call.meta = {"last_status": exc.last_status}
                return call
            call.attempts += reply.attempts
            self._count(call, reply.usage, reply.attempts, reply.latency_s)
            try:
                call.verdict = parse(reply.text)
            except JudgeReplyError as exc:
                call.error, call.raw = f"unusable judge reply: {exc}", reply.text
                continue
            call.error = call.raw = None
            return call
        return call

    def _count(self, call: _Call, usage: Any, attempts: int, latency_s: float) -> None:
        """Add one chat call's reported tokens to ``call`` and spend them from the budget."""
        tokens = _reply_tokens(usage)
        if tokens is None:
            call.reported = False
            tokens = dict.fromkeys(_TOKENS, 0)
        for k in _TOKENS:
            call.tokens[k] += tokens[k]
        if self.budget is not None:
            record = usage_record(
                self._model_id(),
                1,
                tokens,
                latency_s,
                retries=max(attempts - 1, 0),
                reported=usage is not None,
            )
            self.budget.spend(record)

    def _model_id(self) -> str | None:
        model = getattr(self.model, "model", None)
        return model if isinstance(model, str) else None

    def set_budget(self, budget: Any) -> None:
        """Share a usage budget (``exhausted() -> reason | None``, ``spend(record)``) with
        this judge: once spent, no new call starts and the group fails naming it."""
        if budget is not None:
            check = getattr(budget, "check_model", None)
            if callable(check):
                check(self._model_id(), f"{type(self).__name__} {self.name!r}")
        self.budget = budget

    def _response_format(self) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {"name": self.schema_name, "strict": True, "schema": self._schema()},
        }

    def _schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(
            group_size=self.group_size,
            group_key=self.group_key,
            debias=self.debias,
            template_version=self.template_version,
        )
        describe = getattr(self.model, "describe", None)
        info["model"] = describe() if callable(describe) else getattr(self.model, "model", None)
        return info

    async def aclose(self) -> None:
        """Commit cached calls to disk (the model's client is closed by its owner)."""
        if self.cache is not None:
            await self.cache.aflush()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, group_size={self.group_size}, "
            f"debias={self.debias}, model={self.model!r})"
        )


class ListwiseJudgeGrader(_GroupJudge):
    """Scores a group's responses in one call on [0, 1] (``debias``: several orders,
    averaged per candidate; see the module docstring for the calls each costs).

    Args:
        model: the judge (``OpenAIChatModel``, a model id, or a dict of its arguments).
        group_size: rows per group (the rollouts per prompt, e.g. GRPO's num_generations).
        group_key: a row field holding the group id (e.g. verl's ``uid``); without it,
            consecutive rows with the same ``query`` form the groups.
        debias: ask with several presentation orders and average per candidate.
        orders: ``"rotations"`` (M calls, every candidate in every position once) or
            ``"reversed"`` (2 calls, forward and backward: cancels only a bias that is
            linear in position, not e.g. a bonus for position 1).
        criteria: what the judge scores (plain text, trusted).
        reply_retries: re-asks after an unusable reply before the group fails.
        cache, name, template: as for ``LLMGrader``.
    """

    name = "listwise_judge"
    template_file = "listwise.txt"
    schema_name = "group_scores"

    def __init__(
        self,
        model: Any,
        name: str | None = None,
        cache: ResultCache | str | bool | None = None,
        *,
        group_size: int,
        group_key: str | None = None,
        debias: bool = True,
        orders: Literal["rotations", "reversed"] = "rotations",
        criteria: str | None = None,
        template: str | None = None,
        reply_retries: int = 1,
    ) -> None:
        if orders not in ("rotations", "reversed"):
            raise ConfigError(
                f"ListwiseJudgeGrader: orders must be 'rotations' or 'reversed', got {orders!r}"
            )
        self.orders = orders
        super().__init__(
            model,
            name,
            cache,
            group_size=group_size,
            group_key=group_key,
            debias=debias,
            criteria=criteria,
            template=template,
            reply_retries=reply_retries,
        )

    def presentation_orders(self, m: int) -> list[list[int]]:
        """The orders the M distinct candidates are shown in (indices into them)."""
        forward = list(range(m))
        if not self.debias or m == 1:
            return [forward]
        if self.orders == "reversed":
            return [forward, forward[::-1]]
        return [forward[k:] + forward[:k] for k in range(m)]

    def _schema(self) -> dict[str, Any]:
        entry = {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "reason": {"type": "string"},
                "score": {"type": "number"},
            },
            "required": ["id", "reason", "score"],
            "additionalProperties": False,
        }
        return {
            "type": "object",
            "properties": {"scores": {"type": "array", "items": entry}},
            "required": ["scores"],
            "additionalProperties": False,
        }

    async def _one_order(self, query: Any, rows: list[dict[str, Any]], order: list[int]) -> _Call:
        messages = self.build_messages(query, [rows[i]["response"] for i in order])
        ids = list(range(1, len(order) + 1))
        key = self._key(messages)
        if key is not None and self.cache is not None:
            hits = [self.cache.get(f"{key}:{k}") for k in ids]
            if all(h is not None for h in hits):
                verdict = {k: (h.score, h.reason) for k, h in zip(ids, hits, strict=True) if h}
                return _Call(verdict=verdict, cached=True)
        call = await self._ask(messages, lambda text: parse_scores(text, ids))
        if call.error is None and key is not None and self.cache is not None:
            for k, (score, reason) in call.verdict.items():
                self.cache.put(f"{key}:{k}", CachedGrade(score, reason, score))
        return call

    async def _judge_group(
        self, query: Any, rows: list[dict[str, Any]]
    ) -> tuple[list[GraderResult], list[_Call]]:
        orders = self.presentation_orders(len(rows))
        calls = list(await asyncio.gather(*(self._one_order(query, rows, o) for o in orders)))
        if any(c.error is not None for c in calls):
            return [], calls
        results: list[GraderResult] = []
        for i in range(len(rows)):
            scores: list[float] = []
            positions: list[int] = []
            reasons: list[str] = []
            for order, call in zip(orders, calls, strict=True):
                pos = order.index(i) + 1
                score, reason = call.verdict[pos]
                scores.append(score)
                positions.append(pos)
                reasons.append(reason)
            meta = {"judge_scores": scores, "positions": positions}
            results.append(GraderScore(self.name, sum(scores) / len(scores), reasons[0], meta))
        return results, calls


class PairwiseJudgeGrader(_GroupJudge):
    """Compares a group's responses two at a time; a response's score is its win rate
    on [0, 1] (a tie counts 0.5; ``debias``: both orders, a disagreement is a tie).

    Args:
        pairs: ``"all"`` (every pair: M(M-1)/2 per order) or ``"circular"`` (each
            candidate against the next one, the last against the first: M pairs).
        Others as for ``ListwiseJudgeGrader``. A group whose responses are all identical
        has nothing to compare: every row abstains (no made-up 0.5).
    """

    name = "pairwise_judge"
    template_file = "pairwise.txt"
    schema_name = "pairwise_verdict"

    def __init__(
        self,
        model: Any,
        name: str | None = None,
        cache: ResultCache | str | bool | None = None,
        *,
        group_size: int,
        group_key: str | None = None,
        debias: bool = True,
        pairs: Literal["all", "circular"] = "all",
        criteria: str | None = None,
        template: str | None = None,
        reply_retries: int = 1,
    ) -> None:
        if pairs not in ("all", "circular"):
            raise ConfigError(
                f"PairwiseJudgeGrader: pairs must be 'all' or 'circular', got {pairs!r}"
            )
        self.pairs = pairs
        super().__init__(
            model,
            name,
            cache,
            group_size=group_size,
            group_key=group_key,
            debias=debias,
            criteria=criteria,
            template=template,
            reply_retries=reply_retries,
        )

    def schedule(self, m: int) -> list[tuple[int, int]]:
        """The pairs compared among M distinct candidates (first shown first)."""
        if self.pairs == "all":
            return [(i, j) for i in range(m) for j in range(i + 1, m)]
        if m < 2:
            return []
        pairs = [(i, (i + 1) % m) for i in range(m)]
        return pairs[:1] if m == 2 else pairs

    def _schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "reason": {"type": "string"},
                "winner": {"type": "integer", "enum": [1, 2]},
            },
            "required": ["reason", "winner"],
            "additionalProperties": False,
        }

    async def _one_pair(self, query: Any, first: Any, second: Any) -> _Call:
        messages = self.build_messages(query, [first, second])
        key = self._key(messages)
        if key is not None and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return _Call(verdict=(int(hit.score), hit.reason), cached=True)
        call = await self._ask(messages, parse_pairwise)
        if call.error is None and key is not None and self.cache is not None:
            winner, reason = call.verdict
            self.cache.put(key, CachedGrade(float(winner), reason, float(winner)))
        return call

    async def _judge_group(
        self, query: Any, rows: list[dict[str, Any]]
    ) -> tuple[list[GraderResult], list[_Call]]:
        m = len(rows)
        if m == 1:
            reason = "every response of the group is identical: nothing to compare"
            return [GraderAbstention(self.name, reason)], []
        pairs = self.schedule(m)
        shown = [(a, b) for a, b in pairs] + ([(b, a) for a, b in pairs] if self.debias else [])
        responses = [r["response"] for r in rows]
        calls = list(
            await asyncio.gather(
                *(self._one_pair(query, responses[a], responses[b]) for a, b in shown)
            )
        )
        if any(c.error is not None for c in calls):
            return [], calls
        # the winner of each pair, per order: the candidate's index (None: disagreement)
        points = [0.0] * m
        games = [0] * m
        record: list[dict[str, int]] = [{"wins": 0, "losses": 0, "ties": 0} for _ in range(m)]
        n = len(pairs)
        for p, (a, b) in enumerate(pairs):
            first = a if calls[p].verdict[0] == 1 else b
            winner: int | None = first
            if self.debias:
                second = b if calls[n + p].verdict[0] == 1 else a
                winner = first if first == second else None
            games[a] += 1
            games[b] += 1
            if winner is None:
                points[a] += 0.5
                points[b] += 0.5
                record[a]["ties"] += 1
                record[b]["ties"] += 1
            else:
                loser = b if winner == a else a
                points[winner] += 1.0
                record[winner]["wins"] += 1
                record[loser]["losses"] += 1
        results: list[GraderResult] = []
        for i in range(m):
            reason = (
                f"won {record[i]['wins']}, lost {record[i]['losses']}, tied {record[i]['ties']} "
                f"of {games[i]} comparisons"
            )
            meta = {**record[i], "comparisons": games[i]}
            results.append(GraderScore(self.name, points[i] / games[i], reason, meta))
        return results, calls
