"""Hrana values and their Python counterparts.

A SQL value on the Python side is ``None | int | float | str | bytes`` (``SqlValue``).
On the wire (Hrana JSON, protocol.md §1.1) it is a tagged object::

    {"type":"null"}
    {"type":"integer","value":"42"}      decimal string, signed 64-bit, both directions
    {"type":"float","value":3.5}         JSON number (numeric strings accepted on input)
    {"type":"text","value":"hi"}
    {"type":"blob","base64":"AQID"}      emitted without padding, accepted with or without

The legacy ``POST /`` API (protocol.md §5.1) uses plain JSON instead: null, numbers,
strings, and ``{"base64": "..."}`` for blobs.

Message structs annotate their value fields with the marker types ``Value``,
``LegacyValue``, ``Int64Decimal`` and ``UInt64Decimal``. For mypy they *are* the Python
types (``SqlValue`` / ``int``); at run time they are abstract classes that msgspec does
not know, so msgspec hands the raw JSON to ``dec_hook`` below, which converts and
validates it. Errors raised there become msgspec ``ValidationError``s that carry the JSON
path (``$.requests[0].stmt.args[1]``), which the codec turns into ``ProtocolError``.
Encoding goes the other way through ``value_to_wire`` (see ``_wire.py``).
"""

from __future__ import annotations

import abc
import binascii
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import msgspec

from edgelite.errors import ProtocolError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "UINT64_MAX",
    "VALUE_TO_WIRE_BY_TYPE",
    "BlobWire",
    "FloatWire",
    "Int64Decimal",
    "IntegerWire",
    "LegacyValue",
    "NullWire",
    "SqlValue",
    "TextWire",
    "UInt64Decimal",
    "Value",
    "ValueWire",
    "blob_from_base64",
    "blob_to_base64",
    "legacy_value_from_json",
    "legacy_value_to_json",
    "value_from_json",
    "value_to_json",
    "value_to_wire",
]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1

SqlValue: TypeAlias = int | float | str | bytes | None

if TYPE_CHECKING:
    Value: TypeAlias = SqlValue
    LegacyValue: TypeAlias = SqlValue
    Int64Decimal: TypeAlias = int
    UInt64Decimal: TypeAlias = int
else:

    class Value(abc.ABC):  # noqa: B024 - a marker, never instantiated
        """A Hrana value object on the wire; a ``SqlValue`` in Python."""

    class LegacyValue(abc.ABC):  # noqa: B024
        """A plain-JSON value of the legacy ``POST /`` API; a ``SqlValue`` in Python."""

    class Int64Decimal(abc.ABC):  # noqa: B024
        """A signed 64-bit integer sent as a decimal string (number accepted on input)."""

    class UInt64Decimal(abc.ABC):  # noqa: B024
        """An unsigned 64-bit integer sent as a decimal string (number accepted on input)."""

    # msgspec checks that dec_hook returned an instance of the declared type.
    for _marker in (Value, LegacyValue):
        for _python_type in (type(None), int, float, str, bytes):
            _marker.register(_python_type)
    Int64Decimal.register(int)
    UInt64Decimal.register(int)


# --- wire structs (what the encoder emits) -----------------------------------------------


class NullWire(msgspec.Struct, frozen=True, gc=False, tag="null", tag_field="type"):
    pass


class IntegerWire(msgspec.Struct, frozen=True, gc=False, tag="integer", tag_field="type"):
    value: str


class FloatWire(msgspec.Struct, frozen=True, gc=False, tag="float", tag_field="type"):
    value: float


class TextWire(msgspec.Struct, frozen=True, gc=False, tag="text", tag_field="type"):
    value: str


class BlobWire(msgspec.Struct, frozen=True, gc=False, tag="blob", tag_field="type"):
    base64: str


ValueWire: TypeAlias = NullWire | IntegerWire | FloatWire | TextWire | BlobWire

_NULL_WIRE: Final = NullWire()
_DECIMAL_RE: Final = re.compile(r"[+-]?[0-9]{1,40}")
_FLOAT_TEXT_RE: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SHOWN_CHARS_MAX: Final = 40


