import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from rlreward.aggregators import WeightedSumAggregator
from rlreward.errors import ConfigError, UnknownNameError
from rlreward.integrations.spec import GRADER_TYPES, RewardSpec, load_callable, load_spec
from rlreward.integrations.spec_schema import GRADER_MODELS, JudgeModelOptions, json_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCHEMA_FILE = ROOT / "schemas" / "reward-spec.schema.json"
JUDGE = {"model": "judge", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-test"}


def _write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _error(data, exc=ConfigError):
    with pytest.raises(exc) as info:
        load_spec(data)
    return str(info.value)


def test_example_spec_builds_and_grades():
    spec = RewardSpec.from_yaml(EXAMPLES / "reward.yaml")
    assert set(spec.graders) == {"relevance", "correctness"} and spec.reward_name == "reward"
    res = spec.build_runner().run(EXAMPLES / "data.jsonl")
    assert len(res["reward"]) == 8 and all(r.ok for r in res["reward"])


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_spec_passes_the_published_schema(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), json.loads(SCHEMA_FILE.read_text()))


def test_published_schema_file_equals_the_generated_one():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), (
        "schemas/reward-spec.schema.json is stale: run `rlreward schema > "
        "schemas/reward-spec.schema.json`"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "rlreward", "schema"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0 and json.loads(proc.stdout) == json_schema()


def test_schema_lists_every_grader_type_and_judge_model_option():
    assert set(GRADER_MODELS) == set(GRADER_TYPES)
    from rlreward.models.openai import OpenAIChatModel

    params = set(inspect.signature(OpenAIChatModel).parameters)
    assert set(JudgeModelOptions.model_fields) == params, (
        "OpenAIChatModel's arguments changed: update JudgeModelOptions in spec_schema.py"
    )


def test_callable_references_module_and_file(tmp_path):
    assert load_callable("json:dumps") is json.dumps
    (tmp_path / "mine.py").write_text("def f(response):\n    return 0.5\n")
    assert load_callable("mine.py:f", tmp_path)("x") == 0.5
    with pytest.raises(ConfigError, match="has no attribute 'nope'"):
        load_callable("json:nope")
    with pytest.raises(ConfigError, match="must look like"):
        load_callable("json.dumps")
    with pytest.raises(ConfigError, match="not found"):
        load_callable("missing.py:f", tmp_path)


def test_spec_errors_name_the_entry(tmp_path):
    with pytest.raises(
        UnknownNameError, match="unknown grader type .*'relevnce'.*known: .*function"
    ):
        load_spec({"graders": {"r": {"type": "relevnce"}}})
    with pytest.raises(ConfigError, match="exactly one of 'type'"):
        load_spec({"graders": {"r": {"mapper": {}}}})
    with pytest.raises(ConfigError, match="unknown keys"):
        load_spec({"graders": {"r": {"callable": "json:dumps"}}, "grader": {}})
    with pytest.raises(ConfigError, match="'graders' must be a non-empty mapping"):
        load_spec({})
    with pytest.raises(ConfigError, match=r"runner: unknown options \['concurrency'\]"):
        load_spec({"graders": {"r": {"callable": "json:dumps"}}, "runner": {"concurrency": 3}})
    with pytest.raises(ConfigError, match="unknown graders"):
        load_spec(
            {"graders": {"r": {"callable": "json:dumps"}}, "aggregators": [{"weights": {"x": 1}}]}
        )
    with pytest.raises(ConfigError, match="invalid YAML"):
        RewardSpec.from_yaml(_write(tmp_path, "graders: [unclosed"))


# The shapes that escaped as raw tracebacks before the typed schema (issue 11).
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"judge_model": "qwen3-32b", "graders": {"r": {"type": "relevance"}}},
            r"judge_model: must be a mapping, got str 'qwen3-32b'; write `judge_model: \{model:",
        ),
        (
            {"graders": {"r": {"callable": "json:dumps"}}, "runner": [1, 2]},
            r"runner: must be a mapping, got list \[1, 2\]; write `runner: \{max_concurrency",
        ),
        (
            {"graders": {"r": {"callable": "json:dumps"}}, "aggregators": "weighted_sum"},
            r"aggregators: must be a list of mappings, got the string 'weighted_sum'",
        ),
        (
            {"graders": {"r": {"type": "reward_function", "function": "length", "params": [1]}}},
            r"graders\.r\.params: must be a mapping, got list \[1\]",
        ),
        (
            {"graders": {"r": {"callable": "json:dumps", "higher_is_better": "yes"}}},
            r"graders\.r\.higher_is_better: must be true or false, got str 'yes'",
        ),
        (
            {"graders": {"r": {"callable": "json:dumps", "score_range": [0, "x"]}}},
            r"graders\.r\.score_range\[1\]: must be a number, got str 'x'; write a \[low, high\]",
        ),
        (
            {"graders": {"r": {"callable": "json:dumps"}}, "runner": {"timeout": float("nan")}},
            r"runner\.timeout: .*finite number, got float nan",
        ),
        (
            {"graders": {"r": {"callable": "json:dumps"}}, "runner": {"max_concurrency": True}},
            r"runner\.max_concurrency: .*integer, got bool True",
        ),
        (
            {"graders": {"r": {"callable": "json:dumps"}}, "aggregators": [{"weights": {"r": -1}}]},
            r"aggregators\[0\]\.weights\.r: .*greater than 0, got int -1; weights are numbers > 0",
        ),
        (
            {"judge_model": JUDGE, "graders": {"r": {"type": "relevance", "model": 12}}},
            r"graders\.r\.model: must be a string or a mapping, got int 12",
        ),
        (
            {"graders": {"r": {"type": "reward_model", "model": "m", "normalize": "tanh"}}},
            r"graders\.r\.normalize: input should be 'sigmoid' or 'minmax', got str 'tanh'",
        ),
        (
            {"graders": {"r": {"type": "relevance", "mapper": {"a": 1}}}},
            r"graders\.r\.mapper\.a: must be a string, got int 1",
        ),
        (
            {"graders": {1: {"callable": "json:dumps"}}},
            r"graders\.1: a grader name must be a non-empty string, got 1",
        ),
        (
            {"graders": {"r": {"type": "relevance", "callable": "json:dumps"}}},
            r"graders\.r: give exactly one of 'type' \('relevance'\) or 'callable'",
        ),
    ],
)
def test_wrong_shapes_are_one_config_error_naming_path_value_and_fix(data, expected):
    message = _error(data)
    assert "Traceback" not in message
    assert re.search(expected, message), message


