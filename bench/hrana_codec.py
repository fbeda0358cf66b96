"""Micro-benchmark of the Hrana JSON codec's hot path (not a test).

Encodes the pipeline response of a point read (``[execute, close]`` with one row of
three columns) and of a 100-row read, and decodes the matching request, comparing
``edgelite.protocol.hrana.json_codec`` with ``json.dumps``/``json.loads`` of equivalent
dicts built by hand (the least a stdlib-only server would have to do).

Run: ``.venv/bin/python bench/hrana_codec.py``
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from typing import Any

from edgelite.protocol.hrana import json_codec
from edgelite.protocol.hrana.messages import (
    CloseResponse,
    Col,
    ExecuteResponse,
    PipelineResponse,
    StmtResult,
    StreamResultOk,
)

COLS = [Col("id", "INTEGER"), Col("name", "TEXT"), Col("score", "REAL")]
REQUEST = (
    b'{"requests":[{"type":"execute","stmt":{"sql":"SELECT id, name, score FROM t WHERE id = ?",'
    b'"args":[{"type":"integer","value":"42"}],"named_args":[],"want_rows":true}},'
    b'{"type":"close"}]}'
)


def _rows(count: int) -> list[tuple[int, str, float]]:
    return [(index, f"user-{index}", index * 1.5) for index in range(count)]


def _edgelite_encode(rows: list[tuple[int, str, float]]) -> bytes:
    result = StmtResult(COLS, rows, affected_row_count=0, last_insert_rowid=None)
    response = PipelineResponse(
        baton=None,
        base_url=None,
        results=[StreamResultOk(ExecuteResponse(result)), StreamResultOk(CloseResponse())],
    )
    return json_codec.encode_pipeline_response(response)


def _stdlib_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if isinstance(value, int):
        return {"type": "integer", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    return {"type": "text", "value": value}


def _stdlib_encode(rows: list[tuple[int, str, float]]) -> bytes:
    body = {
        "baton": None,
        "base_url": None,
        "results": [
            {
                "type": "ok",
                "response": {
                    "type": "execute",
                    "result": {
                        "cols": [{"name": c.name, "decltype": c.decltype} for c in COLS],
                        "rows": [[_stdlib_value(v) for v in row] for row in rows],
                        "affected_row_count": 0,
                        "last_insert_rowid": None,
                        "replication_index": None,
                        "rows_read": 0,
                        "rows_written": 0,
                        "query_duration_ms": 0.0,
                    },
                },
            },
            {"type": "ok", "response": {"type": "close"}},
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _per_call_us(function: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def main() -> None:
    print(f"{'case':<34}{'edgelite us':>12}{'stdlib us':>12}{'speedup':>9}")
    for count, number in ((1, 20_000), (100, 500)):
        rows = _rows(count)
        assert json.loads(_edgelite_encode(rows)) == json.loads(_stdlib_encode(rows))
        ours = _per_call_us(lambda rows=rows: _edgelite_encode(rows), number)
        theirs = _per_call_us(lambda rows=rows: _stdlib_encode(rows), number)
        print(
            f"{f'encode response, {count} row(s)':<34}{ours:>12.2f}{theirs:>12.2f}"
            f"{theirs / ours:>8.1f}x"
        )
    ours = _per_call_us(lambda: json_codec.decode_pipeline_request(REQUEST), 20_000)
    theirs = _per_call_us(lambda: json.loads(REQUEST), 20_000)
    print(
        f"{'decode execute+close request':<34}{ours:>12.2f}{theirs:>12.2f}"
        f"{theirs / ours:>8.1f}x   (stdlib: parse only, no validation)"
    )


if __name__ == "__main__":
    main()
