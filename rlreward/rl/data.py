"""Prompts for RL: a hub dataset, a local file or directory, a Dataset, or the shipped ones.

Whatever comes in leaves as a ``datasets.Dataset`` with a ``prompt`` column (a string or
a list of chat messages) plus the source's other columns, which GRPO passes on to
reward mappers (e.g. ``ground_truth``). ``None`` means the everyday questions shipped
with rlreward (``rlreward.data``), so the default run needs no network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlreward import messages
from rlreward.errors import ConfigError, DatasetError

__all__ = ["PROMPT_COLUMNS", "load_prompt_dataset", "prompt_text", "shipped_prompts"]

logger = logging.getLogger(__name__)

#: columns tried, in order, when ``prompt_column`` is not given
PROMPT_COLUMNS = ("prompt", "query", "question", "instruction", "input")
_FILE_BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
}


def shipped_prompts() -> list[str]:
    """The distinct questions of the shipped reward texts, in file order."""
    from rlreward.data import load_reward_records

    seen: dict[str, None] = {}
    for r in load_reward_records():
        seen.setdefault(r["prompt"], None)
    return list(seen)


def prompt_text(prompt: Any) -> str:
    """A prompt as plain text (``rlreward.messages``): a string as is, chat messages as
    their last user turn; DatasetError for anything else."""
    text = messages.prompt_text(prompt)
    if text is None:
        raise DatasetError(
            f"a prompt must be a string or a list of chat messages, got {type(prompt).__name__}"
        )
    return text


def _pick_split(dd: Any, split: str | None, name: str) -> Any:
    """One split of a DatasetDict: the one asked for, else 'train', else the first '*train*'."""
    splits = list(dd.keys())
    if split is not None:
        if split not in dd:
            raise ConfigError(
                f"dataset {name!r} has no split {split!r}; its splits: {', '.join(splits)}"
            )
        return dd[split]
    for cand in ["train", *[s for s in splits if "train" in s], *splits]:
        if cand in dd:
            if cand != "train":
                logger.info(
                    "dataset %r has no 'train' split; using %r (pass dataset_split to choose)",
                    name,
                    cand,
                )
            return dd[cand]
    raise DatasetError(f"dataset {name!r} has no splits")


def _read(source: Any, split: str | None) -> Any:
    """Any accepted source -> datasets.Dataset (not yet with a prompt column)."""
    import datasets

    if source is None:
        return datasets.Dataset.from_dict({"prompt": shipped_prompts()})
    if isinstance(source, datasets.Dataset):
        return source
    if isinstance(source, datasets.DatasetDict):
        return _pick_split(source, split, "<DatasetDict>")
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        path = Path(text).expanduser()
        if path.is_dir():
            try:
                loaded = datasets.load_from_disk(str(path))
            except FileNotFoundError:
                loaded = datasets.load_dataset(str(path))
            return (
                _pick_split(loaded, split, text)
                if isinstance(loaded, datasets.DatasetDict)
                else loaded
            )
        if path.is_file():
            builder = _FILE_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise ConfigError(
                    f"dataset_name={text!r}: cannot read {path.suffix!r} files; use JSONL, "
                    "JSON, CSV, "
                    "Parquet or TXT (one prompt per line)"
                )
            loaded = datasets.load_dataset(builder, data_files=str(path), split="train")
            return loaded.rename_column("text", "prompt") if builder == "text" else loaded
        try:
            loaded = datasets.load_dataset(text)
        except Exception as exc:  # hub/network/format errors all mean "cannot use this name"
            raise ConfigError(
                f"dataset_name={text!r}: cannot load it from the Hugging Face Hub "
                f"({type(exc).__name__}: {str(exc)[:200]}); check the id and your network (or "
                "HF_HUB_OFFLINE), or give a local JSONL file or a datasets.Dataset"
            ) from exc
        return _pick_split(loaded, split, text)
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        items = list(source)
        if all(isinstance(x, str) for x in items):
            return datasets.Dataset.from_dict({"prompt": items})
        if all(isinstance(x, Mapping) for x in items):
            return datasets.Dataset.from_list([dict(x) for x in items])
    raise ConfigError(
        f"dataset_name must be a hub id, a local path, a datasets.Dataset, a list of prompts or "
        f"rows, or None (shipped prompts); got {type(source).__name__}"
    )


def load_prompt_dataset(
    source: Any = None,
    *,
    split: str | None = None,
    prompt_column: str | None = None,
    max_samples: int | None = None,
) -> Any:
    """A ``datasets.Dataset`` with a ``prompt`` column; at most ``max_samples`` (the first) rows."""
    ds = _read(source, split)
    column = prompt_column
    if column is None:
        column = next((c for c in PROMPT_COLUMNS if c in ds.column_names), None)
        if column is None:
            raise ConfigError(
                f"the dataset has no prompt column (tried {', '.join(PROMPT_COLUMNS)}; it has "
                f"{', '.join(ds.column_names)}); pass prompt_column=<name>"
            )
    elif column not in ds.column_names:
        raise ConfigError(
            f"prompt_column={column!r} is not a column of the dataset; its columns: "
            f"{', '.join(ds.column_names)}"
        )
    if column != "prompt":
        if "prompt" in ds.column_names:
            ds = ds.remove_columns("prompt")
        ds = ds.rename_column(column, "prompt")
    if max_samples is not None and len(ds) > max_samples:
        ds = ds.select(range(max_samples))
    if len(ds) == 0:
        raise DatasetError("the prompt dataset is empty")
    return ds
