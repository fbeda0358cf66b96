"""``Row``: a tuple that can also be indexed by column name, like ``sqlite3.Row``.

Use it as ``connection.row_factory = edgelite.Row``. Lookup by name is
case-insensitive (as ``sqlite3.Row``); ``keys()`` lists the column names; two rows are
equal when their columns and values are equal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["Row"]


class Row:
    __slots__ = ("_names", "_values")

    def __init__(self, cursor: Any, values: Sequence[Any]) -> None:
        description = cursor.description
        if description is None:
            raise TypeError("Row needs a cursor with a description (a query's result)")
        self._names: tuple[str, ...] = tuple(column[0] for column in description)
        self._values: tuple[Any, ...] = tuple(values)
        if len(self._names) != len(self._values):
            raise ValueError(f"{len(self._values)} values for {len(self._names)} columns")

    def keys(self) -> list[str]:
        return list(self._names)

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            for index, name in enumerate(self._names):
                if name == key:
                    return self._values[index]
            folded = key.casefold()
            for index, name in enumerate(self._names):
                if name.casefold() == folded:
                    return self._values[index]
            raise IndexError("No item with that key")
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return self._names == other._names and self._values == other._values

    def __hash__(self) -> int:
        return hash(self._names) ^ hash(self._values)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{n}={v!r}" for n, v in zip(self._names, self._values, strict=True))
        return f"<edgelite.Row {pairs}>"
