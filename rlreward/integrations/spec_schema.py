"""The reward spec's typed schema: what a spec file may say, checked before anything is built.

One pydantic model per grader class, plus one (``RuleFunctionSpec``) for every rule
function named as a type (``{type: length}``), joined by a union discriminated on
``type`` (``grader_model``); every model forbids unknown keys. ``parse_spec(data)``
validates a mapping and turns each pydantic error into one ConfigError line naming the path
(``graders.relevance.params.threshold``), the value and the fix. ``load_yaml(path)``
reads a spec with a YAML loader that refuses duplicate keys. ``json_schema()`` is what
``rlreward schema`` prints and ``schemas/reward-spec.schema.json`` holds.

Defaults of the built objects stay with the objects (``OpenAIChatModel``,
``WeightedSumAggregator``...): a field left out of a spec is left out of the call.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    ValidationError,
)
from pydantic.json_schema import SkipJsonSchema

from rlreward.errors import ConfigError, UnknownNameError
from rlreward.graders.registry import GRADER_TYPES, check_type, register_grader_class
from rlreward.rewards.registry import BUILTIN_REWARD_FUNCTIONS

__all__ = [
    "AGGREGATOR_MODELS",
    "GRADER_MODELS",
    "JUDGE_TYPES",
    "RewardSpecModel",
    "json_schema",
    "load_yaml",
    "parse_spec",
]

JUDGE_TYPES = ("harmfulness", "relevance", "correctness", "instruction_following", "hallucination")

# Numbers: ints and floats, never bools or numeric strings, never NaN/inf.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
PositiveNumber = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=1)]
Name = Annotated[str, Field(strict=True, min_length=1)]
Pair = tuple[Number, Number]
FieldNames = list[Name]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- judge model -------------------------------------------------------------------------
class JudgeModelOptions(_Strict):
    """Arguments of ``OpenAIChatModel`` (all optional here: a grader's partial override)."""

    model: Name | None = Field(None, description="model id served by the endpoint")
    base_url: StrictStr | None = Field(
        None, description="OpenAI-compatible base URL (default: OPENAI_BASE_URL)"
    )
    api_key: StrictStr | None = Field(
        None, description="API key (default: OPENAI_API_KEY; keyless local servers need none)"
    )
    timeout: PositiveNumber | None = Field(None, description="seconds per HTTP attempt")
    max_retries: Annotated[int, Field(strict=True, ge=0)] | None = None
    requests_per_minute: PositiveNumber | None = None
    tokens_per_minute: PositiveNumber | None = Field(
        None, description="client-side limit on the tokens the server reports, per minute"
    )
    temperature: Number | None = None
    max_tokens: Count | None = None
    extra_body: dict[str, Any] | None = None
    backoff_base: PositiveNumber | None = None
    backoff_max: PositiveNumber | None = None
    max_retry_after: PositiveNumber | None = None
    structured_output: StrictBool | None = None
    max_connections: Count | None = None
    default_headers: dict[str, StrictStr] | None = None
    cache_namespace: StrictStr | None = None
    api_key_env: Name | None = Field(
        None, description="environment variable the key is read from (default OPENAI_API_KEY)"
    )
    pickle_api_key: StrictBool | None = Field(
        None, description="carry the key inside pickles (off: workers read api_key_env)"
    )


class JudgeModel(JudgeModelOptions):
    """The spec's shared judge model (``model`` is required here)."""

    model: Name = Field(description="model id served by the endpoint")


CacheSetting = StrictBool | Name | None


# -- graders -----------------------------------------------------------------------------
class _GraderBase(_Strict):
    mapper: dict[Name, Name] | Name | None = Field(
        None,
        description="{grader_field: row_field_or.dotted.path}, or 'module:fn' / 'file.py:fn' "
        "returning the grader's fields",
    )


class FunctionGraderSpec(_GraderBase):
    """Any Python function ``(**fields) -> score`` (also written as ``{callable: ...}``)."""

    type: Literal["function"] = "function"
    callable: StrictStr | SkipJsonSchema[Callable[..., Any]] = Field(
        description="'package.module:function' or 'path/to/file.py:function' (relative to the spec)"
    )
    score_range: Pair | None = None
    higher_is_better: StrictBool | None = None
    required_fields: FieldNames | None = None
    optional_fields: FieldNames | None = None
    run_in_thread: StrictBool | None = None
    batched: StrictBool | None = Field(
        None, description="the function takes each field as a list and returns one score per row"
    )
    max_batch_size: Count | None = None


class RuleFunctionSpec(_GraderBase):
    """A registered rule function as its own type: ``{type: length, params: {...}}``."""

    type: Name = Field(
        description="a registered reward function's name",
        # editors know the built-ins; a registered function is checked when the spec loads
        json_schema_extra={"enum": list(sorted(BUILTIN_REWARD_FUNCTIONS))},
    )
    params: dict[Name, Any] = Field(default_factory=dict, description="parameters of the function")
    max_batch_size: Count | None = None


class RewardFunctionSpec(_GraderBase):
    """A registered rule function by name: ``{type: reward_function, function: length}``
    (the same grader as ``{type: length}``)."""

    type: Literal["reward_function"]
    function: Name = Field(description="a registered reward function name")
    params: dict[Name, Any] = Field(default_factory=dict, description="parameters of the function")
    max_batch_size: Count | None = None


class RewardModelSpec(_GraderBase):
    """A sequence-classification reward model (hub id or local directory)."""

    type: Literal["reward_model"]
    model: Name = Field(description="hub id or a directory (relative to the spec)")
    normalize: Literal["sigmoid", "minmax"] | None = None
    score_bounds: Pair | None = None
    batch_size: Count | None = None
    max_length: Count | None = None
    device: Name | None = None
    dtype: Name | None = None
    prompt_template: Name | None = None
    higher_is_better: StrictBool | None = None


class _JudgeBase(_GraderBase):
    model: Name | JudgeModelOptions | None = Field(
        None, description="a model id or judge_model options overriding the spec's judge_model"
    )
    cache: CacheSetting = Field(
        None, description="this judge's cache: a path, true/false (default: the spec's cache)"
    )
    dedupe: StrictBool | None = None
    template: StrictStr | None = Field(None, description="prompt template text ($field)")


class JudgeSpec(_JudgeBase):
    """A built-in LLM judge on a 1..5 scale reported on [0, 1]."""

    type: Literal[JUDGE_TYPES]  # type: ignore[valid-type]


class RubricSpec(_JudgeBase):
    """An LLM judge grading against your own criteria text."""

    type: Literal["rubric"]
    criteria: Name = Field(description="the rubric text")
    scale: Pair | None = None
    score_range: Pair | None = None
    higher_is_better: StrictBool | None = None
    required_fields: FieldNames | None = None
    optional_fields: FieldNames | None = None


class NestedRewardSpec(_GraderBase):
    """Another reward spec as one grader of this one (``{type: reward, spec: other.yaml}``):
    its graders, aggregators, ``on_error`` and monitors stay as that spec says."""

    type: Literal["reward"]
    spec: Name = Field(description="path to a reward spec YAML (relative to this spec)")


# -- group judges (issue 19) --------------------------------------------------------------
class _GroupJudgeBase(_GraderBase):
    model: Name | JudgeModelOptions | None = Field(
        None, description="a model id or judge_model options overriding the spec's judge_model"
    )
    cache: CacheSetting = Field(
        None, description="this judge's cache: a path, true/false (default: the spec's cache)"
    )
    group_size: Annotated[int, Field(strict=True, ge=2)] = Field(
        description="rows per group: the rollouts per prompt (GRPO's num_generations)"
    )
    group_key: Name | None = Field(
        None,
        description="a row field holding the group id (e.g. verl's uid); default: "
        "consecutive rows with the same query",
    )
    debias: StrictBool | None = Field(None, description="cancel position bias (default true)")
    criteria: Name | None = Field(None, description="what the judge compares (plain text)")
    template: StrictStr | None = Field(None, description="prompt template text ($field)")
    reply_retries: Annotated[int, Field(strict=True, ge=0)] | None = None


class ListwiseJudgeSpec(_GroupJudgeBase):
    """An LLM judge scoring a whole group in one call (debias: several orders)."""

    type: Literal["listwise_judge"]
    orders: Literal["rotations", "reversed"] | None = Field(
        None, description="debiased orders: rotations (N calls) or reversed (2 calls)"
    )


class PairwiseJudgeSpec(_GroupJudgeBase):
    """An LLM judge comparing a group's responses two at a time; score = win rate."""

    type: Literal["pairwise_judge"]
    pairs: Literal["all", "circular"] | None = Field(
        None, description="all pairs (N(N-1)/2 per order) or circular (N per order)"
    )


# the one registry's grader classes live on the graders floor; a nested reward is built
# by the spec (rlreward.reward sits above graders), so the spec adds its type here
register_grader_class("reward", "rlreward.reward:Reward")

#: grader class ``type`` -> its model (every other type is a rule function)
_CLASS_MODELS: dict[str, type[_GraderBase]] = {
    "function": FunctionGraderSpec,
    "reward_function": RewardFunctionSpec,
    "reward_model": RewardModelSpec,
    **dict.fromkeys(JUDGE_TYPES, JudgeSpec),
    "rubric": RubricSpec,
    "reward": NestedRewardSpec,
    "listwise_judge": ListwiseJudgeSpec,
    "pairwise_judge": PairwiseJudgeSpec,
}
_RULE_TAG = "rule_function"


def grader_model(kind: Any) -> type[_GraderBase]:
    """The model of a grader entry's ``type``: a grader class's, else RuleFunctionSpec."""
    return _CLASS_MODELS.get(kind, RuleFunctionSpec) if isinstance(kind, str) else RuleFunctionSpec


def _grader_tag(entry: Any) -> str:
    kind = entry.get("type") if isinstance(entry, Mapping) else getattr(entry, "type", None)
    model = grader_model(kind)
    return _RULE_TAG if model is RuleFunctionSpec else model.__name__


GraderSpec = Annotated[
    Annotated[FunctionGraderSpec, Tag("FunctionGraderSpec")]
    | Annotated[RewardFunctionSpec, Tag("RewardFunctionSpec")]
    | Annotated[RewardModelSpec, Tag("RewardModelSpec")]
    | Annotated[JudgeSpec, Tag("JudgeSpec")]
    | Annotated[RubricSpec, Tag("RubricSpec")]
    | Annotated[NestedRewardSpec, Tag("NestedRewardSpec")]
    | Annotated[ListwiseJudgeSpec, Tag("ListwiseJudgeSpec")]
    | Annotated[PairwiseJudgeSpec, Tag("PairwiseJudgeSpec")]
    | Annotated[RuleFunctionSpec, Tag(_RULE_TAG)],
    Discriminator(_grader_tag),
]


class _GraderModels(Mapping[str, type[_GraderBase]]):
    """grader ``type`` -> its model, for every type of the one registry."""

    def __getitem__(self, kind: str) -> type[_GraderBase]:
        if kind not in GRADER_TYPES:
            raise KeyError(kind)
        return grader_model(kind)

    def __iter__(self) -> typing.Iterator[str]:
        return iter(GRADER_TYPES)

    def __len__(self) -> int:
        return len(GRADER_TYPES)


#: grader ``type`` -> its model
GRADER_MODELS: Mapping[str, type[_GraderBase]] = _GraderModels()


# -- aggregators and runner --------------------------------------------------------------
class GateSpec(_Strict):
    """A constraint on the weighted mean from one grader's aligned value."""

    mode: Literal["cap", "multiply", "floor"] = Field(
        description="cap: reward <= gate; multiply: reward x gate; floor: reward = 0 when "
        "gate < floor"
    )
    floor: Annotated[float, Field(strict=True, ge=0, le=1)] | None = Field(
        None, description="with mode floor: the gate value below which the reward is 0"
    )


class WeightedSumSpec(_Strict):
    """Weighted mean of range-normalised, direction-corrected grader scores."""

    type: Literal["weighted_sum"] = "weighted_sum"
    name: Name | None = None
    weights: dict[Name, PositiveNumber] | None = None
    on_error: Literal["error", "renormalize", "zero"] | None = None
    bounds: dict[Name, tuple[Number, Number]] | None = Field(
        None,
        description="{grader: [low, high]}: the range an unbounded grader (a raw reward "
        "model) is normalised by; scores outside it are clipped",
    )
    gates: dict[Name, GateSpec] | None = Field(
        None,
        description="{grader: {mode: cap|multiply|floor, floor: x}}: constraints the weighted "
        "mean cannot trade away (a gate grader needs no weight)",
    )


class CallableAggregatorSpec(_Strict):
    """A function ``{grader name: result} -> score``."""

    type: Literal["callable"] = "callable"
    callable: StrictStr | SkipJsonSchema[Callable[..., Any]]


AggregatorSpec = Annotated[WeightedSumSpec | CallableAggregatorSpec, Field(discriminator="type")]
AGGREGATOR_MODELS: dict[str, type[_Strict]] = {
    "weighted_sum": WeightedSumSpec,
    "callable": CallableAggregatorSpec,
}


class RunnerSpec(_Strict):
    max_concurrency: Count | None = Field(None, description="grader calls in flight")
    timeout: PositiveNumber | None = Field(None, description="seconds per grader call")
    show_progress: StrictBool | None = None


# -- usage: prices and budget -------------------------------------------------------------
NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


class PriceSpec(_Strict):
    """What one model costs, in dollars per million tokens."""

    prompt: NonNegative = Field(description="$ per 1M prompt tokens")
    completion: NonNegative = Field(description="$ per 1M completion tokens")
    cached: NonNegative | None = Field(
        None, description="$ per 1M cached prompt tokens (default: the prompt price)"
    )


class BudgetSpec(_Strict):
    """A limit shared by every judge of the run: once reached, no new judge call starts."""

    max_tokens: Count | None = Field(None, description="prompt + completion tokens")
    max_cost: PositiveNumber | None = Field(None, description="dollars (needs `prices`)")


class RewardSpecModel(_Strict):
    """A reward: graders, aggregators and runner options (``graders`` is required)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="rlreward reward spec",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    judge_model: JudgeModel | None = Field(None, description="the LLM judges' model")
    cache: CacheSetting = Field(
        None, description="judge result cache: a path, true (.rlreward/cache.sqlite) or false"
    )
    graders: Annotated[dict[Name, GraderSpec], Field(min_length=1)]
    monitors: dict[Name, GraderSpec] = Field(
        default_factory=dict,
        description="graders computed for every row and reported beside the reward, never "
        "weighed into it (same syntax as graders, no weights)",
    )
    aggregators: list[AggregatorSpec] = Field(default_factory=list)
    reward: Name | None = Field(
        None, description="the aggregator whose value is the reward (default: the first)"
    )
    runner: RunnerSpec = Field(default_factory=RunnerSpec)  # type: ignore[arg-type]
    prices: dict[Name, PriceSpec] | None = Field(
        None, description="{model id: {prompt: $/1M tokens, completion: $/1M tokens}}"
    )
    budget: BudgetSpec | None = Field(None, description="max_tokens and/or max_cost of the run")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a reward spec (for editors and ``rlreward schema``)."""
    return RewardSpecModel.model_json_schema()


# -- hints: what to write instead, by the key where the mistake sits -----------------------
_PAIR = "write a [low, high] pair of numbers, e.g. [0, 1]"
_HINTS: dict[str, str] = {
    "judge_model": "write `judge_model: {model: qwen3-32b, base_url: http://127.0.0.1:8000/v1}`",
    "runner": "write `runner: {max_concurrency: 32, timeout: 60}`",
    "budget": "write `budget: {max_tokens: 1000000}` and/or `budget: {max_cost: 5.0}`",
    "prices": "write `prices: {gpt-4o-mini: {prompt: 0.15, completion: 0.6}}` ($ per 1M tokens)",
    "aggregators": "write `aggregators: [{type: weighted_sum, name: reward, weights: {a: 1}}]`",
    "graders": "write `graders: {relevance: {type: relevance}}`",
    "cache": "give a file path, true (.rlreward/cache.sqlite) or false",
    "mapper": "write `mapper: {reference_response: ground_truth}` or `mapper: 'module:fn'`",
    "params": "write `params: {target_min: 20}` (the function's own parameters)",
    "weights": "weights are numbers > 0, e.g. `weights: {relevance: 0.5, length: 0.5}`; "
    "leave a grader out to give it no weight",
    "model": "give a model id or a mapping of judge_model options",
    "score_range": _PAIR,
    "score_bounds": _PAIR,
    "scale": _PAIR,
}


def _hint(path: tuple[Any, ...]) -> str:
    keys = [k for k in path if isinstance(k, str)]
    if len(path) >= 2 and path[0] == "aggregators" and path[-2] == "weights":
        return _HINTS["weights"]
    return _HINTS.get(keys[-1], "") if keys else ""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types behind an annotation (Annotated and Optional/Union removed)."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [t for a in typing.get_args(tp) for t in _unwrap(a)]
    return [tp]


def _model_at(path: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    """The model class whose keys live at ``path`` of the input (for 'allowed keys')."""
    current: list[Any] = [RewardSpecModel]
    node = data
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
        nxt: list[Any] = []
        for tp in current:
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(key, str):
                if key in tp.model_fields:
                    nxt.extend(_unwrap(tp.model_fields[key].annotation))
            elif typing.get_origin(tp) is dict and isinstance(key, str):
                nxt.extend(_unwrap(typing.get_args(tp)[1]))
            elif typing.get_origin(tp) is list and isinstance(key, int):
                nxt.extend(_unwrap(typing.get_args(tp)[0]))
        current = [t for t in nxt if t is not type(None)]
        models = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]
        if len(models) > 1 and isinstance(node, Mapping) and RuleFunctionSpec in models:
            current = [grader_model(node.get("type"))]  # the graders' union
        elif len(models) > 1 and isinstance(node, Mapping):  # a discriminated union
            tagged = [m for m in models if "type" in m.model_fields]
            chosen = [
                m
                for m in tagged
                if node.get("type") in typing.get_args(m.model_fields["type"].annotation)
            ]
            current = chosen or current
    models = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if len(models) == 1 else None


def _input_path(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[Any, ...]:
    """The error's location in the input: pydantic's union branch names removed."""
    out: list[Any] = []
    node: Any = data
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, Mapping):
            if key in node:
                node = node[key]
            elif last and missing:
                node = None
            else:
                continue  # a union branch name, not part of the input
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            continue  # past a scalar: only branch names follow
        out.append(key)
    return tuple(out)


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "spec"


def _known_functions() -> str:
    from rlreward.rewards.registry import list_reward_functions

    return "a reward_function grader needs 'function: <name>'; known: " + ", ".join(
        list_reward_functions()
    )


_MISSING_HINTS: dict[tuple[str, str], Callable[[], str]] = {
    ("RewardFunctionSpec", "function"): _known_functions,
    ("RewardModelSpec", "model"): lambda: "a reward_model grader needs 'model: <hub id or path>'",
    ("RubricSpec", "criteria"): lambda: "a rubric judge needs 'criteria: <the rubric text>'",
    ("ListwiseJudgeSpec", "group_size"): lambda: (
        "a group judge needs 'group_size: <rollouts per prompt>'"
    ),
    ("PairwiseJudgeSpec", "group_size"): lambda: (
        "a group judge needs 'group_size: <rollouts per prompt>'"
    ),
    ("JudgeModel", "model"): lambda: "write `judge_model: {model: qwen3-32b}`",
    ("FunctionGraderSpec", "callable"): lambda: "write `callable: 'package.module:function'`",
}

_WANTED = {
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "float_type": "must be a number",
    "int_type": "must be an integer",
}


def _describe(path: tuple[Any, ...], errs: list[Any], data: Any) -> str:
    """One message for the pydantic errors found at one input path."""
    err = errs[0]
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":  # path is the parent; one message for all its unknown keys
        parent = _model_at(path, data)
        msg = f"unknown options {sorted(str(e['loc'][-1]) for e in errs)}"
        if parent is not None:
            msg += f"; allowed: {', '.join(sorted(parent.model_fields))}"
            if parent in (RewardFunctionSpec, RuleFunctionSpec):
                msg += " (the function's parameters go under 'params')"
        return msg
    if kind == "missing":
        parent = _model_at(path[:-1], data)
        extra = _MISSING_HINTS.get((parent.__name__ if parent else "", str(path[-1])))
        return f"missing required key {path[-1]!r}" + (f"; {extra()}" if extra else "")
    shown = f"got {type(value).__name__} {_show(value)}"
    wanted = []
    for e in errs:
        text = _WANTED.get(e["type"]) or e["msg"][:1].lower() + e["msg"][1:]
        if text not in wanted:
            wanted.append(text)
    hint = _hint(path)
    joined = wanted[0] + "".join(
        " or " + (w[len("must be ") :] if w.startswith("must be ") else w) for w in wanted[1:]
    )
    return joined + f", {shown}" + (f"; {hint}" if hint else "")


def _messages(exc: ValidationError, data: Any) -> list[str]:
    grouped: dict[tuple[Any, ...], list[Any]] = {}
    for err in exc.errors():
        path = _input_path(tuple(err["loc"]), data, err["type"] == "missing")
        if err["type"] == "extra_forbidden":
            path = (*path[:-1], "<unknown>")
        grouped.setdefault(path, []).append(err)
    lines = []
    for path, errs in grouped.items():
        deeper = any(p[: len(path)] == path and len(p) > len(path) for p in grouped)
        if deeper and all(e["type"] not in ("extra_forbidden", "missing") for e in errs):
            continue  # a union branch that failed on its type; the mapping branch says more
        if path[-1:] == ("<unknown>",):
            path = path[:-1]
        lines.append(f"{_dotted(path)}: {_describe(path, errs, data)}")
    return lines


def _fix_graders(graders: Mapping[Any, Any], section: str) -> dict[Any, Any]:
    """A ``graders:`` (or ``monitors:``) section with each entry's ``type`` settled."""
    fixed: dict[Any, Any] = {}
    for name, entry in graders.items():
        where = f"{section}.{name}"
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: a grader name must be a non-empty string, got {name!r}")
        if isinstance(entry, Mapping):
            has_type, has_callable = "type" in entry, "callable" in entry
            if not has_type and not has_callable:
                raise ConfigError(
                    f"{where}: give exactly one of 'type' (a grader type or a reward function: "
                    f"{', '.join(sorted(GRADER_TYPES))}) or 'callable' ('module:function')"
                )
            if has_callable and not has_type:
                entry = {"type": "function", **entry}
            elif has_callable and entry["type"] != "function":
                raise ConfigError(
                    f"{where}: give exactly one of 'type' ({entry['type']!r}) or 'callable' "
                    f"({entry['callable']!r}); 'callable' goes with `type: function` only"
                )
            check_type(entry["type"], f"{where}.type")  # one type of the one registry
        fixed[name] = entry
    return fixed


def _check_entries(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Errors the schema alone words badly: type-or-callable, unknown types, string lists."""
    out = dict(data)
    graders = data.get("graders")
    if graders is None or (isinstance(graders, Mapping) and not graders):
        raise ConfigError(
            "reward spec: 'graders' must be a non-empty mapping {name: {type: ...}}; "
            + _HINTS["graders"]
        )
    if isinstance(graders, Mapping):
        out["graders"] = _fix_graders(graders, "graders")
    monitors = data.get("monitors")
    if monitors is None:
        out.pop("monitors", None)
    elif isinstance(monitors, Mapping):
        out["monitors"] = _fix_graders(monitors, "monitors")
    aggs = data.get("aggregators")
    if aggs is None:
        out.pop("aggregators", None)
    elif isinstance(aggs, Mapping):
        aggs = [aggs]
    if isinstance(aggs, list):
        fixed_aggs: list[Any] = []
        for i, entry in enumerate(aggs):
            if isinstance(entry, Mapping) and "type" not in entry:
                entry = {"type": "callable" if "callable" in entry else "weighted_sum", **entry}
            if isinstance(entry, Mapping) and entry["type"] not in AGGREGATOR_MODELS:
                raise UnknownNameError(
                    f"aggregator type (in aggregators[{i}].type)",
                    str(entry["type"]),
                    [k for k in AGGREGATOR_MODELS if k != "callable"],
                )
            fixed_aggs.append(entry)
        out["aggregators"] = fixed_aggs
    elif isinstance(aggs, str):
        raise ConfigError(
            f"aggregators: must be a list of mappings, got the string {aggs!r}; "
            + _HINTS["aggregators"]
        )
    if out.get("runner") is None:
        out.pop("runner", None)
    return out


def parse_spec(data: Any) -> RewardSpecModel:
    """Validate a spec mapping; raise one ConfigError listing every problem found."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"a reward spec must be a mapping with a 'graders' key, got {type(data).__name__}; "
            + _HINTS["graders"]
        )
    unknown = sorted(str(k) for k in data if k not in RewardSpecModel.model_fields)
    if unknown:
        raise ConfigError(
            f"reward spec: unknown keys {unknown}; allowed: {sorted(RewardSpecModel.model_fields)}"
        )
    checked = _check_entries(data)
    try:
        return RewardSpecModel.model_validate(checked)
    except ValidationError as exc:
        lines = _messages(exc, checked)
        head = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
        raise ConfigError(f"reward spec: {head}") from None


# -- YAML --------------------------------------------------------------------------------
class _DuplicateKey(Exception):
    pass


def _unique_key_loader() -> type:
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden on purpose
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(
                        f"line {line}: key {key!r} is given twice in one mapping "
                        f"(first on line {seen[key]}); keep one"
                    )
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: the mapping constructor reports it
        return dict(yaml.SafeLoader.construct_mapping(loader, node, deep=deep))

    UniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
    )
    return UniqueKeyLoader


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """Read a YAML spec file; invalid YAML or a duplicate key is a ConfigError."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"reward spec file not found: {str(p)!r}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_unique_key_loader())  # a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{p}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
