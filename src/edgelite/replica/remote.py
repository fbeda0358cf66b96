"""The sync endpoints of a server, client side: ``/v1/sync/{info,snapshot,pull,push}``.

One ``SyncClient`` per replica, over one ``httpx.Client`` (blocking; the replica's
background thread and the caller's thread take turns under the replica's sync lock).
Shapes are those of /work/notes/replica-design.md; every failure becomes one of
``replica.errors``: transport failures, timeouts and 5xx are ``SyncUnavailableError``
(try again later), ``410 SNAPSHOT_REQUIRED`` is ``SnapshotRequiredError``, anything
else the server refused is ``SyncRejectedError`` with its code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import ssl
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from edgelite.client.target import RemoteTarget
from edgelite.replica.errors import (
    SnapshotRequiredError,
    SyncRejectedError,
    SyncUnavailableError,
)

__all__ = ["PullBatch", "PulledEntry", "PushAnswer", "SnapshotFile", "SyncClient", "SyncInfo"]

REQUEST_ID_HEADER: Final = "x-edgelite-request-id"
_CHUNK_BYTES: Final = 256 * 1024
_MSGPACK: Final = "application/msgpack"
_SHOWN_BODY_CHARS_MAX: Final = 300


@dataclasses.dataclass(frozen=True, slots=True)
class SyncInfo:
    database_id: str
    applied_index: int
    retained_from_index: int
    conflict_policies: dict[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class PulledEntry:
    index: int
    committed_at_ms: int
    effect: bytes  # storage.effects encoding
    request_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class PullBatch:
    """Entries after the asked index, in order. ``applied_index`` is the position this
    answer brings a replica to (the member's applied index, or the last entry's when
    ``more`` entries were left for the next pull).

    Invariant: indexes strictly increase and are <= ``applied_index``."""

    database_id: str
    entries: tuple[PulledEntry, ...]
    applied_index: int
    more: bool = False

    def __post_init__(self) -> None:
        indexes = [entry.index for entry in self.entries]
        assert indexes == sorted(set(indexes)), "pulled entries out of order"
        assert not indexes or indexes[-1] <= self.applied_index, "entry past applied"


@dataclasses.dataclass(frozen=True, slots=True)
class PushAnswer:
    """``index``: where the merge committed (or, ``already_applied``, where the first
    attempt with the same request id did)."""

    index: int
    conflicts: int
    applied: int
    already_applied: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotFile:
    path: Path
    database_id: str
    index: int
    sha256: str


class _PullBody(msgspec.Struct):
    database_id: str
    entries: list[tuple[int, int, bytes, list[str]]]
    applied_index: int
    more: bool = False


def _pull_decoder() -> msgspec.msgpack.Decoder[_PullBody]:
    return msgspec.msgpack.Decoder(_PullBody)


class SyncClient:
    """Blocking client of one server database's sync endpoints."""

    def __init__(self, target: RemoteTarget, *, connect_timeout_s: float,
                 read_timeout_s: float, verify: ssl.SSLContext | bool = True) -> None:
        base = target.base_url
        if base.startswith("ws"):  # ws:// and wss:// name the same server over HTTP
            base = "http" + base[2:]
        self.base_url = base
        headers = {"x-libsql-client-version": "edgelite-python-replica"}
        if target.auth_token is not None:
            headers["authorization"] = f"Bearer {target.auth_token}"
        if target.namespace is not None:
            headers["x-namespace"] = target.namespace
        self.read_timeout_s = read_timeout_s
        self._http = httpx.Client(
            headers=headers, verify=verify, follow_redirects=False,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1,
                                keepalive_expiry=5.0))
        self._pull_decoder = _pull_decoder()

    def close(self) -> None:
        self._http.close()

    # --- endpoints ---------------------------------------------------------------------

    def info(self) -> SyncInfo:
        body = self._json(self._request("GET", "/v1/sync/info"))
        return SyncInfo(str(body["database_id"]), int(body["applied_index"]),
                        int(body.get("retained_from_index", 0)),
                        dict(body.get("conflict_policies") or {}))

    def pull(self, since: int, *, wait_ms: int = 0, max_entries: int = 256,
             max_bytes: int = 4 * 1024 * 1024) -> PullBatch:
        params = {"since": str(since), "wait_ms": str(wait_ms),
                  "max_entries": str(max_entries), "max_bytes": str(max_bytes)}
        timeout = httpx.Timeout(self.read_timeout_s + wait_ms / 1000,
                                connect=self._http.timeout.connect)
        response = self._request("GET", "/v1/sync/pull", params=params, timeout=timeout)
        try:
            body = self._pull_decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise SyncUnavailableError(f"the server sent an invalid pull answer: {exc}",
                                       ) from exc
        entries = tuple(PulledEntry(index, at_ms, bytes(effect), tuple(ids))
                        for index, at_ms, effect, ids in body.entries)
        return PullBatch(body.database_id, entries, body.applied_index, body.more)

    def push(self, request_id: str, database_id: str, base_index: int,
             changes: list[bytes], hlc: list[list[Any]]) -> PushAnswer:
        content = msgspec.msgpack.encode({"database_id": database_id, "base_index": base_index,
                                          "changes": changes, "hlc": hlc})
        headers = {REQUEST_ID_HEADER: request_id, "content-type": _MSGPACK}
        try:
            response = self._request("POST", "/v1/sync/push", content=content,
                                     headers=headers)
        except SyncRejectedError as exc:
            if exc.code != "ALREADY_APPLIED":
                raise
            index = exc.index
            if index is None:
                index = self.request_index(request_id)
            return PushAnswer(index, 0, 0, already_applied=True)
        body = self._decode(response)
        return PushAnswer(int(body["index"]), int(body.get("conflicts", 0)),
                          int(body.get("applied", 0)))

    def request_index(self, request_id: str) -> int:
        """Where a request id committed (``GET /v1/requests/<id>``)."""
        body = self._json(self._request("GET", f"/v1/requests/{request_id}"))
        if not body.get("committed") or body.get("index") is None:
            raise SyncRejectedError(f"the server says request {request_id} never committed, "
                                    "but answered ALREADY_APPLIED for it",
                                    code="PROTOCOL_ERROR")
        return int(body["index"])

    def download_snapshot(self, directory: Path, prefix: str) -> SnapshotFile:
        """Stream ``/v1/sync/snapshot`` into a new file in ``directory``, check its
        length and sha256, fsync it. The caller renames or deletes it."""
        url = self.base_url + "/v1/sync/snapshot"
        fd, name = _temp_file(directory, prefix)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                result = self._stream_snapshot(url, out, path)
            return result
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    # --- plumbing ----------------------------------------------------------------------

    def _stream_snapshot(self, url: str, out: Any, path: Path) -> SnapshotFile:
        digest = hashlib.sha256()
        size = 0
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()
                    raise _status_error(response)
                expected_sha = response.headers.get("x-edgelite-sha256", "")
                database_id = response.headers.get("x-edgelite-database-id", "")
                index_text = response.headers.get("x-edgelite-snapshot-index", "")
                length_text = response.headers.get("content-length")
                for chunk in response.iter_bytes(_CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise SyncUnavailableError(f"downloading the snapshot from {url} failed: "
                                       f"{type(exc).__name__}: {exc}") from exc
        if length_text is not None and int(length_text) != size:
            raise SyncUnavailableError(f"the snapshot from {url} was cut short "
                                       f"({size} of {length_text} bytes)")
        if not expected_sha or digest.hexdigest() != expected_sha.lower():
            raise SyncUnavailableError(f"the snapshot from {url} does not match its sha256 "
                                       f"({digest.hexdigest()} != {expected_sha or 'none'})")
        if not database_id or not index_text.isdigit():
            raise SyncRejectedError("the snapshot answer lacks x-edgelite-database-id or "
                                    "x-edgelite-snapshot-index", code="PROTOCOL_ERROR")
        out.flush()
        os.fsync(out.fileno())
        return SnapshotFile(path, database_id, int(index_text), digest.hexdigest())

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self.base_url + path
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise SyncUnavailableError(f"cannot reach {url}: {type(exc).__name__}: {exc}"
                                       ) from exc
        if response.status_code >= 300:
            raise _status_error(response)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise SyncUnavailableError(f"the server sent invalid JSON from "
                                       f"{response.request.url.path}") from exc
        if not isinstance(body, dict):
            raise SyncUnavailableError("the server sent a JSON answer that is not an object")
        return body

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        if response.headers.get("content-type", "").startswith(_MSGPACK):
            body = msgspec.msgpack.decode(response.content)
            assert isinstance(body, dict)
            return body
        return self._json(response)


def _temp_file(directory: Path, prefix: str) -> tuple[int, str]:
    import tempfile  # only here: the one place a replica creates a scratch file

    return tempfile.mkstemp(prefix=prefix, suffix=".download", dir=directory)


def _status_error(response: httpx.Response) -> Exception:
    """The error for a non-2xx answer (JSON ``{"error", "message", "code"}`` bodies)."""
    status = response.status_code
    code: str | None = None
    message = response.content.decode("utf-8", "replace")[:_SHOWN_BODY_CHARS_MAX].strip()
    extra: dict[str, Any] = {}
    try:
        body = json.loads(response.content)
        if isinstance(body, dict):
            code = body.get("code") if isinstance(body.get("code"), str) else None
            message = str(body.get("message") or body.get("error") or message)
            extra = body
    except ValueError:
        pass
    where = f"{response.request.method} {response.request.url.path}"
    if status == 410 or code == "SNAPSHOT_REQUIRED":
        return SnapshotRequiredError(f"{where}: {message}")
    if status >= 500 or status == 429:
        return SyncUnavailableError(f"{where} failed (HTTP {status}): {message}")
    index = extra.get("index")
    return SyncRejectedError(f"{where} was refused (HTTP {status}): {message}",
                             code=code or f"HTTP_{status}", status=status,
                             index=index if isinstance(index, int) else None)