def _show(obj: object) -> str:
    """A short, safe rendering of (possibly huge) client input for error messages."""
    text = repr(obj)
    if len(text) > _SHOWN_CHARS_MAX:
        return text[:_SHOWN_CHARS_MAX] + "..."
    return text


def _json_kind(obj: object) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "boolean"
    if isinstance(obj, int | float):
        return "number"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, list):
        return "array"
    return "object"


# --- decoding (JSON builtins -> Python) ---------------------------------------------------


def _int_from_decimal(obj: object, low: int, high: int, what: str) -> int:
    if type(obj) is not str:
        raise TypeError(f"{what} must be a decimal string, got {_json_kind(obj)} {_show(obj)}")
    if _DECIMAL_RE.fullmatch(obj) is None:
        raise ValueError(f"{what} must be a decimal integer string, got {_show(obj)}")
    number = int(obj)
    if not low <= number <= high:
        raise ValueError(f"{what} {_show(obj)} is out of the range [{low}, {high}]")
    return number


def _float_from_json(obj: object) -> float:
    if type(obj) is float:
        number = obj
    elif type(obj) is int:
        try:
            number = float(obj)
        except OverflowError:
            raise ValueError(f"float value {_show(obj)} is out of range") from None
    elif type(obj) is str and _FLOAT_TEXT_RE.fullmatch(obj) is not None:
        # Leniency for turso-python, which sends floats as strings (protocol.md §1.1).
        number = float(obj)
    else:
        raise TypeError(f"float value must be a number, got {_json_kind(obj)} {_show(obj)}")
    if not math.isfinite(number):
        raise ValueError(f"float value {_show(obj)} is not finite")
    return number


def blob_from_base64(text: object) -> bytes:
    """Decode standard base64, with or without ``=`` padding; raise ValueError if invalid."""
    if type(text) is not str:
        raise TypeError(f"blob base64 must be a string, got {_json_kind(text)} {_show(text)}")
    unpadded = text.rstrip("=")
    if len(text) - len(unpadded) > 2:
        raise ValueError("blob base64 has too much padding")
    if len(unpadded) % 4 == 1:
        raise ValueError("blob base64 has an impossible length")
    try:
        return binascii.a2b_base64(unpadded + "=" * (-len(unpadded) % 4), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"blob base64 is invalid: {exc}") from None


def _value_from_json(obj: object) -> SqlValue:
    """Hrana value object -> Python value; raises TypeError/ValueError (msgspec adds the path)."""
    if type(obj) is not dict:
        raise TypeError(f"expected a Hrana value object, got {_json_kind(obj)} {_show(obj)}")
    kind = obj.get("type")
    if kind == "text":
        text = obj.get("value")
        if type(text) is not str:
            raise TypeError(f"text value must be a string, got {_json_kind(text)}")
        return text
    if kind == "integer":
        return _int_from_decimal(obj.get("value"), INT64_MIN, INT64_MAX, "integer value")
    if kind == "float":
        return _float_from_json(obj.get("value"))
    if kind == "null":
        return None
    if kind == "blob":
        return blob_from_base64(obj.get("base64"))
    if kind is None:
        raise ValueError("value object has no `type`")
    raise ValueError(f"unknown value type {_show(kind)}")


def _legacy_value_from_json(obj: object) -> SqlValue:
    """Legacy plain-JSON value -> Python value; booleans bind as 1/0 like sqld."""
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, bool):
        return 1 if obj else 0
    if isinstance(obj, int):
        if not INT64_MIN <= obj <= INT64_MAX:
            raise ValueError(f"integer {_show(obj)} is out of the 64-bit range")
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"value {_show(obj)} is not finite")
        return obj
    if isinstance(obj, dict) and "base64" in obj:
        return blob_from_base64(obj["base64"])
    raise TypeError(
        f'expected null, number, string or {{"base64": ...}}, got {_json_kind(obj)} {_show(obj)}'
    )


def _decimal_from_json(obj: object, low: int, high: int) -> int:
    if type(obj) is int:
        if not low <= obj <= high:
            raise ValueError(f"integer {_show(obj)} is out of the range [{low}, {high}]")
        return obj
    return _int_from_decimal(obj, low, high, "integer")


def _int64_from_json(obj: object) -> int:
    return _decimal_from_json(obj, INT64_MIN, INT64_MAX)


