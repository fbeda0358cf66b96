"""``edgelite.changes(url, since=...)``: a database's row changes, as an iterator.

::

    with edgelite.changes("http://127.0.0.1:8080", since=cursor) as stream:
        for change in stream:
            handle(change)              # change.index, .table, .op, .pk, .old, .new
            save(change.cursor)         # resume from here after a crash

Reads ``GET /v1/changes`` (NDJSON). One log entry (one transaction) may carry several
changes with the same ``index``; each has its own *cursor* (``"<index>:<item>"``,
assigned by the server), and ``since`` takes a cursor or a bare index (everything
after that whole entry). A stream resumed from the cursor of the last change handled
yields every later change once, in order. Schema changes come as ``op == "schema"``
with the statement in ``sql``. The iterator does not end by itself: when the server
ends a stream (idle for its ``wait_ms``) or the connection fails, it reconnects from
its position (failing for longer than ``reconnect_s`` raises
``SyncUnavailableError``). A position the server no longer retains raises
``SnapshotRequiredError`` — never a silent gap.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Final

import httpx

from edgelite.client.target import RemoteTarget, parse_target
from edgelite.errors import ProtocolError
from edgelite.replica.errors import (
    SnapshotRequiredError,
    SyncRejectedError,
    SyncUnavailableError,
)

__all__ = ["Change", "ChangeStream", "changes"]

IDLE_TIMEOUT_S: Final = 60.0  # no line (not even a heartbeat) for this long: reconnect
_BACKOFF_S: Final = (0.05, 0.2, 0.5, 1.0, 2.0)
_CURSOR: Final = re.compile(r"^\d{1,19}(:\d{1,9})?$")
_MISSED: Final = ("the server no longer retains the changes after {cursor}: this consumer "
                  "missed changes and must start again from the current state ({detail})")
# Errors a new stream from the same cursor may not meet again.
_TRANSIENT_CODES: Final = frozenset({"INTERNAL_ERROR", "OVERLOADED", "CLUSTER_UNAVAILABLE"})


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One change. Row changes: ``table``, ``op`` (insert/update/delete), ``pk`` (the
    primary key, ``{"rowid": n}`` for tables without one), ``old``/``new`` (None for an
    insert/delete). Schema changes: ``op == "schema"`` and ``sql``."""

    index: int
    cursor: str
    committed_at_ms: int
    table: str | None
    op: str
    pk: dict[str, Any]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    sql: str | None = None


