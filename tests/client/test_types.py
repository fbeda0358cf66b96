"""Type round trips through every mode: what goes in as a parameter comes back equal
and of the same Python type (64-bit integers at both bounds, floats, unicode, blobs,
NULL), both straight from ``SELECT ?`` and through a stored row."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgelite

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

sql_values = st.one_of(
    st.none(),
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 2**53 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(exclude_categories=("Cs",))),
    st.binary(max_size=300),
)

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def same(left: object, right: object) -> bool:
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        assert isinstance(right, float)
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    return left == right


@SETTINGS
@given(values=st.lists(sql_values, min_size=1, max_size=6))
def test_select_round_trip(conn: edgelite.Connection, values: list[object]) -> None:
    placeholders = ", ".join("?" for _ in values)
    row = conn.execute(f"SELECT {placeholders}", values).fetchone()
    assert len(row) == len(values)
    for sent, received in zip(values, row, strict=True):
        assert same(sent, received), (sent, received)


@SETTINGS
@given(values=st.lists(sql_values, min_size=1, max_size=20))
def test_stored_round_trip(conn: edgelite.Connection, table: str, values: list[object]) -> None:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (k INTEGER PRIMARY KEY, v)")
    conn.execute(f"DELETE FROM {table}")
    conn.executemany(f"INSERT INTO {table} (k, v) VALUES (?, ?)", list(enumerate(values)))
    conn.commit()
    stored = [v for (v,) in conn.execute(f"SELECT v FROM {table} ORDER BY k")]
    for sent, received in zip(values, stored, strict=True):
        assert same(sent, received), (sent, received)


@SETTINGS
@given(name=st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1,
                    max_size=40))
def test_named_parameter_values_round_trip(conn: edgelite.Connection, name: str) -> None:
    assert conn.execute("SELECT :v", {"v": name}).fetchone() == (name,)


def test_integer_bounds_and_typeof(conn: edgelite.Connection) -> None:
    row = conn.execute("SELECT ?, ?, typeof(?), ? + 0.5", (INT64_MIN, INT64_MAX, INT64_MAX,
                                                            1)).fetchone()
    assert row == (INT64_MIN, INT64_MAX, "integer", 1.5)
    assert conn.execute("SELECT 9223372036854775807").fetchone() == (INT64_MAX,)


def test_non_finite_floats(conn: edgelite.Connection, mode: str) -> None:
    """JSON has no infinity: remote connections refuse to send it (DataError) and the
    server's results never hold one; a local file stores it as SQLite does."""
    if mode == "local":
        assert conn.execute("SELECT ?", (math.inf,)).fetchone() == (math.inf,)
        return
    with pytest.raises(edgelite.DataError):
        conn.execute("SELECT ?", (math.inf,))
    assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection is still usable
