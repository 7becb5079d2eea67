"""RewardSpec: a reward defined once (YAML or dict), loaded by the CLI, VERL and TRL.

Format (every key but ``graders`` optional)::

    judge_model: {model: qwen3-32b, base_url: http://127.0.0.1:8000/v1}  # LLM judges' model
    cache: .rlreward/cache.sqlite        # judge result cache path, or false
    graders:
      relevance: {type: relevance}                           # a built-in grader type
      correctness: {type: correctness, mapper: {reference_response: ground_truth}}
      length: {type: length, params: {target_min: 20}}       # a rule function by name
      mine: {callable: "my_pkg.rewards:score", score_range: [0, 1], higher_is_better: true}
      many: {callable: "my_pkg.rewards:score_batch", batched: true}  # fields as lists
    monitors:                            # graded and reported, never weighed
      on_topic: {type: semantic_relevance}
    aggregators:
      - {type: weighted_sum, name: reward, weights: {relevance: 0.5, length: 0.5}}
      - {callable: "my_pkg.rewards:min_reward"}
    reward: reward                       # the aggregator that is the reward (default: first)
    runner: {max_concurrency: 32, timeout: 60}
    prices: {qwen3-32b: {prompt: 0.1, completion: 0.3}}   # $ per 1M tokens, for cost
    budget: {max_tokens: 2000000, max_cost: 5.0}          # shared by every judge

``RewardSpec.reward`` is the spec's one ``Reward`` value (built once, then shared):
``load_spec(path).reward`` is what every entrance grades with.

The spec is checked whole against its typed schema (``spec_schema``: one pydantic model
per grader ``type``, unknown keys refused, duplicate YAML keys refused) before anything
is built; each problem is a ConfigError naming its path, the value and the fix.
``type`` names a grader type of the one registry, ``rlreward.graders.registry.GRADER_TYPES``
(``"module:attr"``, imported on use, so a reward_model grader alone pulls in torch): a
grader class, or any registered rule function by its own name (``{type: length, params:
{target_min: 20}}``, the canonical form; ``{type: reward_function, function: length}``
says the same). ``callable`` is ``"module:attr"`` or ``"path/to/file.py:attr"``
(relative to the spec).
"""

from __future__ import annotations

import importlib
import importlib.util
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
from rlreward.graders.registry import GRADER_TYPES, grader_class, rule_function_grader
from rlreward.integrations import spec_schema as schema
from rlreward.integrations.reserved import reserved_reason
from rlreward.reward import Reward
from rlreward.runner import GraderConfig, GradingRunner
from rlreward.usage import UsageBudget, check_prices

__all__ = [
    "AGGREGATOR_TYPES",
    "GRADER_TYPES",
    "RewardSpec",
    "SpecContext",
    "load_callable",
    "load_reward",
    "load_spec",
]

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
    #: replaces every cache setting of the spec when not None (``--no-cache``: False)
    cache_override: str | bool | None = None
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


def _cache(value: Any, where: str) -> ResultCache | None:
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
        allowed = RewardRegistry().parameters(function)
    except UnknownNameError as exc:
        raise UnknownNameError(
            f"reward function (in {where}.function)", function, exc.known
        ) from None
    for key in params:
        if allowed is not None and key not in allowed:
            raise ConfigError(
                f"{where}.params.{key}: reward function {function!r} has no parameter {key!r}; "
                f"its parameters: {', '.join(allowed) or '(none)'}"
            )


#: the nested spec files being loaded (a spec that nests itself is refused, not recursed)
_LOADING: list[str] = []


