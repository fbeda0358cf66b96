"""The one exception tree of edgelite.

Every error edgelite raises on purpose is an ``EdgeliteError``. Lower layers raise
these; the edges translate them exactly once: the server into Hrana error codes and
HTTP statuses (``server/``), the client into PEP 249 names (``client/errors.py``,
whose classes also derive from ``EdgeliteError``).

::

    EdgeliteError
    ├── ConfigError                    a setting or flag is invalid
    ├── ProtocolError                  malformed input on the wire (HTTP 400)
    │   ├── HandshakeError             a peer connection failed authentication
    │   ├── BatonError                 invalid, forged or reused baton (400)
    │   └── StreamExpiredError         the stream idled out (400, STREAM_EXPIRED)
    ├── AuthError
    │   ├── AuthenticationError        no or bad credentials (401, code AUTH_*)
    │   └── PermissionDeniedError      credentials lack a right (403)
    ├── NamespaceError
    │   ├── NamespaceNotFoundError     (404)
    │   ├── NamespaceExistsError       (400)
    │   └── InvalidNamespaceError      (400)
    ├── SqlError                       a statement failed; carries a Hrana code
    ├── LimitExceededError             a bound was hit (size, count, time)
    ├── OverloadedError                too much concurrent work (429)
    ├── BlockedError                   namespace blocked reads or writes (BLOCKED)
    ├── AlreadyAppliedError            a retried request id had already committed
    ├── SnapshotRequiredError          a sync position is no longer retained (410)
    ├── DatabaseMismatchError          a replica names another database (409)
    ├── ClusterError
    │   ├── NotLeaderError             this node cannot serve it; leader hint inside
    │   ├── ClusterUnavailableError    no quorum / no leader within the deadline
    │   │   ├── PeerUnavailableError   a peer request was not sent (no route, queue full)
    │   │   └── PeerNoReplyError       a peer request was sent, no reply: outcome unknown
    │   │       └── PeerTimeoutError   ... because its deadline passed
    │   ├── PeerRemoteError            the peer's request handler failed
    │   └── OutcomeUnknownError        a write may or may not have committed
    └── StorageError
        ├── StorageCorruptionError     a checksum or invariant failed on disk
        ├── DivergenceError            applying a replicated change conflicted
        └── DiskFullError              ENOSPC / SQLITE_FULL on the node's own work

Expected failures are exceptions from this tree; ``assert`` is reserved for our own
bugs (invariants). Always ``raise ... from exc`` when translating.
"""

from __future__ import annotations


class EdgeliteError(Exception):
    """Base of every error edgelite raises deliberately.

    ``code`` is the Hrana error code string sent to clients for this error.
    """

    code: str = "SERVER_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(EdgeliteError):
    code = "CONFIG_ERROR"


class ProtocolError(EdgeliteError):
    """The peer sent something that does not follow the protocol.

    ``http_status`` is the status an HTTP edge answers with.
    """

    code = "PROTOCOL_ERROR"
    http_status = 400


class BatonError(ProtocolError):
    code = "BATON_INVALID"


class StreamExpiredError(ProtocolError):
    code = "STREAM_EXPIRED"


class AuthError(EdgeliteError):
    http_status = 401


class AuthenticationError(AuthError):
    """Missing or invalid credentials. ``code`` is one of the ``AUTH_*`` codes."""

    code = "AUTH_FAILED"
    http_status = 401


class PermissionDeniedError(AuthError):
    code = "AUTH_PERMISSION_DENIED"
    http_status = 403


class NamespaceError(EdgeliteError):
    http_status = 400


class NamespaceNotFoundError(NamespaceError):
    code = "NAMESPACE_NOT_FOUND"
    http_status = 404


class NamespaceExistsError(NamespaceError):
    code = "NAMESPACE_EXISTS"
    http_status = 400


class InvalidNamespaceError(NamespaceError):
    code = "NAMESPACE_INVALID"
    http_status = 400


class SqlError(EdgeliteError):
    """A statement failed.

    ``code`` is the Hrana code (``SQLITE_CONSTRAINT``, ``SQL_INPUT_ERROR``, ...);
    ``sqlite_code`` and ``extended_code`` are SQLite's numeric result codes when
    the error came from SQLite (else ``None``).
    """

    code = "SQLITE_UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        sqlite_code: int | None = None,
        extended_code: int | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.sqlite_code = sqlite_code
        self.extended_code = extended_code