class ChangeStream:
    """An iterator of ``Change``; ``cursor`` is the position after the last one given
    (or the server's position while idle: heartbeats move it along)."""

    def __init__(self, target: RemoteTarget, since: int | str, *,
                 tables: Sequence[str] | None, connect_timeout_s: float,
                 reconnect_s: float) -> None:
        if isinstance(since, bool) or not _CURSOR.match(str(since)):
            raise ValueError(f"since must be an index or a cursor (\"<index>:<item>\"), "
                             f"got {since!r}")
        self.cursor = str(since)
        self._tables = list(tables) if tables else None
        self._reconnect_s = reconnect_s
        headers = {"accept": "application/x-ndjson"}
        if target.auth_token is not None:
            headers["authorization"] = f"Bearer {target.auth_token}"
        if target.namespace is not None:
            headers["x-namespace"] = target.namespace
        base = target.base_url
        self._url = ("http" + base[2:] if base.startswith("ws") else base) + "/v1/changes"
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(
            IDLE_TIMEOUT_S, connect=connect_timeout_s))
        self._lines: Iterator[str] | None = None
        self._response: httpx.Response | None = None
        self._closed = False

    def __iter__(self) -> ChangeStream:
        return self

    def __next__(self) -> Change:
        failing_since: float | None = None
        attempt = 0
        while not self._closed:
            try:
                change = self._next_change()
            except (httpx.HTTPError, SyncUnavailableError) as exc:
                self._drop_response()
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > self._reconnect_s:
                    raise SyncUnavailableError(f"the change stream at {self._url} failed: "
                                               f"{exc}") from exc
                time.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
                attempt += 1
                continue
            if change is not None:
                self.cursor = change.cursor
                return change
        raise StopIteration

    def close(self) -> None:
        self._closed = True
        self._drop_response()
        self._http.close()

    def __enter__(self) -> ChangeStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------

    def _next_change(self) -> Change | None:
        """The next change, or None (a marker, or the stream ended: reconnect)."""
        if self._lines is None:
            self._open()
        assert self._lines is not None
        try:
            line = next(self._lines)
        except StopIteration:  # the server ended the stream: the next call reconnects
            self._drop_response()
            return None
        if not line.strip():
            return None
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"the change stream sent a line that is not JSON: "
                                f"{line[:100]!r}") from exc
        return self._event(event)

    def _event(self, event: dict[str, Any]) -> Change | None:
        kind = event.get("type")
        if kind == "error":
            code = str(event.get("code") or "CHANGES_FAILED")
            message = str(event.get("message", ""))
            if code == "SNAPSHOT_REQUIRED":
                self.close()
                raise SnapshotRequiredError(_MISSED.format(cursor=self.cursor, detail=message))
            if code in _TRANSIENT_CODES:
                raise SyncUnavailableError(f"the change stream failed: {message}")
            self.close()
            raise SyncRejectedError(f"the change stream failed: {message}", code=code)
        if kind in ("heartbeat", "end"):
            if event.get("cursor") is not None:
                self.cursor = str(event["cursor"])  # idle: the position moves along
            if kind == "end":
                self._drop_response()
            return None
        if kind not in ("change", "schema"):
            return None  # an event type this client does not know
        return Change(int(event["index"]), str(event["cursor"]),
                      int(event.get("committed_at_ms") or 0), event.get("table"),
                      "schema" if kind == "schema" else str(event["op"]),
                      _row(event.get("pk")) or {}, _row(event.get("old")),
                      _row(event.get("new")), event.get("sql"))

    def _open(self) -> None:
        params: dict[str, str] = {"since": self.cursor, "format": "ndjson"}
        if self._tables:
            params["tables"] = ",".join(self._tables)
        request = self._http.build_request("GET", self._url, params=params)
        response = self._http.send(request, stream=True)
        if response.status_code != 200:
            response.read()
            response.close()
            raise _stream_error(response, self.cursor)
        self._response = response
        self._lines = response.iter_lines()

    def _drop_response(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response, self._lines = None, None


def _stream_error(response: httpx.Response, cursor: str) -> Exception:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    text = message or response.content.decode("utf-8", "replace")[:300]
    if response.status_code == 410 or code == "SNAPSHOT_REQUIRED":
        return SnapshotRequiredError(_MISSED.format(cursor=cursor, detail=text))
    if response.status_code >= 500 or response.status_code == 429:
        return SyncUnavailableError(f"the change stream failed (HTTP "
                                    f"{response.status_code}): {text}")
    return SyncRejectedError(f"the change stream was refused (HTTP {response.status_code}): "
                             f"{text}", code=code or f"HTTP_{response.status_code}",
                             status=response.status_code)


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"base64"}:
            data = str(value["base64"])
            return base64.b64decode(data + "=" * (-len(data) % 4))
        if set(value) == {"real"}:
            return float(value["real"])
    return value


def _row(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {str(name): _value(value) for name, value in dict(row).items()}


def changes(url: str, since: int | str = 0, *, auth_token: str | None = None,
            tables: Sequence[str] | None = None, namespace: str | None = None,
            connect_timeout_s: float = 5.0, reconnect_s: float = 60.0) -> ChangeStream:
    """The changes of the database at ``url`` after ``since`` (an index or a cursor)."""
    target = parse_target(url, auth_token=auth_token, namespace=namespace)
    if not isinstance(target, RemoteTarget):
        raise ValueError(f"changes() needs a server URL, got {url!r}")
    return ChangeStream(target, since, tables=tables, connect_timeout_s=connect_timeout_s,
                        reconnect_s=reconnect_s)
