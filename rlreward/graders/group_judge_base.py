"""The base of the group judges: one group's calls, cache, duplicates, usage and budget.

``GroupJudge`` does what the listwise and pairwise judges share (``group_judges``): it
checks a whole group's fields, judges identical responses once, asks the judge through
``OpenAIChatModel.achat`` (HTTP retries inside the model, ``reply_retries`` re-asks for
an unusable reply), caches successful calls by their exact messages, records usage per
row and honours a usage budget. A subclass builds its calls and turns their verdicts
into one result per distinct response (``_judge_group``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any, ClassVar

from rlreward.cache import ResultCache, cache_key, resolve_cache
from rlreward.checks import number_rule
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader
from rlreward.graders.fields import ANY, TEXT, FieldType
from rlreward.graders.judge_io import JudgeReplyError, as_text, neutralise
from rlreward.graders.llm import _as_model, _placeholders, load_prompt
from rlreward.models.base import ChatModelError
from rlreward.schema import GraderAbstention, GraderError, GraderResult, GraderScore

__all__ = ["DEFAULT_CRITERIA", "USAGE_KEY", "GroupJudge", "JudgeCall", "usage_record"]

DEFAULT_CRITERIA = (
    "overall quality: how correctly, completely and helpfully the response answers the query"
)


#: where a grade's usage record lives (``rlreward.usage.USAGE_KEY`` where that module is)
USAGE_KEY = "usage"
_TOKENS = ("prompt_tokens", "completion_tokens", "cached_tokens")


# -- one judge call ----------------------------------------------------------------------
@dataclass
class JudgeCall:
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


class GroupJudge(BaseGrader):
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
            self.field_types = {**type(self).field_types, group_key: ANY}  # an id, not text
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
    ) -> tuple[list[GraderResult], list[JudgeCall]]:
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

    async def _ask(self, messages: list[dict[str, str]], parse: Any) -> JudgeCall:
        """One judge call: the model's retries for HTTP faults, ``reply_retries`` re-asks
        for an unusable reply; the outcome as a value."""
        call = JudgeCall()
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

    def _count(self, call: JudgeCall, usage: Any, attempts: int, latency_s: float) -> None:
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
