"""One workload client: Hrana-over-HTTP requests to any member, each answer sorted into
what the checkers may conclude from it.

``Outcome.OK``: the request ran (writes: committed). ``Outcome.FAIL``: it certainly
did not run. ``Outcome.UNKNOWN``: it may or may not have (timeouts, lost connections,
``OUTCOME_UNKNOWN``, server errors we cannot classify).

What counts as "certainly not" is the server's own contract (ARCHITECTURE §3,
``ClusterRuntime.forward``, reliability.md F7): ``NOT_LEADER``, ``CLUSTER_UNAVAILABLE``
and ``PEER_UNAVAILABLE`` promise the write never entered the log; a SQL error
(``SQLITE_*``, ``SQL_*``, whether per statement or for the whole request) means, as in
SQLite, that the statement or transaction did not happen (a ``SQLITE_FULL`` commit is
rolled back); 429 is answered before anything runs. Taking the server
at its word is what lets the set checker catch F7 ("reported failed, later visible").
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import time
from typing import Any

import httpx

from tests.support.cluster import Member

CLIENT_TIMEOUT_S = 8.0  # above commit (4 s) and forward (5 s) timeouts of CHAOS_ENV
DEFINITE_CODES = frozenset({"NOT_LEADER", "CLUSTER_UNAVAILABLE", "PEER_UNAVAILABLE",
                            "OVERLOADED", "PROTOCOL_ERROR", "STREAM_EXPIRED",
                            "BATON_INVALID"})
FAILURE_BACKOFF_S = 0.1
UNKNOWN_CODES = frozenset({"OUTCOME_UNKNOWN", "PEER_NO_REPLY", "PEER_TIMEOUT"})


class Outcome(enum.Enum):
    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclasses.dataclass(slots=True)
class Answer:
    """One request's classified answer. ``results`` are the Hrana stream results
    (``ok`` ones hold ``response``); ``index`` the replication index header."""

    outcome: Outcome
    code: str = ""
    detail: str = ""
    results: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    index: int | None = None
    baton: str | None = None
    started: float = 0.0
    finished: float = 0.0

    @property
    def already_applied(self) -> bool:
        return self.code == "ALREADY_APPLIED"

    def rows(self, position: int = 0) -> list[list[Any]]:
        response = self.results[position]["response"]
        return [[plain(v) for v in row] for row in response["result"]["rows"]]

    def affected(self, position: int = 0) -> int:
        return int(self.results[position]["response"]["result"]["affected_row_count"])


def stmt(sql: str, *args: Any) -> dict[str, Any]:
    return {"sql": sql, "args": [value(a) for a in args]} if args else {"sql": sql}


def execute(sql: str, *args: Any) -> dict[str, Any]:
    return {"type": "execute", "stmt": stmt(sql, *args)}


class Client:
    """A synchronous HTTP client for one workload thread."""

    def __init__(self, timeout_s: float = CLIENT_TIMEOUT_S) -> None:
        self.http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def pipeline(self, member: Member, requests: list[dict[str, Any]], *,
                 consistency: str = "strong", bookmark: int | None = None,
                 request_id: str = "", baton: str | None = None,
                 version: int = 2, keep_open: bool = False) -> Answer:
        """POST one pipeline. Unless ``keep_open`` (an interactive transaction), the
        stream is closed by the same request, as the libSQL clients do."""
        if not keep_open and requests[-1].get("type") != "close":
            requests = [*requests, {"type": "close"}]
        headers = {"x-edgelite-consistency": consistency}
        if bookmark is not None:
            headers["x-edgelite-bookmark"] = str(bookmark)
        if request_id:
            headers["x-edgelite-request-id"] = request_id
        body: dict[str, Any] = {"requests": requests}
        if baton is not None:
            body["baton"] = baton
        started = time.monotonic()
        try:
            response = self.http.post(f"{member.url}/v{version}/pipeline", json=body,
                                      headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never sent
            finished = time.monotonic()
            time.sleep(FAILURE_BACKOFF_S)
            return Answer(Outcome.FAIL, "CONNECT", f"{type(exc).__name__}: {exc}",
                          started=started, finished=finished)
        except httpx.HTTPError as exc:
            return Answer(Outcome.UNKNOWN, "HTTP", f"{type(exc).__name__}: {exc}",
                          started=started, finished=time.monotonic())
        answer = classify(response)
        answer.started, answer.finished = started, time.monotonic()
        if answer.outcome is Outcome.FAIL and not answer.code.startswith(("SQLITE_", "SQL_")):
            time.sleep(FAILURE_BACKOFF_S)  # the cluster said "not now": do not spin
        return answer


def classify(response: httpx.Response) -> Answer:
    index_text = response.headers.get("x-edgelite-replication-index")
    index = int(index_text) if index_text and index_text.isdigit() else None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or "results" not in body:
        code = body.get("code", "") if isinstance(body, dict) else ""
        detail = f"HTTP {response.status_code}: {response.text[:300]}"
        if code == "ALREADY_APPLIED":
            return Answer(Outcome.OK, code, detail, index=index)
        if response.status_code == 429 or code in DEFINITE_CODES or \
                code.startswith(("SQLITE_", "SQL_")):
            return Answer(Outcome.FAIL, code, detail, index=index)
        return Answer(Outcome.UNKNOWN, code or f"HTTP{response.status_code}", detail,
                      index=index)
    results = body["results"]
    answer = Answer(Outcome.OK, results=results, index=index, baton=body.get("baton"))
    for result in results:
        if result.get("type") == "error":
            return result_error(answer, result["error"])
        for step_error in _batch_errors(result):
            code = step_error.get("code", "")
            if code in UNKNOWN_CODES or code == "ALREADY_APPLIED":
                return result_error(answer, step_error)
    return answer


def _batch_errors(result: dict[str, Any]) -> list[dict[str, Any]]:
    response = result.get("response") or {}
    if response.get("type") != "batch":
        return []
    return [e for e in response["result"]["step_errors"] if e]


def result_error(answer: Answer, error: dict[str, Any]) -> Answer:
    code = error.get("code") or ""
    answer.code, answer.detail = code or "ERROR", error.get("message", "")
    if code == "ALREADY_APPLIED":
        answer.outcome = Outcome.OK
    elif code.startswith(("SQLITE_", "SQL_")) or code in DEFINITE_CODES:
        answer.outcome = Outcome.FAIL
    else:  # OUTCOME_UNKNOWN and the like, or a code we cannot classify
        answer.outcome = Outcome.UNKNOWN
    return answer


def value(v: Any) -> dict[str, Any]:
    if v is None:
        return {"type": "null"}
    if isinstance(v, bool | int):
        return {"type": "integer", "value": str(int(v))}
    if isinstance(v, float):
        return {"type": "float", "value": v}
    if isinstance(v, bytes):
        return {"type": "blob", "base64": base64.b64encode(v).decode()}
    return {"type": "text", "value": str(v)}


def plain(v: dict[str, Any]) -> Any:
    kind = v["type"]
    if kind == "null":
        return None
    if kind == "integer":
        return int(v["value"])
    if kind == "float":
        return float(v["value"])
    if kind == "blob":
        data = v["base64"]
        return base64.b64decode(data + "=" * (-len(data) % 4))
    return v["value"]


__all__ = ["Answer", "Client", "Outcome", "execute", "plain", "result_error", "stmt", "value"]
