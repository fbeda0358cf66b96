"""Python parameters -> Hrana arguments, with ``sqlite3``'s adaptation rules.

Accepted values: ``None``, ``int`` (``bool`` binds as 0/1; 64-bit range), ``float``,
``str``, ``bytes``, ``bytearray`` and ``memoryview`` (sent as blobs), plus any type given
an adapter with ``register_adapter`` (as in ``sqlite3``). Anything else raises
``ProgrammingError`` naming the parameter and its type.

Parameters are a sequence (``?`` and ``?NNN`` placeholders, bound by position) or a
mapping (``:name``, ``@name`` and ``$name`` placeholders; keys without the prefix, as in
``sqlite3``). The server binds them (protocol.md §1.2), so a missing name or a wrong
count comes back as ``ARGS_INVALID`` and becomes ``ProgrammingError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from edgelite.client.errors import DataError, ProgrammingError
from edgelite.protocol.hrana import INT64_MAX, INT64_MIN, NamedArg, SqlValue

__all__ = [
    "adapters",
    "bind",
    "register_adapter",
]

# type -> callable returning a supported value; module-wide, like sqlite3.adapters.
adapters: dict[type, Callable[[Any], Any]] = {}

_DIRECT: Final = frozenset({type(None), int, float, str, bytes})


class IntegerOverflowError(DataError, OverflowError):
    """An ``int`` outside SQLite's 64-bit range. Also an ``OverflowError``, like sqlite3."""


def register_adapter(type_: type, adapter: Callable[[Any], Any]) -> None:
    """Bind values of ``type_`` as ``adapter(value)`` (which must return a supported value)."""
    adapters[type_] = adapter


def _adapt(value: object, position: int | str) -> SqlValue:
    """Slow path: bool, subclasses, buffers and registered adapters."""
    adapter = adapters.get(type(value))
    if adapter is not None:
        value = adapter(value)
        if type(value) in _DIRECT:
            return _checked(value, position)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return _checked(int(value), position)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    where = f"{position}" if isinstance(position, int) else f":{position}"
    raise ProgrammingError(
        f"Error binding parameter {where}: type '{type(value).__name__}' is not supported",
        code="ARGS_INVALID",
    )


def _checked(value: Any, position: int | str) -> SqlValue:
    if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
        raise IntegerOverflowError(
            f"Python int too large to convert to SQLite INTEGER (parameter {position})",
            code="ARGS_INVALID",
        )
    result: SqlValue = value
    return result


def value_of(value: object, position: int | str) -> SqlValue:
    """One parameter as a Hrana-ready Python value."""
    kind = type(value)
    if kind is int:
        return _checked(value, position)
    if kind in _DIRECT and not adapters:
        result: SqlValue = value  # type: ignore[assignment]
        return result
    return _adapt(value, position)


def bind(parameters: object) -> tuple[tuple[SqlValue, ...], tuple[NamedArg, ...]]:
    """``(args, named_args)`` for a statement's parameters (``()`` means none)."""
    if isinstance(parameters, tuple | list):
        return tuple([value_of(v, i) for i, v in enumerate(parameters, start=1)]), ()
    if isinstance(parameters, Mapping):
        named = []
        for name, value in parameters.items():
            if not isinstance(name, str):
                raise ProgrammingError(
                    f"parameter names must be strings, got {type(name).__name__}",
                    code="ARGS_INVALID",
                )
            named.append(NamedArg(name, value_of(value, name)))
        return (), tuple(named)
    if isinstance(parameters, Sequence) and not isinstance(parameters, bytes | bytearray):
        return tuple([value_of(v, i) for i, v in enumerate(parameters, start=1)]), ()
    raise ProgrammingError("parameters are of unsupported type", code="ARGS_INVALID")
