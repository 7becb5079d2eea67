"""Content-addressed judge-result cache (SQLite) and in-flight de-duplication.

``ResultCache`` maps a key (``cache_key(...)``: sha256 over the model identity, the
prompt-template version, the grader's type and parameters, and the sample's fields) to
a successful grade. Reads are point lookups done inline (microseconds); writes go to a
queue that one daemon thread commits in batches, so the event loop never waits on
disk. A killed process loses at most the few entries still in that queue; everything
committed is found by the next run. Only scores are stored, never errors. A cache
without a file (``path=None``, ``":memory:"``) holds at most ``max_entries`` grades and
drops the least recently used beyond that, so it never grows with a run.

``SingleFlight`` makes identical concurrent requests (the duplicate samples of a GRPO
group) share one call, per event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import queue
import sqlite3
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from rlreward.checks import number_rule, short_repr
from rlreward.errors import ConfigError

__all__ = [
    "DEFAULT_CACHE_PATH",
    "CachedGrade",
    "KeyMaker",
    "ResultCache",
    "SingleFlight",
    "cache_key",
    "resolve_cache",
]

log = logging.getLogger(__name__)

#: Where the CLI and reward specs keep the cache unless told otherwise (relative to cwd).
DEFAULT_CACHE_PATH = Path(".rlreward") / "cache.sqlite"
#: Most grades an in-memory cache holds (about 200 bytes each plus the key).
DEFAULT_MAX_ENTRIES = 100_000
_SCHEMA = "CREATE TABLE IF NOT EXISTS grades (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_STOP = object()
T = TypeVar("T")


#: the canonical JSON of cache keys (built once: ``json.dumps`` with options builds one per call)
_CANONICAL = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
).encode


def cache_key(**parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts`` (sorted keys; non-JSON values by ``str``)."""
    return hashlib.sha256(_CANONICAL(parts).encode("utf-8")).hexdigest()


class KeyMaker:
    """``cache_key(fields=fields, **static)`` for a grader that keys many samples with the
    same static parts: their JSON is encoded once and reused while they stay equal.

    The canonical JSON sorts keys, so ``"fields"`` comes first whenever every static key
    sorts after it (as the judges' ``grader``/``model``/``params``/``template`` do);
    otherwise this falls back to ``cache_key``. Same keys either way.
    """

    __slots__ = ("_encoded",)

    def __init__(self) -> None:
        #: (static parts, their JSON after the opening brace), swapped as one value
        self._encoded: tuple[dict[str, Any], str] | None = None

    def key(self, fields: Any, **static: Any) -> str:
        encoded = self._encoded
        if encoded is None or encoded[0] != static:
            if not static or min(static) <= "fields":
                return cache_key(fields=fields, **static)
            encoded = self._encoded = (static, "," + _CANONICAL(static)[1:])
        blob = '{"fields":' + _CANONICAL(fields) + encoded[1]
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedGrade:
    """What is stored per key: the final score, its reason and the judge's raw score."""

    score: float
    reason: str
    judge_score: float | None = None

    def dumps(self) -> str:
        return json.dumps([self.score, self.reason, self.judge_score])

    @classmethod
    def loads(cls, text: str) -> CachedGrade:
        score, reason, judge = json.loads(text)
        return cls(float(score), str(reason), judge)