class LimitExceededError(EdgeliteError):
    """A configured bound was hit. ``limit`` names the setting."""

    code = "LIMIT_EXCEEDED"
    http_status = 400

    def __init__(self, message: str, *, limit: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.limit = limit


class OverloadedError(EdgeliteError):
    code = "OVERLOADED"
    http_status = 429


class BlockedError(EdgeliteError):
    code = "BLOCKED"
    http_status = 200


class AlreadyAppliedError(EdgeliteError):
    """A request carrying this id committed before (at ``index``); it ran once only."""

    code = "ALREADY_APPLIED"
    http_status = 200

    def __init__(self, message: str, *, request_id: str, index: int) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.index = index


class ClusterError(EdgeliteError):
    http_status = 503


class NotLeaderError(ClusterError):
    code = "NOT_LEADER"

    def __init__(
        self, message: str, *, leader_id: str | None = None, leader_url: str | None = None
    ) -> None:
        super().__init__(message)
        self.leader_id = leader_id
        self.leader_url = leader_url


class ClusterUnavailableError(ClusterError):
    code = "CLUSTER_UNAVAILABLE"


class OutcomeUnknownError(ClusterError):
    """The write may or may not have committed; ``request_id`` lets the caller ask."""

    code = "OUTCOME_UNKNOWN"

    def __init__(self, message: str, *, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id


class StorageError(EdgeliteError):
    code = "SQLITE_IOERR"
    http_status = 500


class StorageCorruptionError(StorageError):
    code = "SQLITE_CORRUPT"


class DivergenceError(StorageError):
    code = "DIVERGENCE"


class DiskFullError(StorageError):
    code = "SQLITE_FULL"


class StorageUnavailableError(StorageError):
    """The environment refused a write (disk full, I/O error, read-only file system):
    not a fault of the data. A committed entry that hits it is applied again later,
    never declared diverged."""

    code = "SQLITE_FULL"


class DatabaseClosedError(StorageError):
    """The database is closing (deleted, replaced or the node stops); retry may succeed."""

    code = "DATABASE_CLOSED"
    http_status = 503


class HandshakeError(ProtocolError):
    """A node-to-node connection failed its handshake (wrong secret, wrong cluster,
    replayed nonce, unexpected node id...). ``reason`` is a short stable label for
    metrics and logs (``bad-proof``, ``wrong-cluster``, ...)."""

    code = "PEER_HANDSHAKE_FAILED"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PeerUnavailableError(ClusterUnavailableError):
    """A request to another node was not sent (unknown peer, queue full, stopped)."""

    code = "PEER_UNAVAILABLE"

    def __init__(self, message: str, *, peer_id: str) -> None:
        super().__init__(message)
        self.peer_id = peer_id


class PeerNoReplyError(ClusterUnavailableError):
    """A request to another node may have been delivered but no reply came back, so
    the peer may or may not have acted on it."""

    code = "PEER_NO_REPLY"

    def __init__(self, message: str, *, peer_id: str) -> None:
        super().__init__(message)
        self.peer_id = peer_id


class PeerTimeoutError(PeerNoReplyError):
    code = "PEER_TIMEOUT"


class PeerRemoteError(ClusterError):
    """The other node received the request and its handler failed."""

    code = "PEER_REMOTE_ERROR"

    def __init__(self, message: str, *, peer_id: str) -> None:
        super().__init__(message)
        self.peer_id = peer_id


class SnapshotRequiredError(EdgeliteError):
    """A sync position older than what this member still retains: the caller must
    start again from a snapshot (``GET /v1/sync/snapshot``). HTTP 410."""

    code = "SNAPSHOT_REQUIRED"
    http_status = 410

    def __init__(self, message: str, *, retained_from_index: int) -> None:
        super().__init__(message)
        self.retained_from_index = retained_from_index


class DatabaseMismatchError(EdgeliteError):
    """A replica names another database than the one it reached (another cluster, or
    a namespace deleted and created again). HTTP 409."""

    code = "DATABASE_MISMATCH"
    http_status = 409
