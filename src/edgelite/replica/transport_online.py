"""The application's connection to an online replica: local reads, remote writes.

``OnlineReplicaTransport`` receives the client session's pipelines (HTTP-style: the
session closes its stream after every call outside a transaction) and sends each one
either to the local file or to the server:

* a pipeline whose statements only read (SQLite says so: ``storage.statements``) runs
  on the local file — including deferred ``BEGIN`` … ``COMMIT`` read transactions;
* anything that writes, changes the schema, takes a write lock (``BEGIN IMMEDIATE``),
  or cannot even be prepared locally (a table the replica has not pulled yet) goes to
  the server over the existing HTTP transport, and so does everything after it until
  that remote stream closes (a transaction runs where it started writing);
* a local read transaction that then writes moves to the server: it is rolled back
  locally and re-opened remotely with its opening statement (its earlier reads came
  from the replica — the same trade libSQL's embedded replicas make).

When a remote stream closes, ``pending_index`` holds the highest replication index the
server reported; the connection shell waits for the file to apply it before returning
to the application (read-your-writes), see ``connection.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Final

import apsw

from edgelite.client.exchange import Pipeline, Reply, SyncTransport
from edgelite.errors import SqlError
from edgelite.protocol.hrana import messages as m
from edgelite.replica.fastpath import FastReader
from edgelite.replica.local import LocalDatabase
from edgelite.storage.statements import Kind, StatementCache

__all__ = ["OnlineReplicaTransport"]

_LOCAL_KINDS: Final = frozenset({Kind.READ, Kind.EMPTY, Kind.PRAGMA_FOREIGN_KEYS,
                                 Kind.DENIED, Kind.COMMIT, Kind.ROLLBACK, Kind.SAVEPOINT,
                                 Kind.RELEASE, Kind.ROLLBACK_TO})
_DEFERRED_BEGIN: Final = re.compile(r"^\s*BEGIN(\s+(TRANSACTION|DEFERRED)\b.*|\s*;?\s*)$",
                                    re.IGNORECASE | re.DOTALL)
_STREAM: Final = "replica"  # the one stream token this transport hands out


class OnlineReplicaTransport:
    """See the module docstring. Invariant: at most one of a local transaction and a
    remote stream is open."""

    def __init__(self, local: LocalDatabase, local_connection: apsw.Connection,
                 remote: SyncTransport, local_index: Callable[[], int]) -> None:
        self._local = local
        self._local_index = local_index
        self._db = local_connection
        self._remote = remote
        self._cache = StatementCache(512)
        self.fast = FastReader(local_connection, self._cache)
        self._remote_stream: object | None = None
        self._remote_open = False
        self._opening_sql: str | None = None  # what opened the local read transaction
        self.pending_index: int | None = None

    # --- SyncTransport -----------------------------------------------------------------

    def exchange(self, pipeline: Pipeline) -> Reply:
        if pipeline.stream is None:
            self._forget_streams()
        if self._remote_open or not self._runs_locally(pipeline):
            return self._exchange_remote(pipeline)
        reply = self._local.exchange(pipeline)
        self.fast.schema_changed()  # the general path may have run anything locally
        if self._db.get_autocommit():
            self._opening_sql = None
            stream = None
        else:
            if self._opening_sql is None:
                self._opening_sql = _opening_statement(pipeline) or "BEGIN"
            stream = _STREAM
        return Reply(reply.results, stream, self._local_index())

    def close(self) -> None:
        try:
            self._remote.close()
        finally:
            self._local.close()

    def create_function(self, name: str, narg: int, func: Callable[..., Any] | None, *,
                        deterministic: bool = False) -> None:
        self._local.create_function(name, narg, func, deterministic=deterministic)

    def abort(self) -> None:
        release = getattr(self._remote, "abort", self._remote.close)
        release()

    # --- routing -----------------------------------------------------------------------

    def _runs_locally(self, pipeline: Pipeline) -> bool:
        for text in _texts(pipeline):
            try:
                info = self._cache.info(self._db, text)
            except SqlError:
                return False  # the server may know a table the replica has not pulled yet
            if info.has_more_statements and not self._script_reads(info.remaining_sql):
                return False
            if info.kind is Kind.BEGIN:
                if not (info.readonly_begin or _DEFERRED_BEGIN.match(info.first_sql)):
                    return False
            elif info.kind not in _LOCAL_KINDS:
                return False
        return True

    def _script_reads(self, script: str) -> bool:
        """Every further statement of a script reads (probed one by one)."""
        remaining = script
        while remaining.strip():
            try:
                info = self._cache.info(self._db, remaining)
            except SqlError:
                return False
            if info.kind is Kind.EMPTY:
                return True
            if info.kind not in _LOCAL_KINDS or info.kind is Kind.DENIED:
                return False
            remaining = info.remaining_sql
        return True

    @property
    def remote_open(self) -> bool:
        return self._remote_open

    def idle(self) -> bool:
        """No transaction anywhere and no write waiting to be applied locally."""
        return (not self._remote_open and self.pending_index is None
                and self._db.get_autocommit())

    def _exchange_remote(self, pipeline: Pipeline) -> Reply:
        if not self._remote_open and not self._db.get_autocommit():
            self._move_transaction()
        requests = pipeline.requests
        stream = self._remote_stream if self._remote_open else None
        reply = self._remote.exchange(Pipeline(requests, stream, pipeline.consistency,
                                               pipeline.bookmark))
        self._note_index(reply)
        self._remote_stream = reply.stream
        self._remote_open = reply.stream is not None
        return Reply(reply.results, _STREAM if self._remote_open else None,
                     reply.replication_index)

    def _move_transaction(self) -> None:
        """A local read transaction is about to write: continue it on the server."""
        opening = self._opening_sql or "BEGIN"
        self._db.execute("ROLLBACK")
        self._opening_sql = None
        reply = self._remote.exchange(Pipeline(
            (m.ExecuteRequest(m.Stmt(sql=opening, want_rows=False)),), None, "strong", None))
        result = reply.results[0]
        if type(result) is not m.StreamResultOk or reply.stream is None:
            raise SqlError("could not move the transaction to the server to write: "
                           f"{getattr(result, 'error', result)}", code="TRANSACTION_LOST")
        self._remote_stream, self._remote_open = reply.stream, True

    def _note_index(self, reply: Reply) -> None:
        indexes = [reply.replication_index] + [_result_index(r) for r in reply.results]
        found = [i for i in indexes if i is not None]
        if found:
            highest = max(found)
            if self.pending_index is None or highest > self.pending_index:
                self.pending_index = highest

    def _forget_streams(self) -> None:
        """The session starts a new stream: whatever it had is gone (the server rolls
        back a remote one when it expires; a local one is rolled back here)."""
        if not self._db.get_autocommit():
            self._db.execute("ROLLBACK")
        self._opening_sql = None
        self._remote_stream, self._remote_open = None, False


def _texts(pipeline: Pipeline) -> Iterator[str]:
    stored: dict[int, str] = {}
    for request in pipeline.requests:
        if isinstance(request, m.StoreSqlRequest):
            stored[request.sql_id] = request.sql
        elif isinstance(request, m.ExecuteRequest):
            yield _stmt_text(request.stmt, stored)
        elif isinstance(request, m.BatchRequest):
            for step in request.batch.steps:
                yield _stmt_text(step.stmt, stored)
        elif isinstance(request, m.SequenceRequest):
            yield request.sql if request.sql is not None else stored.get(
                request.sql_id or -1, "")


def _stmt_text(stmt: m.Stmt, stored: dict[int, str]) -> str:
    if stmt.sql is not None:
        return stmt.sql
    return stored.get(stmt.sql_id if stmt.sql_id is not None else -1, "")


def _opening_statement(pipeline: Pipeline) -> str | None:
    for text in _texts(pipeline):
        word = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
        if word in ("BEGIN", "SAVEPOINT"):
            return text
    return None


def _result_index(result: m.StreamResult) -> int | None:
    if type(result) is not m.StreamResultOk:
        return None
    response = result.response
    if isinstance(response, m.ExecuteResponse):
        return response.result.replication_index
    if isinstance(response, m.BatchResponse):
        steps = [s.replication_index for s in response.result.step_results if s is not None]
        known = [i for i in steps if i is not None]
        return max(known) if known else None
    return None
