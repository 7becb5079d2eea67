"""LLMGrader: a grader that asks a judge model for ``{"reason", "score"}`` and checks it.

A subclass names a prompt template in ``prompts/`` (a ``.txt`` beside this file, using
``$field`` placeholders), its fields, the judge's scale and its own score range. The
base does the rest: data fields are escaped and placed between tags that the system
prompt declares to be data; the judge is asked for JSON (a json_schema response format
where the server takes one); the reply's score is range-checked on the judge's scale
and mapped linearly onto the grader's range. Every field is checked to be text (a
reference answer may be a number) before any call: ``None``, a dict, a bool or a NaN
is a GraderError for that row, never rendered into a prompt. A call that fails for good, or a reply
that does not parse or is out of range, is a GraderError carrying the raw reply —
never a score. Successful grades go into an optional ResultCache; identical concurrent
requests share one call.

Every result carries ``metadata["usage"]`` (``rlreward.usage.call_usage``): calls,
tokens the server reported, latency and retries; a cached or shared grade counts 0
calls. With a ``UsageBudget`` no new call starts once the budget is spent: the grade is
a GraderError naming the budget (never cached, so a rerun with more budget makes it).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Mapping
from importlib import resources
from string import Template
from typing import Any, ClassVar

from rlreward.cache import CachedGrade, KeyMaker, ResultCache, SingleFlight, resolve_cache
from rlreward.errors import ConfigError
from rlreward.graders.base import BaseGrader
from rlreward.graders.fields import TEXT, TEXT_OR_NUMBER, FieldType
from rlreward.graders.judge_io import JudgeReplyError, as_text, neutralise, parse_judgement
from rlreward.models.base import ChatModel, ChatModelError
from rlreward.schema import (
    GraderAbstention,
    GraderError,
    GraderResult,
    GraderScore,
    ScoreRange,
    check_score_range,
)
from rlreward.usage import USAGE_KEY, UsageBudget, call_usage

__all__ = ["LLMGrader", "load_prompt"]

NOT_GIVEN = "(not given)"


@functools.cache
def load_prompt(name: str) -> str:
    """The text of ``rlreward/graders/prompts/<name>`` (shipped as package data)."""
    try:
        return (resources.files("rlreward.graders") / "prompts" / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"prompt template {name!r} not found in rlreward/graders/prompts"
        ) from None


def _as_model(model: Any, owner: str) -> ChatModel:
    if isinstance(model, str):
        from rlreward.models.openai import OpenAIChatModel

        return OpenAIChatModel(model)
    if isinstance(model, Mapping):
        from rlreward.models.openai import OpenAIChatModel

        return OpenAIChatModel(**model)
    if not isinstance(model, ChatModel):
        raise ConfigError(
            f"{owner}: model must be an OpenAIChatModel (or anything with achat() and "
            f"cache_identity()), a model id or a dict of OpenAIChatModel arguments, "
            f"got {type(model).__name__}"
        )
    return model


class LLMGrader(BaseGrader):
    """Base of LLM-judge graders; subclasses set ``template_file`` and their fields.

    Args:
        model: the judge (``OpenAIChatModel``, a model id, or a dict of its arguments).
        name: key of this grader's results (default: the class's ``name``).
        cache: ``None`` (default: no cache), a ResultCache, a path, ``True`` for
            ``.rlreward/cache.sqlite``, or ``":memory:"``.
        dedupe: identical concurrent requests share one call.
        template: prompt template text replacing the shipped one.
        budget: a ``UsageBudget`` shared with other judges: once spent, no new call
            starts and the grade is a GraderError naming the budget.
    """

    template_file: ClassVar[str] = ""
    system_file: ClassVar[str] = "system.txt"
    #: (low, high) of the score the judge is asked for; mapped onto ``score_range``.
    judge_scale: tuple[float, float] = (1.0, 5.0)
    #: every field shown to a judge is text; a reference answer may also be a number
    field_types: Mapping[str, FieldType] = {"reference_response": TEXT_OR_NUMBER}
    default_field_type: FieldType = TEXT

    def __init__(
        self,
        model: Any,
        name: str | None = None,
        cache: ResultCache | str | bool | None = None,
        *,
        dedupe: bool = True,
        template: str | None = None,
        budget: UsageBudget | None = None,
    ) -> None:
        owner = f"{type(self).__name__}"
        self.model = _as_model(model, owner)
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{owner}: name must be a non-empty string, got {name!r}")
            self.name = name
        if template is None and not self.template_file:
            raise ConfigError(f"{owner}: no prompt template; set template_file or pass template=")
        self.system_prompt = load_prompt(self.system_file)
        self.template = Template(
            template if template is not None else load_prompt(self.template_file)
        )
        try:  # a stray "$" fails here, not on every sample
            self.template.substitute(dict.fromkeys(_placeholders(self.template), ""))
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"{owner}: bad prompt template ({exc}); placeholders are $field or ${{field}}, "
                "write $$ for a literal dollar sign"
            ) from None
        text = self.system_prompt + "\x00" + self.template.template
        #: a hash of the prompt text: editing a prompt invalidates its cached grades
        self.template_version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        self._compiled = _CompiledTemplate(self.template)
        self._keys = KeyMaker()
        self.cache = resolve_cache(cache)
        self.dedupe = dedupe
        self.budget: UsageBudget | None = None
        if budget is not None:
            self.set_budget(budget)
        self._flight = SingleFlight()
        self._response_format = self._schema()

    # -- configuration -------------------------------------------------------------------
    def cache_params(self) -> dict[str, Any]:
        """Grader settings that change the verdict (beyond the template); for cache keys."""
        return {"judge_scale": list(self.judge_scale), "score_range": self.score_range}

    def set_budget(self, budget: UsageBudget | None) -> None:
        """Share ``budget`` (a UsageBudget, or None for no limit) with this judge."""
        if budget is not None:
            if not isinstance(budget, UsageBudget):
                raise ConfigError(
                    f"{type(self).__name__}: budget must be a UsageBudget, "
                    f"got {type(budget).__name__}"
                )
            budget.check_model(self._model_id(), f"{type(self).__name__} {self.name!r}")
        self.budget = budget

    def _model_id(self) -> str | None:
        model = getattr(self.model, "model", None)
        return model if isinstance(model, str) else None

    def disable_cache(self) -> None:
        """Stop reading and writing the result cache (the CLI's ``--no-cache``)."""
        self.cache = None

    def _schema(self) -> dict[str, Any]:
        properties = {"reason": {"type": "string"}, "score": {"type": "number"}}
        schema = {
            "type": "object",
            "properties": properties,
            "required": ["reason", "score"],
            "additionalProperties": False,
        }
        return {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "strict": True, "schema": schema},
        }

    # -- prompt --------------------------------------------------------------------------
    def template_values(self, fields: Mapping[str, Any]) -> dict[str, str]:
        """Placeholder values: escaped field texts plus the judge's scale."""
        values = {k: neutralise(as_text(v, k)) for k, v in fields.items()}
        low, high = self.judge_scale
        values.update(low=f"{low:g}", high=f"{high:g}")
        return values

    def build_messages(self, fields: Mapping[str, Any]) -> list[dict[str, str]]:
        """The chat messages sent to the judge for one sample."""
        values = self.template_values(fields)
        compiled = self._compiled
        if compiled.template is not self.template:  # the template was replaced
            compiled = self._compiled = _CompiledTemplate(self.template)
        user = compiled.render(values)
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": user},
        ]

    # -- grading -------------------------------------------------------------------------
    def normalise(self, judge_score: float) -> float:
        """Map a score on ``judge_scale`` linearly onto ``score_range``."""
        rng = self.score_range
        if rng is None:
            return judge_score
        low, high = self.judge_scale
        return rng[0] + (judge_score - low) / (high - low) * (rng[1] - rng[0])

    async def _aevaluate(self, **fields: Any) -> GraderResult:
        start = time.perf_counter()
        meta: dict[str, Any]
        key = None
        if self.cache is not None or self.dedupe:
            key = self._keys.key(
                fields,
                model=self.model.cache_identity(),
                template=self.template_version,
                grader=type(self).__qualname__,
                params=self.cache_params(),
            )
        if self.cache is not None and key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                latency = time.perf_counter() - start
                meta = {"cached": True, "attempts": 0, "latency_s": latency}
                meta[USAGE_KEY] = call_usage(
                    self._model_id(), calls=0, usage=None, latency_s=latency, cached=True
                )
                if hit.judge_score is not None:
                    meta["judge_score"] = hit.judge_score
                return GraderScore(self.name, hit.score, hit.reason, meta)
        if not self.dedupe or key is None:
            return await self._judge(fields, key)
        result, shared = await self._flight.run(key, lambda: self._judge(fields, key))
        if not shared:
            return result
        meta = {**result.metadata, "cached": True, "shared": True, "attempts": 0}
        meta["latency_s"] = latency = time.perf_counter() - start
        # the call is counted once, in the result of the caller that made it
        meta[USAGE_KEY] = call_usage(
            self._model_id(), calls=0, usage=None, latency_s=latency, cached=True
        )
        if isinstance(result, GraderScore):
            return GraderScore(self.name, result.score, result.reason, meta)
        if isinstance(result, GraderAbstention):
            return GraderAbstention(self.name, result.reason, meta)
        return GraderError(self.name, result.error, meta)

    async def _judge(self, fields: Mapping[str, Any], key: str | None) -> GraderResult:
        """One judge call (with the model's retries) turned into a result value."""
        budget = self.budget
        if budget is not None:
            refused = budget.exhausted()
            if refused is not None:
                usage = call_usage(self._model_id(), calls=0, usage=None, latency_s=0.0)
                return GraderError(
                    self.name,
                    refused,
                    {"cached": False, "budget_exhausted": True, USAGE_KEY: usage},
                )
        messages = self.build_messages(fields)
        try:
            reply = await self.model.achat(messages, response_format=self._response_format)
        except ChatModelError as exc:
            usage = call_usage(
                self._model_id(),
                calls=1,
                usage=getattr(exc, "usage", None),
                latency_s=exc.latency_s,
                retries=max(exc.attempts - 1, 0),
            )
            if budget is not None:
                budget.spend(usage)
            return GraderError(
                self.name,
                f"judge call failed: {exc}",
                {
                    "cached": False,
                    "attempts": exc.attempts,
                    "last_status": exc.last_status,
                    "latency_s": exc.latency_s,
                    "retry_reasons": list(exc.retry_reasons),
                    USAGE_KEY: usage,
                },
            )
        usage = call_usage(
            self._model_id(),
            calls=1,
            usage=reply.usage,
            latency_s=reply.latency_s,
            retries=reply.attempts - 1,
        )
        if budget is not None:
            budget.spend(usage)
        meta: dict[str, Any] = {
            "cached": False,
            "attempts": reply.attempts,
            "latency_s": reply.latency_s,
            "structured": reply.structured,
            USAGE_KEY: usage,
        }
        if reply.retry_reasons:
            meta["retry_reasons"] = list(reply.retry_reasons)
        try:
            judge_score, reason = parse_judgement(reply.text, self.judge_scale)
        except JudgeReplyError as exc:
            return GraderError(
                self.name, f"unusable judge reply: {exc}", {**meta, **exc.extra, "raw": reply.text}
            )
        score = self.normalise(judge_score)
        if self.cache is not None and key is not None:
            self.cache.put(key, CachedGrade(score, reason, judge_score))
        return GraderScore(self.name, score, reason, {**meta, "judge_score": judge_score})

    async def aclose(self) -> None:
        """Commit cached grades to disk (the model's client is closed by its owner)."""
        if self.cache is not None:
            await self.cache.aflush()

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(judge_scale=list(self.judge_scale), template_version=self.template_version)
        describe = getattr(self.model, "describe", None)
        info["model"] = describe() if callable(describe) else getattr(self.model, "model", None)
        return info

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r})"


