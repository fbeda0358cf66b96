"""Hand-built Hrana JSON for the raw conformance tests (group F): values, statements,
conditions, and small HTTP helpers. Shapes follow protocol.md §1-§3."""

from __future__ import annotations

import json
from typing import Any

import httpx

Json = dict[str, Any]

NULL: Json = {"type": "null"}


def integer(value: int) -> Json:
    return {"type": "integer", "value": str(value)}


def real(value: float) -> Json:
    return {"type": "float", "value": value}


def text(value: str) -> Json:
    return {"type": "text", "value": value}


def blob(base64_text: str) -> Json:
    return {"type": "blob", "base64": base64_text}


def stmt(sql: str, *args: Json, want_rows: bool = True, **named: Json) -> Json:
    return {"sql": sql, "args": list(args),
            "named_args": [{"name": name, "value": value} for name, value in named.items()],
            "want_rows": want_rows}


def execute(sql: str, *args: Json, **named: Json) -> Json:
    return {"type": "execute", "stmt": stmt(sql, *args, **named)}


def step(sql: str, condition: Json | None = None, want_rows: bool = True) -> Json:
    out: Json = {"stmt": stmt(sql, want_rows=want_rows)}
    if condition is not None:
        out["condition"] = condition
    return out


def batch(*steps: Json) -> Json:
    return {"type": "batch", "batch": {"steps": list(steps)}}


def ok(index: int) -> Json:
    return {"type": "ok", "step": index}


def error(index: int) -> Json:
    return {"type": "error", "step": index}


def not_(cond: Json) -> Json:
    return {"type": "not", "cond": cond}


def and_(*conds: Json) -> Json:
    return {"type": "and", "conds": list(conds)}


def or_(*conds: Json) -> Json:
    return {"type": "or", "conds": list(conds)}


IS_AUTOCOMMIT: Json = {"type": "is_autocommit"}
CLOSE: Json = {"type": "close"}


def pipeline(client: httpx.Client, requests: list[Json], baton: str | None = None,
             version: int = 3, path_prefix: str = "", **kwargs: Any) -> httpx.Response:
    body: Json = {"requests": requests}
    if baton is not None:
        body["baton"] = baton
    return client.post(f"{path_prefix}/v{version}/pipeline", json=body, **kwargs)


def pipeline_ok(client: httpx.Client, requests: list[Json], baton: str | None = None,
                version: int = 3, **kwargs: Any) -> Json:
    """A pipeline that must answer 200 with one result per request."""
    response = pipeline(client, requests, baton, version, **kwargs)
    assert response.status_code == 200, (response.status_code, response.text)
    body = response.json()
    assert len(body["results"]) == len(requests), body
    return body


def response_of(result: Json) -> Json:
    """The ``response`` of an ``ok`` stream result (fails on an ``error`` result)."""
    assert result["type"] == "ok", result
    response: Json = result["response"]
    return response


def rows_of(result: Json) -> list[list[Json]]:
    rows: list[list[Json]] = response_of(result)["result"]["rows"]
    return rows


def cursor_lines(response: httpx.Response) -> list[Json]:
    """Decode a ``/v3/cursor`` body: newline-delimited JSON, head first."""
    assert response.status_code == 200, (response.status_code, response.text)
    lines = [line for line in response.text.split("\n") if line.strip()]
    return [json.loads(line) for line in lines]
