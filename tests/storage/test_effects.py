"""The effect format and its apply side, without the writer around them."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgelite.errors import DivergenceError, StorageCorruptionError
from edgelite.storage import effects
from edgelite.storage.connection import ConnectionLimits, Role, open_connection
from edgelite.storage.effects import Effect, Segment, SegmentKind

segments = st.lists(st.one_of(
    st.builds(Segment, st.just(SegmentKind.CHANGESET), st.binary(min_size=1, max_size=64)),
    st.builds(Segment, st.just(SegmentKind.DDL),
              st.text(max_size=40).map(lambda t: t.encode("utf-8"))),
), max_size=5).map(tuple)
names = st.text(min_size=1, max_size=20)
effects_strategy = st.builds(
    Effect, segments,
    st.lists(st.tuples(names, st.integers(-(2**63), 2**63 - 1)), max_size=4).map(tuple),
    st.lists(names, max_size=4).map(tuple))


@given(effects_strategy)
def test_encoding_round_trips_and_is_deterministic(effect: Effect) -> None:
    data = effects.encode_effect(effect)
    assert effects.decode_effect(data) == effect
    assert effects.encode_effect(effects.decode_effect(data)) == data


@given(effects_strategy, st.data())
def test_damaged_encodings_are_rejected(effect: Effect, data: st.DataObject) -> None:
    encoded = effects.encode_effect(effect)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(StorageCorruptionError):
        effects.decode_effect(encoded[:cut])
    with pytest.raises(StorageCorruptionError):
        effects.decode_effect(encoded + b"\x00")


def test_bad_headers_are_rejected() -> None:
    good = effects.encode_effect(Effect((Segment(SegmentKind.DDL, b"CREATE TABLE x (a)"),)))
    with pytest.raises(StorageCorruptionError, match="magic"):
        effects.decode_effect(b"XXXX" + good[4:])
    with pytest.raises(StorageCorruptionError, match="version"):
        effects.decode_effect(good[:4] + b"\x09" + good[5:])
    bad_kind = good[:4] + struct.pack(">BI", 1, 1) + struct.pack(">BI", 7, 1) + b"x"
    with pytest.raises(StorageCorruptionError, match="kind"):
        effects.decode_effect(bad_kind + struct.pack(">II", 0, 0))


def test_empty_effect() -> None:
    assert Effect().is_empty
    assert not Effect(sequence_deletes=("t",)).is_empty
    with pytest.raises(AssertionError):
        Effect((Segment(SegmentKind.CHANGESET, b""),))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[apsw.Connection, apsw.Connection]]:
    """A plain source connection and an APPLIER connection on another file."""
    source = apsw.Connection(str(tmp_path / "source.db"))
    target = open_connection(tmp_path / "target.db", Role.APPLIER, ConnectionLimits()
                             ).connection
    schema = """
        CREATE TABLE p (id INTEGER PRIMARY KEY);
        CREATE TABLE c (id INTEGER PRIMARY KEY, pid REFERENCES p(id) ON DELETE CASCADE);
        CREATE TABLE log (what);
        CREATE TRIGGER c_ad AFTER DELETE ON c BEGIN INSERT INTO log VALUES (old.id); END;
    """
    source.execute(schema)
    target.execute(schema)
    yield source, target
    source.close()
    target.close()


def _capture(connection: apsw.Connection, sql: str) -> Effect:
    recorder = effects.TxnRecorder(connection)
    connection.execute("BEGIN")
    recorder.begin()
    connection.execute(sql)
    effect = recorder.finish()
    connection.execute("COMMIT")
    return effect


def _apply(connection: apsw.Connection, effect: Effect) -> None:
    connection.execute("BEGIN")
    try:
        effects.apply_effect(connection, effect)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def test_applier_does_not_fire_triggers_or_cascades(
        pair: tuple[apsw.Connection, apsw.Connection]) -> None:
    source, target = pair
    source.execute("PRAGMA foreign_keys=ON")
    _apply(target, _capture(source, "INSERT INTO p VALUES (1); INSERT INTO c VALUES (10, 1)"))
    effect = _capture(source, "DELETE FROM p WHERE id = 1")
    assert source.execute("SELECT * FROM log").fetchall() == [(10,)]
    _apply(target, effect)
    # The cascade and the trigger's row came as changes, each applied exactly once.
    for table in ("p", "c", "log"):
        query = f"SELECT * FROM {table}"
        assert target.execute(query).fetchall() == source.execute(query).fetchall()


@pytest.mark.parametrize(("tamper_target", "prepare_source", "statement", "reason"), [
    ("", "DELETE FROM p", "INSERT INTO p VALUES (1)", "CONFLICT"),
    ("DELETE FROM p", "", "UPDATE p SET id = 5 WHERE id = 1", "NOTFOUND"),
    ("UPDATE log SET what = 'changed'", "", "UPDATE log SET what = 'x'", "DATA"),
], ids=["insert-existing", "update-missing", "update-changed"])
def test_conflicts_raise_divergence(pair: tuple[apsw.Connection, apsw.Connection],
                                    tamper_target: str, prepare_source: str, statement: str,
                                    reason: str) -> None:
    """A replica that does not hold what the leader changed has diverged: apply fails
    and changes nothing (it is never "resolved")."""
    source, target = pair
    _apply(target, _capture(source, "INSERT INTO p VALUES (1); INSERT INTO log VALUES ('a')"))
    if tamper_target:
        target.execute(tamper_target)
    if prepare_source:
        source.execute(prepare_source)  # not captured: only the source changes
    snapshot = "SELECT 'p', id FROM p UNION ALL SELECT 'log', what FROM log"
    before = target.execute(snapshot).fetchall()
    with pytest.raises(DivergenceError, match=reason):
        _apply(target, _capture(source, statement))
    assert target.execute(snapshot).fetchall() == before
