"""Errors of embedded replicas, as PEP 249 classes (``except edgelite.OperationalError``
catches them all). Each carries a stable ``code``.

::

    OperationalError (edgelite.client.errors)
    ├── SyncUnavailableError     REPLICA_SYNC_UNAVAILABLE   network down, server 5xx, timeout
    ├── SnapshotRequiredError    SNAPSHOT_REQUIRED          position older than the retention
    ├── DatabaseMismatchError    REPLICA_DATABASE_MISMATCH  file follows another database
    ├── NotAReplicaError         REPLICA_NOT_A_REPLICA      file is not a replica file
    └── SyncRejectedError        the server's code          auth, bad request, ...

Schema changes on an offline replica are refused with an ``OperationalError`` whose
code is ``SCHEMA_CHANGE_OFFLINE`` (it comes back through the client session like any
SQL error).
"""

from __future__ import annotations

from edgelite.client.errors import OperationalError

__all__ = [
    "DatabaseMismatchError",
    "NotAReplicaError",
    "SnapshotRequiredError",
    "SyncRejectedError",
    "SyncUnavailableError",
]


class SyncUnavailableError(OperationalError):
    """The sync server could not be reached or failed; trying again later may work."""

    code = "REPLICA_SYNC_UNAVAILABLE"


class SnapshotRequiredError(OperationalError):
    """The server no longer retains entries after the requested index."""

    code = "SNAPSHOT_REQUIRED"


class DatabaseMismatchError(OperationalError):
    code = "REPLICA_DATABASE_MISMATCH"


class NotAReplicaError(OperationalError):
    code = "REPLICA_NOT_A_REPLICA"


class SyncRejectedError(OperationalError):
    """The server refused a sync request (``status`` is its HTTP status; ``index`` the
    index an ``ALREADY_APPLIED`` answer names)."""

    code = "REPLICA_SYNC_REJECTED"

    def __init__(self, message: str, *, code: str | None = None,
                 status: int | None = None, index: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.index = index