class _CompiledTemplate:
    """A ``string.Template`` split once into literal text and placeholder names, so a
    render is one join instead of a regex pass with a callback per placeholder (the
    same text as ``substitute``; a placeholder without a value reads "(not given)")."""

    __slots__ = ("literals", "names", "template")

    def __init__(self, template: Template) -> None:
        self.template = template
        text = template.template
        literals: list[str] = []
        names: list[str] = []
        pending: list[str] = []
        last = 0
        for m in template.pattern.finditer(text):
            pending.append(text[last : m.start()])
            last = m.end()
            if m.group("escaped") is not None:
                pending.append(template.delimiter)
                continue
            name = m.group("named") or m.group("braced")
            if name is None:  # LLMGrader.__init__ refuses such templates first
                raise ConfigError(f"bad placeholder at offset {m.start()} of the prompt template")
            literals.append("".join(pending))
            names.append(name)
            pending = []
        pending.append(text[last:])
        literals.append("".join(pending))
        self.literals = tuple(literals)
        self.names = tuple(names)

    def render(self, values: Mapping[str, str]) -> str:
        parts = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            parts.append(values.get(name, NOT_GIVEN))
            parts.append(literal)
        return "".join(parts)


def _placeholders(template: Template) -> set[str]:
    return {
        m.group("named") or m.group("braced") for m in template.pattern.finditer(template.template)
    } - {None}


def scale_pair(value: Any, owner: str, what: str = "scale") -> ScoreRange:
    """Validate a ``(low, high)`` judge scale (same rules as a score range)."""
    checked = check_score_range(value, f"{owner} {what}")
    if checked is None:
        raise ConfigError(f"{owner}: {what} must be a (low, high) pair, got None")
    return checked
