"""``ppo_options`` / ``grpo_options``: checked against the installed TRL's config fields.

``create_rl_trainer`` checks them when it builds the trainer, before any model loads, so
a typo (``num_generationz``) is a ConfigError naming the key and its close match rather
than a TypeError inside ``GRPOConfig(...)`` after reward-model training and the warm-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from difflib import get_close_matches
from typing import Any

from rlreward.errors import ConfigError

__all__ = [
    "VALUE_TRAINABLE",
    "check_option_names",
    "check_ppo_options",
    "split_ppo_options",
    "trl_fields",
]

#: ``ppo_options['value_trainable']``: which weights of PPO's value model learn
VALUE_TRAINABLE = ("head", "all")


def trl_fields(config_class: Any) -> set[str]:
    """The constructor fields of a TRL config dataclass (``GRPOConfig``, ``PPOConfig``)."""
    return {f.name for f in dataclasses.fields(config_class) if f.init}


def check_option_names(
    owner: str, what: str, options: Mapping[str, Any], known: Iterable[str], where: str
) -> None:
    """A ConfigError naming every key of ``options`` not in ``known``, with close matches."""
    known = set(known)
    unknown = sorted(set(options) - known)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = get_close_matches(str(key), known, n=1)
        hints.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    import trl

    raise ConfigError(
        f"{owner}: {what} has unknown keys [{', '.join(hints)}]; each must be a field of "
        f"{where} (trl {trl.__version__}), e.g. {', '.join(sorted(known)[:6])}, ..."
    )


def split_ppo_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``PPOSettings`` fields, other ``PPOConfig`` fields) of ``ppo_options``; the
    ``extra`` dict of the seed's form is merged into the second."""
    from rlreward.rl.ppo import PPOSettings

    named = {f.name for f in dataclasses.fields(PPOSettings)} - {"extra"}
    settings = {k: v for k, v in options.items() if k in named}
    extra = {k: v for k, v in options.items() if k not in named and k != "extra"}
    extra.update(options.get("extra") or {})
    return settings, extra


def check_ppo_options(options: Mapping[str, Any], owner: str = "create_rl_trainer") -> None:
    """Keys are ``PPOSettings`` fields or fields of the installed TRL's ``PPOConfig``
    (``trl.experimental.ppo``; imports TRL, loads no model)."""
    from rlreward.rl.ppo import PPOSettings, trl_ppo

    extra = options.get("extra")
    value = options.get("value_trainable")
    if value is not None and value not in VALUE_TRAINABLE:
        raise ConfigError(
            f"{owner}: ppo_options['value_trainable'] must be one of {list(VALUE_TRAINABLE)} "
            f"or None (head with a LoRA policy, else all), got {value!r}"
        )
    if extra is not None and not isinstance(extra, Mapping):
        raise ConfigError(f"{owner}: ppo_options['extra'] must be a dict, got {extra!r}")
    known = trl_fields(trl_ppo().PPOConfig) | {f.name for f in dataclasses.fields(PPOSettings)}
    check_option_names(owner, "ppo_options", options, known, "PPOSettings or PPOConfig")
    if extra:
        check_option_names(
            owner, "ppo_options['extra']", extra, trl_fields(trl_ppo().PPOConfig), "PPOConfig"
        )
