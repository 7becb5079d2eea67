"""Write prompts as VERL parquet files (train/test) for recipes/ppo_verl.sh.

VERL's RLHFDataset reads ``prompt`` (a chat message list), ``data_source``,
``reward_model.ground_truth`` and ``extra_info``; rlreward's ``compute_score`` takes the
prompt from ``extra_info.question``. Input: a JSONL file with a prompt column (prompt,
query, question, instruction or input; ``ground_truth`` is kept when present), or
nothing for the questions shipped with rlreward.

    python recipes/verl_data.py --out ~/data/rlreward
    python recipes/verl_data.py --input my_prompts.jsonl --out ~/data/mine
"""

from __future__ import annotations

import argparse
from pathlib import Path


def to_verl_rows(dataset, source: str) -> list[dict]:
    from rlreward.rl.data import prompt_text

    rows = []
    for i, row in enumerate(dataset):
        question = prompt_text(row["prompt"])
        rows.append(
            {
                "data_source": source,
                "prompt": [{"role": "user", "content": question}],
                "ability": "chat",
                "reward_model": {
                    "style": "rule",
                    "ground_truth": str(row.get("ground_truth") or ""),
                },
                "extra_info": {"index": i, "question": question},
            }
        )
    return rows


def main(argv: list[str] | None = None) -> tuple[Path, Path]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--input", default=None, help="JSONL of prompts (default: the shipped questions)"
    )
    p.add_argument("--out", required=True, help="directory for train.parquet and test.parquet")
    p.add_argument("--test-fraction", type=float, default=0.25)
    args = p.parse_args(argv)

    import pandas as pd

    from rlreward.rl.data import load_prompt_dataset

    rows = to_verl_rows(load_prompt_dataset(args.input), source=Path(args.input or "rlreward").stem)
    n_test = max(1, int(len(rows) * args.test_fraction))
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    train, test = out / "train.parquet", out / "test.parquet"
    pd.DataFrame(rows[n_test:]).to_parquet(train)
    pd.DataFrame(rows[:n_test]).to_parquet(test)
    print(f"wrote {len(rows) - n_test} train and {n_test} test prompts to {out}")
    return train, test


if __name__ == "__main__":
    main()
