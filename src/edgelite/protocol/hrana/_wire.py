"""Turn a Python-valued message into a wire-ready one for the JSON encoder.

Messages hold Python values (``SqlValue``, ``int`` row ids); JSON wants Hrana value
objects and decimal strings. msgspec's ``enc_hook`` is never called for ``int`` or
``str``, so the codec rewrites the message first: ``to_wire`` returns a copy in which
every field annotated with a marker type of ``values.py`` holds its wire form. The
copy is only ever given to the encoder (msgspec does not check field types when
encoding).

Which fields need rewriting is derived once per struct class from its annotations and
cached (a "plan"). A class whose plan is empty is passed through untouched, so messages
without values (conditions, ``close``, ``store_sql``...) cost one dict lookup.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from edgelite.protocol.hrana.messages import (
    ExecuteResponse,
    PipelineResponse,
    RowEntry,
    StmtResult,
    StreamResultOk,
)
from edgelite.protocol.hrana.values import (
    VALUE_TO_WIRE_BY_TYPE,
    Int64Decimal,
    LegacyValue,
    UInt64Decimal,
    Value,
    legacy_value_to_json,
    value_to_wire,
)
from edgelite.protocol.hrana.ws_messages import ResponseOkMsg

__all__ = ["plan_convert", "prepare_plans", "to_wire"]

Convert = Callable[[Any], Any]
Plan = tuple[tuple[str, Convert], ...]

_PLANS: dict[type, Plan] = {}
_BUILDING: set[type] = set()
_ASSUMED_EMPTY: set[type] = set()

_SEQUENCE_ORIGINS: Final = (collections.abc.Sequence, list, tuple)
_MAPPING_ORIGINS: Final = (collections.abc.Mapping, dict)
_UNION_ORIGINS: Final = (types.UnionType, typing.Union)


def _decimal_to_wire(number: int) -> str:
    return str(int(number))


_MARKER_CONVERTERS: Final[dict[object, Convert]] = {
    Value: value_to_wire,
    LegacyValue: legacy_value_to_json,
    Int64Decimal: _decimal_to_wire,
    UInt64Decimal: _decimal_to_wire,
}


def prepare_plans(*modules: types.ModuleType) -> None:
    """Plan every struct class of ``modules`` now.

    Called at import time (``json_codec``), which Python serialises: afterwards plans are
    only read, so encoding from several threads never sees a half-built plan.
    """
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, msgspec.Struct):
                _plan(value)


def to_wire(obj: Any) -> Any:
    """``obj`` (a struct, or a list of structs/None) with Python values in wire form."""
    if isinstance(obj, msgspec.Struct):
        return _convert_struct(obj)
    if isinstance(obj, list | tuple):
        return [to_wire(item) for item in obj]
    return obj


def _convert_struct(obj: Any) -> Any:
    cls = type(obj)
    fast = _FAST.get(cls)
    if fast is not None:
        return fast(obj)
    return plan_convert(obj)


def _plan(cls: type) -> Plan:
    """The (field, converter) pairs of ``cls``; cached. Recursion through a class that is
    still being planned assumes it needs nothing, and this is checked afterwards."""
    cached = _PLANS.get(cls)
    if cached is not None:
        return cached
    if cls in _BUILDING:
        _ASSUMED_EMPTY.add(cls)
        return ()
    _BUILDING.add(cls)
    try:
        pairs = []
        for field in msgspec.structs.fields(cls):
            convert = _converter(field.type)
            if convert is not None:
                pairs.append((field.name, convert))
        plan = tuple(pairs)
    finally:
        _BUILDING.discard(cls)
    assert not (plan and cls in _ASSUMED_EMPTY), (
        f"{cls.__name__} is recursive and holds values; _wire.py cannot plan it"
    )
    _PLANS[cls] = plan
    return plan


def _converter(type_: Any) -> Convert | None:
    """A function rewriting a field of this declared type, or None if none is needed."""
    marker = _MARKER_CONVERTERS.get(type_)
    if marker is not None:
        return marker
    origin = typing.get_origin(type_)
    args = typing.get_args(type_)
    if origin is typing.Annotated:
        return _converter(args[0])
    if origin in _UNION_ORIGINS:
        return _union_converter(args)
    if origin in _SEQUENCE_ORIGINS:
        item = _converter(args[0])
        return None if item is None else _sequence_of(item)
    if origin in _MAPPING_ORIGINS:
        item = _converter(args[1])
        return None if item is None else _mapping_of(item)
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return _convert_struct if _plan(type_) else None
    return None


def _sequence_of(item: Convert) -> Convert:
    def convert(sequence: Any) -> Any:
        return [item(element) for element in sequence]

    return convert


def _mapping_of(item: Convert) -> Convert:
    def convert(mapping: Any) -> Any:
        return {key: item(element) for key, element in mapping.items()}

    return convert


def _union_converter(members: tuple[Any, ...]) -> Convert | None:
    """Dispatch on the run-time type: None, structs, scalars, mappings, sequences."""
    scalar: Convert | None = None
    mapping: Convert | None = None
    sequence: Convert | None = None
    structs_need_work = False
    for member in members:
        if member is type(None):
            continue
        convert = _converter(member)
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, msgspec.Struct):
            structs_need_work = structs_need_work or convert is not None
        elif origin in _MAPPING_ORIGINS:
            mapping = convert
        elif origin in _SEQUENCE_ORIGINS:
            sequence = convert
        elif convert is not None:
            assert scalar is None, f"ambiguous union {members!r}"
            scalar = convert
    if not (scalar or mapping or sequence or structs_need_work):
        return None

    def convert_union(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, msgspec.Struct):
            return _convert_struct(value)
        if isinstance(value, str | bytes | int | float):
            return value if scalar is None else scalar(value)
        if isinstance(value, Mapping):
            return value if mapping is None else mapping(value)
        return value if sequence is None else sequence(value)

    return convert_union


# --- hand-written fast paths for the hot path (point reads) -------------------------------
# Equivalent to the generic plans (tests/protocol compare both); they only skip the
# per-field closures, which cost more than the conversion itself for a one-row result.


def _fast_rows(rows: Any) -> list[list[Any]]:
    # value_to_wire, inlined: one call per value less is a third of the per-row cost.
    table = VALUE_TO_WIRE_BY_TYPE
    fallback = value_to_wire
    return [[table.get(type(value), fallback)(value) for value in row] for row in rows]


def _fast_stmt_result(result: StmtResult) -> StmtResult:
    rowid = result.last_insert_rowid
    index = result.replication_index
    return msgspec.structs.replace(
        result,
        rows=_fast_rows(result.rows),
        last_insert_rowid=None if rowid is None else str(int(rowid)),
        replication_index=None if index is None else str(int(index)),
    )


def _fast_execute_response(response: ExecuteResponse) -> ExecuteResponse:
    return ExecuteResponse(_fast_stmt_result(response.result))


def _fast_stream_result_ok(result: StreamResultOk) -> StreamResultOk:
    converted = _convert_struct(result.response)
    return result if converted is result.response else StreamResultOk(converted)


def _fast_pipeline_response(response: PipelineResponse) -> PipelineResponse:
    results = [_convert_struct(result) for result in response.results]
    return msgspec.structs.replace(response, results=results)


def _fast_row_entry(entry: RowEntry) -> Any:
    return msgspec.structs.replace(entry, row=[value_to_wire(value) for value in entry.row])


def _fast_response_ok(message: ResponseOkMsg) -> ResponseOkMsg:
    converted = _convert_struct(message.response)
    if converted is message.response:
        return message
    return ResponseOkMsg(message.request_id, converted)


_FAST: Final[dict[type, Convert]] = {
    StmtResult: _fast_stmt_result,
    ExecuteResponse: _fast_execute_response,
    StreamResultOk: _fast_stream_result_ok,
    PipelineResponse: _fast_pipeline_response,
    RowEntry: _fast_row_entry,
    ResponseOkMsg: _fast_response_ok,
}


def plan_convert(obj: Any) -> Any:
    """Convert one struct level with its generic plan, bypassing its fast path (nested
    structs still use theirs). Tests compare this with the fast path, level by level."""
    plan = _PLANS.get(type(obj))
    if plan is None:
        plan = _plan(type(obj))
    if not plan:
        return obj
    changes = {name: convert(getattr(obj, name)) for name, convert in plan}
    return msgspec.structs.replace(obj, **changes)
