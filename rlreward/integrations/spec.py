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

``type`` names come from ``GRADER_TYPES`` (``"module:attr"`` strings, imported on use).
A target with a ``from_spec(options, context)`` classmethod builds itself from the
entry's options; any other target is called as ``target(**options)``.
``callable`` is ``"module:attr"`` or ``"path/to/file.py:attr"`` (relative to the spec).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlreward.errors import ConfigError, UnknownNameError
from rlreward.graders.function import FunctionGrader
from rlreward.runner import GraderConfig, GradingRunner

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
_GRADER_KEYS = {"type", "callable", "mapper"}
_TOP_KEYS = {"judge_model", "cache", "graders", "aggregators", "runner"}
_RUNNER_KEYS = {"max_concurrency", "timeout", "show_progress"}


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


def _build_target(
    kind: str,
    type_name: str,
    table: Mapping[str, str],
    options: dict[str, Any],
    ctx: SpecContext,
    where: str,
) -> Any:
    if type_name not in table:
        raise UnknownNameError(f"{kind} type (in {where})", type_name, table)
    target = load_callable(table[type_name])
    try:
        if hasattr(target, "from_spec"):
            return target.from_spec(options, ctx)
        return target(**options)
    except TypeError as exc:
        raise ConfigError(f"{where}: bad options for type {type_name!r}: {exc}") from exc


def _build_grader(name: str, entry: Any, ctx: SpecContext) -> GraderConfig:
    where = f"graders.{name}"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'type' or 'callable', got {entry!r}")
    options = {k: v for k, v in entry.items() if k not in _GRADER_KEYS}
    has_type, has_callable = "type" in entry, "callable" in entry
    if has_type == has_callable:
        raise ConfigError(
            f"{where}: give exactly one of 'type' (a built-in grader) "
            "or 'callable' ('module:function')"
        )
    if has_callable:
        fn = load_callable(entry["callable"], ctx.base_dir)
        if "score_range" in options and options["score_range"] is not None:
            options["score_range"] = tuple(options["score_range"])
        try:
            grader = FunctionGrader(fn, name=name, **options)
        except TypeError as exc:
            raise ConfigError(f"{where}: bad options for a callable grader: {exc}") from exc
    else:
        grader = _build_target(
            "grader", entry["type"], GRADER_TYPES, {"name": name, **options}, ctx, where
        )
    mapper = entry.get("mapper")
    if isinstance(mapper, str):
        mapper = load_callable(mapper, ctx.base_dir)
    return GraderConfig(grader=grader, mapper=mapper)


def _build_aggregator(i: int, entry: Any, ctx: SpecContext) -> Any:
    where = f"aggregators[{i}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'type' or 'callable', got {entry!r}")
    if "callable" in entry:
        return load_callable(entry["callable"], ctx.base_dir)
    options = {k: v for k, v in entry.items() if k != "type"}
    return _build_target(
        "aggregator", entry.get("type", "weighted_sum"), AGGREGATOR_TYPES, options, ctx, where
    )


@dataclass
class RewardSpec:
    """Graders + aggregators + runner options: everything that defines one reward."""

    graders: dict[str, GraderConfig]
    aggregators: list[Any] = field(default_factory=list)
    max_concurrency: int = 32
    timeout: float | None = None
    show_progress: bool = False

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
        if not isinstance(data, Mapping):
            raise ConfigError(f"a reward spec must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise ConfigError(f"reward spec: unknown keys {unknown}; allowed: {sorted(_TOP_KEYS)}")
        graders = data.get("graders")
        if not isinstance(graders, Mapping) or not graders:
            raise ConfigError(
                "reward spec: 'graders' must be a non-empty mapping {name: {type: ...}}"
            )
        ctx = SpecContext(
            base_dir=Path(base_dir) if base_dir is not None else Path.cwd(),
            judge_model=data.get("judge_model"),
            cache=data.get("cache"),
        )
        built = {name: _build_grader(str(name), entry, ctx) for name, entry in graders.items()}
        aggs_raw = data.get("aggregators") or []
        if isinstance(aggs_raw, Mapping):
            aggs_raw = [aggs_raw]
        aggregators = [_build_aggregator(i, e, ctx) for i, e in enumerate(aggs_raw)]
        runner_opts = dict(data.get("runner") or {})
        bad = sorted(set(runner_opts) - _RUNNER_KEYS)
        if bad:
            raise ConfigError(
                f"reward spec: unknown runner options {bad}; allowed: {sorted(_RUNNER_KEYS)}"
            )
        spec = cls(built, aggregators, **runner_opts)
        spec.build_runner()  # validate aggregator weights against grader names now
        return spec

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> RewardSpec:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"reward spec file not found: {str(p)!r}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML: {exc}") from None
        return cls.from_dict(data or {}, base_dir=p.parent)


def load_spec(spec: RewardSpec | Mapping[str, Any] | str | os.PathLike[str]) -> RewardSpec:
    """A RewardSpec from a spec, a dict, or a YAML path."""
    if isinstance(spec, RewardSpec):
        return spec
    if isinstance(spec, Mapping):
        return RewardSpec.from_dict(spec)
    return RewardSpec.from_yaml(spec)
