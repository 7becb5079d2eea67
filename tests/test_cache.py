"""ResultCache (SQLite, write-behind) and SingleFlight (in-flight de-duplication)."""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from rlreward.cache import CachedGrade, ResultCache, SingleFlight, cache_key, resolve_cache
from rlreward.errors import ConfigError


def test_cache_key_is_stable_and_order_independent():
    a = cache_key(model={"m": 1}, fields={"query": "q", "response": "r"})
    b = cache_key(fields={"response": "r", "query": "q"}, model={"m": 1})
    assert a == b and len(a) == 64
    assert a != cache_key(model={"m": 1}, fields={"query": "q", "response": "r "})


def test_put_get_counts_and_persists_across_instances(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResultCache(path)
    assert cache.get("k1") is None
    cache.put("k1", CachedGrade(0.75, "good", 4.0))
    assert cache.get("k1") == CachedGrade(0.75, "good", 4.0)  # visible before the commit
    cache.flush()
    assert (cache.hits, cache.misses, cache.writes) == (1, 1, 1)
    fresh = ResultCache(path)  # a second connection, as a restarted process would open
    assert fresh.get("k1") == CachedGrade(0.75, "good", 4.0)
    assert len(fresh) == 1
    cache.close()


def test_a_new_process_finds_what_was_written(tmp_path):
    path = tmp_path / "c.sqlite"
    code = textwrap.dedent(
        f"""
        from rlreward.cache import CachedGrade, ResultCache
        cache = ResultCache.open({str(path)!r})
        for i in range(50):
            cache.put(f"k{{i}}", CachedGrade(i / 50, "r"))
        """  # no flush: the exit hook must commit the write-behind queue
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    cache = ResultCache(path)
    assert len(cache) == 50
    assert cache.get("k49") == CachedGrade(49 / 50, "r")


def test_open_shares_one_instance_per_file_and_pickles_by_path(tmp_path):
    path = tmp_path / "c.sqlite"
    one, two = ResultCache.open(path), ResultCache.open(str(path))
    assert one is two
    one.put("k", CachedGrade(1.0, "x"))
    clone = pickle.loads(pickle.dumps(one))
    assert clone is one  # same process: the shared instance
    assert clone.get("k") == CachedGrade(1.0, "x")


def test_memory_cache_and_resolve_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mem = resolve_cache(":memory:")
    assert mem is not None and mem.path is None
    mem.put("k", CachedGrade(0.5, "m"))
    assert mem.get("k") == CachedGrade(0.5, "m") and len(mem) == 1
    assert resolve_cache(None) is None and resolve_cache(False) is None
    default = resolve_cache(None, default_on=True)
    assert default is not None and default.path == (tmp_path / ".rlreward" / "cache.sqlite")
    assert resolve_cache(mem) is mem
    with pytest.raises(ConfigError, match="cache must be"):
        resolve_cache(3)


def test_unusable_cache_file_is_a_config_error(tmp_path):
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="cannot be used"):
        ResultCache(bad)


def test_writes_are_committed_in_the_background(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResultCache(path)
    for i in range(500):
        cache.put(f"k{i}", CachedGrade(0.0, ""))
    cache.flush()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM grades").fetchone()[0] == 500
    cache.close()


def test_single_flight_shares_concurrent_identical_calls():
    flight = SingleFlight()
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "value"

    async def main() -> list[tuple[str, bool]]:
        same = [flight.run("k", slow) for _ in range(5)]
        other = flight.run("other", slow)
        return await asyncio.gather(*same, other)

    out = asyncio.run(main())
    assert calls == 2
    assert [shared for _, shared in out[:5]].count(False) == 1
    assert all(v == "value" for v, _ in out) and flight.shared == 4


def test_single_flight_survives_a_cancelled_leader():
    flight = SingleFlight()
    calls = 0

    async def slow() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return calls

    async def main() -> tuple[int, bool]:
        leader = asyncio.ensure_future(flight.run("k", slow))
        await asyncio.sleep(0.01)
        follower = asyncio.ensure_future(flight.run("k", slow))
        await asyncio.sleep(0.01)
        leader.cancel()
        return await follower

    value, shared = asyncio.run(main())
    assert (value, shared) == (2, False)  # the follower ran the call itself


def test_in_memory_cache_is_bounded_and_keeps_recent_grades():
    cache = ResultCache(None, max_entries=3)
    for i in range(5):
        cache.put(f"k{i}", CachedGrade(float(i), ""))
    assert len(cache) == 3 and cache.evictions == 2
    assert cache.get("k0") is None and cache.get("k4") is not None
    cache.get("k2")  # used: k3 is now the oldest
    cache.put("k5", CachedGrade(5.0, ""))
    assert cache.get("k3") is None and cache.get("k2") is not None
    assert pickle.loads(pickle.dumps(cache)).max_entries == 3
    with pytest.raises(ConfigError, match="max_entries=0 is not allowed"):
        ResultCache(None, max_entries=0)
