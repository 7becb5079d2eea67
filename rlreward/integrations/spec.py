"""RewardSpec: a reward defined once (YAML or dict), loaded by the CLI, VERL and TRL.

Format (every key but ``graders`` optional)::

    judge_model: {model: qwen3-32b, base_url: http://127.0.0.1:8000/v1}  # LLM judges' model
    cache: .rlreward/cache.sqlite        # judge result cache path, or false
    graders:
      relevance: {type: relevance}                           # a built-in grader type
      correctness: {type: correctness, mapper: {reference_response: ground_truth}}
      length: {type: reward_function, function: length, params: {target_min: 20}}
      mine: {callable: "my_pkg.rewards:score", score_range: [0, 1], higher_is_better: true}
    aggregators:
      - {type: weighted_sum, name: reward, weights: {relevance: 0.5, length: 0.5}}
      - {callable: "my_pkg.rewards:min_reward"}
    runner: {max_concurrency: 32, timeout: 60}
    prices: {qwen3-32b: {prompt: 0.1, completion: 0.3}}   # $ per 1M tokens, for cost
    budget: {max_tokens: 2000000, max_cost: 5.0}          # shared by every judge

The spec is checked whole against its typed schema (``spec_schema``: one pydantic model
per grader ``type``, unknown keys refused, duplicate YAML keys refused) before anything
is built; each problem is a ConfigError naming its path, the value and the fix.
``type`` names map to classes in ``GRADER_TYPES`` (``"module:attr"``, imported on use,
so a reward_model grader alone pulls in torch). ``callable`` is ``"module:attr"`` or
``"path/to/file.py:attr"`` (relative to the spec).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlreward.cache import ResultCache, resolve_cache
from rlreward.errors import ConfigError, UnknownNameError
from rlreward.graders.function import FunctionGrader
from rlreward.integrations import spec_schema as schema
from rlreward.integrations.reserved import reserved_reason
from rlreward.runner import GraderConfig, GradingRunner
from rlreward.usage import UsageBudget, check_prices

__all__ = [
    "AGGREGATOR_TYPES",
    "GRADER_TYPES",
    "RewardSpec",
    "SpecContext",
    "load_callable",
    "load_spec",
]

#: grader ``type`` -> "module:attr" of a class or factory (extended by each grader family).
GRADER_TYPES: dict[str, str] = {
    "function": "rlreward.graders.function:FunctionGrader",
    "reward_function": "rlreward.graders.reward_function:RewardFunctionGrader",
    "reward_model": "rlreward.graders.reward_model:RewardModelGrader",
    # LLM judges (issue 3): use the spec's judge_model and cache (on by default)
    "harmfulness": "rlreward.graders.judges:HarmfulnessGrader",
    "relevance": "rlreward.graders.judges:RelevanceGrader",
    "correctness": "rlreward.graders.judges:CorrectnessGrader",
    "instruction_following": "rlreward.graders.judges:InstructionFollowingGrader",
    "hallucination": "rlreward.graders.judges:HallucinationGrader",
    "rubric": "rlreward.graders.judges:RubricGrader",
}
AGGREGATOR_TYPES: dict[str, str] = {
    "weighted_sum": "rlreward.aggregators:WeightedSumAggregator",
}


def load_callable(ref: str, base_dir: Path | None = None) -> Any:
    """Import ``"pkg.module:attr"`` or ``"path/file.py:attr"``."""
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigError(
            f"callable reference {ref!r} must look like 'package.module:name' or 'file.py:name'"
        )
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ConfigError(f"callable reference {ref!r}: file {str(path)!r} not found")
        mod_name = f"_rlreward_user_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ConfigError(
                f"callable reference {ref!r}: cannot import {target!r} ({exc})"
            ) from exc
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ConfigError(
            f"callable reference {ref!r}: {target!r} has no attribute {attr!r}"
        ) from None
    return obj


@dataclass
class SpecContext:
    """What grader builders share while one spec is built (one judge model, one cache)."""

    base_dir: Path = field(default_factory=Path.cwd)
    judge_model: Mapping[str, Any] | None = None
    cache: str | bool | None = None
    shared: dict[str, Any] = field(default_factory=dict)


_ENV_RE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _expand_env(value: Any) -> Any:
    """``${VAR}`` / ``${VAR:-default}`` in judge_model strings."""
    if not isinstance(value, str):
        return value
    return _ENV_RE.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


def _options(entry: Any, *skip: str) -> dict[str, Any]:
    """The keys a spec entry set (defaults stay with the built object)."""
    return entry.model_dump(exclude_unset=True, exclude={"type", "mapper", *skip})


def _judge_model(override: Any, ctx: SpecContext, where: str) -> Any:
    """One shared OpenAIChatModel per distinct set of options."""
    kwargs = {k: v for k, v in (ctx.judge_model or {}).items() if v is not None}
    if isinstance(override, str):
        kwargs["model"] = override
    elif isinstance(override, Mapping):
        kwargs.update({k: v for k, v in override.items() if v is not None})
    kwargs = {k: _expand_env(v) for k, v in kwargs.items()}
    if not kwargs.get("model"):
        raise ConfigError(
            f"{where}: an LLM judge needs a model; add a top-level `judge_model: {{model: ...}}` "
            "to the spec (base_url and api key default to OPENAI_BASE_URL / OPENAI_API_KEY) "
            "or `model: <id>` to this grader"
        )
    key = "openai_chat_model:" + json.dumps(kwargs, sort_keys=True, default=str)
    model = ctx.shared.get(key)
    if model is None:
        from rlreward.models.openai import OpenAIChatModel

        try:
            model = ctx.shared[key] = OpenAIChatModel(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{where}.model: {exc}") from None
    return model


def _cache(value: Any, where: str, base_dir: Path) -> ResultCache | None:
    """The judge cache, opened now: an unusable path fails at load, not after grading."""
    try:
        return resolve_cache(value, default_on=True)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"{where}: cannot open the judge cache {value!r} ({type(exc).__name__}: {exc}); "
            "give a writable file path (relative to the working directory), or `cache: false`"
        ) from None


def _check_params(function: str, params: Mapping[str, Any], where: str) -> None:
    """Name each unknown parameter of a registered rule function by its path."""
    from rlreward.rewards.registry import RewardRegistry

    try:
        fn = RewardRegistry().get_reward_function(function)
    except UnknownNameError as exc:
        raise UnknownNameError(
            f"reward function (in {where}.function)", function, exc.known
        ) from None
    init = type(fn).__init__
    if init is object.__init__:
        return
    sig = inspect.signature(init)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    allowed = [n for n in sig.parameters if n != "self"]
    for key in params:
        if key not in allowed:
            raise ConfigError(
                f"{where}.params.{key}: reward function {function!r} has no parameter {key!r}; "
                f"its parameters: {', '.join(allowed) or '(none)'}"
            )


def _build_grader(name: str, entry: Any, ctx: SpecContext) -> GraderConfig:
    where = f"graders.{name}"
    reason = reserved_reason(name)
    if reason:
        raise ConfigError(f"{where}: {reason}")
    kind = entry.type
    try:
        if isinstance(entry, schema.FunctionGraderSpec):
            ref = entry.callable
            fn = load_callable(ref, ctx.base_dir) if isinstance(ref, str) else ref
            grader: Any = FunctionGrader(fn, name=name, **_options(entry, "callable"))
        elif isinstance(entry, schema.RewardFunctionSpec):
            _check_params(entry.function, entry.params, where)
            opts = _options(entry, "function", "params")
            cls = load_callable(GRADER_TYPES[kind])
            grader = cls(entry.function, name=name, **opts, **entry.params)
        elif isinstance(entry, schema.RewardModelSpec):
            opts = _options(entry, "model")
            model = entry.model
            if not os.path.isabs(model) and (ctx.base_dir / model).exists():
                model = str(ctx.base_dir / model)
            grader = load_callable(GRADER_TYPES[kind])(model, name=name, **opts)
        else:  # an LLM judge
            opts = _options(entry, "model", "cache")
            model = _judge_model(_options(entry).get("model"), ctx, where)
            setting = entry.cache if "cache" in entry.model_fields_set else ctx.cache
            cache = _cache(setting, f"{where}.cache" if "cache" in opts else "cache", ctx.base_dir)
            grader = load_callable(GRADER_TYPES[kind])(model, name=name, cache=cache, **opts)
    except UnknownNameError as exc:
        if f"(in {where}" in str(exc):
            raise
        raise UnknownNameError(f"{exc.kind} (in {where})", exc.name, exc.known) from None
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(
            text if text.startswith((where, "cache")) else f"{where}: {text}"
        ) from None
    except TypeError as exc:  # a custom class in GRADER_TYPES with other arguments
        raise ConfigError(f"{where}: bad options for type {kind!r}: {exc}") from None
    mapper: Any = entry.mapper
    if isinstance(mapper, str):
        mapper = load_callable(mapper, ctx.base_dir)
    return GraderConfig(grader=grader, mapper=mapper)


def _build_aggregator(i: int, entry: Any, ctx: SpecContext) -> Any:
    where = f"aggregators[{i}]"
    if isinstance(entry, schema.CallableAggregatorSpec):
        ref = entry.callable
        agg = load_callable(ref, ctx.base_dir) if isinstance(ref, str) else ref
        if not callable(agg):
            raise ConfigError(f"{where}.callable: {ref!r} is not callable")
    else:
        try:
            agg = load_callable(AGGREGATOR_TYPES[entry.type])(**_options(entry))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    name = getattr(agg, "name", None) or getattr(agg, "__name__", None)
    reason = reserved_reason(name) if isinstance(name, str) else None
    if reason:
        raise ConfigError(f"{where}.name: {reason}")
    return agg


def _usage_settings(
    checked: schema.RewardSpecModel, graders: Mapping[str, GraderConfig]
) -> tuple[dict[str, Any], UsageBudget | None]:
    """The spec's price table and budget; the budget is given to every judge that takes one."""
    prices = check_prices(
        {m: p.model_dump(exclude_none=True) for m, p in (checked.prices or {}).items()}
    )
    if checked.budget is None:
        return prices, None
    try:
        budget = UsageBudget(**checked.budget.model_dump(exclude_none=True), prices=prices)
    except ConfigError as exc:
        raise ConfigError(f"reward spec: {exc}") from None
    for name, cfg in graders.items():
        attach = getattr(cfg.grader, "set_budget", None)
        if callable(attach):
            try:
                attach(budget)
            except ConfigError as exc:
                raise ConfigError(f"reward spec: graders.{name}: {exc}") from None
    return prices, budget


