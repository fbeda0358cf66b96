"""``GET /v1/changes``: a database's row changes as NDJSON or server-sent events.

``?since=CURSOR`` (or, for SSE, the ``Last-Event-ID`` header, which wins) starts after a
cursor: ``I`` (everything of entries up to index I seen) or ``I:K`` (entry I seen up to
its item K). Each event carries its own ``cursor``; a consumer that stores the cursor
of the last event it processed and resumes from it sees every change once, in order.
Heartbeats (``{"type": "heartbeat", "cursor": ...}``) carry the position reached
while nothing changed, so idle consumers move along and are not left behind by
retention. Falling behind retention is an explicit ``SNAPSHOT_REQUIRED`` error: a
410 before the stream starts, an ``error`` event after; never a gap.

A stream stays open ``wait_ms`` (bounded) after it caught up, then ends with an
``end`` event; clients reconnect with their cursor (``EventSource`` does it by itself).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import msgspec
from aiohttp import web

from edgelite.errors import EdgeliteError, OverloadedError, ProtocolError
from edgelite.server.sync_api import SyncApi, query_int, sync_error

ITEMS_PER_BATCH = 500
WAIT_MS_DEFAULT = 300_000
WAIT_MS_MAX = 3_600_000
HEARTBEAT_MS_DEFAULT = 5_000
HEARTBEAT_MS_MIN = 50
HEARTBEAT_MS_MAX = 60_000
TABLES_MAX = 100
STREAMS_MAX = 256
_CURSOR = re.compile(r"^(\d{1,19})(?::(\d{1,9}))?$")
_json = msgspec.json.Encoder()
logger = logging.getLogger(__name__)


def parse_cursor(text: str) -> tuple[int, int | None]:
    match = _CURSOR.match(text.strip())
    if match is None:
        raise ProtocolError(f"invalid change cursor {text[:40]!r}: use an index (`42`) or an "
                            "index and item (`42:3`) from an event's `cursor`")
    item = match.group(2)
    return int(match.group(1)), int(item) if item is not None else None


class _Sink:
    """Writes events in one format: NDJSON lines or SSE events (``id:`` = cursor)."""

    def __init__(self, response: web.StreamResponse, sse: bool) -> None:
        self.response = response
        self.sse = sse

    async def send(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        if not self.sse:
            await self.response.write(b"".join(_json.encode(e) + b"\n" for e in events))
            return
        parts = []
        for event in events:
            cursor = event.get("cursor")
            head = f"id: {cursor}\n" if cursor is not None else ""
            parts.append(f"{head}event: {event['type']}\ndata: ".encode()
                         + _json.encode(event) + b"\n\n")
        await self.response.write(b"".join(parts))


class ChangesApi:
    def __init__(self, sync_api: SyncApi) -> None:
        self.sync_api = sync_api
        self.streams = 0

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.get("/v1/changes", self.changes),
                web.get("/dev/{namespace}/v1/changes", self.changes)]

    async def changes(self, request: web.Request) -> web.StreamResponse:
        try:
            namespace, _ = self.sync_api.identify(request, write=False)
            options = _options(request)
            reader = self.sync_api.node().change_reader(namespace, options["tables"])
            index, item = options["cursor"]
            # The first read happens before the answer starts, so a position that is no
            # longer retained is a plain 410 (and a bad namespace a plain 404).
            batch = await reader.read(index, item, ITEMS_PER_BATCH)
            if self.streams >= STREAMS_MAX:
                raise OverloadedError(f"too many change streams on this node "
                                      f"({STREAMS_MAX})")
        except web.HTTPException:
            raise
        except Exception as exc:
            return sync_error(exc)
        self.streams += 1
        try:
            return await self._stream(request, reader, batch, options)
        finally:
            self.streams -= 1

    async def _stream(self, request: web.Request, reader: Any, batch: Any,
                      options: dict[str, Any]) -> web.StreamResponse:
        sse = options["sse"]
        response = web.StreamResponse(headers={
            "content-type": "text/event-stream" if sse else "application/x-ndjson",
            "cache-control": "no-cache", "x-accel-buffering": "no",
            "access-control-allow-origin": "*"})
        await response.prepare(request)
        sink = _Sink(response, sse)
        heartbeat_s = options["heartbeat_ms"] / 1000
        deadline = time.monotonic() + options["wait_ms"] / 1000
        last_sent = time.monotonic()
        try:
            while True:
                position = batch.position
                now = time.monotonic()
                if batch.events:
                    await sink.send(batch.events)
                    last_sent = now
                elif now - last_sent >= heartbeat_s:  # idle, or skipping filtered items
                    await sink.send([_marker("heartbeat", position)])
                    last_sent = now
                if batch.caught_up:
                    if now >= deadline:
                        await sink.send([_marker("end", position)])
                        break
                    await reader.wait(position.index, min(heartbeat_s - (now - last_sent),
                                                          deadline - now))
                batch = await reader.read(position.index, position.item, ITEMS_PER_BATCH)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except EdgeliteError as exc:
            await sink.send([{"type": "error", "code": exc.code, "message": exc.message}])
        except Exception:
            logger.exception("change stream failed")
            await sink.send([{"type": "error", "code": "INTERNAL_ERROR",
                              "message": "the change stream failed on the server; resume "
                                         "from your last cursor"}])
        await response.write_eof()
        return response


def _marker(kind: str, position: Any) -> dict[str, Any]:
    return {"type": kind, "index": position.index, "cursor": position.text}


def _options(request: web.Request) -> dict[str, Any]:
    query = request.query
    fmt = query.get("format", "ndjson").strip().lower()
    if fmt not in ("ndjson", "sse"):
        raise ProtocolError(f"query parameter `format` must be ndjson or sse "
                            f"(got {fmt[:20]!r})")
    since = request.headers.get("Last-Event-ID") or query.get("since")
    if since is None:
        raise ProtocolError("query parameter `since` is required (a cursor: 0 for the "
                            "oldest retained change, or the cursor of the last event seen)")
    tables = None
    if query.get("tables"):
        names = [t.strip() for t in query["tables"].split(",") if t.strip()]
        if not names or len(names) > TABLES_MAX:
            raise ProtocolError(f"query parameter `tables` must list 1 to {TABLES_MAX} "
                                "table names, comma-separated")
        tables = frozenset(names)
    return {"sse": fmt == "sse", "cursor": parse_cursor(since), "tables": tables,
            "wait_ms": query_int(query, "wait_ms", WAIT_MS_DEFAULT, 0, WAIT_MS_MAX),
            "heartbeat_ms": query_int(query, "heartbeat_ms", HEARTBEAT_MS_DEFAULT,
                                      HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX)}


__all__ = ["ChangesApi", "parse_cursor"]