def _uint64_from_json(obj: object) -> int:
    return _decimal_from_json(obj, 0, UINT64_MAX)


_DECODERS: Final[dict[object, Callable[[object], object]]] = {
    Value: _value_from_json,
    Int64Decimal: _int64_from_json,
    UInt64Decimal: _uint64_from_json,
    LegacyValue: _legacy_value_from_json,
}


def dec_hook(type_: type, obj: Any) -> Any:
    """msgspec decoding hook for the marker types of this module."""
    decode = _DECODERS.get(type_)
    if decode is None:
        raise NotImplementedError(f"no decoder for {type_!r}")
    return decode(obj)


def value_from_json(obj: object, *, path: str = "$") -> SqlValue:
    """Convert an already-parsed Hrana value object; ``ProtocolError`` names ``path``."""
    try:
        return _value_from_json(obj)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{exc} - at `{path}`") from None


def legacy_value_from_json(obj: object, *, path: str = "$") -> SqlValue:
    """Convert an already-parsed legacy plain-JSON value; ``ProtocolError`` names ``path``."""
    try:
        return _legacy_value_from_json(obj)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{exc} - at `{path}`") from None


# --- encoding (Python -> wire) ------------------------------------------------------------


def blob_to_base64(data: bytes) -> str:
    """Standard base64 without ``=`` padding, as sqld emits it."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").decode("ascii")


def _int_to_wire(number: int) -> IntegerWire:
    if not INT64_MIN <= number <= INT64_MAX:
        raise ProtocolError(f"integer {_show(number)} does not fit in 64 bits")
    return IntegerWire(str(number))


def _bool_to_wire(flag: bool) -> IntegerWire:
    return IntegerWire("1" if flag else "0")


def _float_to_wire(number: float) -> FloatWire:
    if not math.isfinite(number):
        raise ProtocolError(f"float {number!r} cannot be sent: JSON has no non-finite numbers")
    return FloatWire(number)


def _bytes_to_wire(data: bytes) -> BlobWire:
    return BlobWire(blob_to_base64(data))


def _none_to_wire(_: None) -> NullWire:
    return _NULL_WIRE


VALUE_TO_WIRE_BY_TYPE: Final[dict[type, Callable[[Any], ValueWire]]] = {
    # Exact types only; subclasses (bool aside) take the slow path in value_to_wire.
    int: _int_to_wire,
    str: TextWire,
    float: _float_to_wire,
    type(None): _none_to_wire,
    bytes: _bytes_to_wire,
    bool: _bool_to_wire,
}


def _subclass_to_wire(value: object) -> ValueWire:
    """Slow path for subclasses (IntEnum, str subclasses, bytearray, memoryview)."""
    if isinstance(value, bool):
        return _bool_to_wire(value)
    if isinstance(value, int):
        return _int_to_wire(int(value))
    if isinstance(value, float):
        return _float_to_wire(float(value))
    if isinstance(value, str):
        return TextWire(str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes_to_wire(bytes(value))
    raise ProtocolError(
        f"cannot send a value of type {type(value).__name__}: "
        "expected None, int, float, str or bytes"
    )


def value_to_wire(value: SqlValue) -> ValueWire:
    """Python value -> wire struct; raises ``ProtocolError`` if it has no Hrana form.

    Lone surrogates in ``str`` are caught later, when the message is serialised.
    """
    convert = VALUE_TO_WIRE_BY_TYPE.get(type(value))
    if convert is None:
        return _subclass_to_wire(value)
    result: ValueWire = convert(value)
    return result


def value_to_json(value: SqlValue) -> dict[str, Any]:
    """Python value -> Hrana value object as JSON builtins (a dict)."""
    result: dict[str, Any] = msgspec.to_builtins(value_to_wire(value))
    return result


def legacy_value_to_json(value: SqlValue) -> Any:
    """Python value -> legacy plain-JSON value (blobs become ``{"base64": ...}``)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ProtocolError(f"integer {_show(value)} does not fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        return _float_to_wire(float(value)).value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": blob_to_base64(bytes(value))}
    raise ProtocolError(f"cannot send a value of type {type(value).__name__}")
