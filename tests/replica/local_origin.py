"""A server database without a server, for unit tests of the replica's local pieces.

``Origin`` is an SQLite file written the way an edgelite leader writes: each
transaction's effect captured by ``storage.effects.TxnRecorder`` and the applied index
stored with it. Its effects become ``PulledEntry`` values and its file a snapshot, so
``replica.rebase`` and ``replica.bootstrap`` are tested against real effects without
any process or network.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import apsw

from edgelite.replica import bootstrap, files
from edgelite.replica.policies import PolicyResolver
from edgelite.replica.remote import PulledEntry, SnapshotFile
from edgelite.storage import effects
from edgelite.storage.authorizer import internal_statements
from edgelite.storage.statements import leading_word

DATABASE_ID = "c0ffee/default/1"


class Origin:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.connection = apsw.Connection(str(path))
        self.connection.execute("PRAGMA journal_mode=WAL")
        effects.ensure_state_table(self.connection)
        self.index = 0
        self.entries: list[PulledEntry] = []
        self.clock_ms = 1_000_000

    def write(self, *statements: str) -> PulledEntry:
        """Run ``statements`` as one transaction; its effect is the next entry."""
        connection = self.connection
        recorder = effects.TxnRecorder(connection)
        connection.execute("BEGIN IMMEDIATE")
        recorder.begin()
        for sql in statements:
            if leading_word(sql) in ("CREATE", "DROP", "ALTER"):
                recorder.before_ddl()
                connection.execute(sql)
                recorder.after_ddl(sql)
            else:
                connection.execute(sql)
        effect = recorder.finish()
        self.index += 3  # indexes of one database are not contiguous in a shared log
        effects.write_applied_index(connection, self.index)
        connection.execute("COMMIT")
        self.clock_ms += 10
        entry = PulledEntry(self.index, self.clock_ms, effects.encode_effect(effect), ())
        self.entries.append(entry)
        return entry

    def internal(self, sql: str, bindings: tuple[object, ...] = ()) -> None:
        with internal_statements(self.connection):
            self.connection.execute(sql, bindings)

    def since(self, index: int) -> list[PulledEntry]:
        return [e for e in self.entries if e.index > index]

    def snapshot(self, directory: Path) -> SnapshotFile:
        self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        target = directory / f"snapshot-{self.index}.download"
        shutil.copyfile(self.path, target)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        return SnapshotFile(target, DATABASE_ID, self.index, digest)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return [tuple(r) for r in self.connection.execute(sql)]


def make_replica(origin: Origin, path: Path, sync_url: str = "http://127.0.0.1:9") -> None:
    """A replica file of ``origin`` at its current index (what a bootstrap makes)."""
    snapshot = origin.snapshot(path.parent)
    bootstrap.prepare(snapshot, sync_url=sync_url, rows=[], hlc=0, resolver=PolicyResolver())
    bootstrap.install_new(snapshot, path)
    inspection = files.inspect_file(path)
    assert inspection.state is files.FileState.VALID, inspection


def merge_into(origin: Origin, changesets: list[bytes]) -> PulledEntry:
    """What a server merge of a push does, reduced to server-wins: apply, omit conflicts."""
    connection = origin.connection
    recorder = effects.TxnRecorder(connection)
    connection.execute("BEGIN IMMEDIATE")
    recorder.begin()
    for changeset in changesets:
        apsw.Changeset.apply(changeset, connection,
                             conflict=lambda _reason, _change: apsw.SQLITE_CHANGESET_OMIT)
    effect = recorder.finish()
    origin.index += 2
    effects.write_applied_index(connection, origin.index)
    connection.execute("COMMIT")
    entry = PulledEntry(origin.index, origin.clock_ms, effects.encode_effect(effect), ())
    origin.entries.append(entry)
    return entry
