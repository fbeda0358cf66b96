"""What one cursor operation produced, independent of shell and transport."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final, TypeAlias

from edgelite.protocol.hrana import Col, SqlValue

__all__ = ["EMPTY", "Description", "Outcome", "describe"]

# PEP 249 7-tuples: (name, type_code, display_size, internal_size, precision, scale,
# null_ok). type_code is the column's declared type (None for expressions), which
# compares equal to the module's STRING / NUMBER / ... type objects by SQLite affinity.
Description: TypeAlias = tuple[tuple[str, str | None, None, None, None, None, None], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """``description`` is None for statements without result columns (as sqlite3);
    ``lastrowid`` None means "leave the cursor's value unchanged" (executemany)."""

    description: Description | None
    rows: list[tuple[SqlValue, ...]]
    rowcount: int
    lastrowid: int | None


EMPTY: Final = Outcome(None, [], -1, None)


def describe(cols: Sequence[Col]) -> Description | None:
    if not cols:
        return None
    return tuple((c.name or "", c.decltype, None, None, None, None, None) for c in cols)
