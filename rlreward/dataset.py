"""Reading rows: a list of dicts, a ``datasets.Dataset``, any iterable of mappings, or JSONL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rlreward.errors import DatasetError

__all__ = ["load_rows", "read_jsonl", "write_jsonl"]


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file; a bad line raises DatasetError naming the line number."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"dataset file not found: {str(p)!r}")
    rows: list[dict[str, Any]] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(
                    f"{p}:{lineno}: each line must be a JSON object, got {type(row).__name__}"
                )
            rows.append(row)
    return rows


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def load_rows(dataset: Any) -> list[dict[str, Any]]:
    """Normalise a dataset argument to a list of dicts (rows are not copied)."""
    if isinstance(dataset, (str, os.PathLike)):
        return read_jsonl(dataset)
    if hasattr(dataset, "column_names") and hasattr(dataset, "to_list"):  # datasets.Dataset
        return list(dataset.to_list())
    if isinstance(dataset, Mapping):
        raise DatasetError(
            "dataset must be a sequence of rows, got a single mapping; wrap it in a list"
        )
    if not isinstance(dataset, Iterable):
        raise DatasetError(
            f"dataset must be a list of dicts, a datasets.Dataset or a JSONL path, "
            f"got {type(dataset).__name__}"
        )
    rows = dataset if isinstance(dataset, list) else list(dataset)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DatasetError(f"dataset row {i} must be a mapping, got {type(row).__name__}")
    return rows
