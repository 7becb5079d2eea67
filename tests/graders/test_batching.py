import asyncio
import threading

import pytest

from rlreward.errors import ConfigError
from rlreward.graders.batching import MicroBatcher


def test_concurrent_submits_share_batches_and_keep_order():
    b = MicroBatcher(lambda xs: [x * 10 for x in xs], max_batch_size=16)

    async def main():
        return await asyncio.gather(*(b.submit(i) for i in range(40)))

    assert asyncio.run(main()) == [i * 10 for i in range(40)]
    assert b.batch_sizes == [16, 16, 8]
    # a second event loop works too (no loop-bound state leaks)
    assert asyncio.run(main()) == [i * 10 for i in range(40)]


def test_batch_errors_reach_every_waiter_of_that_batch_only():
    def fn(xs):
        if 3 in xs:
            raise ValueError("bad batch")
        return xs

    b = MicroBatcher(fn, max_batch_size=4)

    async def main():
        return await asyncio.gather(*(b.submit(i) for i in range(8)), return_exceptions=True)

    out = asyncio.run(main())
    assert all(isinstance(o, ValueError) for o in out[:4])
    assert out[4:] == [4, 5, 6, 7]


def test_runs_in_a_worker_thread():
    seen = []
    b = MicroBatcher(lambda xs: seen.append(threading.get_ident()) or xs)
    asyncio.run(b.submit(1))
    assert seen and seen[0] != threading.get_ident()


def test_wrong_result_count_is_an_error():
    b = MicroBatcher(lambda xs: [], run_in_thread=False)
    with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
        asyncio.run(b.submit(1))


def test_invalid_batch_size():
    with pytest.raises(ConfigError, match="max_batch_size"):
        MicroBatcher(lambda xs: xs, max_batch_size=0)


def test_observed_batches_stay_bounded_over_a_long_run():
    from rlreward.graders.batching import RECENT_BATCHES

    b = MicroBatcher(lambda xs: xs, max_batch_size=1, run_in_thread=False)

    async def main():
        return await asyncio.gather(*(b.submit(i) for i in range(RECENT_BATCHES + 50)))

    assert asyncio.run(main()) == list(range(RECENT_BATCHES + 50))
    assert len(b.batch_sizes) == RECENT_BATCHES  # the history does not grow with the run
    assert (b.stats.batches, b.stats.items, b.stats.largest) == (RECENT_BATCHES + 50,) * 2 + (1,)