def _nested_reward(path: str, ctx: SpecContext, where: str) -> Reward:
    """``{type: reward, spec: other.yaml}``: that spec's Reward, nested whole."""
    target = Path(path)
    if not target.is_absolute():
        target = ctx.base_dir / target
    if not target.is_file():
        raise ConfigError(f"{where}.spec: reward spec file {str(target)!r} not found")
    resolved = str(target.resolve())
    if resolved in _LOADING:
        raise ConfigError(
            f"{where}.spec: {path!r} nests itself ({' -> '.join([*_LOADING, resolved])})"
        )
    _LOADING.append(resolved)
    try:
        data = schema.load_yaml(target)
        inner = RewardSpec.from_dict(
            data if data is not None else {},
            base_dir=target.parent,
            cache_override=ctx.cache_override,  # --no-cache reaches nested specs too
        )
    finally:
        _LOADING.pop()
    return inner.reward


def _build_grader(
    name: str, entry: Any, ctx: SpecContext, section: str = "graders"
) -> GraderConfig:
    where = f"{section}.{name}"
    reason = reserved_reason(name)
    if reason:
        raise ConfigError(f"{where}: {reason}")
    kind = entry.type
    try:
        if isinstance(entry, schema.FunctionGraderSpec):
            ref = entry.callable
            fn = load_callable(ref, ctx.base_dir) if isinstance(ref, str) else ref
            grader: Any = FunctionGrader(fn, name=name, **_options(entry, "callable"))
        elif isinstance(entry, (schema.RewardFunctionSpec, schema.RuleFunctionSpec)):
            # `{type: length}` and `{type: reward_function, function: length}`: one builder
            function = entry.function if isinstance(entry, schema.RewardFunctionSpec) else kind
            _check_params(function, entry.params, where)
            opts = _options(entry, "function", "params")
            grader = rule_function_grader(function, name=name, **opts, **entry.params)
        elif isinstance(entry, schema.NestedRewardSpec):
            grader = _nested_reward(entry.spec, ctx, where)
        elif isinstance(entry, schema.RewardModelSpec):
            opts = _options(entry, "model")
            model = entry.model
            if not os.path.isabs(model) and (ctx.base_dir / model).exists():
                model = str(ctx.base_dir / model)
            grader = grader_class(kind)(model, name=name, **opts)
        else:  # an LLM judge
            opts = _options(entry, "model", "cache")
            model = _judge_model(_options(entry).get("model"), ctx, where)
            setting = entry.cache if "cache" in entry.model_fields_set else ctx.cache
            if ctx.cache_override is not None:  # decided before anything is opened
                setting = ctx.cache_override
            cache = _cache(setting, f"{where}.cache" if "cache" in opts else "cache")
            grader = grader_class(kind)(model, name=name, cache=cache, **opts)
    except UnknownNameError as exc:
        if f"(in {where}" in str(exc):
            raise
        raise UnknownNameError(f"{exc.kind} (in {where})", exc.name, exc.known) from None
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(
            text if text.startswith((where, "cache")) else f"{where}: {text}"
        ) from None
    except TypeError as exc:  # a grader class with other arguments
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
    """Graders + aggregators (+ monitors) + runner options: everything that defines one
    reward. ``.reward`` is that reward as one ``Reward`` value (built on first use)."""

    graders: dict[str, GraderConfig]
    aggregators: list[Any] = field(default_factory=list)
    max_concurrency: int = 32
    timeout: float | None = None
    show_progress: bool = False
    monitors: dict[str, GraderConfig] = field(default_factory=dict)
    reward_aggregator: str | None = None
    #: ``{model: Price}`` for cost in usage summaries (spec ``prices:``)
    prices: dict[str, Any] = field(default_factory=dict)
    #: the spec's ``budget:``, shared by every judge of this spec (None: no limit)
    budget: UsageBudget | None = None
    _reward: Reward | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def reward_name(self) -> str:
        """The name of the reward's aggregator (the default one is ``"reward"``)."""
        return self.reward.name

    @property
    def reward(self) -> Reward:
        """The spec's one Reward (built once; every entrance grades with it)."""
        if self._reward is None:
            self._reward = Reward(
                self.graders,
                self.aggregators or None,
                monitors=self.monitors or None,
                reward=self.reward_aggregator,
                max_concurrency=self.max_concurrency,
                timeout=self.timeout,
                show_progress=self.show_progress,
            )
        return self._reward

    def build_runner(self, **overrides: Any) -> GradingRunner:
        """A new runner over the spec's graders, monitors and aggregators (the CLI uses
        one with its own options; trainers use ``.reward``)."""
        kwargs: dict[str, Any] = {
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "show_progress": self.show_progress,
        }
        kwargs.update(overrides)
        return GradingRunner(
            self.graders,
            aggregators=self.aggregators or None,
            monitors=self.monitors or None,
            **kwargs,
        )

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        base_dir: str | os.PathLike[str] | None = None,
        *,
        cache_override: str | bool | None = None,
    ) -> RewardSpec:
        """Check ``data`` against the schema, then build every grader and aggregator.

        ``cache_override`` (a path, True or False) replaces every judge cache setting of
        the spec; ``False`` opens no cache file at all (``rlreward grade --no-cache``).
        """
        checked = schema.parse_spec(data)
        ctx = SpecContext(
            base_dir=Path(base_dir) if base_dir is not None else Path.cwd(),
            judge_model=checked.judge_model.model_dump(exclude_unset=True)
            if checked.judge_model is not None
            else None,
            cache=checked.cache,
            cache_override=cache_override,
        )
        try:
            built = {name: _build_grader(name, e, ctx) for name, e in checked.graders.items()}
            monitors = {
                name: _build_grader(name, e, ctx, "monitors")
                for name, e in checked.monitors.items()
            }
            aggs = [_build_aggregator(i, e, ctx) for i, e in enumerate(checked.aggregators)]
        except UnknownNameError:
            raise
        except ConfigError as exc:
            raise ConfigError(f"reward spec: {exc}") from None
        spec = cls(
            built,
            aggs,
            monitors=monitors,
            reward_aggregator=checked.reward,
            **checked.runner.model_dump(exclude_unset=True),
        )
        spec.prices, spec.budget = _usage_settings(checked, {**built, **monitors})
        try:
            _ = spec.reward  # weights name graders, `reward` names an aggregator: checked now
        except ConfigError as exc:
            raise ConfigError(f"reward spec: aggregators: {exc}") from None
        return spec

    @classmethod
    def from_yaml(
        cls, path: str | os.PathLike[str], *, cache_override: str | bool | None = None
    ) -> RewardSpec:
        """Read a YAML spec (duplicate keys refused); relative paths are from its folder.
        ``cache_override``: as in ``from_dict``."""
        p = Path(path)
        data = schema.load_yaml(p)
        return cls.from_dict(
            data if data is not None else {}, base_dir=p.parent, cache_override=cache_override
        )


