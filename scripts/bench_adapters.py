"""Benchmark the VERL adapter: reward time for one 1,024-sample batch, 0 ms and 50 ms judges.

Every entrance runs in-process on a real verl 0.9.1 DataProto (the tests' builder):

- baseline: verl's reward-loop ``NaiveRewardManager`` with a synchronous compute_score
  that sleeps the judge latency (VERL runs it in the loop's default thread pool);
- ours, three entrances: the same naive manager with ``rlreward`` compute_score,
  ``RLRewardManager`` and ``LegacyRLRewardManager``, grading an async judge that sleeps
  the same latency (spec ``runner.max_concurrency`` below);
- legacy baseline: verl's old ``workers.reward_manager.NaiveRewardManager`` (verl < 0.7
  ``reward_fn``), which calls the synchronous function one sample after another.

python scripts/bench_adapters.py                 # 1,024 samples, 0 and 50 ms
python scripts/bench_adapters.py --samples 256 --no-append
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the DataProto builder is shared with the tests
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _bench import append_section, table  # noqa: E402

THIS = Path(__file__).resolve()
N_SAMPLES = [1024]  # set by main(); used by fmt()


def sync_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Any = None,
    latency: float = 0.0,
) -> float:
    """The baseline: a synchronous VERL compute_score taking ``latency`` seconds."""
    if latency:
        time.sleep(latency)
    return 0.5


async def judge_0ms(response: str) -> float:
    return 0.5


async def judge_50ms(response: str) -> float:
    await asyncio.sleep(0.05)
    return 0.5


def fmt(seconds: float) -> list[str]:
    return [f"{seconds:.2f}", f"{seconds * 1000 / N_SAMPLES[0]:.3f}"]


def reward_loop_seconds(config: Any, data: Any) -> float:
    """VERL's RewardLoopWorker in-process: per-sample tasks + rm_scores assembly."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    async def main() -> float:
        worker = RewardLoopWorker(config)
        t0 = time.perf_counter()
        outputs = await worker.compute_score_batch(data)
        worker.reward_manager.assemble_rm_scores(data, [o["reward_score"] for o in outputs])
        return time.perf_counter() - t0

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--concurrency", type=int, default=128, help="spec runner.max_concurrency")
    ap.add_argument(
        "--skip-legacy-baseline",
        action="store_true",
        help="skip the sequential one (51 s at 50 ms)",
    )
    ap.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = ap.parse_args()
    N_SAMPLES[0] = args.samples

    import yaml

    from rlreward.embedded import embedded_model_path
    from rlreward.integrations._runtime import as_reward
    from rlreward.integrations.verl import LegacyRLRewardManager
    from tests.integrations import adapter_helpers as H

    tok = H.tokenizer()
    tok_path = str(embedded_model_path())
    samples = [
        {
            "prompt": f"what is {i} plus {i}",
            "response": f"it is {2 * i}",
            "ground_truth": str(2 * i),
        }
        for i in range(args.samples)
    ]
    data = H.make_dataproto(tok, samples)
    tmp = Path(tempfile.mkdtemp(prefix="bench_adapters_"))
    rows: list[list[str]] = []
    for latency_ms in (0, 50):
        spec = {
            "graders": {"judge": {"callable": f"{THIS}:judge_{latency_ms}ms"}},
            "aggregators": [{"type": "weighted_sum", "name": "reward"}],
            "runner": {"max_concurrency": args.concurrency},
        }
        spec_path = tmp / f"judge_{latency_ms}.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        as_reward(str(spec_path))  # build once, as a worker does at its first call

        base_cfg = H.verl_config(tok_path, str(spec_path), custom_fn=False)
        base_cfg.reward.custom_reward_function = {
            "path": str(THIS),
            "name": "sync_score",
            "reward_kwargs": {"latency": latency_ms / 1000},
        }
        baseline = reward_loop_seconds(base_cfg, data)
        timings = {
            "naive manager + rlreward compute_score": reward_loop_seconds(
                H.verl_config(tok_path, str(spec_path)), data
            ),
            "RLRewardManager": reward_loop_seconds(
                H.verl_config(tok_path, str(spec_path), manager="RLRewardManager", custom_fn=False),
                data,
            ),
        }
        legacy = LegacyRLRewardManager(tok, spec=str(spec_path))
        t0 = time.perf_counter()
        legacy(data)
        timings["LegacyRLRewardManager"] = time.perf_counter() - t0
        legacy_base = None
        if not args.skip_legacy_baseline:
            from verl.workers.reward_manager.naive import NaiveRewardManager

            fn = functools.partial(sync_score, latency=latency_ms / 1000)
            old = NaiveRewardManager(tok, num_examine=0, compute_score=fn)
            t0 = time.perf_counter()
            old(data)
            legacy_base = time.perf_counter() - t0

        lat = f"{latency_ms} ms"
        rows.append(
            [lat, "baseline: verl reward-loop naive manager + sync function", *fmt(baseline)]
        )
        if legacy_base is not None:
            rows.append(
                [
                    lat,
                    "legacy baseline: verl < 0.7 naive reward_fn + sync function",
                    *fmt(legacy_base),
                ]
            )
        for name, secs in timings.items():
            ref, ref_name = baseline, "baseline"
            if name.startswith("Legacy") and legacy_base is not None:
                ref, ref_name = legacy_base, "legacy baseline"
            rows.append([lat, f"rlreward: {name}", *fmt(secs), f"{ref / secs:.1f}x vs {ref_name}"])
        print(f"done: {latency_ms} ms", flush=True)

    threads = min(32, (os.cpu_count() or 1) + 4)
    headers = ["judge latency", "reward entrance", f"s / {args.samples}", "ms / sample", "speed-up"]
    body = table(headers, [r if len(r) == 5 else [*r, "-"] for r in rows])
    body += (
        "\n\nBaseline concurrency: the reward loop's default thread pool "
        f"({threads} threads here: min(32, CPUs + 4)); rlreward: the spec's "
        f"runner.max_concurrency={args.concurrency}. "
        f"Sequential time at 50 ms: {args.samples * 0.05:.1f} s."
    )
    print(body)
    if not args.no_append:
        append_section("VERL adapter reward time (scripts/bench_adapters.py)", body)


if __name__ == "__main__":
    main()
