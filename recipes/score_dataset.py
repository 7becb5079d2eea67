"""The seed's compute_training_rewards workflow: score a JSONL file with several graders.

Environment -> data -> graders -> runner -> aggregation -> rewards. With
``OPENAI_API_KEY`` set, or only ``OPENAI_BASE_URL`` for a keyless local server (vLLM,
SGLang; a ``.env`` file in the working directory works too), it uses the seed's three
LLM judges: harmfulness (lower is better; the aggregator turns it around), relevance and
correctness against ``ground_truth``. With neither it says so and uses offline rule
functions for the same three roles: safety, semantic relevance to the query (embedded
MiniLM) and ROUGE-L against ``ground_truth``. Rows need ``query`` and ``response`` (and
``ground_truth``).
Each column carries its grader's true name and raw score (``safety`` is higher = safer,
``harmfulness`` higher = worse); the aggregator aligns them for the reward.

    python recipes/score_dataset.py examples/data.jsonl -o scored.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

#: the seed's weights, per role (harm, relevance, correctness), under each grader's name
WEIGHTS = {"harmfulness": 0.4, "relevance": 0.3, "correctness": 0.3}
OFFLINE_WEIGHTS = {"safety": 0.4, "semantic_relevance": 0.3, "rouge": 0.3}


def build_graders(judge_model: str | None, endpoint: str = "") -> tuple[dict[str, Any], str]:
    """(grader configs, one line saying which graders are used); judges when a model is
    given (``endpoint`` says where they are), rule functions otherwise."""
    from rlreward import GraderConfig

    truth = {"reference_response": "ground_truth"}  # the rest of the row stays available
    if judge_model is not None:
        from rlreward.graders.judges import CorrectnessGrader, HarmfulnessGrader, RelevanceGrader
        from rlreward.models.openai import OpenAIChatModel

        model = OpenAIChatModel(model=judge_model)
        configs = {
            "harmfulness": GraderConfig(HarmfulnessGrader(model=model)),
            "relevance": GraderConfig(RelevanceGrader(model=model)),
            "correctness": GraderConfig(CorrectnessGrader(model=model), mapper=truth),
        }
        return configs, f"{endpoint}: scoring with LLM judges ({judge_model})"
    from rlreward.graders.reward_function import RewardFunctionGrader

    configs = {
        "safety": GraderConfig(RewardFunctionGrader("safety")),
        "semantic_relevance": GraderConfig(RewardFunctionGrader("semantic_relevance")),
        "rouge": GraderConfig(RewardFunctionGrader("rouge"), mapper=truth),
    }
    line = (
        "OPENAI_API_KEY is not set: scoring with offline rule functions "
        "(safety, semantic_relevance, rouge); set it, or OPENAI_BASE_URL for a keyless "
        "local server, to use LLM judges"
    )
    return configs, line


async def compute_training_rewards(
    rows: list[dict], judge_model: str | None, endpoint: str = ""
) -> tuple[list, Any]:
    """Rewards (None where the reward failed) and the full results."""
    from rlreward import GradingRunner, WeightedSumAggregator

    configs, line = build_graders(judge_model, endpoint)
    print(line)
    # safety is higher = safer, the harmfulness judge lower = better: the aggregator reads
    # each grader's direction, so the seed's weights apply either way
    weights = WEIGHTS if judge_model is not None else OFFLINE_WEIGHTS
    aggregator = WeightedSumAggregator(name="reward", weights=weights, on_error="error")
    runner = GradingRunner(configs, aggregators=aggregator, max_concurrency=32, show_progress=False)
    async with runner:
        results = await runner.arun(rows)
    return results.scores(aggregator.name), results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="JSONL with query, response and ground_truth per line")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="also write each row with its scores as JSONL to this file (default: print only)",
    )
    p.add_argument(
        "--judge-model",
        default=os.environ.get("JUDGE_MODEL", "qwen3-32b"),
        help="model id of the LLM judges, used when OPENAI_API_KEY or OPENAI_BASE_URL is set "
        "(default: $JUDGE_MODEL, else qwen3-32b)",
    )
    return p


def main(argv: list[str] | None = None) -> list:
    args = build_parser().parse_args(argv)

    from dotenv import find_dotenv, load_dotenv

    from rlreward.dataset import read_jsonl, write_jsonl
    from rlreward.models.openai import judge_endpoint

    load_dotenv(find_dotenv(usecwd=True), override=False)  # a .env in the working directory
    rows = read_jsonl(args.data)
    endpoint = judge_endpoint()
    judge = args.judge_model if endpoint is not None else None
    rewards, results = asyncio.run(compute_training_rewards(rows, judge, endpoint or ""))
    print(f"Training rewards: {[None if r is None else round(r, 4) for r in rewards]}")
    print(results.format_summary())
    if args.output:
        records = results.to_records()
        write_jsonl(
            args.output, [{**row, "scores": rec} for row, rec in zip(rows, records, strict=True)]
        )
        print(f"wrote {len(rows)} scored rows to {Path(args.output)}")
    if any(r is None for r in rewards):
        print(json.dumps(results.errors("reward"), indent=1)[:2000])
    return rewards


if __name__ == "__main__":
    main()