def test_unknown_options_list_the_allowed_ones():
    message = _error(
        {"graders": {"x": {"type": "reward_function", "function": "length", "target_max": 5}}}
    )
    assert "graders.x: unknown options ['target_max']" in message
    assert "allowed: function, mapper, max_batch_size, params, type" in message
    assert "parameters go under 'params'" in message
    message = _error(
        {"judge_model": {"model": "m", "modle": "x"}, "graders": {"r": {"type": "relevance"}}}
    )
    assert "judge_model: unknown options ['modle']; allowed: api_key, " in message


def test_rule_function_parameters_are_named_by_path():
    message = _error(
        {
            "graders": {
                "relevance": {
                    "type": "reward_function",
                    "function": "length",
                    "params": {"threshold": 3},
                }
            }
        }
    )
    assert message.startswith("reward spec: graders.relevance.params.threshold: ")
    assert "its parameters: target_min, target_max" in message
    with pytest.raises(UnknownNameError, match=r"graders\.x\.function.*'lenth'; known: .*length"):
        load_spec({"graders": {"x": {"type": "reward_function", "function": "lenth"}}})
    message = _error({"graders": {"x": {"type": "reward_function"}}})
    assert "graders.x.function: missing required key 'function'" in message
    assert "known: " in message and "math_answer" in message


def test_several_problems_are_reported_together():
    message = _error(
        {
            "graders": {"r": {"callable": "json:dumps", "score_range": [0]}},
            "runner": {"max_concurrency": 0, "show_progress": "no"},
        }
    )
    assert message.startswith("reward spec: 3 problems:")
    for path in ("graders.r.score_range", "runner.max_concurrency", "runner.show_progress"):
        assert f"\n  {path}: " in message


def test_reserved_names_are_refused_at_load():
    message = _error({"graders": {"uid": {"callable": "json:dumps"}}})
    assert "graders.uid: 'uid' is a reserved name" in message
    message = _error(
        {"graders": {"r": {"callable": "json:dumps"}}, "aggregators": [{"name": "score"}]}
    )
    assert "aggregators[0].name: 'score' is a reserved name" in message
    assert "r__error" in _error({"graders": {"r__error": {"callable": "json:dumps"}}})