def load_spec(spec: RewardSpec | Mapping[str, Any] | str | os.PathLike[str]) -> RewardSpec:
    """A RewardSpec from a spec, a dict, or a YAML path."""
    if isinstance(spec, RewardSpec):
        return spec
    if isinstance(spec, Mapping):
        return RewardSpec.from_dict(spec)
    return RewardSpec.from_yaml(spec)


def load_reward(
    reward: Reward | RewardSpec | GradingRunner | Mapping[str, Any] | str | os.PathLike[str],
) -> Reward:
    """The one ``Reward`` of anything that defines a reward: a Reward (returned as it is),
    a RewardSpec, a spec dict or YAML path, or a GradingRunner (its graders, monitors and
    aggregators; the default aggregation when it has none)."""
    if isinstance(reward, Reward):
        return reward
    if isinstance(reward, GradingRunner):
        return Reward(
            reward.grader_configs,
            list(reward.aggregators.values()) or None,
            monitors=reward.monitor_configs or None,
            max_concurrency=reward.max_concurrency,
            timeout=reward.timeout,
            show_progress=reward.show_progress,
        )
    if isinstance(reward, (RewardSpec, Mapping, str, os.PathLike)):
        return load_spec(reward).reward
    raise ConfigError(
        "a reward must be a Reward, a RewardSpec, a spec dict, a YAML spec path or a "
        f"GradingRunner, got {type(reward).__name__}"
    )
