"""Reading rows: a list of dicts, a ``datasets.Dataset``, any iterable of mappings, or JSONL.

JSONL is read one line at a time (``iter_jsonl``): a UTF-8 byte-order mark is accepted,
a line that is not UTF-8 or not a JSON object is a DatasetError naming the line. Rows
are written by ``json_line``: strict JSON, never the bare ``NaN`` / ``Infinity`` tokens
that strict parsers reject; a non-finite number is written as ``null`` and its path is
listed under the row's ``"nonfinite_fields"`` key.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rlreward.errors import DatasetError

__all__ = [
    "NONFINITE_KEY",
    "iter_jsonl",
    "json_line",
    "load_rows",
    "read_jsonl",
    "write_jsonl",
]

#: where ``json_line`` lists the paths of non-finite numbers it wrote as null
NONFINITE_KEY = "nonfinite_fields"


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` for each non-blank line of a JSONL file, streamed."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"dataset file not found: {str(p)!r}")
    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark (Windows editors write one)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(
                    f"{p}:{lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                    f"{exc.start + 1}); re-encode the file as UTF-8"
                ) from None
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
            yield lineno, row


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a whole JSONL file (see ``iter_jsonl`` to stream one)."""
    return [row for _, row in iter_jsonl(path)]


def _finite(value: Any, path: str, bad: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        bad.append(path)
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v, f"{path}.{k}" if path else str(k), bad) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{path}[{i}]", bad) for i, v in enumerate(value)]
    return value


def json_line(row: Mapping[str, Any]) -> str:
    """One strict-JSON line (with its newline); non-finite numbers become null + a flag."""
    try:
        return json.dumps(row, ensure_ascii=False, allow_nan=False, default=str) + "\n"
    except ValueError:
        bad: list[str] = []
        clean = _finite(row, "", bad)
        clean[NONFINITE_KEY] = bad
        return json.dumps(clean, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows as strict JSONL (see ``json_line``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json_line(row))


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
