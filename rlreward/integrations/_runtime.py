"""What the trainer adapters share: the reward they hold, and one event loop per process.

``as_reward(obj)`` is the one way an adapter turns what a user gave it (a ``Reward``, a
``RewardSpec``, a YAML spec path, a spec dict, a ``GradingRunner``) into the ``Reward``
it holds. A Reward passed as an object is used as it is (it pickles with the adapter's
functions and builds its clients lazily in each process). A path or a dict is what a
host hands over as configuration (VERL's ``reward_kwargs.spec``, ``$RLREWARD_SPEC``):
each process builds its Reward once and keeps it in a small bounded table, so every call
in that process shares one runner (one HTTP client and concurrency limit per event loop,
one cache). ``run_sync`` runs a coroutine on one background event loop per process, for
the synchronous entrances (VERL's legacy managers, the TRL callback), so their HTTP
clients live as long as the process instead of one batch.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rlreward.errors import ConfigError
from rlreward.integrations.spec import RewardSpec, load_reward
from rlreward.reward import Reward
from rlreward.runner import GradingRunner

__all__ = ["as_reward", "run_sync"]

T = TypeVar("T")

#: rewards built from a path or a dict, per process (bounded: a long job that reads many
#: spec files keeps the most recent ones)
_MAX_BUILT = 16
_lock = threading.Lock()
_built: OrderedDict[tuple[Any, ...], Reward] = OrderedDict()
_owner_pid = os.getpid()


def _key_and_loader(obj: Any) -> tuple[tuple[Any, ...], Any]:
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"reward spec file not found: {str(obj)!r} (resolved from {os.getcwd()!r}); "
                "pass an absolute path to a YAML reward spec"
            )
        resolved = str(path.resolve())
        return ("path", resolved), lambda: RewardSpec.from_yaml(resolved).reward
    data = dict(obj)
    base = os.getcwd()
    key = ("dict", json.dumps(data, sort_keys=True, default=repr), base)
    return key, lambda: RewardSpec.from_dict(data, base_dir=base).reward


def _chosen(reward: Reward, aggregator: str | None) -> Reward:
    if aggregator is None or aggregator == reward.name:
        return reward
    if aggregator not in reward.aggregators:
        raise ConfigError(
            f"aggregator {aggregator!r} is not in the reward; its aggregators are "
            f"{sorted(reward.aggregators)}"
        )
    return reward.with_reward(aggregator)


def as_reward(obj: Any, aggregator: str | None = None) -> Reward:
    """The Reward an adapter holds for ``obj`` (see the module docstring).

    ``aggregator`` picks which of the reward's aggregators is the value (default: the
    reward's own, i.e. the spec's ``reward:`` or its first aggregator).
    """
    global _owner_pid
    if aggregator is not None and (not isinstance(aggregator, str) or not aggregator):
        raise ConfigError(f"aggregator must be an aggregator name, got {aggregator!r}")
    if isinstance(obj, (Reward, RewardSpec, GradingRunner)):
        return _chosen(load_reward(obj), aggregator)
    if not isinstance(obj, (str, os.PathLike, Mapping)):
        raise ConfigError(
            "a reward must be given as a Reward, a RewardSpec, a YAML spec path, a spec dict "
            f"or a GradingRunner, got {type(obj).__name__}"
        )
    key, build = _key_and_loader(obj)
    key = (*key, aggregator)
    with _lock:
        if os.getpid() != _owner_pid:  # a forked child must not share the parent's clients
            _built.clear()
            _owner_pid = os.getpid()
        found = _built.get(key)
        if found is not None:
            _built.move_to_end(key)
            return found
    built = _chosen(build(), aggregator)  # outside the lock: building may load models
    with _lock:
        found = _built.setdefault(key, built)
        while len(_built) > _MAX_BUILT:
            _built.popitem(last=False)
        return found


class _BackgroundLoop:
    """One daemon thread running an event loop, started on first use (per process)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = -1
        self.lock = threading.Lock()

    def get(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None or self.pid != os.getpid() or self.loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=serve, name="rlreward-loop", daemon=True).start()
                ready.wait()
                self.loop, self.pid = loop, os.getpid()
            return self.loop


_background = _BackgroundLoop()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the process's background loop and wait for its result."""
    loop = _background.get()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_sync() was called from the rlreward background loop; await instead")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()
