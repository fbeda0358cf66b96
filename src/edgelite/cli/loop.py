"""Running a server's event loop: uvloop, and a garbage collector tuned for serving."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any

# A request allocates a few hundred short-lived objects; with CPython's default (700)
# the young generation is collected every few requests, which profiles showed as ~5% of
# the event loop thread. Cycles are rare on the request path, so collect less often.
GC_YOUNG_THRESHOLD = 20_000


def run_server(main: Coroutine[Any, Any, None]) -> None:
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
    asyncio.run(main)
