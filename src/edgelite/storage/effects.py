"""A transaction's effect: what replicas apply instead of re-running client SQL.

An ``Effect`` is an ordered list of segments — session changesets and DDL statements
at their position in the transaction — plus the ``sqlite_sequence`` rows the
transaction changed (the session extension does not record that table, and
AUTOINCREMENT would break after failover without it). ARCHITECTURE §3.

``TxnRecorder`` captures an effect on the leader's writer connection: it keeps an
SQLite session open across the transaction, closes it before each DDL statement (so
the DDL's own row effects, e.g. FTS5 shadow rows, are not applied twice) and opens a
new one after. ``apply_effect`` replays an effect on an APPLIER connection (triggers
and foreign keys off); any conflict means the replicas diverged and raises
``DivergenceError`` — it is never "resolved".

The byte encoding (``encode_effect`` / ``decode_effect``) is deterministic and
versioned; it is what goes into the Raft log.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Iterable

import apsw

from edgelite.errors import DivergenceError, StorageCorruptionError
from edgelite.storage.authorizer import internal_statements

STATE_TABLE = "_edgelite_state"
REQUESTS_TABLE = "_edgelite_requests"  # request ids applied (exactly-once retries)
_MAGIC = b"ELFX"
_VERSION = 1


class SegmentKind(enum.IntEnum):
    CHANGESET = 1
    DDL = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Segment:
    kind: SegmentKind
    payload: bytes  # changeset bytes, or the DDL statement as UTF-8

    @property
    def sql(self) -> str:
        assert self.kind is SegmentKind.DDL
        return self.payload.decode("utf-8")


@dataclasses.dataclass(frozen=True, slots=True)
class Effect:
    """Invariant: no segment is an empty changeset."""

    segments: tuple[Segment, ...] = ()
    sequence_upserts: tuple[tuple[str, int], ...] = ()
    sequence_deletes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert all(s.payload for s in self.segments if s.kind is SegmentKind.CHANGESET)

    @property
    def is_empty(self) -> bool:
        return not (self.segments or self.sequence_upserts or self.sequence_deletes)


# --- encoding --------------------------------------------------------------------------

def encode_effect(effect: Effect) -> bytes:
    parts = [_MAGIC, struct.pack(">BI", _VERSION, len(effect.segments))]
    for segment in effect.segments:
        parts.append(struct.pack(">BI", int(segment.kind), len(segment.payload)))
        parts.append(segment.payload)
    parts.append(struct.pack(">I", len(effect.sequence_upserts)))
    for name, seq in effect.sequence_upserts:
        parts.append(_pack_text(name))
        parts.append(struct.pack(">q", seq))
    parts.append(struct.pack(">I", len(effect.sequence_deletes)))
    parts.extend(_pack_text(name) for name in effect.sequence_deletes)
    return b"".join(parts)


def decode_effect(data: bytes) -> Effect:
    reader = _Reader(data)
    if reader.take(4) != _MAGIC:
        raise StorageCorruptionError("effect does not start with the ELFX magic")
    version, count = reader.unpack(">BI")
    if version != _VERSION:
        raise StorageCorruptionError(f"effect version {version} is not supported")
    segments = []
    for _ in range(count):
        kind, length = reader.unpack(">BI")
        try:
            segments.append(Segment(SegmentKind(kind), reader.take(length)))
        except ValueError as exc:
            raise StorageCorruptionError(f"unknown effect segment kind {kind}") from exc
    upserts = tuple((reader.text(), reader.unpack(">q")[0])
                    for _ in range(reader.unpack(">I")[0]))
    deletes = tuple(reader.text() for _ in range(reader.unpack(">I")[0]))
    if not reader.at_end:
        raise StorageCorruptionError("trailing bytes after an effect")
    return Effect(tuple(segments), upserts, deletes)


def _pack_text(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def take(self, length: int) -> bytes:
        end = self._offset + length
        if end > len(self._data):
            raise StorageCorruptionError("effect is truncated")
        chunk = bytes(self._data[self._offset:end])
        self._offset = end
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def text(self) -> str:
        (length,) = self.unpack(">H")
        return self.take(length).decode("utf-8")

    @property
    def at_end(self) -> bool:
        return self._offset == len(self._data)


# --- capture ---------------------------------------------------------------------------

def read_sequence(connection: apsw.Connection) -> dict[str, int]:
    """The rows of ``sqlite_sequence`` (empty when no AUTOINCREMENT table exists)."""
    with internal_statements(connection):
        cursor = connection.cursor()
        exists = cursor.execute(
            "SELECT 1 FROM sqlite_schema WHERE name='sqlite_sequence'", can_cache=False
        ).fetchone()
        if exists is None:
            return {}
        rows = cursor.execute("SELECT name, seq FROM sqlite_sequence", can_cache=False)
        return {str(name): int(seq) for name, seq in rows}


class TxnRecorder:
    """Captures one write transaction's effect on the writer connection.

    Lifecycle: ``begin()`` (inside the transaction, before any change) → any number of
    ``before_ddl()`` / ``after_ddl(sql)`` pairs → ``finish()`` or ``abandon()``.
    ``mark()`` and ``segments_cut_since(mark)`` let the writer tell whether a savepoint
    rollback would undo changes that already left the session (then the transaction
    must be abandoned rather than partially rolled back).
    """

    def __init__(self, connection: apsw.Connection) -> None:
        self._connection = connection
        self._session: apsw.Session | None = None
        self._segments: list[Segment] = []
        self._sequence_before: dict[str, int] = {}
        self._cuts = 0
        self.active = False

    def begin(self) -> None:
        assert not self.active, "recorder already active"
        self._segments = []
        self._cuts = 0
        self._sequence_before = read_sequence(self._connection)
        self._open_session()
        self.active = True

    def mark(self) -> int:
        return self._cuts

    def segments_cut_since(self, mark: int) -> bool:
        return self._cuts != mark

    def before_ddl(self) -> int:
        """Close the session: the DDL's own effects are re-created by re-running it.

        Returns a mark for ``discard_since`` (the position the DDL's segment will take).
        """
        assert self.active and self._session is not None
        self._take_changeset()
        self._close_session()
        self._cuts += 1
        return len(self._segments)

    def discard_since(self, mark: int) -> None:
        """A savepoint rolled back the DDL at ``mark`` and everything after it: forget
        those segments and the open session's changes (all made after that DDL)."""
        assert self.active and mark <= len(self._segments)
        self._close_session()
        del self._segments[mark:]
        self._open_session()

    def after_ddl(self, sql: str | None) -> None:
        """Record the DDL (``None`` if it failed and changed nothing) and reopen."""
        assert self.active and self._session is None
        if sql is not None:
            self._segments.append(Segment(SegmentKind.DDL, sql.encode("utf-8")))
        self._open_session()

    def changesets_so_far(self) -> list[bytes]:
        """The row changes recorded so far (segments taken, then the open session's),
        without ending anything: the row clocks of LWW tables are stamped from them."""
        assert self.active
        found = [s.payload for s in self._segments if s.kind is SegmentKind.CHANGESET]
        if self._session is not None:
            current = self._session.changeset()
            if current:
                found.append(current)
        return found

    def finish(self) -> Effect:
        assert self.active and self._session is not None
        self._take_changeset()
        self._close_session()
        self.active = False
        after = read_sequence(self._connection)
        upserts = tuple(sorted((name, seq) for name, seq in after.items()
                               if self._sequence_before.get(name) != seq))
        deletes = tuple(sorted(set(self._sequence_before) - set(after)))
        return Effect(tuple(self._segments), upserts, deletes)

    def abandon(self) -> None:
        self._close_session()
        self._segments = []
        self.active = False

    def _open_session(self) -> None:
        session = apsw.Session(self._connection, "main")
        # Rowid tables without a PRIMARY KEY are skipped by sessions unless asked.
        session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
        session.table_filter(_replicated_table)
        session.attach(None)
        self._session = session

    def _take_changeset(self) -> None:
        assert self._session is not None
        changeset = self._session.changeset()
        if changeset:
            self._segments.append(Segment(SegmentKind.CHANGESET, changeset))

    def _close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _replicated_table(name: str) -> bool:
    # The state table is written by each node for itself, in the same transaction.
    # sqlite_sequence travels as explicit rows (``Effect.sequence_*``): with
    # SQLITE_SESSION_OBJCONFIG_ROWID the session records a client's own DML on it, by
    # rowid, and those rowids differ on replicas (SQLite's automatic updates of the
    # table are not recorded at all).
    return name not in (STATE_TABLE, REQUESTS_TABLE, "sqlite_sequence")


# --- apply -----------------------------------------------------------------------------

def apply_effect(connection: apsw.Connection, effect: Effect) -> None:
    """Apply ``effect`` inside the caller's open transaction on an APPLIER connection.

    Raises ``DivergenceError`` on any conflict; the caller rolls back.
    """
    assert connection.in_transaction, "apply_effect needs an open transaction"
    sequence_before = read_sequence(connection)
    for segment in effect.segments:
        if segment.kind is SegmentKind.DDL:
            connection.execute(segment.sql)
        else:
            _apply_changeset(connection, segment.payload)
    _apply_sequence(connection, sequence_before, effect.sequence_upserts,
                    effect.sequence_deletes)


def _apply_changeset(connection: apsw.Connection, changeset: bytes) -> None:
    conflicts: list[str] = []

    def on_conflict(reason: int, change: apsw.TableChange) -> int:
        conflicts.append(f"{apsw.mapping_session_conflict.get(reason, reason)} on table "
                         f"{change.name} ({change.opcode})")
        return apsw.SQLITE_CHANGESET_ABORT

    try:
        apsw.Changeset.apply(changeset, connection, conflict=on_conflict)
    except apsw.AbortError as exc:
        raise DivergenceError("replica diverged while applying a changeset: "
                              + "; ".join(conflicts)) from exc
    if conflicts:
        raise DivergenceError("replica diverged while applying a changeset: "
                              + "; ".join(conflicts))


def _apply_sequence(connection: apsw.Connection, before: dict[str, int],
                    upserts: Iterable[tuple[str, int]], deletes: Iterable[str]) -> None:
    """Leave ``sqlite_sequence`` as the leader left it: its state before the transaction
    (which this replica shares) with the transaction's changes applied.

    Applying rows to AUTOINCREMENT tables moved this replica's own counters on the way,
    and the leader's may have moved differently (clients may write ``sqlite_sequence``,
    e.g. ``DELETE FROM sqlite_sequence`` after an insert), so the target is computed
    from ``before``, never from the current rows.
    """
    target = dict(before)
    target.update(upserts)
    for name in deletes:
        target.pop(name, None)
    current = read_sequence(connection)
    cursor = connection.cursor()
    for name in sorted(current.keys() - target.keys()):
        cursor.execute("DELETE FROM sqlite_sequence WHERE name=?", (name,))
    for name, seq in sorted(target.items()):
        if name not in current:
            cursor.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)",
                           (name, seq))
        elif current[name] != seq:
            cursor.execute("UPDATE sqlite_sequence SET seq=? WHERE name=?", (seq, name))


# --- the applied index -------------------------------------------------------------------

def ensure_state_table(connection: apsw.Connection) -> None:
    with internal_statements(connection):
        cursor = connection.cursor()
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE}"
                       "(key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID", can_cache=False)
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {REQUESTS_TABLE}"
                       "(id TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) WITHOUT ROWID",
                       can_cache=False)


def read_applied_index(connection: apsw.Connection) -> int:
    with internal_statements(connection):
        row = connection.cursor().execute(
            f"SELECT value FROM {STATE_TABLE} WHERE key='applied_index'",
            can_cache=False).fetchone()
    return int(row[0]) if row is not None else 0


def write_applied_index(connection: apsw.Connection, index: int) -> None:
    """Record ``index`` in the open transaction (exactly-once apply across crashes)."""
    assert connection.in_transaction
    with internal_statements(connection):
        connection.cursor().execute(
            f"INSERT INTO {STATE_TABLE}(key, value) VALUES ('applied_index', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (index,),
            can_cache=False)
