"""Local SQLite for edgelite clients: local files and embedded replicas.

Importing this package registers the local backend with ``edgelite.client``, so
``edgelite.connect("app.db")`` and ``edgelite.connect(":memory:")`` run SQLite in
process (``replica/local.py``) with the same API and errors as a remote connection,
and ``edgelite.connect("app.db", sync_url=...)`` opens an embedded replica of a server
database (``replica/connection.py``; design: ``docs/design/sync.md``, usage:
``docs/embedded-replicas.md``). ``changes()`` reads a database's change stream.
"""

from __future__ import annotations

from edgelite.client.opening import register_local_backend
from edgelite.replica.changes import Change, changes
from edgelite.replica.connection import (
    AsyncReplicaConnection,
    ReplicaBackend,
    ReplicaConnection,
)
from edgelite.replica.errors import (
    DatabaseMismatchError,
    NotAReplicaError,
    SnapshotRequiredError,
    SyncRejectedError,
    SyncUnavailableError,
)
from edgelite.replica.local import AsyncLocalDatabase, LocalBackend, LocalDatabase
from edgelite.replica.replicator import SyncResult

__all__ = [
    "AsyncLocalDatabase",
    "AsyncReplicaConnection",
    "Change",
    "DatabaseMismatchError",
    "LocalBackend",
    "LocalDatabase",
    "NotAReplicaError",
    "ReplicaConnection",
    "SnapshotRequiredError",
    "SyncRejectedError",
    "SyncResult",
    "SyncUnavailableError",
    "changes",
]

register_local_backend(ReplicaBackend())