@dataclass
class RewardSpec:
    """Graders + aggregators + runner options: everything that defines one reward."""

    graders: dict[str, GraderConfig]
    aggregators: list[Any] = field(default_factory=list)
    max_concurrency: int = 32
    timeout: float | None = None
    show_progress: bool = False
    #: ``{model: Price}`` for cost in usage summaries (spec ``prices:``)
    prices: dict[str, Any] = field(default_factory=dict)
    #: the spec's ``budget:``, shared by every judge of this spec (None: no limit)
    budget: UsageBudget | None = None

    @property
    def reward_name(self) -> str | None:
        """The first aggregator's name: the reward adapters hand to trainers."""
        if not self.aggregators:
            return None
        agg = self.aggregators[0]
        return getattr(agg, "name", None) or getattr(agg, "__name__", None)

    def build_runner(self, **overrides: Any) -> GradingRunner:
        kwargs: dict[str, Any] = {
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "show_progress": self.show_progress,
        }
        kwargs.update(overrides)
        return GradingRunner(self.graders, aggregators=self.aggregators or None, **kwargs)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], base_dir: str | os.PathLike[str] | None = None
    ) -> RewardSpec:
        """Check ``data`` against the schema, then build every grader and aggregator."""
        checked = schema.parse_spec(data)
        ctx = SpecContext(
            base_dir=Path(base_dir) if base_dir is not None else Path.cwd(),
            judge_model=checked.judge_model.model_dump(exclude_unset=True)
            if checked.judge_model is not None
            else None,
            cache=checked.cache,
        )
        try:
            built = {name: _build_grader(name, e, ctx) for name, e in checked.graders.items()}
            aggs = [_build_aggregator(i, e, ctx) for i, e in enumerate(checked.aggregators)]
        except UnknownNameError:
            raise
        except ConfigError as exc:
            raise ConfigError(f"reward spec: {exc}") from None
        spec = cls(built, aggs, **checked.runner.model_dump(exclude_unset=True))
        spec.prices, spec.budget = _usage_settings(checked, built)
        try:
            spec.build_runner()  # aggregator weights name graders: checked now
        except ConfigError as exc:
            raise ConfigError(f"reward spec: aggregators: {exc}") from None
        return spec

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> RewardSpec:
        """Read a YAML spec (duplicate keys refused); relative paths are from its folder."""
        p = Path(path)
        data = schema.load_yaml(p)
        return cls.from_dict(data if data is not None else {}, base_dir=p.parent)


def load_spec(spec: RewardSpec | Mapping[str, Any] | str | os.PathLike[str]) -> RewardSpec:
    """A RewardSpec from a spec, a dict, or a YAML path."""
    if isinstance(spec, RewardSpec):
        return spec
    if isinstance(spec, Mapping):
        return RewardSpec.from_dict(spec)
    return RewardSpec.from_yaml(spec)
