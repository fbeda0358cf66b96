"""A fault-injecting TCP proxy for cluster tests (no root needed; reliability.md §5).

One ``FaultProxy`` is one link: it listens on a local port and forwards every accepted
connection to a target. Put one between each pair of nodes (``FaultNetwork`` does it
for a whole cluster: node A reaches node B through ``network.proxy("A", "B")``) and
break the link on command:

- ``partition(direction, mode)``: ``Mode.DROP`` reads and discards the bytes (a cut
  cable: the sender keeps writing into the void); ``Mode.HOLD`` stops forwarding and
  stops reading, so the sender's socket buffers fill and its writes block (a stalled
  path). ``heal()`` restores both; held bytes are then delivered, dropped ones are gone.
- ``delay(ms, direction)``: every chunk is delivered ``ms`` after it was read (latency,
  not bandwidth: later chunks do not queue behind earlier delays).
- ``pause()`` / ``resume()``: hold both directions (like SIGSTOP of the link).
- ``reset()``: abort every current connection at both ends.

Directions are seen from the proxy: ``UPSTREAM`` is what the dialling side sends to the
target, ``DOWNSTREAM`` the replies. A connection closed at one end while its direction
is partitioned is closed at the other end only once the direction flows again (a FIN
is retransmitted until it gets through).

Every method is synchronous and thread-safe: the proxies run on their own asyncio loop
in a background thread, so plain pytest code (and asyncio tests, whose loop is a
different one) can drive them. Run standalone with
``python -m tests.support.faultproxy --link NAME=LISTEN_PORT:TARGET_HOST:TARGET_PORT
[--link ...] --control PORT``; the control port takes one command per line
(``NAME partition both drop``, ``NAME heal``, ``NAME delay 50 upstream``, ``NAME reset``,
``NAME pause``, ``NAME resume``, ``NAME stats``, ``list``) and answers one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import enum
import itertools
import json
import signal
import sys
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

_CHUNK_BYTES = 64 * 1024
_DELIVERY_QUEUE_CHUNKS = 256
_CALL_TIMEOUT_S = 10.0
_CLOSE_TIMEOUT_S = 1.0


class Direction(enum.Enum):
    UPSTREAM = "upstream"  # from the side that connected to the proxy, to the target
    DOWNSTREAM = "downstream"  # from the target back
    BOTH = "both"

    def expand(self) -> tuple[Direction, ...]:
        if self is Direction.BOTH:
            return (Direction.UPSTREAM, Direction.DOWNSTREAM)
        return (self,)


class Mode(enum.Enum):
    DROP = "drop"
    HOLD = "hold"


class LoopThread:
    """An asyncio loop running in a daemon thread; ``call`` runs a coroutine on it and
    waits for the result from any other thread."""

    def __init__(self, name: str = "faultproxy") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = _CALL_TIMEOUT_S) -> T:
        assert threading.current_thread() is not self._thread, "call from the proxy loop"
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        if self.loop.is_closed():
            return

        async def _cancel_rest() -> None:
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.call(_cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_CALL_TIMEOUT_S)
        self.loop.close()


class _DirectionState:
    """What one direction of a proxy does to bytes right now (proxy loop only)."""

    def __init__(self) -> None:
        self.mode: Mode | None = None
        self.paused = False
        self.delay_s = 0.0
        self.changed = asyncio.Condition()
        self.bytes_forwarded = 0
        self.bytes_dropped = 0

    @property
    def flowing(self) -> bool:
        return not self.paused and self.mode is not Mode.HOLD

    @property
    def open(self) -> bool:
        return not self.paused and self.mode is None

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, predicate: str) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: bool(getattr(self, predicate)))


_EOF = object()


class _ProxiedConnection:
    def __init__(self, client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.writers = (client[1], upstream[1])
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """One link (see the module docstring). ``start()`` before use; ``stop()`` after."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1",
                 listen_port: int = 0, name: str = "", loop_thread: LoopThread | None = None
                 ) -> None:
        self.name = name or f"proxy->{target_host}:{target_port}"
        self.target = (target_host, target_port)
        self._listen = (listen_host, listen_port)
        self._own_thread = loop_thread is None
        self._thread = loop_thread or LoopThread(self.name)
        self._server: asyncio.Server | None = None
        self._states: dict[Direction, _DirectionState] = {}
        self._connections: set[_ProxiedConnection] = set()
        self._accepted = 0
        self.address: tuple[str, int] = ("", 0)

    # ---- synchronous API -------------------------------------------------------------

    def start(self) -> FaultProxy:
        self.address = self._thread.call(self._start())
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._thread.call(self._stop())
        if self._own_thread:
            self._thread.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.address[1]

    def partition(self, direction: Direction = Direction.BOTH, mode: Mode = Mode.DROP) -> None:
        self._set(direction.expand(), mode=mode)

    def heal(self) -> None:
        """End partitions and pauses in both directions (delays stay)."""
        self._set(Direction.BOTH.expand(), mode=None, paused=False)

    def delay(self, ms: float, direction: Direction = Direction.BOTH) -> None:
        self._set(direction.expand(), delay_s=ms / 1000.0)

    def pause(self) -> None:
        self._set(Direction.BOTH.expand(), paused=True)

    def resume(self) -> None:
        self._set(Direction.BOTH.expand(), paused=False)

    def reset(self) -> None:
        """Abort every connection currently through this proxy, at both ends."""
        self._thread.call(self._reset())

    def stats(self) -> dict[str, Any]:
        return self._thread.call(self._stats())

    # ---- on the proxy loop -----------------------------------------------------------

    async def _start(self) -> tuple[str, int]:
        self._states = {d: _DirectionState() for d in Direction.BOTH.expand()}
        self._server = await asyncio.start_server(self._on_client, *self._listen)
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._reset()
        await self._server.wait_closed()
        self._server = None

    async def _reset(self) -> None:
        connections = list(self._connections)
        self._connections.clear()
        for connection in connections:
            connection.abort()
        await asyncio.gather(*(t for c in connections for t in c.tasks), return_exceptions=True)

    async def _stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": list(self.address),
            "target": list(self.target),
            "connections_accepted": self._accepted,
            "connections_open": len(self._connections),
            **{f"{d.value}_{key}": getattr(state, key) for d, state in self._states.items()
               for key in ("bytes_forwarded", "bytes_dropped", "paused", "delay_s")},
            **{f"{d.value}_mode": state.mode.value if state.mode else None
               for d, state in self._states.items()},
        }

    def _set(self, directions: Iterable[Direction], **changes: Any) -> None:
        async def apply() -> None:
            for direction in directions:
                state = self._states[direction]
                for key, value in changes.items():
                    setattr(state, key, value)
                await state.notify()

        self._thread.call(apply())

    async def _on_client(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        self._accepted += 1
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(*self.target), 5.0)
        except (OSError, TimeoutError):
            writer.transport.abort()  # the target is down: the dialler sees a reset
            return
        connection = _ProxiedConnection((reader, writer), upstream)
        self._connections.add(connection)
        loop = asyncio.get_running_loop()
        pipes = ((reader, upstream[1], Direction.UPSTREAM),
                 (upstream[0], writer, Direction.DOWNSTREAM))
        for source, sink, direction in pipes:
            queue: asyncio.Queue[tuple[float, Any]] = asyncio.Queue(_DELIVERY_QUEUE_CHUNKS)
            state = self._states[direction]
            connection.tasks.append(loop.create_task(self._pump(source, queue, state)))
            connection.tasks.append(loop.create_task(self._deliver(queue, sink, state)))
        await asyncio.gather(*connection.tasks, return_exceptions=True)
        connection.abort()
        self._connections.discard(connection)

    async def _pump(self, source: asyncio.StreamReader,
                    queue: asyncio.Queue[tuple[float, Any]], state: _DirectionState) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await state.wait_until("flowing")  # HOLD: stop reading, let buffers fill
                data = await source.read(_CHUNK_BYTES)
                if not data:
                    break
                if state.mode is Mode.DROP:
                    state.bytes_dropped += len(data)
                    continue
                await queue.put((loop.time() + state.delay_s, data))
        except (ConnectionError, OSError):
            pass
        await queue.put((loop.time(), _EOF))

    async def _deliver(self, queue: asyncio.Queue[tuple[float, Any]],
                       sink: asyncio.StreamWriter, state: _DirectionState) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                deliver_at, data = await queue.get()
                await asyncio.sleep(max(0.0, deliver_at - loop.time()))
                if data is _EOF:
                    await state.wait_until("open")
                    break
                await state.wait_until("flowing")
                if state.mode is Mode.DROP:
                    state.bytes_dropped += len(data)
                    continue
                sink.write(data)
                state.bytes_forwarded += len(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        sink.close()  # graceful: what was delivered reaches the other end before the FIN
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            await asyncio.wait_for(sink.wait_closed(), _CLOSE_TIMEOUT_S)


class FaultNetwork:
    """A proxy for every ordered pair of nodes: ``a`` reaches ``b`` via ``proxy(a, b)``.

    ``targets`` maps node ids to the address each node's peer port really listens on.
    Configure node ``a``'s transport with ``address(a, b)`` for every peer ``b``.
    """

    def __init__(self, targets: dict[str, tuple[str, int]]) -> None:
        self._thread = LoopThread("faultnetwork")
        self._proxies: dict[tuple[str, str], FaultProxy] = {}
        for a, b in itertools.permutations(sorted(targets), 2):
            self._proxies[a, b] = FaultProxy(*targets[b], name=f"{a}->{b}",
                                             loop_thread=self._thread)

    def start(self) -> FaultNetwork:
        for proxy in self._proxies.values():
            proxy.start()
        return self

    def stop(self) -> None:
        for proxy in self._proxies.values():
            proxy.stop()
        self._thread.close()

    def __enter__(self) -> FaultNetwork:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def proxy(self, a: str, b: str) -> FaultProxy:
        return self._proxies[a, b]

    def address(self, a: str, b: str) -> tuple[str, int]:
        return self._proxies[a, b].address

    def cut(self, a: str, b: str, mode: Mode = Mode.DROP) -> None:
        """One way: bytes from ``a`` to ``b`` stop, on whichever connection carries them."""
        self.proxy(a, b).partition(Direction.UPSTREAM, mode)
        self.proxy(b, a).partition(Direction.DOWNSTREAM, mode)

    def partition(self, group: Iterable[str], others: Iterable[str] | None = None,
                  mode: Mode = Mode.DROP) -> None:
        """Cut every link between ``group`` and ``others`` (default: everyone else)."""
        inside = set(group)
        nodes = {a for a, _b in self._proxies}
        outside = set(others) if others is not None else nodes - inside
        for a in inside:
            for b in outside:
                self.proxy(a, b).partition(Direction.BOTH, mode)
                self.proxy(b, a).partition(Direction.BOTH, mode)

    def heal(self) -> None:
        for proxy in self._proxies.values():
            proxy.heal()

    def reset(self) -> None:
        for proxy in self._proxies.values():
            proxy.reset()


# ---- command line ------------------------------------------------------------------

def _parse_link(text: str) -> tuple[str, int, str, int]:
    name, _, rest = text.partition("=")
    listen_port, target_host, target_port = rest.split(":")
    return name, int(listen_port), target_host, int(target_port)


def run_command(proxies: dict[str, FaultProxy], line: str) -> dict[str, Any]:
    """Apply one control command; the JSON-able answer."""
    words = line.split()
    if words == ["list"]:
        return {"ok": True, "links": {n: list(p.address) for n, p in proxies.items()}}
    if len(words) < 2 or words[0] not in proxies:
        return {"ok": False, "error": f"unknown link or command: {line!r}"}
    proxy, verb, args = proxies[words[0]], words[1], words[2:]
    try:
        if verb == "partition":
            proxy.partition(Direction(args[0]) if args else Direction.BOTH,
                            Mode(args[1]) if len(args) > 1 else Mode.DROP)
        elif verb == "delay":
            proxy.delay(float(args[0]), Direction(args[1]) if len(args) > 1 else Direction.BOTH)
        elif verb in ("heal", "pause", "resume", "reset"):
            getattr(proxy, verb)()
        elif verb == "stats":
            return {"ok": True, "stats": proxy.stats()}
        else:
            return {"ok": False, "error": f"unknown command {verb!r}"}
    except (ValueError, IndexError) as exc:
        return {"ok": False, "error": f"bad arguments for {verb}: {exc}"}
    return {"ok": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--link", action="append", required=True, type=_parse_link,
                        help="NAME=LISTEN_PORT:TARGET_HOST:TARGET_PORT (repeatable)")
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--control", type=int, default=0, help="control port (0: any)")
    options = parser.parse_args(argv)
    thread = LoopThread()
    proxies = {name: FaultProxy(host, port, listen_host=options.listen_host,
                                listen_port=listen_port, name=name, loop_thread=thread).start()
               for name, listen_port, host, port in options.link}

    control_writers: set[asyncio.StreamWriter] = set()

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        control_writers.add(writer)
        with contextlib.suppress(ConnectionError):
            while line := (await reader.readline()).decode().strip():
                answer = await asyncio.to_thread(run_command, proxies, line)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        writer.close()
        control_writers.discard(writer)

    async def serve_control() -> asyncio.Server:
        return await asyncio.start_server(control, options.listen_host, options.control)

    server = asyncio.run_coroutine_threadsafe(serve_control(), thread.loop).result()
    control_port = server.sockets[0].getsockname()[1]
    print(json.dumps({"control": control_port,
                      "links": {n: p.port for n, p in proxies.items()}}), flush=True)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()

    async def close_control() -> None:
        server.close()
        for writer in control_writers:
            writer.transport.abort()  # the handlers see EOF and end
        await asyncio.sleep(0.05)

    asyncio.run_coroutine_threadsafe(close_control(), thread.loop).result()
    for proxy in proxies.values():
        proxy.stop()
    thread.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
