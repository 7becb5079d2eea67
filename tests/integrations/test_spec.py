import json
from pathlib import Path

import pytest

from rlreward.errors import ConfigError, UnknownNameError
from rlreward.integrations.spec import RewardSpec, load_callable, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_example_spec_builds_and_grades():
    spec = RewardSpec.from_yaml(EXAMPLES / "reward.yaml")
    assert set(spec.graders) == {"relevance", "correctness"} and spec.reward_name == "reward"
    res = spec.build_runner().run(EXAMPLES / "data.jsonl")
    assert len(res["reward"]) == 8 and all(r.ok for r in res["reward"])


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
    with pytest.raises(UnknownNameError, match="unknown grader type .*'relevnce'.*known: .*function"):
        load_spec({"graders": {"r": {"type": "relevnce"}}})
    with pytest.raises(ConfigError, match="exactly one of 'type'"):
        load_spec({"graders": {"r": {"mapper": {}}}})
    with pytest.raises(ConfigError, match="unknown keys"):
        load_spec({"graders": {"r": {"callable": "json:dumps"}}, "grader": {}})
    with pytest.raises(ConfigError, match="'graders' must be a non-empty mapping"):
        load_spec({})
    with pytest.raises(ConfigError, match="unknown runner options"):
        load_spec({"graders": {"r": {"callable": "json:dumps"}}, "runner": {"concurrency": 3}})
    with pytest.raises(ConfigError, match="unknown graders"):
        load_spec(
            {"graders": {"r": {"callable": "json:dumps"}}, "aggregators": [{"weights": {"x": 1}}]}
        )
    with pytest.raises(ConfigError, match="invalid YAML"):
        RewardSpec.from_yaml(_write(tmp_path, "graders: [unclosed"))


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
