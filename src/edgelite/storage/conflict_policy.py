"""Conflict policies for changes pushed by offline replicas: parsing and the decision.

A table's policy lives in the database (``_edgelite_conflict_policy``, replicated) and
is one of ``server-wins`` (the default), ``client-wins``, ``last-writer-wins``,
``max-version:<column>`` or ``reject``. When a pushed change cannot be applied as is
(SQLite's changeset conflict kinds), ``decide`` says what happens. It is pure: the
caller extracts the clocks and version values; the same function serves the leader
merging a push and a replica rebasing its unpushed changes onto pulled ones (there,
"pushed" is the local change and "current" the row the cluster has).

The decision table (``pushed`` = the pushed change, ``current`` = the row in the
database; ties always keep ``current``):

============ ========= =============================================================
kind         op        outcome
============ ========= =============================================================
CONFLICT     INSERT    rowid-keyed table (no declared primary key): APPLY as a new
                       row (a rowid is not a row's identity there); otherwise by policy
DATA         UPD/DEL   by policy
NOTFOUND     DELETE    SKIP under every policy (the row is gone either way)
NOTFOUND     UPDATE    RECORD under ``reject``, else SKIP: the row was deleted and an
                       update carries only the changed columns, so it cannot recreate it
CONSTRAINT   any       RECORD under ``reject``, else SKIP (SQLite cannot replace it)
============ ========= =============================================================

"By policy": ``server-wins`` SKIP; ``client-wins`` REPLACE; ``reject`` RECORD;
``last-writer-wins`` REPLACE iff ``pushed_hlc > current_hlc``; ``max-version:c``
REPLACE iff the pushed value of ``c`` is known and greater than the current one
(SQLite's ordering: NULL < numbers < text < blobs).

Resolutions: APPLY (insert the pushed row as a new row), SKIP (keep ``current``),
REPLACE (the pushed change overwrites ``current``), RECORD (keep ``current`` and store
the pushed change in ``_edgelite_conflicts`` for the application).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

Value = None | int | float | str | bytes


class _Missing(enum.Enum):
    MISSING = "missing"


MISSING: Final = _Missing.MISSING


class PolicyKind(enum.Enum):
    SERVER_WINS = "server-wins"
    CLIENT_WINS = "client-wins"
    LAST_WRITER_WINS = "last-writer-wins"
    MAX_VERSION = "max-version"
    REJECT = "reject"


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """Invariant: ``column`` is set iff ``kind`` is MAX_VERSION."""

    kind: PolicyKind
    column: str | None = None

    def __post_init__(self) -> None:
        assert (self.column is not None) == (self.kind is PolicyKind.MAX_VERSION), self

    @property
    def text(self) -> str:
        if self.kind is PolicyKind.MAX_VERSION:
            return f"{self.kind.value}:{self.column}"
        return str(self.kind.value)


DEFAULT_POLICY: Final = Policy(PolicyKind.SERVER_WINS)
POLICY_TEXT_BYTES_MAX: Final = 200


def parse_policy(text: str) -> Policy:
    """``"max-version:version"`` -> Policy; ValueError naming the accepted forms."""
    if not isinstance(text, str) or len(text.encode("utf-8")) > POLICY_TEXT_BYTES_MAX:
        raise ValueError("a conflict policy is a short string")
    name, sep, column = text.strip().partition(":")
    try:
        kind = PolicyKind(name.strip().lower())
    except ValueError:
        raise ValueError(f"unknown conflict policy {text[:60]!r}: use server-wins, "
                         "client-wins, last-writer-wins, max-version:<column> or reject") \
            from None
    if kind is PolicyKind.MAX_VERSION:
        if not sep or not column.strip():
            raise ValueError("max-version needs the version column: max-version:<column>")
        return Policy(kind, column.strip())
    if sep:
        raise ValueError(f"conflict policy {kind.value} takes no argument (got {text[:60]!r})")
    return Policy(kind)


class ConflictKind(enum.Enum):
    """SQLite's changeset conflict reasons (``SQLITE_CHANGESET_*``)."""

    DATA = "data"  # update/delete: the row exists but differs from the change's old values
    NOTFOUND = "notfound"  # update/delete: no row with that primary key
    CONFLICT = "conflict"  # insert: a row with that primary key exists
    CONSTRAINT = "constraint"  # applying it would break a UNIQUE/NOT NULL/CHECK constraint


