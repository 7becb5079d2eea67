"""No 'Event loop is closed' and no unclosed-client warnings across repeated asyncio.run.

Run in a fresh interpreter with ``-X dev -W error::ResourceWarning`` so that a leaked
socket or transport anywhere (even at garbage collection or interpreter exit) shows up
on stderr.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, sys
    from rlreward import GradingRunner, OpenAIChatModel, RelevanceGrader

    model = OpenAIChatModel("m", base_url=sys.argv[1], api_key="k", backoff_base=0.01)
    grader = RelevanceGrader(model=model)
    msgs = [{"role": "user", "content": "x"}]
    for _ in range(3):
        assert asyncio.run(model.achat(msgs)).attempts == 1
        assert asyncio.run(grader.aevaluate(query="q", response="r")).ok
    runner = GradingRunner([grader], show_progress=False)
    for i in range(3):
        rows = [{"query": f"q{i}{j}", "response": "r"} for j in range(5)]
        assert all(r.ok for r in runner.run(rows)["relevance"])

    async def in_one_loop():
        return await runner.arun([{"query": "again", "response": "r"}])

    asyncio.run(in_one_loop())  # no aclose: the loop's shutdown closes the client
    loop = asyncio.new_event_loop()  # a hand-driven loop, closed the documented way
    loop.run_until_complete(model.achat(msgs))
    loop.run_until_complete(model.aclose())
    loop.close()
    asyncio.run(model.achat(msgs))  # still usable afterwards
    gc.collect()
    print("ok", len(model._states))
    """
)

BAD = ("ResourceWarning", "Event loop is closed", "unclosed", "Task was destroyed", "never awaited")


def test_repeated_asyncio_run_leaves_no_warnings(openai_server):
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error::ResourceWarning",
            "-c",
            SCRIPT,
            openai_server.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok 0"  # no client kept for finished loops
    found = [b for b in BAD if b in proc.stderr]
    assert not found, proc.stderr
    assert openai_server.n_requests == 3 + 3 + 15 + 1 + 1 + 1


DEAD_LOOP_SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, sys
    from rlreward import OpenAIChatModel

    model = OpenAIChatModel("m", base_url=sys.argv[1], api_key="k")
    msgs = [{"role": "user", "content": "x"}]
    loop = asyncio.new_event_loop()  # closed WITHOUT shutdown_asyncgens() or aclose()
    loop.run_until_complete(model.achat(msgs))
    loop.close()
    del loop
    for _ in range(2):
        assert asyncio.run(model.achat(msgs)).attempts == 1
    gc.collect()
    print("ok", len(model._states))
    """
)


def test_a_client_of_a_dead_loop_is_dropped_without_loop_errors(openai_server):
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", DEAD_LOOP_SCRIPT, openai_server.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok 0"
    # Its sockets could not be closed on a dead loop (a ResourceWarning is expected and
    # documented), but nothing may try to run on that loop again.
    for bad in ("Event loop is closed", "Task was destroyed", "never awaited", "Traceback"):
        assert bad not in proc.stderr, proc.stderr
