"""/metrics content and the admin API, against a real server."""

from __future__ import annotations

import httpx

from tests.support.processes import ServerProcess


def _execute(server: ServerProcess, sql: str, namespace: str = "default") -> httpx.Response:
    body = {"requests": [{"type": "execute", "stmt": {"sql": sql}}, {"type": "close"}]}
    return httpx.post(server.url + "/v2/pipeline", json=body,
                      headers={"x-namespace": namespace}, timeout=10)


def test_metrics_count_requests_rows_errors_and_streams(server: ServerProcess) -> None:
    assert _execute(server, "CREATE TABLE IF NOT EXISTS m(a)").status_code == 200
    assert _execute(server, "INSERT INTO m VALUES (1), (2)").status_code == 200
    assert _execute(server, "SELECT * FROM m").status_code == 200
    assert _execute(server, "SELECT * FROM nosuch").status_code == 200
    text = httpx.get(server.url + "/metrics", timeout=10).text
    assert 'edgelite_http_requests_total{namespace="default",route="/v2/pipeline",status="200"}' \
        in text
    assert 'edgelite_rows_written_total{namespace="default"}' in text
    assert 'edgelite_rows_read_total{namespace="default"}' in text
    assert 'edgelite_errors_total{code="SQL_INPUT_ERROR",namespace="default"}' in text
    assert "edgelite_statement_duration_seconds_bucket" in text
    assert 'edgelite_open_streams{transport="http"}' in text
    assert 'edgelite_replication_index{namespace="default"}' in text


def test_admin_namespace_lifecycle(server: ServerProcess) -> None:
    admin = server.admin_url
    assert httpx.post(admin + "/v1/namespaces/adm1/create", json={}).status_code == 200
    assert httpx.post(admin + "/v1/namespaces/adm1/create", json={}).status_code == 400
    assert _execute(server, "CREATE TABLE t(x)", "adm1").status_code == 200
    assert _execute(server, "INSERT INTO t VALUES (7)", "adm1").status_code == 200
    assert httpx.post(admin + "/v1/namespaces/adm1/fork/adm2").status_code == 200
    forked = _execute(server, "SELECT x FROM t", "adm2").json()
    assert forked["results"][0]["response"]["result"]["rows"] == [
        [{"type": "integer", "value": "7"}]]
    names = {n["name"] for n in httpx.get(admin + "/v1/namespaces").json()["namespaces"]}
    assert {"default", "adm1", "adm2"} <= names
    stats = httpx.get(admin + "/v1/namespaces/adm1/stats").json()
    assert stats["rows_written_count"] >= 1 and stats["replication_index"] >= 2
    assert httpx.delete(admin + "/v1/namespaces/adm2").status_code == 200
    assert _execute(server, "SELECT 1", "adm2").status_code == 404
    assert httpx.post(admin + "/v1/namespaces/bad name!/create", json={}).status_code == 400
    assert httpx.delete(admin + "/v1/namespaces/default").status_code == 400


def test_admin_rejects_bad_config(server: ServerProcess) -> None:
    admin = server.admin_url
    httpx.post(admin + "/v1/namespaces/adm3/create", json={})
    bad = httpx.post(admin + "/v1/namespaces/adm3/config", json={"block_reads": False})
    assert bad.status_code == 400 and "block_writes" in bad.text
    bad = httpx.post(admin + "/v1/namespaces/adm3/create", content=b"not json")
    assert bad.status_code == 400
    size = httpx.post(admin + "/v1/namespaces/adm4/create", json={"max_db_size": "ten"})
    assert size.status_code == 400 and "size" in size.text


def test_namespace_size_limit(server: ServerProcess) -> None:
    admin = server.admin_url
    assert httpx.post(admin + "/v1/namespaces/small/create",
                      json={"max_db_size": "64kib"}).status_code == 200
    assert _execute(server, "CREATE TABLE big(x)", "small").status_code == 200
    response = _execute(server, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                                "FROM n WHERE i < 200) INSERT INTO big SELECT randomblob(1000) "
                                "FROM n", "small")
    result = response.json()["results"][0]
    assert result["type"] == "error" and result["error"]["code"] == "SQLITE_FULL", result
    ok = _execute(server, "INSERT INTO big VALUES (1)", "small").json()["results"][0]
    assert ok["type"] == "ok"  # small writes still fit
    config = httpx.get(admin + "/v1/namespaces/small/config").json()
    assert config["max_db_size"] == 64 * 1024


def test_namespace_jwt_key_replaces_the_node_key(server: ServerProcess) -> None:
    from edgelite.auth import generate_private_key, mint_token, public_key_pem

    key = generate_private_key()
    admin = server.admin_url
    assert httpx.post(admin + "/v1/namespaces/keyed/create", json={
        "jwt_key": public_key_pem(key).decode()}).status_code == 200
    body = {"requests": [{"type": "execute", "stmt": {"sql": "SELECT 1"}}]}
    url = server.url + "/v2/pipeline"
    assert httpx.post(url, json=body, headers={"x-namespace": "keyed"}).status_code == 401
    token = mint_token(key, read_only=False, expires_in_s=None, namespace=None,
                       now_s=__import__("time").time())
    allowed = httpx.post(url, json=body, headers={"x-namespace": "keyed",
                                                  "Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200, allowed.text
    assert _execute(server, "SELECT 1").status_code == 200  # other namespaces: node's rules
    bad = httpx.post(admin + "/v1/namespaces/badkey/create", json={"jwt_key": "nope"})
    assert bad.status_code == 400 and "jwt_key" in bad.text