class Op(enum.Enum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class Resolution(enum.Enum):
    APPLY = "apply"
    SKIP = "skip"
    REPLACE = "replace"
    RECORD = "record"


_VALID_OPS: Final = {
    ConflictKind.DATA: frozenset({Op.UPDATE, Op.DELETE}),
    ConflictKind.NOTFOUND: frozenset({Op.UPDATE, Op.DELETE}),
    ConflictKind.CONFLICT: frozenset({Op.INSERT}),
    ConflictKind.CONSTRAINT: frozenset({Op.INSERT, Op.UPDATE, Op.DELETE}),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Conflict:
    """One change that cannot be applied as is. Clocks are 0 when unknown (a row never
    stamped loses to any stamped change); versions are MISSING when unknown (an update
    that did not change the version column, a column the table lacks)."""

    kind: ConflictKind
    op: Op
    rowid_keyed: bool = False
    pushed_hlc: int = 0
    current_hlc: int = 0
    pushed_version: Value | _Missing = MISSING
    current_version: Value | _Missing = MISSING

    def __post_init__(self) -> None:
        if self.op not in _VALID_OPS[self.kind]:
            raise ValueError(f"SQLite reports no {self.kind.value} conflict for an "
                             f"{self.op.value}")


def decide(policy: Policy, conflict: Conflict) -> Resolution:
    """What to do with one conflicting change (see the module's decision table)."""
    kind, op = conflict.kind, conflict.op
    if kind is ConflictKind.CONFLICT and conflict.rowid_keyed:
        return Resolution.APPLY
    if kind is ConflictKind.NOTFOUND and op is Op.DELETE:
        return Resolution.SKIP
    if kind in (ConflictKind.NOTFOUND, ConflictKind.CONSTRAINT):
        return Resolution.RECORD if policy.kind is PolicyKind.REJECT else Resolution.SKIP
    return _by_policy(policy, conflict)


def _by_policy(policy: Policy, conflict: Conflict) -> Resolution:
    kind = policy.kind
    if kind is PolicyKind.SERVER_WINS:
        return Resolution.SKIP
    if kind is PolicyKind.CLIENT_WINS:
        return Resolution.REPLACE
    if kind is PolicyKind.REJECT:
        return Resolution.RECORD
    if kind is PolicyKind.LAST_WRITER_WINS:
        newer = conflict.pushed_hlc > conflict.current_hlc
        return Resolution.REPLACE if newer else Resolution.SKIP
    assert kind is PolicyKind.MAX_VERSION
    pushed, current = conflict.pushed_version, conflict.current_version
    if pushed is MISSING or current is MISSING:
        return Resolution.SKIP
    assert not isinstance(pushed, _Missing) and not isinstance(current, _Missing)
    return Resolution.REPLACE if compare_values(pushed, current) > 0 else Resolution.SKIP


def _rank(value: Value) -> int:
    if value is None:
        return 0
    if isinstance(value, int | float):
        return 1
    if isinstance(value, str):
        return 2
    return 3


def compare_values(a: Value, b: Value) -> int:
    """-1, 0 or 1 like SQLite compares two values (BINARY collation)."""
    rank_a, rank_b = _rank(a), _rank(b)
    if rank_a != rank_b:
        return -1 if rank_a < rank_b else 1
    if a is None:
        return 0
    # Same storage class: numbers numerically (int vs float too), text by code point
    # (= UTF-8 byte order, SQLite's BINARY), blobs bytewise.
    return (a > b) - (a < b)  # type: ignore[operator]


__all__ = ["DEFAULT_POLICY", "MISSING", "Conflict", "ConflictKind", "Op", "Policy",
           "PolicyKind", "Resolution", "Value", "compare_values", "decide", "parse_policy"]
