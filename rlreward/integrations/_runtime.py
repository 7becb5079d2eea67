"""What the trainer adapters share: where a reward comes from, one runner per process, a loop.

A ``RewardSource`` is the picklable description of a reward (a spec path, a spec dict, a
``RewardSpec`` or a ``GradingRunner``); ``get_handle(source)`` turns it into a
``RewardHandle`` (the runner plus the names the adapters need), built once per process
and reused by every call: one runner means one HTTP client and one concurrency limit per
event loop (the runner and the judge models keep their loop-bound state per loop
themselves, so there is no need for a runner per loop, which would rebuild graders and
reload reward models) and one cache. ``run_sync`` runs a coroutine on one background
event loop per process, for the synchronous entrances (VERL's legacy manager, the TRL
callback), so their HTTP clients live as long as the process instead of one batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rlreward.aggregators import WeightedSumAggregator
from rlreward.errors import ConfigError
from rlreward.integrations.spec import RewardSpec
from rlreward.runner import GradingRunner
from rlreward.schema import GraderResult, GraderScore, normalise_score

__all__ = ["RewardHandle", "RewardSource", "get_handle", "run_sync"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class RewardSource:
    """A reward definition in a form that pickles: what a Ray or TRL worker rebuilds from.

    ``spec`` is a path to a YAML spec (resolved to an absolute path), a spec dict (with
    ``base_dir`` for relative ``file.py:fn`` references), or a built ``RewardSpec`` /
    ``GradingRunner`` (these pickle only when their graders do). ``aggregator`` names the
    aggregator whose result is the reward (default: the first one).
    """

    spec: Any
    aggregator: str | None = None
    base_dir: str | None = None

    @classmethod
    def coerce(cls, obj: Any, aggregator: str | None = None) -> RewardSource:
        """A source from a path, dict, RewardSpec, GradingRunner or another source."""
        if aggregator is not None and (not isinstance(aggregator, str) or not aggregator):
            raise ConfigError(f"aggregator must be an aggregator name, got {aggregator!r}")
        if isinstance(obj, RewardSource):
            return obj if aggregator is None else cls(obj.spec, aggregator, obj.base_dir)
        if isinstance(obj, (str, os.PathLike)):
            path = Path(obj).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"reward spec file not found: {str(obj)!r} (resolved from {os.getcwd()!r}); "
                    "pass an absolute path to a YAML reward spec"
                )
            return cls(str(path.resolve()), aggregator)
        if isinstance(obj, Mapping):
            return cls(dict(obj), aggregator, os.getcwd())
        if isinstance(obj, (RewardSpec, GradingRunner)):
            return cls(obj, aggregator)
        raise ConfigError(
            "a reward must be given as a YAML spec path, a spec dict, a RewardSpec or a "
            f"GradingRunner, got {type(obj).__name__}"
        )

    def key(self) -> tuple[Any, ...]:
        """Identity of this reward within a process (what the registry is keyed by)."""
        s = self.spec
        if isinstance(s, str):
            return ("path", s, self.aggregator)
        if isinstance(s, dict):
            return (
                "dict",
                json.dumps(s, sort_keys=True, default=repr),
                self.base_dir,
                self.aggregator,
            )
        return ("object", id(s), self.aggregator)

    def describe(self) -> str:
        s = self.spec
        return s if isinstance(s, str) else type(s).__name__


@dataclass
class RewardHandle:
    """A built reward: the runner, the reward aggregator's name, and column metadata."""

    runner: GradingRunner
    reward: str
    origin: Any = None
    #: free slots for adapters to remember per-handle facts (e.g. "names checked")
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def graders(self) -> list[str]:
        return list(self.runner.graders)

    @property
    def aggregators(self) -> list[str]:
        return list(self.runner.aggregators)

    def normalised(self, grader: str, result: GraderResult) -> float | None:
        """A grader's score on [0, 1], higher = better, as the aggregator sees it (None: failed)."""
        if not isinstance(result, GraderScore):
            return None
        g = self.runner.graders[grader]
        return normalise_score(
            result.score,
            getattr(g, "score_range", (0.0, 1.0)),
            getattr(g, "higher_is_better", True),
        )

    def grader_weights(self) -> dict[str, float]:
        """``{grader: weight}`` of the reward aggregator (0.0 for graders it does not weigh)."""
        agg = self.runner.aggregators[self.reward]
        specs = getattr(agg, "_specs", None)
        if not isinstance(agg, WeightedSumAggregator) or specs is None:
            raise ConfigError(
                f"aggregator {self.reward!r} is a {type(agg).__name__}, not a "
                "WeightedSumAggregator, so there are no per-grader weights to hand to the trainer; "
                "use mode='combined' or a weighted_sum aggregator"
            )
        return {n: float(specs[n][0]) if n in specs else 0.0 for n in self.runner.graders}


def _build(source: RewardSource) -> RewardHandle:
    s = source.spec
    if isinstance(s, str):
        runner = RewardSpec.from_yaml(s).build_runner()
    elif isinstance(s, dict):
        runner = RewardSpec.from_dict(s, base_dir=source.base_dir).build_runner()
    elif isinstance(s, RewardSpec):
        runner = s.build_runner()
    else:
        runner = s
    if not runner.aggregators:
        log.info(
            "reward %s has no aggregator; using an equal-weight WeightedSumAggregator 'reward'",
            source.describe(),
        )
        runner = GradingRunner(
            runner.grader_configs,
            aggregators=WeightedSumAggregator("reward"),
            max_concurrency=runner.max_concurrency,
            show_progress=runner.show_progress,
            timeout=runner.timeout,
        )
    reward = source.aggregator or next(iter(runner.aggregators))
    if reward not in runner.aggregators:
        raise ConfigError(
            f"aggregator {reward!r} is not in the reward spec {source.describe()}; "
            f"aggregators are {sorted(runner.aggregators)}"
        )
    return RewardHandle(runner=runner, reward=reward, origin=s)


_lock = threading.Lock()
_handles: dict[tuple[Any, ...], RewardHandle] = {}
_owner_pid = os.getpid()


def get_handle(source: RewardSource) -> RewardHandle:
    """The process's one handle for ``source`` (built on first use; rebuilt after a fork)."""
    global _owner_pid
    key = source.key()
    with _lock:
        if os.getpid() != _owner_pid:  # a forked child must not share the parent's clients
            _handles.clear()
            _owner_pid = os.getpid()
        handle = _handles.get(key)
        if handle is not None and (key[0] != "object" or handle.origin is source.spec):
            return handle
    built = _build(source)  # outside the lock: building may load models
    with _lock:
        handle = _handles.get(key)
        if handle is None or (key[0] == "object" and handle.origin is not source.spec):
            handle = _handles[key] = built
        return handle


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
