"""Running a server's event loop: uvloop, and a garbage collector tuned for serving."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Coroutine
from typing import Any

import click

# A request allocates a few hundred short-lived objects; with CPython's default (700)
# the young generation is collected every few requests, which profiles showed as ~5% of
# the event loop thread. Cycles are rare on the request path, so collect less often.
GC_YOUNG_THRESHOLD = 20_000


def run_server(main: Coroutine[Any, Any, int | None]) -> None:
    """Run ``main`` on uvloop after freezing what start-up allocated (modules, settings,
    the catalog): those objects live as long as the process, and scanning them in every
    old-generation collection is wasted work."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without
        pass
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    status = asyncio.run(main)
    if status:
        raise SystemExit(status)


# EX_IOERR: the member stopped because its storage failed; a supervisor restarts it.
EXIT_MEMBER_FAILED = 74


async def wait_until_stopped(runtime: Any) -> int:
    """Serve until SIGINT/SIGTERM (exit status 0) or until the member fails (its Raft
    loop stopped, e.g. fdatasync failed: status ``EXIT_MEMBER_FAILED``). Crash-only: a
    member whose log failed exits rather than stay up answering errors forever; on
    restart it recovers from disk (cluster-bugs.md #1)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stopping = asyncio.create_task(stop.wait())
    failing = asyncio.create_task(runtime.wait_failed())
    done, pending = await asyncio.wait({stopping, failing},
                                       return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if failing in done:
        click.echo(f"edgelite: this member cannot continue ({failing.result()}); exiting "
                   f"with status {EXIT_MEMBER_FAILED} so that it is restarted; it recovers "
                   "its state from disk", err=True)
        return EXIT_MEMBER_FAILED
    return 0
