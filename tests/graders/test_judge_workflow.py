"""The seed's complete workflow (three judges, a ground_truth mapper, a weighted reward),
in Python and as a YAML spec through the CLI, against the local server; and, when
opted in, against a real provider."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from dotenv import load_dotenv

from rlreward import (
    CorrectnessGrader,
    GraderConfig,
    GradingRunner,
    HarmfulnessGrader,
    OpenAIChatModel,
    RelevanceGrader,
    WeightedSumAggregator,
    load_spec,
)
from rlreward.cli import main as cli_main
from rlreward.errors import ConfigError
from tests.openai_server import Action

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATASET = [
    {
        "query": "Explain gravity",
        "response": "Gravity is a force that attracts objects with mass...",
        "ground_truth": "Gravity is a fundamental force of nature...",
    },
    {"query": "What is 2+2?", "response": "4", "ground_truth": "4"},
]


async def compute_training_rewards(
    dataset: list[dict], judge: str = "qwen3-32b"
) -> list[float | None]:
    """The seed's complete workflow, ported to rlreward (as in the README)."""
    load_dotenv()
    assert os.getenv("OPENAI_API_KEY"), "API key not configured"
    model = OpenAIChatModel(model=judge)
    grader_configs = {
        "harmfulness": GraderConfig(grader=HarmfulnessGrader(model=model)),
        "relevance": GraderConfig(grader=RelevanceGrader(model=model)),
        "correctness": GraderConfig(
            grader=CorrectnessGrader(model=model),
            mapper={"reference_response": "ground_truth"},
        ),
    }
    aggregator = WeightedSumAggregator(
        name="reward",
        weights={"harmfulness": 0.4, "relevance": 0.3, "correctness": 0.3},
    )
    runner = GradingRunner(
        grader_configs=grader_configs, aggregators=aggregator, max_concurrency=32
    )
    async with runner:
        results = await runner.arun(dataset)
    return results.scores(aggregator.name)


def honest_judge(body: dict) -> Action:
    """Harmless everything; relevant; correct unless the response differs from the reference."""
    prompt = body["messages"][-1]["content"]
    if "Criterion: HARMFULNESS" in prompt:
        return Action.judge(1, "harmless")
    if "Criterion: CORRECTNESS" in prompt:
        return Action.judge(5 if "<response>\n4\n</response>" in prompt else 4, "checked")
    return Action.judge(5, "on topic")


@pytest.fixture
def local_env(openai_server, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    openai_server.responder = honest_judge
    return openai_server


def test_seed_workflow_in_python(local_env):
    rewards = asyncio.run(compute_training_rewards(DATASET))
    # harmfulness 1/5 -> 0.0 harmful -> 1.0 after the aggregator turns it around
    assert rewards == pytest.approx([0.4 * 1 + 0.3 * 1 + 0.3 * 0.75, 1.0])
    assert local_env.n_requests == 6
    prompts = [b["messages"][-1]["content"] for b in local_env.requests]
    assert any("<reference_response>\n4\n</reference_response>" in p for p in prompts)


def test_seed_workflow_as_yaml_through_the_cli(local_env, tmp_path):
    data = tmp_path / "data.jsonl"
    shutil.copy(EXAMPLES / "data.jsonl", data)
    n = len(data.read_text().splitlines())
    out = tmp_path / "scored.jsonl"
    args = ["grade", "-c", str(EXAMPLES / "judges.yaml"), str(data), "-o", str(out), "-q"]
    assert cli_main(args) == 0
    assert local_env.n_requests == 3 * n
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(0.0 <= row["grades"]["reward"]["score"] <= 1.0 for row in scored)
    assert all(row["grades"]["harmfulness"]["score"] == 0.0 for row in scored)
    assert (tmp_path / ".rlreward" / "cache.sqlite").is_file()  # on by default for the CLI
    assert cli_main(args) == 0
    assert local_env.n_requests == 3 * n  # the rerun was served from the cache
    assert cli_main([*args, "--no-cache"]) == 0
    assert local_env.n_requests == 6 * n
    assert {b["model"] for b in local_env.requests} == {"qwen3-32b"}


def test_spec_shares_one_model_and_checks_judge_settings(local_env, tmp_path):
    spec = {
        "judge_model": {"model": "${RLREWARD_TEST_JUDGE:-judge-a}", "max_retries": 2},
        "cache": False,
        "graders": {
            "harm": {"type": "harmfulness"},
            "rel": {"type": "relevance"},
            "follow": {"type": "instruction_following"},
            "ground": {"type": "hallucination", "model": "judge-b"},
            "rubric": {"type": "rubric", "criteria": "Polite.", "scale": [1, 10]},
        },
    }
    built = load_spec(spec)
    graders = {n: c.grader for n, c in built.graders.items()}
    models = {id(g.model) for n, g in graders.items() if n != "ground"}
    assert len(models) == 1 and graders["harm"].model.model == "judge-a"
    assert graders["harm"].model.max_retries == 2
    assert graders["ground"].model.model == "judge-b"
    assert all(g.cache is None for g in graders.values())
    assert graders["rubric"].judge_scale == (1.0, 10.0)
    default_cache = load_spec(
        {"judge_model": {"model": "m"}, "graders": {"r": {"type": "relevance"}}}
    )
    assert default_cache.graders["r"].grader.cache.path == tmp_path / ".rlreward" / "cache.sqlite"
    with pytest.raises(ConfigError, match="needs a model"):
        load_spec({"graders": {"r": {"type": "relevance"}}})
    with pytest.raises(ConfigError, match="modle"):
        load_spec({"judge_model": {"modle": "x"}, "graders": {"r": {"type": "relevance"}}})
    with pytest.raises(ConfigError, match="criteria"):
        load_spec({"judge_model": {"model": "m"}, "graders": {"r": {"type": "rubric"}}})


@pytest.mark.skipif(
    not (os.getenv("OPENAI_API_KEY") and os.getenv("RLREWARD_LIVE_TESTS") == "1"),
    reason="live provider test: set OPENAI_API_KEY and RLREWARD_LIVE_TESTS=1 "
    "(optionally OPENAI_BASE_URL and RLREWARD_LIVE_MODEL)",
)
def test_seed_workflow_against_a_real_provider():
    judge = os.getenv("RLREWARD_LIVE_MODEL", "gpt-4o-mini")
    rewards = asyncio.run(compute_training_rewards(DATASET, judge))
    assert all(r is not None and 0.0 <= r <= 1.0 for r in rewards)
    assert rewards[1] >= 0.5  # "4" for "What is 2+2?" is harmless, relevant and correct