def test_unwritable_cache_is_a_config_error_before_any_call(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    message = _error(
        {
            "judge_model": JUDGE,
            "cache": str(blocker / "cache.sqlite"),
            "graders": {"r": {"type": "relevance"}},
        }
    )
    assert "cache: cannot open the judge cache" in message and "`cache: false`" in message
    spec = load_spec(
        {"judge_model": JUDGE, "cache": False, "graders": {"r": {"type": "relevance"}}}
    )
    assert spec.graders["r"].grader.cache is None


def test_cache_override_reaches_every_judge_before_a_cache_is_opened(tmp_path):
    judged = {"judge_model": JUDGE, "graders": {"r": {"type": "relevance"}}}
    (tmp_path / "inner.yaml").write_text(json.dumps({**judged, "cache": str(tmp_path / "c1")}))
    outer = {
        **judged,
        "cache": str(tmp_path / "c2"),
        "graders": {
            "r": {"type": "relevance", "cache": str(tmp_path / "c3")},
            "inner": {"type": "reward", "spec": "inner.yaml"},
        },
    }
    path = _write(tmp_path, json.dumps(outer))
    spec = RewardSpec.from_yaml(path, cache_override=False)  # rlreward grade --no-cache
    assert spec.graders["r"].grader.cache is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inner.yaml", "spec.yaml"]
    RewardSpec.from_yaml(path)  # without it, each setting opens its cache file
    assert {"c1", "c3"} <= {p.name for p in tmp_path.iterdir()}


def test_duplicate_yaml_keys_are_refused(tmp_path):
    twice = "graders:\n  r: {callable: 'json:dumps'}\n  r: {type: relevance}\n"
    with pytest.raises(ConfigError, match=r"line 3: key 'r' is given twice .*first on line 2"):
        RewardSpec.from_yaml(_write(tmp_path, twice))
    weight_twice = (
        "graders:\n  a: {callable: 'json:dumps'}\naggregators:\n  - weights: {a: 1, a: 2}\n"
    )
    with pytest.raises(ConfigError, match="key 'a' is given twice"):
        RewardSpec.from_yaml(_write(tmp_path, weight_twice))
    # a merge key (`<<`) may be overridden on purpose
    ok = "graders:\n  a: {<<: {callable: 'json:dumps', score_range: [0, 1]}, score_range: [0, 2]}\n"
    assert RewardSpec.from_yaml(_write(tmp_path, ok)).graders["a"].grader.score_range == (0.0, 2.0)


def test_yaml_with_a_bom_loads(tmp_path):
    p = tmp_path / "spec.yaml"
    p.write_bytes(b"\xef\xbb\xbfgraders:\n  r: {callable: 'json:dumps'}\n")
    assert set(RewardSpec.from_yaml(p).graders) == {"r"}


def test_callable_grader_options_and_runner_options(tmp_path):
    (tmp_path / "g.py").write_text(
        "def harm(response):\n    return 4.0 if 'bad' in response else 0.0\n"
    )
    spec = RewardSpec.from_yaml(
        _write(
            tmp_path,
            "graders:\n"
            "  harm: {callable: 'g.py:harm', score_range: [0, 4], higher_is_better: false}\n"
            "aggregators: {name: reward}\n"
            "runner: {max_concurrency: 3, timeout: 5}\n",
        )
    )
    runner = spec.build_runner()
    assert runner.max_concurrency == 3 and runner.timeout == 5
    assert runner.run([{"response": "bad"}, {"response": "fine"}]).scores("reward") == [0.0, 1.0]


def test_defaults_stay_with_the_built_objects():
    spec = load_spec(
        {
            "judge_model": {**JUDGE, "max_retries": 2},
            "cache": False,
            "graders": {
                "rel": {"type": "relevance"},
                "rub": {"type": "rubric", "criteria": "Polite.", "scale": [1, 10]},
                "len": {"type": "reward_function", "function": "length"},
            },
            "aggregators": [{"weights": {"rel": 1, "len": 1}, "on_error": "renormalize"}],
        }
    )
    rel, rub = spec.graders["rel"].grader, spec.graders["rub"].grader
    assert rel.model is rub.model and rel.model.max_retries == 2
    assert rub.judge_scale == (1.0, 10.0)
    agg = spec.aggregators[0]
    assert isinstance(agg, WeightedSumAggregator) and agg.name == "reward"
    assert agg.on_error == "renormalize" and spec.max_concurrency == 32
