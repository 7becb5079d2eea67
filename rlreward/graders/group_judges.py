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
from typing import Any, Literal

from rlreward.cache import CachedGrade, ResultCache
from rlreward.errors import ConfigError
from rlreward.graders.group_judge_base import GroupJudge, JudgeCall
from rlreward.graders.judge_io import parse_pairwise, parse_scores
from rlreward.schema import GraderAbstention, GraderResult, GraderScore

__all__ = ["ListwiseJudgeGrader", "PairwiseJudgeGrader"]


class ListwiseJudgeGrader(GroupJudge):
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

    async def _one_order(
        self, query: Any, rows: list[dict[str, Any]], order: list[int]
    ) -> JudgeCall:
        messages = self.build_messages(query, [rows[i]["response"] for i in order])
        ids = list(range(1, len(order) + 1))
        key = self._key(messages)
        if key is not None and self.cache is not None:
            hits = [self.cache.get(f"{key}:{k}") for k in ids]
            if all(h is not None for h in hits):
                verdict = {k: (h.score, h.reason) for k, h in zip(ids, hits, strict=True) if h}
                return JudgeCall(verdict=verdict, cached=True)
        call = await self._ask(messages, lambda text: parse_scores(text, ids))
        if call.error is None and key is not None and self.cache is not None:
            for k, (score, reason) in call.verdict.items():
                self.cache.put(f"{key}:{k}", CachedGrade(score, reason, score))
        return call

    async def _judge_group(
        self, query: Any, rows: list[dict[str, Any]]
    ) -> tuple[list[GraderResult], list[JudgeCall]]:
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


class PairwiseJudgeGrader(GroupJudge):
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

    async def _one_pair(self, query: Any, first: Any, second: Any) -> JudgeCall:
        messages = self.build_messages(query, [first, second])
        key = self._key(messages)
        if key is not None and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return JudgeCall(verdict=(int(hit.score), hit.reason), cached=True)
        call = await self._ask(messages, parse_pairwise)
        if call.error is None and key is not None and self.cache is not None:
            winner, reason = call.verdict
            self.cache.put(key, CachedGrade(float(winner), reason, float(winner)))
        return call

    async def _judge_group(
        self, query: Any, rows: list[dict[str, Any]]
    ) -> tuple[list[GraderResult], list[JudgeCall]]:
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
