"""Local SQLite for edgelite clients: plain local files today, embedded replicas later.

Importing this package registers the local backend with ``edgelite.client``, so
``edgelite.connect("app.db")`` and ``edgelite.connect(":memory:")`` run SQLite in
process (``replica/local.py``) with the same API and errors as a remote connection.
"""

from __future__ import annotations

from edgelite.client.opening import register_local_backend
from edgelite.replica.local import AsyncLocalDatabase, LocalBackend, LocalDatabase

__all__ = ["AsyncLocalDatabase", "LocalBackend", "LocalDatabase"]

register_local_backend(LocalBackend())
