"""Reward time of verl 0.9.1's pre-reward-loop managers fed rlreward's entry points.

Each manager is built as a trainer builds it (``get_custom_reward_fn`` from a config)
and scores one DataProto batch (the tests' builder) through a one-judge spec whose
async judge sleeps the given latency:

- ``naive`` / ``dapo`` + ``compute_score_sync``: verl calls the function once per
  sample, one after another, so time ~ samples x latency whatever rlreward does;
- ``prime`` + ``compute_score_scalar``: verl's process pool (64 forked workers), each
  building the spec once;
- ``batch`` + ``compute_score_batch``: one ``runner.arun`` for the batch.

python scripts/bench_verl_managers.py                  # 256 samples, 0 and 20 ms
python scripts/bench_verl_managers.py --samples 64 --no-append
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the DataProto builder is shared with the tests
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _bench import append_section, table  # noqa: E402

THIS = Path(__file__).resolve()
ENTRY = {
    "naive": "compute_score_sync",
    "dapo": "compute_score_sync",
    "prime": "compute_score_scalar",
    "batch": "compute_score_batch",
}


async def judge_0ms(response: str) -> float:
    return 0.5


async def judge_20ms(response: str) -> float:
    await asyncio.sleep(0.02)
    return 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = ap.parse_args()
    if args.samples < 1:
        ap.error("--samples must be >= 1")

    import yaml
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager import get_reward_manager_cls

    from tests.integrations import adapter_helpers as H
    from tests.integrations import verl_helpers as V

    tok = H.tokenizer()
    samples = [
        {"prompt": f"what is {i}", "response": f"it is {i}", "ground_truth": str(i)}
        for i in range(args.samples)
    ]
    data = H.make_dataproto(tok, samples)
    tmp = Path(tempfile.mkdtemp(prefix="bench_verl_managers_"))
    rows = []
    for latency in (0, 20):
        spec = tmp / f"judge_{latency}.yaml"
        spec.write_text(yaml.safe_dump(V.one_grader_spec(f"{THIS}:judge_{latency}ms", 128)))
        for manager, entry in ENTRY.items():
            fn = get_custom_reward_fn(V.reward_fn_config(str(spec), entry))
            reward_manager = get_reward_manager_cls(manager)(tok, 0, compute_score=fn)
            t0 = time.perf_counter()
            tensor = reward_manager(data)
            secs = time.perf_counter() - t0
            ok = int((tensor.sum(-1) == 0.5).sum())
            rows.append(
                [
                    f"{latency} ms",
                    manager,
                    entry,
                    f"{secs:.2f}",
                    f"{1000 * secs / args.samples:.2f}",
                    f"{ok}/{args.samples}",
                ]
            )
            print(f"done: {latency} ms {manager}", flush=True)
    load = os.getloadavg()
    body = table(
        [
            "judge latency",
            "verl manager",
            "rlreward entry",
            f"s / {args.samples}",
            "ms / sample",
            "rewards = 0.5",
        ],
        rows,
    )
    body += (
        f"\n\nLoad average during the run: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}. "
        "naive/dapo call compute_score one sample after another (verl's loop), so their "
        "time is samples x (latency + per-call overhead); batch grades in one runner.arun "
        "(runner.max_concurrency=128); prime's time is mostly forking its 64 workers."
    )
    print(body)
    if not args.no_append:
        append_section("VERL pre-reward-loop managers (scripts/bench_verl_managers.py)", body)


if __name__ == "__main__":
    main()