class ResultCache:
    """A persistent ``key -> CachedGrade`` store; ``path=None`` keeps it in memory only.

    Use ``ResultCache.open(path)`` to share one instance (one writer thread) per file in a
    process. ``hits`` / ``misses`` / ``writes`` / ``evictions`` count lookups and stores.
    ``max_entries`` bounds an in-memory cache (least recently used grades are dropped).
    """

    _open: ClassVar[weakref.WeakValueDictionary[str, ResultCache]] = weakref.WeakValueDictionary()
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, path: str | Path | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        allowed = number_rule(max_entries, integer=True, low=1)
        if allowed is not None:
            raise ConfigError(
                f"ResultCache.max_entries={short_repr(max_entries)} is not allowed; use {allowed}"
            )
        self.path = Path(path).expanduser().resolve() if path is not None else None
        self.max_entries = max_entries
        self.hits = self.misses = self.writes = self.evictions = 0
        self._pending: dict[str, CachedGrade] = {}  # queued or in-memory-only entries
        self._lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._read: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = self._connect()
                conn.execute(_SCHEMA)
                conn.commit()
            except sqlite3.Error as exc:
                raise ConfigError(f"cache file {str(self.path)!r} cannot be used: {exc}") from exc
            conn.close()
            atexit.register(_close_at_exit, weakref.ref(self))

    @classmethod
    def open(cls, path: str | Path) -> ResultCache:
        """The process-wide instance for ``path`` (created on first use)."""
        resolved = str(Path(path).expanduser().resolve())
        with cls._open_lock:
            cache = cls._open.get(resolved)
            if cache is None:
                cache = cls(resolved)
                cls._open[resolved] = cache
            return cache

    def _reader(self) -> sqlite3.Connection:
        if self._read is None:
            self._read = self._connect()
        return self._read

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    # -- lookups and stores --------------------------------------------------------------
    def get(self, key: str) -> CachedGrade | None:
        """The stored grade for ``key`` or None; counts a hit or a miss."""
        found = self._pending.get(key)
        if found is not None and self.path is None:  # in memory: most recently used last
            with self._lock:
                if self._pending.pop(key, None) is not None:
                    self._pending[key] = found
        if found is None and self.path is not None:
            with self._lock:
                row = (
                    self._reader()
                    .execute("SELECT value FROM grades WHERE key = ?", (key,))
                    .fetchone()
                )
            if row is not None:
                try:
                    found = CachedGrade.loads(row[0])
                except (ValueError, TypeError) as exc:
                    log.warning("ignoring an unreadable cache entry %s: %s", key[:12], exc)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str, grade: CachedGrade) -> None:
        """Store a grade; on disk it is committed by the writer thread shortly after."""
        self.writes += 1
        if self.path is None:
            with self._lock:
                self._pending.pop(key, None)
                self._pending[key] = grade
                while len(self._pending) > self.max_entries:
                    del self._pending[next(iter(self._pending))]
                    self.evictions += 1
            return
        self._pending[key] = grade
        self._queue.put((key, grade))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._writer, name="rlreward-cache", daemon=True
                    )
                    self._thread.start()

    def _writer(self) -> None:
        conn = self._connect()
        try:
            while True:
                item = self._queue.get()
                batch = [item]
                while True:  # everything already queued goes into one transaction
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                rows = [(k, g.dumps()) for k, g in (b for b in batch if b is not _STOP)]
                try:
                    if rows:
                        conn.executemany(
                            "INSERT OR REPLACE INTO grades (key, value) VALUES (?, ?)", rows
                        )
                        conn.commit()
                except sqlite3.Error as exc:
                    log.warning(
                        "result cache %s: could not write %d entries: %s", self.path, len(rows), exc
                    )
                for k, _ in rows:
                    self._pending.pop(k, None)
                for _ in batch:
                    self._queue.task_done()
                if any(b is _STOP for b in batch):
                    return
        finally:
            conn.close()

    def flush(self) -> None:
        """Block until every stored grade is committed to disk."""
        if self._thread is not None:
            self._queue.join()

    async def aflush(self) -> None:
        """``flush()`` without blocking the event loop."""
        if self._thread is not None and self._queue.unfinished_tasks:
            await asyncio.to_thread(self._queue.join)

    def close(self) -> None:
        """Commit pending writes, stop the writer thread and close the reader connection.

        The cache stays usable: a later get/put reopens what it needs.
        """
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
            self._thread = None
        with self._lock:
            if self._read is not None:
                self._read.close()
                self._read = None

    def __len__(self) -> int:
        if self.path is None:
            return len(self._pending)
        self.flush()
        with self._lock:
            return int(self._reader().execute("SELECT COUNT(*) FROM grades").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "path": str(self.path) if self.path else None,
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "evictions": self.evictions,
            "hit_rate": self.hits / total if total else 0.0,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled graders (Ray, TRL) reopen the same file in the worker process.
        if self.path is None:
            return (_memory_cache, (self.max_entries,))
        return (ResultCache.open, (str(self.path),))

    def __repr__(self) -> str:
        where = str(self.path) if self.path else ":memory:"
        return f"ResultCache({where!r}, hits={self.hits}, misses={self.misses})"


def _memory_cache(max_entries: int) -> ResultCache:
    return ResultCache(None, max_entries=max_entries)


def _close_at_exit(ref: weakref.ref[ResultCache]) -> None:
    cache = ref()
    if cache is not None:
        cache.close()


def resolve_cache(value: Any, default_on: bool = False) -> ResultCache | None:
    """A cache from a user setting: a ResultCache, a path, True (default path), False/None.

    ``None`` means "the default": off for programmatic use, on for specs and the CLI
    (``default_on=True``).
    """
    if isinstance(value, ResultCache):
        return value
    if value is None:
        value = default_on
    if value is False:
        return None
    if value is True:
        return ResultCache.open(DEFAULT_CACHE_PATH)
    if isinstance(value, (str, Path)) and str(value):
        if str(value) == ":memory:":
            return ResultCache(None)
        return ResultCache.open(value)
    raise ConfigError(
        f"cache must be a path, true/false, ':memory:' or a ResultCache, got {value!r}"
    )


class SingleFlight:
    """Identical concurrent calls (same key, same loop) share one execution.

    The first caller runs the call; later callers with the same key wait for its result
    (shielded, so a waiter that times out does not cancel the call for the others). If
    the first caller is cancelled, a waiter runs the call itself.
    """

    def __init__(self) -> None:
        self.shared = 0
        self._tables: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Future[Any]]
        ] = weakref.WeakKeyDictionary()

    def _table(self) -> dict[str, asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        table = self._tables.get(loop)
        if table is None:
            table = self._tables[loop] = {}
        return table

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(result, shared)``: shared is True when another caller's call was reused."""
        table = self._table()
        while True:
            pending = table.get(key)
            if pending is None:
                break
            outcome = await asyncio.shield(pending)
            if outcome is not _RETRY:
                self.shared += 1
                return outcome, True
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        table[key] = future
        outcome = _RETRY
        try:
            outcome = await call()
            return outcome, False
        finally:
            del table[key]
            future.set_result(outcome)

    def __getstate__(self) -> dict[str, Any]:
        return {"shared": self.shared}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self.shared = state.get("shared", 0)


_RETRY: Any = object()
