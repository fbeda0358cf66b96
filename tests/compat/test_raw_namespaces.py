"""Group F of protocol.md §11, scenario 31: namespaces and the admin API, raw HTTP.

Selection (§7.1): ``x-namespace-bin`` > ``x-namespace`` > first label of ``Host``;
``/dev/<ns>/v2/pipeline`` selects by path; a Host that is an IP address selects the
default namespace (issue 2 item 6). Admin API (§7.2): create, delete, list, fork,
config (block reads/writes), stats, its own key. Tokens scoped to another namespace
get 404 (§6.3).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.compat.conftest import ServerPool
from tests.compat.harness import ADMIN_KEY, NAMESPACES, NAMESPACES_JWT, CompatServer
from tests.compat.wire import CLOSE, Json, execute, integer, pipeline, pipeline_ok, rows_of, text

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(server_pool: ServerPool) -> CompatServer:
    return server_pool.get(NAMESPACES)


@pytest.fixture
def http(server: CompatServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def host(server: CompatServer, namespace: str) -> dict[str, str]:
    return {"Host": server.host_for(namespace)}


def b64_name(namespace: str) -> str:
    return base64.b64encode(namespace.encode()).decode().rstrip("=")


def seeded_namespace(server: CompatServer, http: httpx.Client, name: str, value: str) -> None:
    """Create namespace ``name`` holding table ``t`` with one row ``value``."""
    server.create_namespace(name)
    pipeline_ok(http, [execute("CREATE TABLE t (v TEXT)"),
                       execute("INSERT INTO t VALUES (?)", text(value)), CLOSE],
                headers=host(server, name))


def read_t(http: httpx.Client, **kwargs: object) -> list[list[Json]]:
    body = pipeline_ok(http, [execute("SELECT v FROM t"), CLOSE], **kwargs)  # type: ignore[arg-type]
    return rows_of(body["results"][0])


def test_s31_selection_by_host_header_and_path(server: CompatServer, http: httpx.Client,
                                               unique: Callable[[str], str]) -> None:
    one, two = unique("f31-one"), unique("f31-two")
    seeded_namespace(server, http, one, "one")
    seeded_namespace(server, http, two, "two")
    assert read_t(http, headers=host(server, one)) == [[text("one")]]
    assert read_t(http, headers=host(server, two)) == [[text("two")]]
    assert read_t(http, headers={"x-namespace-bin": b64_name(one)}) == [[text("one")]]
    # sqld 0.24.32 ignores x-namespace and the /dev/<ns> prefix (it falls back to the
    # Host, "127" here, and answers 404); protocol.md §7.1 and issue 2 require both.
    assert read_t(http, headers={"x-namespace": one}) == [[text("one")]]
    body = pipeline_ok(http, [execute("SELECT v FROM t"), CLOSE], version=2,
                       path_prefix=f"/dev/{two}")
    assert rows_of(body["results"][0]) == [[text("two")]]
    cursor = http.post(f"/dev/{one}/v3/cursor", json={"batch": {"steps": [
        {"stmt": {"sql": "SELECT v FROM t"}}]}})
    assert cursor.status_code == 200 and '"one"' in cursor.text, cursor.text


def test_s31_selection_precedence(server: CompatServer, http: httpx.Client,
                                  unique: Callable[[str], str]) -> None:
    one, two, three = unique("f31-p1"), unique("f31-p2"), unique("f31-p3")
    for name in (one, two, three):
        seeded_namespace(server, http, name, name)
    assert read_t(http, headers={**host(server, three), "x-namespace": two,
                                 "x-namespace-bin": b64_name(one)}) == [[text(one)]]
    assert read_t(http, headers={**host(server, three), "x-namespace": two}) == [[text(two)]]


def test_s31_default_namespace_for_localhost_and_ip_hosts(server: CompatServer,
                                                          http: httpx.Client,
                                                          unique: Callable[[str], str]) -> None:
    table = unique("f31_default")
    pipeline_ok(http, [execute(f"CREATE TABLE {table} (x)"), CLOSE],
                headers={"Host": f"localhost:{server.port}"})
    # sqld takes the first label of "127.0.0.1" as namespace "127" (protocol.md §7.1);
    # edgelite must treat an IP-address Host as the default namespace.
    body = pipeline_ok(http, [execute(f"SELECT count(*) FROM {table}"), CLOSE])
    assert rows_of(body["results"][0]) == [[integer(0)]]


def test_s31_unknown_namespace_is_404(server: CompatServer, http: httpx.Client) -> None:
    for headers in (host(server, "f31-never-created"), {"x-namespace-bin": b64_name("nope")}):
        response = pipeline(http, [execute("SELECT 1"), CLOSE], headers=headers)
        assert response.status_code == 404, response.text
        assert "error" in response.json()


def test_s31_admin_create_fork_delete_round_trip(server: CompatServer, http: httpx.Client,
                                                 unique: Callable[[str], str]) -> None:
    source, fork = unique("f31-src"), unique("f31-fork")
    seeded_namespace(server, http, source, "original")
    again = server.admin("POST", f"/v1/namespaces/{source}/create", json={})
    assert again.status_code == 400, again.text

    forked = server.admin("POST", f"/v1/namespaces/{source}/fork/{fork}")
    assert forked.status_code == 200, forked.text
    assert read_t(http, headers=host(server, fork)) == [[text("original")]]
    pipeline_ok(http, [execute("INSERT INTO t VALUES ('fork only')"), CLOSE],
                headers=host(server, fork))
    assert read_t(http, headers=host(server, source)) == [[text("original")]]

    deleted = server.admin("DELETE", f"/v1/namespaces/{fork}")
    assert deleted.status_code == 200, deleted.text
    gone = pipeline(http, [execute("SELECT 1"), CLOSE], headers=host(server, fork))
    assert gone.status_code == 404, gone.text
    assert server.admin("DELETE", f"/v1/namespaces/{fork}").status_code == 404
    assert read_t(http, headers=host(server, source)) == [[text("original")]]


def test_s31_admin_list_namespaces(server: CompatServer, unique: Callable[[str], str]) -> None:
    # Not in sqld 0.24.32 (the route falls through to its gRPC service); issue 2 item 6.
    name = unique("f31-listed")
    server.create_namespace(name)
    response = server.admin("GET", "/v1/namespaces")
    assert response.status_code == 200, response.text
    names = [entry["name"] for entry in response.json()["namespaces"]]
    assert name in names and "default" in names


def test_s31_admin_config_blocks_writes(server: CompatServer, http: httpx.Client,
                                        unique: Callable[[str], str]) -> None:
    name = unique("f31-config")
    seeded_namespace(server, http, name, "v")
    config = server.admin("GET", f"/v1/namespaces/{name}/config")
    assert config.status_code == 200, config.text
    assert (config.json()["block_reads"], config.json()["block_writes"]) == (False, False)

    blocked = server.admin("POST", f"/v1/namespaces/{name}/config",
                           json={"block_reads": False, "block_writes": True,
                                 "block_reason": "maintenance"})
    assert blocked.status_code == 200, blocked.text
    assert server.admin("GET", f"/v1/namespaces/{name}/config").json()["block_writes"] is True
    body = pipeline_ok(http, [execute("INSERT INTO t VALUES ('x')"),
                              execute("SELECT count(*) FROM t"), CLOSE],
                       headers=host(server, name))
    assert body["results"][0]["type"] == "error"
    assert body["results"][0]["error"]["code"] == "BLOCKED"
    assert "maintenance" in body["results"][0]["error"]["message"]
    assert rows_of(body["results"][1]) == [[integer(1)]], "reads stay allowed"

    unblocked = server.admin("POST", f"/v1/namespaces/{name}/config",
                             json={"block_reads": False, "block_writes": False})
    assert unblocked.status_code == 200, unblocked.text
    body = pipeline_ok(http, [execute("INSERT INTO t VALUES ('y')"), CLOSE],
                       headers=host(server, name))
    assert body["results"][0]["type"] == "ok"


def test_s31_admin_stats(server: CompatServer, http: httpx.Client,
                         unique: Callable[[str], str]) -> None:
    name = unique("f31-stats")
    seeded_namespace(server, http, name, "v")
    read_t(http, headers=host(server, name))
    response = server.admin("GET", f"/v1/namespaces/{name}/stats")
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["rows_written_count"] >= 1 and stats["rows_read_count"] >= 1, stats
    assert server.admin("GET", "/v1/namespaces/f31-missing/stats").status_code == 404
    assert server.admin("GET", "/v1/namespaces/f31-missing/config").status_code == 404


def test_s31_admin_requires_its_key(server: CompatServer) -> None:
    for headers in ({}, {"Authorization": "Basic wrong"}, {"Authorization": f"Bearer {ADMIN_KEY}"}):
        response = httpx.post(f"{server.admin_url}/v1/namespaces/f31-nokey/create", json={},
                              headers=headers)
        assert response.status_code == 401, (headers, response.text)


def test_s31_tokens_scoped_to_namespaces(server_pool: ServerPool,
                                         unique: Callable[[str], str]) -> None:
    server = server_pool.get(NAMESPACES_JWT)
    assert server.keys is not None
    one, two = unique("f31-tok1"), unique("f31-tok2")
    server.create_namespace(one)
    server.create_namespace(two)
    keys = server.keys.primary
    with httpx.Client(base_url=server.url, timeout=30) as http:
        def status(token: str, namespace: str, sql: str = "SELECT 1") -> int:
            response = pipeline(http, [execute(sql), CLOSE],
                                headers={**host(server, namespace),
                                         "Authorization": f"Bearer {token}"})
            return response.status_code

        pipeline_ok(http, [execute("CREATE TABLE t (x)"), CLOSE],
                    headers={**host(server, one), **server.auth_headers()})
        assert status(keys.token(a="rw", id=one), one) == 200
        assert status(keys.token(a="rw", id=two), one) == 404
        assert status(keys.token(p={"rw": {"ns": [one]}}), one, "INSERT INTO t VALUES (1)") == 200
        assert status(keys.token(p={"rw": {"ns": [one]}}), two) == 404
        assert status(keys.token(p={"ro": {"ns": [one]}}), one, "SELECT * FROM t") == 200
        assert status(keys.token(p={"ro": {"ns": [one]}}), one, "INSERT INTO t VALUES (2)") == 403
        assert status(keys.token(a="ro"), one, "INSERT INTO t VALUES (3)") == 403
        assert status(server.keys.stranger.token(a="rw"), one) == 401
