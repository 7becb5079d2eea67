"""Whole ``uid`` groups for group graders under verl's reward loop.

verl 0.9's agent loop sends each finished sample to a reward-loop worker chosen at random,
and ``RewardLoopManager.compute_rm_score`` cuts a batch into one chunk per worker, so the
rows of one ``uid`` reach different workers (processes) at different times. When the
reward has a group grader (``rlreward.graders.group``), ``RLRewardManager.run_single``
passes each sample through a ``GroupBarrier`` instead of grading it alone:

- each sample joins its ``uid``'s group; the member that completes the group (the
  ``rollout.n``-th to arrive) gets every member's sample, grades them with one
  ``Reward.agrade`` and posts the score dicts back; the other members wait for theirs;
- a member waits at most ``group_timeout`` seconds for the rest of its group, then as long
  again for the grading. A group that does not complete in time gives every member that
  arrived (and any that arrives later) failed values (NaN, error flags 1) and a warning
  naming the ``uid``, how many rows arrived and the fix; it never hangs;
- under Ray the barrier is one named async actor (``BARRIER_ACTOR``, in the job's
  namespace, created by the first worker that needs it: ``get_if_exists``, no CPU);
  without Ray it is one object per manager (one process, one event loop). The member
  that completes a group grades it with its own ``Reward``, so a group's judge calls
  come from one worker.

A reward without group graders never comes here: its samples keep the batched path.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlreward.errors import ConfigError
from rlreward.graders.group import is_group_grader
from rlreward.reward import Reward

__all__ = [
    "BARRIER_ACTOR",
    "DEFAULT_GROUP_TIMEOUT",
    "GroupBarrier",
    "GroupGate",
    "group_graders",
]

log = logging.getLogger(__name__)

#: the Ray actor name of the barrier (one per Ray job namespace)
BARRIER_ACTOR = "rlreward_verl_group_barrier"
#: seconds a group member waits for the rest of its group (and again for the grading)
DEFAULT_GROUP_TIMEOUT = 270.0
#: uids whose group finished or expired, remembered so a late row is answered at once
_MAX_CLOSED = 100_000

#: what ``GroupBarrier.join`` answers: ("lead", index, payloads) for the member that
#: completed the group, ("result", value) or ("error", reason) for the others
Ticket = tuple[Any, ...]


@dataclass
class _Group:
    size: int
    payloads: list[Any] = field(default_factory=list)
    whole: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    results: list[Any] | None = None
    error: str | None = None


class GroupBarrier:
    """Holds each key's members until ``size`` have arrived; the last one grades them.

    The same class runs in-process and as a Ray async actor (every method is a
    coroutine on the actor's one event loop).
    """

    def __init__(self) -> None:
        self._open: dict[Hashable, _Group] = {}
        self._closed: collections.OrderedDict[Hashable, str] = collections.OrderedDict()

    def _close(self, key: Hashable, reason: str) -> None:
        self._open.pop(key, None)
        self._closed[key] = reason
        while len(self._closed) > _MAX_CLOSED:
            self._closed.popitem(last=False)

    async def join(self, key: Hashable, size: int, payload: Any, timeout: float) -> Ticket:
        """Add ``payload`` to ``key``'s group; see ``Ticket`` for the answer."""
        if key in self._closed:
            return (
                "error",
                f"a row of uid {key!r} arrived after its group ended: {self._closed[key]}",
            )
        group = self._open.setdefault(key, _Group(size))
        if group.size != size:
            return ("error", f"uid {key!r} was joined with group sizes {group.size} and {size}")
        if len(group.payloads) >= group.size:
            return (
                "error",
                f"uid {key!r} has more than {group.size} rows (group_size / rollout.n); the "
                "extra row is not graded (verl pads a batch with copies of its first rows)",
            )
        index = len(group.payloads)
        group.payloads.append(payload)
        if index + 1 == group.size:
            group.whole.set()
            return ("lead", index, list(group.payloads))
        try:
            await asyncio.wait_for(group.whole.wait(), timeout)
        except asyncio.TimeoutError:
            if not group.whole.is_set():
                group.error = (
                    f"only {len(group.payloads)} of the {group.size} rows of uid {key!r} reached "
                    f"the reward within {timeout:g} s (group_timeout)"
                )
                self._close(key, group.error)
                group.done.set()
        try:
            await asyncio.wait_for(group.done.wait(), timeout)
        except asyncio.TimeoutError:
            return ("error", f"uid {key!r}: its group was not graded within {timeout:g} s")
        if group.error is not None:
            return ("error", group.error)
        assert group.results is not None
        return ("result", group.results[index])

    async def post(self, key: Hashable, results: list[Any] | None, error: str | None) -> None:
        """The leader's answer for ``key``'s group: one result per member, or an error."""
        group = self._open.get(key)
        self._close(key, error or "it was already graded (more rows than rollout.n?)")
        if group is None:
            return
        group.results, group.error = results, error
        group.done.set()

    async def pending(self) -> int:
        """Groups still waiting for members (for tests and logs)."""
        return len(self._open)


def group_graders(reward: Reward) -> dict[str, Any]:
    """The group graders of ``reward`` (nested rewards and monitors included), by name."""
    out: dict[str, Any] = {}
    runner = reward.runner
    for name, cfg in {**runner.grader_configs, **runner.monitor_configs}.items():
        grader = cfg.grader
        if is_group_grader(grader):
            out[name] = grader
        elif isinstance(grader, Reward):
            out.update(group_graders(grader))
    return out


def _rollout_n(config: Any) -> int | None:
    node = config
    for key in ("actor_rollout_ref", "rollout", "n"):
        node = node.get(key) if hasattr(node, "get") else None
        if node is None:
            return None
    return node if isinstance(node, int) and not isinstance(node, bool) else None


def _plain(uid: Any) -> Hashable | None:
    """verl's uid as a plain hashable value (numpy scalars unwrapped)."""
    if uid is None:
        return None
    item = getattr(uid, "item", None)
    value = item() if callable(item) else uid
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class GroupGate:
    """A manager's way into the barrier: ``grade(sample, key, grade_fn)``."""

    def __init__(self, size: int, timeout: float, use_ray: bool | None = None) -> None:
        self.size = size
        self.timeout = timeout
        self._use_ray = use_ray
        self._local: GroupBarrier | None = None
        self._actor: Any = None
        self._warned_no_uid = False

    @classmethod
    def for_reward(cls, reward: Reward, config: Any, timeout: Any) -> GroupGate | None:
        """A gate when ``reward`` has group graders, else None (the plain batched path)."""
        graders = group_graders(reward)
        if not graders:
            return None
        sizes = {g.group_size for g in graders.values()}
        n = _rollout_n(config)
        if len(sizes) > 1 or (n is not None and sizes != {n}):
            listed = ", ".join(f"{k}: {g.group_size}" for k, g in graders.items())
            raise ConfigError(
                f"RLRewardManager: group graders need group_size equal to "
                f"actor_rollout_ref.rollout.n ({n}) and to each other; got {listed}"
            )
        if timeout is None:
            timeout = DEFAULT_GROUP_TIMEOUT
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(
                f"RLRewardManager: group_timeout must be a number of seconds > 0, got {timeout!r}"
            )
        return cls(sizes.pop(), float(timeout))

    def _ray(self) -> bool:
        if self._use_ray is None:
            try:
                import ray
            except ImportError:  # pragma: no cover - verl depends on ray
                self._use_ray = False
            else:
                self._use_ray = bool(ray.is_initialized())
        return self._use_ray

    async def _call(self, method: str, *args: Any) -> Any:
        if not self._ray():
            if self._local is None:
                self._local = GroupBarrier()
            return await getattr(self._local, method)(*args)
        if self._actor is None:
            import ray

            self._actor = (
                ray.remote(GroupBarrier)
                .options(name=BARRIER_ACTOR, get_if_exists=True, num_cpus=0, max_concurrency=10_000)
                .remote()
            )
        return await getattr(self._actor, method).remote(*args)

    async def grade(
        self,
        sample: Any,
        uid: Any,
        grade_fn: Callable[[list[Any]], Awaitable[Sequence[Any]]],
        failed: Callable[[], Any],
    ) -> Any:
        """``sample``'s result, graded with the other members of its ``uid`` group."""
        key = _plain(uid)
        if key is None:
            if not self._warned_no_uid:
                self._warned_no_uid = True
                log.warning(
                    "rlreward: a sample has no uid in its non_tensor_batch; it is graded alone "
                    "and its group grader refuses it as a partial group (logged once)"
                )
            return (await grade_fn([sample]))[0]
        ticket = await self._call("join", key, self.size, sample, self.timeout)
        if ticket[0] == "lead":
            index, samples = ticket[1], ticket[2]
            try:
                results = list(await grade_fn(samples))
            except BaseException as exc:
                await self._call("post", key, None, f"grading the group failed: {exc!r}")
                raise
            await self._call("post", key, results, None)
            return results[index]
        if ticket[0] == "result":
            return ticket[1]
        log.warning(
            "rlreward: %s; the row gets score=NaN and error flags (check that "
            "actor_rollout_ref.rollout.n rows of each uid reach the reward, or raise "
            "reward_kwargs.group_timeout)",
            ticket[1],
        )
        return failed()
