"""The sync endpoints on a real server: info, snapshot, pull (long poll), push."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from tests.sync.conftest import SyncClient


def notes(client: SyncClient) -> int:
    client.sql("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, version INTEGER)")
    return client.sql("INSERT INTO notes VALUES (1, 'one', 1), (2, 'two', 1)")


def test_info_names_the_database_and_its_position(client: SyncClient) -> None:
    index = notes(client)
    info = client.info()
    cluster_id, namespace, incarnation = info["database_id"].split("/")
    assert re.fullmatch(r"[0-9a-f]{16}", cluster_id)
    assert namespace == client.namespace and int(incarnation) > 0
    assert info["applied_index"] >= index
    assert info["retained_from_index"] <= index
    assert info["conflict_policies"] == {}
    other = client.sibling("default").info()
    assert other["database_id"] == f"{cluster_id}/default/0"


def test_a_namespace_created_again_is_another_database(client: SyncClient) -> None:
    before = client.info()["database_id"]
    path = f"/v1/namespaces/{client.namespace}"
    assert client.admin("DELETE", path).status_code == 200
    assert client.admin("POST", path + "/create", {}).status_code == 200
    after = client.info()["database_id"]
    assert after != before and after.rsplit("/", 1)[0] == before.rsplit("/", 1)[0]


def test_a_recreated_namespace_never_serves_the_old_ones_entries(client: SyncClient) -> None:
    client.sql("CREATE TABLE old(x)")
    client.sql("INSERT INTO old VALUES ('before')")
    path = f"/v1/namespaces/{client.namespace}"
    assert client.admin("DELETE", path).status_code == 200
    assert client.admin("POST", path + "/create", {}).status_code == 200
    written = client.sql("CREATE TABLE new(x)")
    assert [e[0] for e in client.pull(0)["entries"]] == [written]
    response = client.get("/v1/changes", since=0, wait_ms=0)
    schema = [json.loads(line) for line in response.text.splitlines()]
    assert [e["sql"] for e in schema if e["type"] == "schema"] == ["CREATE TABLE new(x)"]


def test_unknown_namespaces_are_404_in_json(client: SyncClient) -> None:
    stranger = client.sibling("no-such-namespace")
    for path in ("/v1/sync/info", "/v1/sync/snapshot", "/v1/changes"):
        response = stranger.get(path, since=0)
        assert response.status_code == 404, path
        assert response.json()["code"] == "NAMESPACE_NOT_FOUND"


def test_snapshot_is_a_checked_consistent_file(client: SyncClient, tmp_path: Path) -> None:
    index = notes(client)
    response = client.get("/v1/sync/snapshot")
    assert response.status_code == 200
    body = response.content
    assert hashlib.sha256(body).hexdigest() == response.headers["x-edgelite-sha256"]
    assert int(response.headers["content-length"]) == len(body)
    assert int(response.headers["x-edgelite-snapshot-index"]) >= index
    assert response.headers["x-edgelite-database-id"] == client.info()["database_id"]
    path = tmp_path / "copy.db"
    path.write_bytes(body)
    with apsw.Connection(str(path)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT body FROM notes ORDER BY id").fetchall() == [
            ("one",), ("two",)]


def test_pulled_entries_bring_a_snapshot_up_to_date(client: SyncClient, tmp_path: Path) -> None:
    notes(client)
    replica = client.replica(tmp_path / "replica.db")
    client.sql("UPDATE notes SET body = 'uno' WHERE id = 1")
    client.sql("CREATE TABLE tags(note INTEGER, tag TEXT)")
    last = client.sql("INSERT INTO tags VALUES (1, 'red')")
    pulled = client.pull(replica.index)
    assert pulled["database_id"] == replica.database_id
    assert [e[0] for e in pulled["entries"]] == sorted(e[0] for e in pulled["entries"])
    assert pulled["entries"][-1][0] == last and not pulled["more"]
    assert pulled["applied_index"] >= last
    replica.apply(pulled["entries"])
    assert replica.rows("SELECT * FROM notes ORDER BY id") == [(1, "uno", 1), (2, "two", 1)]
    assert replica.rows("SELECT * FROM tags") == [(1, "red")]
    again = client.pull(pulled["applied_index"])
    assert again["entries"] == [] and again["applied_index"] >= pulled["applied_index"]


def test_pulls_are_bounded_and_say_where_to_continue(client: SyncClient) -> None:
    client.sql("CREATE TABLE t(x)")
    for i in range(5):
        client.sql("INSERT INTO t VALUES (?)", [i])
    everything = client.pull(0)["entries"]
    assert len(everything) == 6
    first = client.pull(0, max_entries=2)
    assert [e[0] for e in first["entries"]] == [e[0] for e in everything[:2]]
    assert first["more"] and first["applied_index"] == everything[1][0]
    tiny = client.pull(first["applied_index"], max_bytes=1)
    assert [e[0] for e in tiny["entries"]] == [everything[2][0]]  # at least one entry
    assert tiny["more"]


def test_a_long_poll_wakes_up_on_a_new_write(client: SyncClient) -> None:
    client.sql("CREATE TABLE t(x)")
    position = client.pull(0)["applied_index"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.pull, position, wait_ms=20_000)
        with pytest.raises(concurrent.futures.TimeoutError):
            waiting.result(timeout=0.3)  # nothing to pull yet: it waits
        written = client.sql("INSERT INTO t VALUES (42)")
        pulled = waiting.result(timeout=15)
    assert [e[0] for e in pulled["entries"]] == [written]


def test_a_long_poll_with_nothing_new_answers_the_position(client: SyncClient) -> None:
    position = client.pull(0)["applied_index"]
    pulled = client.pull(position, wait_ms=200)
    assert pulled["entries"] == [] and pulled["applied_index"] >= position


@pytest.mark.parametrize(("params", "message"), [
    ({}, "`since` is required"),
    ({"since": "-1"}, "`since` must be a non-negative integer"),
    ({"since": "x"}, "`since` must be a non-negative integer"),
    ({"since": "0", "wait_ms": "600000"}, "`wait_ms` must be between 0 and 60000"),
    ({"since": "0", "max_entries": "0"}, "`max_entries` must be between 1 and 10000"),
    ({"since": "0", "max_bytes": "99999999999"}, "`max_bytes` must be between"),
])
def test_bad_pull_parameters_are_named(client: SyncClient, params: dict[str, str],
                                       message: str) -> None:
    response = client.http.get(client.url + "/v1/sync/pull", params=params,
                               headers=client.headers)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_a_push_merges_once_per_request_id(client: SyncClient, tmp_path: Path) -> None:
    notes(client)
    replica = client.replica(tmp_path / "replica.db")
    body = replica.change("INSERT INTO notes VALUES (3, 'three', 1)",
                          "UPDATE notes SET body = 'uno' WHERE id = 1")
    first = client.push(body, "offline-1")
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["applied"], answer["conflicts"]) == (2, 0)
    assert first.headers["x-edgelite-replication-index"] == str(answer["index"])
    retried = client.push(body, "offline-1")
    assert retried.status_code == 409
    assert retried.json()["code"] == "ALREADY_APPLIED"
    assert retried.json()["index"] == answer["index"]
    assert client.rows("SELECT id, body FROM notes ORDER BY id") == [
        [1, "uno"], [2, "two"], [3, "three"]]
    pulled = client.pull(replica.index)
    assert pulled["entries"][-1][0] == answer["index"]
    assert "offline-1" in pulled["entries"][-1][3]


def bad_pushes(database_id: str, changeset: bytes) -> list[tuple[Any, str | None, int, str]]:
    good = {"database_id": database_id, "changes": [changeset]}
    return [
        (good, None, 400, "needs the header x-edgelite-request-id"),
        ({"changes": [changeset]}, "k1", 400, "database_id"),
        ({**good, "changes": "nope"}, "k2", 400, "not valid msgpack"),
        ({**good, "changes": [b"garbage"]}, "k3", 400, "not a valid SQLite changeset"),
        ({**good, "database_id": "elsewhere/x/1"}, "k4", 409, "DATABASE_MISMATCH"),
        ({**good, "hlc": [["notes", "[1]", -5]]}, "k5", 400, "hlc"),
    ]


def test_bad_pushes_are_refused_and_change_nothing(client: SyncClient, tmp_path: Path) -> None:
    notes(client)
    replica = client.replica(tmp_path / "replica.db")
    changeset = replica.change("DELETE FROM notes")["changes"][0]
    for body, request_id, status, text in bad_pushes(replica.database_id, changeset):
        response = client.push(body, request_id)
        assert response.status_code == status, (body, response.text)
        assert text in response.text, response.text
        assert set(response.json()) >= {"error", "message", "code"}
    assert len(client.rows("SELECT * FROM notes")) == 2


def test_reserved_tables_are_readable_but_not_writable(client: SyncClient) -> None:
    notes(client)
    client.set_policy("notes", "reject")
    assert client.rows("SELECT table_name, policy FROM _edgelite_conflict_policy") == [
        ["notes", "reject"]]
    for statement in ("INSERT INTO _edgelite_conflicts(table_name, pk_json, op, reason, "
                      "pushed_json, received_at_ms, request_id) VALUES ('a','b','c','d','e',1,'f')",
                      "DELETE FROM _edgelite_conflict_policy",
                      "UPDATE _edgelite_row_clock SET hlc = 0"):
        response = client.http.post(client.url + "/v2/pipeline", headers=client.headers, json={
            "requests": [{"type": "execute", "stmt": {"sql": statement}}]})
        result = response.json()["results"][0]
        assert result["type"] == "error" and "reserved" in result["error"]["message"]


def test_conflict_policy_admin_route(client: SyncClient) -> None:
    notes(client)
    path = f"/v1/namespaces/{client.namespace}/conflict-policy"
    answer = client.admin("POST", path, {"table": "notes", "policy": "max-version:version"})
    assert answer.status_code == 200 and answer.json()["policy"] == "max-version:version"
    assert client.admin("GET", path).json() == {
        "conflict_policies": {"notes": "max-version:version"}}
    assert client.info()["conflict_policies"] == {"notes": "max-version:version"}
    for body, text in [({"table": "notes", "policy": "newest"}, "unknown conflict policy"),
                       ({"table": "missing", "policy": "reject"}, "does not exist"),
                       ({"table": "notes", "policy": "max-version:nope"}, "no column"),
                       ({"table": "_edgelite_state", "policy": "reject"}, "reserved"),
                       ({"policy": "reject"}, "`table` and `policy`")]:
        response = client.admin("POST", path, body)
        assert response.status_code == 400 and text in response.text, response.text


def test_metrics_report_the_retained_log(client: SyncClient) -> None:
    notes(client)
    text = httpx.get(client.url + "/metrics").text
    for name in ("edgelite_log_retained_from_index", "edgelite_log_retained_bytes",
                 "edgelite_log_oldest_entry_age_seconds"):
        assert re.search(rf"^{name} \d", text, re.MULTILINE), name


@pytest.mark.parametrize(("policy", "winner", "recorded"), [
    ("server-wins", "server", 0), ("client-wins", "client", 0),
    ("last-writer-wins", "client", 0), ("max-version:version", "client", 0),
    ("reject", "server", 1)])
def test_each_policy_through_a_real_push(client: SyncClient, tmp_path: Path, policy: str,
                                         winner: str, recorded: int) -> None:
    notes(client)
    client.set_policy("notes", policy)
    replica = client.replica(tmp_path / "replica.db")
    client.sql("UPDATE notes SET body = 'server', version = 2 WHERE id = 1")
    stamped = client.rows("SELECT max(hlc) FROM _edgelite_row_clock") if \
        policy == "last-writer-wins" else [[0]]
    body = replica.change("UPDATE notes SET body = 'client', version = 3 WHERE id = 1",
                          hlc=[["notes", "[1]", (stamped[0][0] or 0) + 1]])
    response = client.push(body, f"policy-{policy}")
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == recorded
    assert client.rows("SELECT body FROM notes WHERE id = 1") == [[winner]]
    conflicts = client.rows("SELECT table_name, op, reason, request_id FROM _edgelite_conflicts")
    assert conflicts == ([["notes", "update", "data", f"policy-{policy}"]] if recorded else [])


@pytest.mark.timeout(60)
def test_a_snapshot_completes_under_a_steady_write_load(client: SyncClient,
                                                       tmp_path: Path) -> None:
    client.sql("CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB)")
    for _ in range(2):  # 16 MB: a copy in 4 MB steps would restart at every write
        client.sql("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c "
                   "WHERE n < 4000) INSERT INTO big(b) SELECT randomblob(2000) FROM c")
    stop = threading.Event()
    writes = []

    def write() -> None:
        other = client.sibling(client.namespace)
        other.http = httpx.Client(timeout=30)
        while not stop.is_set():
            writes.append(other.sql("INSERT INTO big(b) VALUES (x'00')"))
        other.http.close()

    writers = [threading.Thread(target=write) for _ in range(4)]
    for writer in writers:
        writer.start()
    try:
        while len(writes) < 20:  # the load is on
            time.sleep(0.01)
        replica = client.replica(tmp_path / "loaded.db")
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=30)
    assert replica.rows("PRAGMA integrity_check") == [("ok",)]
    copied = replica.rows("SELECT count(*) FROM big")[0][0]
    assert copied >= 8000 + 5
    pulled = client.pull(replica.index)
    replica.apply(pulled["entries"])
    assert replica.rows("SELECT count(*) FROM big") == [(8000 + len(writes),)]
