"""Helpers shared by the protocol tests."""

from __future__ import annotations

import json
import math
from typing import Any

# Values an encoder may add for fields a documented example leaves out.
DEFAULT_VALUES: tuple[Any, ...] = (None, [], True, 0, 0.0)


def assert_shape(actual: Any, documented: Any, path: str = "$") -> None:
    """``actual`` equals ``documented``, except that objects may carry extra keys whose
    values are defaults (an encoder writes ``"sql_id": null``, an example omits it)."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in documented.items():
            assert key in actual, f"{path}: missing key {key!r} in {actual!r}"
            assert_shape(actual[key], value, f"{path}.{key}")
        for key in actual.keys() - documented.keys():
            assert any(
                actual[key] == default and type(actual[key]) is type(default)
                for default in DEFAULT_VALUES
            ), f"{path}.{key}: unexpected non-default value {actual[key]!r}"
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{path}: expected an array, got {actual!r}"
        assert len(actual) == len(documented), f"{path}: {actual!r} != {documented!r}"
        for index, (got, want) in enumerate(zip(actual, documented, strict=True)):
            assert_shape(got, want, f"{path}[{index}]")
    else:
        assert type(actual) is type(documented) and actual == documented, (
            f"{path}: {actual!r} != {documented!r}"
        )


def as_json(data: bytes | str) -> Any:
    return json.loads(data)


def same_value(left: object, right: object) -> bool:
    """Equality that also tells -0.0 from 0.0 and int from float."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and isinstance(right, float):
        return left == right and math.copysign(1.0, left) == math.copysign(1.0, right)
    return left == right
