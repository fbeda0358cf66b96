"""The conflict decision (storage/conflict_policy.py), every case of its table."""

from __future__ import annotations

import itertools

import apsw
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgelite.storage.conflict_policy import (
    DEFAULT_POLICY,
    MISSING,
    Conflict,
    ConflictKind,
    Op,
    Policy,
    PolicyKind,
    Resolution,
    compare_values,
    decide,
    parse_policy,
)

POLICIES = [Policy(PolicyKind.SERVER_WINS), Policy(PolicyKind.CLIENT_WINS),
            Policy(PolicyKind.LAST_WRITER_WINS), Policy(PolicyKind.MAX_VERSION, "v"),
            Policy(PolicyKind.REJECT)]
VALID = [(ConflictKind.DATA, Op.UPDATE), (ConflictKind.DATA, Op.DELETE),
         (ConflictKind.NOTFOUND, Op.UPDATE), (ConflictKind.NOTFOUND, Op.DELETE),
         (ConflictKind.CONFLICT, Op.INSERT), (ConflictKind.CONSTRAINT, Op.INSERT),
         (ConflictKind.CONSTRAINT, Op.UPDATE), (ConflictKind.CONSTRAINT, Op.DELETE)]
CLOCKS = [(0, 0), (5, 3), (3, 5), (4, 4)]
VERSIONS = [(2, 1), (1, 2), (1, 1), (MISSING, 1), (1, MISSING), ("b", 3), (None, 0)]


def expected(policy: Policy, kind: ConflictKind, op: Op, rowid_keyed: bool,
             clocks: tuple[int, int], versions: tuple[object, object]) -> Resolution:
    """The decision table of the module docstring, written out case by case."""
    reject = policy.kind is PolicyKind.REJECT
    if kind is ConflictKind.CONSTRAINT:
        return Resolution.RECORD if reject else Resolution.SKIP
    if kind is ConflictKind.NOTFOUND:
        if op is Op.DELETE:
            return Resolution.SKIP
        return Resolution.RECORD if reject else Resolution.SKIP
    if kind is ConflictKind.CONFLICT and rowid_keyed:
        return Resolution.APPLY
    table = {PolicyKind.SERVER_WINS: Resolution.SKIP, PolicyKind.CLIENT_WINS:
             Resolution.REPLACE, PolicyKind.REJECT: Resolution.RECORD}
    if policy.kind in table:
        return table[policy.kind]
    if policy.kind is PolicyKind.LAST_WRITER_WINS:
        return Resolution.REPLACE if clocks[0] > clocks[1] else Resolution.SKIP
    pushed, current = versions
    if pushed is MISSING or current is MISSING:
        return Resolution.SKIP
    return Resolution.REPLACE if sqlite_order(pushed, current) > 0 else Resolution.SKIP


def sqlite_order(a: object, b: object) -> int:
    """-1, 0, 1 as SQLite's ORDER BY sorts two values (NULL first)."""
    with apsw.Connection(":memory:") as db:
        if db.execute("SELECT ? IS ?", (a, b)).fetchone()[0]:
            return 0
        first = db.execute("SELECT k FROM (SELECT ? AS x, 0 AS k UNION ALL SELECT ?, 1) "
                           "ORDER BY x, k LIMIT 1", (a, b)).fetchone()[0]
    return -1 if first == 0 else 1


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.text)
def test_every_case_of_the_decision_table(policy: Policy) -> None:
    cases = 0
    for (kind, op), rowid_keyed, clocks, versions in itertools.product(
            VALID, (False, True), CLOCKS, VERSIONS):
        conflict = Conflict(kind, op, rowid_keyed, clocks[0], clocks[1], *versions)
        assert decide(policy, conflict) is expected(policy, kind, op, rowid_keyed, clocks,
                                                    versions), conflict
        cases += 1
    assert cases == len(VALID) * 2 * len(CLOCKS) * len(VERSIONS)


def test_readable_examples() -> None:
    data_update = Conflict(ConflictKind.DATA, Op.UPDATE, pushed_hlc=10, current_hlc=20,
                           pushed_version=3, current_version=2)
    assert decide(DEFAULT_POLICY, data_update) is Resolution.SKIP
    assert decide(parse_policy("client-wins"), data_update) is Resolution.REPLACE
    assert decide(parse_policy("last-writer-wins"), data_update) is Resolution.SKIP
    assert decide(parse_policy("max-version:v"), data_update) is Resolution.REPLACE
    assert decide(parse_policy("reject"), data_update) is Resolution.RECORD


@pytest.mark.parametrize(("kind", "op"), [(ConflictKind.DATA, Op.INSERT),
                                          (ConflictKind.NOTFOUND, Op.INSERT),
                                          (ConflictKind.CONFLICT, Op.UPDATE),
                                          (ConflictKind.CONFLICT, Op.DELETE)])
def test_combinations_sqlite_never_reports_are_refused(kind: ConflictKind, op: Op) -> None:
    with pytest.raises(ValueError, match="SQLite reports no"):
        Conflict(kind, op)


@pytest.mark.parametrize(("text", "policy"), [
    ("server-wins", Policy(PolicyKind.SERVER_WINS)),
    (" Client-Wins ", Policy(PolicyKind.CLIENT_WINS)),
    ("last-writer-wins", Policy(PolicyKind.LAST_WRITER_WINS)),
    ("max-version:updated_at", Policy(PolicyKind.MAX_VERSION, "updated_at")),
    ("reject", Policy(PolicyKind.REJECT)),
])
def test_parse_policy(text: str, policy: Policy) -> None:
    assert parse_policy(text) == policy
    assert parse_policy(policy.text) == policy


@pytest.mark.parametrize(("text", "message"), [
    ("newest-wins", "unknown conflict policy"), ("max-version", "needs the version column"),
    ("max-version: ", "needs the version column"), ("reject:x", "takes no argument"),
    ("x" * 300, "short string"),
])
def test_parse_policy_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_policy(text)


VALUES = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                   st.floats(allow_nan=False), st.text(max_size=5), st.binary(max_size=5))


@given(VALUES, VALUES)
def test_compare_values_orders_like_sqlite(a: object, b: object) -> None:
    assert compare_values(a, b) == sqlite_order(a, b)  # type: ignore[arg-type]
