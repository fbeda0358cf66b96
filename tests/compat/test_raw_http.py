"""Group F of protocol.md §11, HTTP part (26-30): raw Hrana over HTTP with httpx.

No client library: these tests pin the wire format (§1-§3, §5) so a regression shows
up even where every real client happens to tolerate it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.compat.conftest import ServerPool
from tests.compat.harness import PLAIN, CompatServer
from tests.compat.wire import (
    CLOSE,
    IS_AUTOCOMMIT,
    NULL,
    Json,
    and_,
    batch,
    blob,
    error,
    execute,
    integer,
    not_,
    ok,
    or_,
    pipeline,
    pipeline_ok,
    real,
    response_of,
    rows_of,
    step,
    text,
)

pytestmark = pytest.mark.timeout(120)
GET_AUTOCOMMIT: Json = {"type": "get_autocommit"}


@pytest.fixture(scope="module")
def server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(PLAIN)


@pytest.fixture
def http(server: CompatServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def result_core(result: Json) -> Json:
    """The StmtResult fields every client reads (extras such as rows_read dropped)."""
    body = response_of(result)["result"]
    return {key: body[key] for key in ("cols", "rows", "affected_row_count", "last_insert_rowid")}


# -- 26. probes ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1", "/v2", "/v3", "/health"])
def test_s26_probes_answer_200(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 200


def test_s26_version(http: httpx.Client) -> None:
    response = http.get("/version")
    assert response.status_code == 200
    assert response.text.strip() != ""


def test_s26_v3_protobuf_is_404(http: httpx.Client) -> None:
    # No Protobuf support: a 2xx would switch hrana-client 0.5.0-0.5.1 to Protobuf
    # (protocol.md §3.10). sqld implements Protobuf and answers 200.
    assert http.get("/v3-protobuf").status_code == 404


@pytest.mark.parametrize("path", ["/", "/no/such/route"])
def test_s26_unknown_routes_and_plain_get_root_are_404(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 404


@pytest.mark.parametrize("path", ["/v2/pipeline", "/v3/pipeline", "/v3/cursor"])
def test_s26_cors_lets_browsers_send_a_token(http: httpx.Client, path: str) -> None:
    # @libsql/client/web in a browser sends `Authorization: Bearer …` cross-origin,
    # so the preflight must allow that header. The Fetch standard never lets `*`
    # cover Authorization (a "CORS non-wildcard request-header name"): it has to be
    # named. sqld 0.24.32 answers `*` only, so browsers with a token fail there too.
    origin = "https://app.example"
    preflight = http.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert 200 <= preflight.status_code < 300, preflight.text
    assert preflight.headers.get("access-control-allow-origin") in ("*", origin)
    methods = preflight.headers.get("access-control-allow-methods", "").upper()
    assert methods == "*" or "POST" in [m.strip() for m in methods.split(",")], methods
    allowed = [h.strip().lower()
               for h in preflight.headers.get("access-control-allow-headers", "").split(",")]
    assert "authorization" in allowed, allowed
    actual = http.post("/v2/pipeline", json={"requests": [CLOSE]}, headers={"Origin": origin})
    assert actual.headers.get("access-control-allow-origin") in ("*", origin)


# -- 27. streams and batons ------------------------------------------------------------

@pytest.mark.parametrize("version", [2, 3])
def test_s27_baton_chain_reuse_forgery_close(http: httpx.Client, version: int) -> None:
    first = pipeline_ok(http, [execute("SELECT 1")], version=version)
    baton_1 = first["baton"]
    assert isinstance(baton_1, str) and baton_1
    assert first["base_url"] is None
    assert rows_of(first["results"][0]) == [[integer(1)]]
    second = pipeline_ok(http, [execute("SELECT 2")], baton=baton_1, version=version)
    baton_2 = second["baton"]
    assert isinstance(baton_2, str) and baton_2 not in ("", baton_1)

    reused = pipeline(http, [execute("SELECT 3")], baton=baton_1, version=version)
    assert reused.status_code == 400, reused.text
    forged = baton_2[:-2] + ("AA" if baton_2[-2:] != "AA" else "BB")
    for bad in (forged, "not-a-baton", ""):
        response = pipeline(http, [execute("SELECT 3")], baton=bad, version=version)
        assert response.status_code == 400, (bad, response.text)

    # Whether a rejected baton also ends the stream is unspecified (sqld keeps it);
    # close it either way so it does not linger.
    closing = pipeline(http, [CLOSE], baton=baton_2, version=version)
    assert closing.status_code in (200, 400), closing.text

    opened = pipeline_ok(http, [execute("SELECT 4")], version=version)
    closed = pipeline_ok(http, [execute("SELECT 5"), CLOSE], baton=opened["baton"],
                         version=version)
    assert closed["baton"] is None
    assert response_of(closed["results"][1]) == {"type": "close"}
    after_close = pipeline(http, [execute("SELECT 6")], baton=opened["baton"], version=version)
    assert after_close.status_code == 400, after_close.text


def test_s27_requests_after_close_in_one_pipeline_are_rejected(http: httpx.Client) -> None:
    response = pipeline(http, [CLOSE, execute("SELECT 1")], version=2)
    assert response.status_code == 400, response.text


def test_s27_transaction_spans_requests_and_close_rolls_back(
        http: httpx.Client, unique: Callable[[str], str]) -> None:
    table = unique("f27_tx")
    opened = pipeline_ok(http, [execute(f"CREATE TABLE {table} (x)"), execute("BEGIN"),
                                execute(f"INSERT INTO {table} VALUES (1)"), GET_AUTOCOMMIT])
    assert response_of(opened["results"][3]) == {"type": "get_autocommit", "is_autocommit": False}
    outside = pipeline_ok(http, [execute(f"SELECT count(*) FROM {table}"), CLOSE])
    assert rows_of(outside["results"][0]) == [[integer(0)]]
    inside = pipeline_ok(http, [execute(f"SELECT count(*) FROM {table}")], opened["baton"])
    assert rows_of(inside["results"][0]) == [[integer(1)]]
    committed = pipeline_ok(http, [execute("COMMIT"), GET_AUTOCOMMIT, CLOSE], inside["baton"])
    assert response_of(committed["results"][1])["is_autocommit"] is True
    assert committed["baton"] is None

    abandoned = pipeline_ok(http, [execute("BEGIN"), execute(f"INSERT INTO {table} VALUES (2)")])
    pipeline_ok(http, [CLOSE], abandoned["baton"])
    final = pipeline_ok(http, [execute(f"SELECT x FROM {table}"), CLOSE])
    assert rows_of(final["results"][0]) == [[integer(1)]], "close must roll back"


def test_s27_result_shapes(http: httpx.Client, unique: Callable[[str], str]) -> None:
    table = unique("f27_shape")
    body = pipeline_ok(http, [
        execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT, f REAL, b BLOB)"),
        execute(f"INSERT INTO {table} (name, f, b) VALUES (?, ?, ?)",
                text("a"), real(1.5), blob("AQI")),
        execute(f"INSERT INTO {table} (name, f, b) VALUES ('b', 2.0, x'')"),
        execute(f"SELECT id, name, f, b, NULL AS n FROM {table} ORDER BY id"),
        execute(f"UPDATE {table} SET name = upper(name)"),
        execute(f"SELECT count(*) AS c FROM {table}"),
        execute(f"DELETE FROM {table} WHERE id = 2"),
        {"type": "execute", "stmt": {"sql": f"SELECT id FROM {table}", "want_rows": False}},
        CLOSE,
    ], version=2)
    results = body["results"]
    empty = {"cols": [], "rows": [], "affected_row_count": 0, "last_insert_rowid": None}
    assert result_core(results[0]) == empty
    assert result_core(results[1]) == {**empty, "affected_row_count": 1, "last_insert_rowid": "1"}
    assert result_core(results[2]) == {**empty, "affected_row_count": 1, "last_insert_rowid": "2"}
    assert result_core(results[3]) == {
        "cols": [{"name": "id", "decltype": "INTEGER"}, {"name": "name", "decltype": "TEXT"},
                 {"name": "f", "decltype": "REAL"}, {"name": "b", "decltype": "BLOB"},
                 {"name": "n", "decltype": None}],
        # Integers are decimal strings, blobs base64 without padding, floats numbers.
        "rows": [[integer(1), text("a"), real(1.5), blob("AQI"), NULL],
                 [integer(2), text("b"), real(2.0), blob(""), NULL]],
        "affected_row_count": 0, "last_insert_rowid": None}
    assert result_core(results[4]) == {**empty, "affected_row_count": 2}
    assert result_core(results[5]) == {"cols": [{"name": "c", "decltype": None}],
                                       "rows": [[integer(2)]], "affected_row_count": 0,
                                       "last_insert_rowid": None}
    assert result_core(results[6]) == {**empty, "affected_row_count": 1}
    # want_rows: false -> no rows, but still the columns (Hrana spec "Statements";
    # sqld 0.24.32 returns the rows anyway).
    assert result_core(results[7]) == {"cols": [{"name": "id", "decltype": "INTEGER"}],
                                       "rows": [], "affected_row_count": 0,
                                       "last_insert_rowid": None}
    for result in results[:8]:
        index = response_of(result)["result"].get("replication_index")
        assert index is None or isinstance(index, str), result


def test_s27_value_encodings_and_parameters(http: httpx.Client) -> None:
    body = pipeline_ok(http, [
        execute("SELECT ?, ?, typeof(?), ?, hex(?), hex(?), ?",
                integer(2**63 - 1), integer(-(2**63)), real(42), real(-0.5), blob("AQI="),
                blob("AQI"), text("日本語 ✓")),
        execute("SELECT :a, @b, $c, ?4", integer(4),
                **{":a": integer(1), "b": integer(2), "$c": integer(3)}),
        CLOSE])
    assert rows_of(body["results"][0]) == [[
        integer(2**63 - 1), integer(-(2**63)), text("real"), real(-0.5), text("0102"),
        text("0102"), text("日本語 ✓")]]


def test_s27_unknown_fields_and_explicit_nulls_are_accepted(http: httpx.Client) -> None:
    # The Rust-core client sends explicit nulls; the spec requires ignoring unknown keys.
    response = http.post("/v3/pipeline", json={
        "baton": None, "future_field": {"x": 1},
        "requests": [
            {"type": "execute", "future": True,
             "stmt": {"sql": "SELECT 1;", "sql_id": None, "args": [], "named_args": [],
                      "want_rows": True, "replication_index": None, "future": 1}},
            {"type": "batch", "batch": {"steps": [{"condition": None,
                                                   "stmt": {"sql": "SELECT 2", "sql_id": None}}],
                                        "replication_index": None}},
            CLOSE]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert rows_of(results[0]) == [[integer(1)]]
    assert response_of(results[1])["result"]["step_results"][0]["rows"] == [[integer(2)]]


def test_s27_statement_errors_are_results_not_http_errors(http: httpx.Client) -> None:
    body = pipeline_ok(http, [
        execute(""),
        execute("SELECT 1; SELECT 2"),
        execute("SELECT ?", integer(1), x=integer(2)),
        execute("SELECT ?, ?", integer(1)),
        execute("SELECT ?", integer(1), integer(2)),
        execute("SELECT * FROM f27_no_such_table"),
        execute("SELECT 'still running'"),
        CLOSE])
    codes = [result["error"]["code"] if result["type"] == "error" else None
             for result in body["results"]]
    assert codes[:5] == ["SQL_NO_STATEMENT", "SQL_MANY_STATEMENTS",
                         "ARGS_BOTH_POSITIONAL_AND_NAMED", "ARGS_INVALID", "ARGS_INVALID"]
    assert codes[5] in ("SQL_INPUT_ERROR", "SQLITE_UNKNOWN")
    assert "no such table" in body["results"][5]["error"]["message"]
    assert rows_of(body["results"][6]) == [[text("still running")]]
    for result in body["results"][:6]:
        assert isinstance(result["error"]["message"], str) and result["error"]["message"]


@pytest.mark.parametrize("bad_body", [
    b"{not json", b"[]", b'{"requests": [{"type": "no_such_request"}]}',
    b'{"requests": [{"type": "execute", "stmt": {"sql": "SELECT 1", "sql_id": 0}}]}',
    b'{"requests": [{"type": "execute", "stmt": {}}]}',
    b'{"requests": [{"type": "execute", "stmt": {"sql_id": 12345}}]}',
])
def test_s27_protocol_errors_are_400(http: httpx.Client, bad_body: bytes) -> None:
    response = http.post("/v2/pipeline", content=bad_body,
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text


def test_s27_store_sql_describe_sequence_get_autocommit(
        http: httpx.Client, unique: Callable[[str], str]) -> None:
    table = unique("f27_misc")
    body = pipeline_ok(http, [
        execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, b BLOB)"),
        {"type": "store_sql", "sql_id": 0, "sql": "SELECT ? * 2"},
        {"type": "execute", "stmt": {"sql_id": 0, "args": [integer(21)]}},
        {"type": "close_sql", "sql_id": 0},
        {"type": "close_sql", "sql_id": 99},
        {"type": "describe", "sql": f"SELECT id, b AS bee, 1+1 FROM {table} "
                                    "WHERE id = :x OR id = ? OR id = @y"},
        {"type": "describe", "sql": f"INSERT INTO {table} (b) VALUES (?3)"},
        {"type": "sequence", "sql": f"INSERT INTO {table} (b) VALUES (x'01'); "
                                    f"INSERT INTO {table} (b) VALUES (x'02');"},
        {"type": "sequence", "sql": f"INSERT INTO {table} (b) VALUES (x'03'); "
                                    f"INSERT INTO {table}_nosuch VALUES (1); "
                                    f"INSERT INTO {table} (b) VALUES (x'04');"},
        execute(f"SELECT hex(b) FROM {table} ORDER BY id"),
        GET_AUTOCOMMIT, execute("BEGIN"), GET_AUTOCOMMIT, execute("ROLLBACK"), GET_AUTOCOMMIT,
        CLOSE])
    results = body["results"]
    assert [response_of(r)["type"] for r in results[1:5]] == [
        "store_sql", "execute", "close_sql", "close_sql"]
    assert rows_of(results[2]) == [[integer(42)]]
    assert response_of(results[5])["result"] == {
        "params": [{"name": ":x"}, {"name": None}, {"name": "@y"}],
        "cols": [{"name": "id", "decltype": "INTEGER"}, {"name": "bee", "decltype": "BLOB"},
                 {"name": "1+1", "decltype": None}],
        "is_explain": False, "is_readonly": True}
    assert response_of(results[6])["result"] == {
        "params": [{"name": None}, {"name": None}, {"name": "?3"}], "cols": [],
        "is_explain": False, "is_readonly": False}
    assert response_of(results[7]) == {"type": "sequence"}
    assert results[8]["type"] == "error", "a sequence stops at its first failing statement"
    assert results[8]["error"]["code"] in ("SQL_INPUT_ERROR", "SQLITE_UNKNOWN")
    assert rows_of(results[9]) == [[text("01")], [text("02")], [text("03")]]
    assert [response_of(r)["is_autocommit"] for r in (results[10], results[12], results[14])] == [
        True, False, True]


def test_s27_sequence_and_describe_by_sql_id(http: httpx.Client,
                                             unique: Callable[[str], str]) -> None:
    table = unique("f27_sqlid")
    body = pipeline_ok(http, [
        {"type": "store_sql", "sql_id": 4,
         "sql": f"CREATE TABLE {table} (x); INSERT INTO {table} VALUES (5);"},
        {"type": "sequence", "sql_id": 4},
        {"type": "store_sql", "sql_id": 5, "sql": f"SELECT x AS y FROM {table} WHERE x > ?"},
        {"type": "describe", "sql_id": 5},
        {"type": "execute", "stmt": {"sql_id": 5, "args": [integer(1)]}},
        CLOSE])
    results = body["results"]
    assert response_of(results[1]) == {"type": "sequence"}
    assert response_of(results[3])["result"] == {
        "params": [{"name": None}], "cols": [{"name": "y", "decltype": None}],
        "is_explain": False, "is_readonly": True}
    assert rows_of(results[4]) == [[integer(5)]]


def test_s27_stored_sql_misuse_is_400(http: httpx.Client) -> None:
    duplicate = pipeline(http, [{"type": "store_sql", "sql_id": 0, "sql": "SELECT 1"},
                                {"type": "store_sql", "sql_id": 0, "sql": "SELECT 2"}])
    assert duplicate.status_code == 400, duplicate.text
    closed = pipeline(http, [{"type": "store_sql", "sql_id": 1, "sql": "SELECT 1"},
                             {"type": "close_sql", "sql_id": 1},
                             {"type": "execute", "stmt": {"sql_id": 1}}])
    assert closed.status_code == 400, closed.text


# -- 28. batch conditions --------------------------------------------------------------

CONDITION_MATRIX: list[tuple[Json | None, bool]] = [
    (None, True),                       # 0: SELECT ok
    (None, True),                       # 1: fails (no such table)
    (ok(0), True),                      # 2
    (ok(1), False),                     # 3: step 1 failed
    (error(1), True),                   # 4
    (error(0), False),                  # 5
    # 6: spec: `error` of a skipped step is false. sqld evaluates `error` as "not ok",
    #    which is true for the skipped step 3, and runs this step (protocol.md §1.4).
    (error(3), False),
    (not_(ok(1)), True),                # 7
    (and_(ok(0), ok(2)), True),         # 8
    (and_(ok(0), ok(1)), False),        # 9
    (or_(ok(1), ok(3)), False),         # 10
    (or_(ok(1), ok(0)), True),          # 11
    (and_(), True),                     # 12: empty and = true
    (or_(), False),                     # 13: empty or = false
    (IS_AUTOCOMMIT, True),              # 14: no transaction open
    (not_(IS_AUTOCOMMIT), False),       # 15
    (ok(3), False),                     # 16: skipped step is not ok
    (not_(ok(5)), True),                # 17: ... so `not ok` of it holds
]


def test_s28_condition_matrix(http: httpx.Client) -> None:
    steps = [step("SELECT 1" if index != 1 else "SELECT * FROM f28_no_such_table", condition)
             for index, (condition, _) in enumerate(CONDITION_MATRIX)]
    body = pipeline_ok(http, [batch(*steps), CLOSE])
    result = response_of(body["results"][0])["result"]
    ran = [runs for _, runs in CONDITION_MATRIX]
    assert len(result["step_results"]) == len(result["step_errors"]) == len(steps)
    for index, runs in enumerate(ran):
        step_result, step_error = result["step_results"][index], result["step_errors"][index]
        if index == 1:
            assert step_result is None and step_error["code"] in ("SQL_INPUT_ERROR",
                                                                  "SQLITE_UNKNOWN"), step_error
        elif runs:
            assert step_error is None and step_result["rows"] == [[integer(1)]], (index, result)
        else:
            assert step_result is None and step_error is None, (index, step_result, step_error)


def test_s28_is_autocommit_inside_a_transaction(http: httpx.Client) -> None:
    body = pipeline_ok(http, [batch(
        step("BEGIN"),
        step("SELECT 'autocommit'", IS_AUTOCOMMIT),
        step("SELECT 'in transaction'", not_(IS_AUTOCOMMIT)),
        step("ROLLBACK"),
        step("SELECT 'after rollback'", IS_AUTOCOMMIT),
    ), CLOSE])
    result = response_of(body["results"][0])["result"]
    ran = [r is not None for r in result["step_results"]]
    assert ran == [True, False, True, True, True]
    assert result["step_errors"] == [None] * 5


@pytest.mark.parametrize("condition_step", [1, 2, 7, -1])
def test_s28_invalid_step_reference_is_400(http: httpx.Client, condition_step: int) -> None:
    # Step 1 may only reference step 0: itself, later and out-of-range steps are invalid.
    response = pipeline(http, [batch(step("SELECT 1"), step("SELECT 2", ok(condition_step)),
                                     step("SELECT 3"))])
    assert response.status_code == 400, response.text


def test_s28_failed_step_does_not_abort_the_batch(http: httpx.Client,
                                                  unique: Callable[[str], str]) -> None:
    table = unique("f28_constraint")
    body = pipeline_ok(http, [
        execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)"),
        batch(step(f"INSERT INTO {table} VALUES (1)"), step(f"INSERT INTO {table} VALUES (1)"),
              step(f"INSERT INTO {table} VALUES (2)")),
        execute(f"SELECT id FROM {table} ORDER BY id"), CLOSE])
    result = response_of(body["results"][1])["result"]
    assert result["step_errors"][0] is None and result["step_errors"][2] is None
    assert result["step_errors"][1]["code"] == "SQLITE_CONSTRAINT"
    assert result["step_results"][1] is None
    assert [r["last_insert_rowid"] for r in (result["step_results"][0],
                                             result["step_results"][2])] == ["1", "2"]
    assert rows_of(body["results"][2]) == [[integer(1)], [integer(2)]]
