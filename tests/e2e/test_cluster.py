"""A real 3-node cluster on loopback: replication, forwarding, consistency, failover,
membership changes, replicated catalog. Every check ends with equal content hashes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.support.cluster import Cluster, Member


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster.start(tmp_path, 3)
    yield started
    started.close()


def converged(cluster: Cluster, namespace: str = "default", timeout_s: float = 20) -> str:
    """Wait until every live member reports the same applied index and content hash."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = {}
        for node_id, member in cluster.members.items():
            if not member.alive:
                continue
            try:
                response = cluster.http.get(
                    f"{member.admin_url}/v1/namespaces/{namespace}/hash", timeout=5)
            except httpx.HTTPError:
                break
            if response.status_code == 200:
                seen[node_id] = (response.json()["applied_index"], response.json()["hash"])
        if len(seen) == sum(m.alive for m in cluster.members.values()) and \
                len(set(seen.values())) == 1:
            return next(iter(seen.values()))[1]  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"replicas did not converge: {seen}\n{cluster.logs()}")


def _eventually(condition: Any, timeout_s: float = 10.0) -> bool:
    """Whether ``condition()`` became true within ``timeout_s`` (polled)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def follower(cluster: Cluster) -> Member:
    leader = cluster.leader()
    return next(m for m in cluster.members.values() if m is not leader and m.alive)


def test_writes_anywhere_reads_everywhere(cluster: Cluster) -> None:
    leader = cluster.leader()
    other = follower(cluster)
    assert cluster.execute(other, "CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT, "
                                  "ts DATETIME DEFAULT CURRENT_TIMESTAMP, r DEFAULT "
                                  "(random()))").status_code == 200
    for i, member in enumerate([leader, other, leader, other]):
        response = cluster.execute(member, "INSERT INTO kv(k, v) VALUES (?, ?)",
                                   [f"k{i}", f"v{i}"])
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["type"] == "ok", response.text
    for member in cluster.members.values():
        rows = cluster.rows(member, "SELECT k, v FROM kv ORDER BY k")
        assert rows == [[f"k{i}", f"v{i}"] for i in range(4)]
    converged(cluster)


def test_session_bookmark_and_eventual(cluster: Cluster) -> None:
    leader = cluster.leader()
    other = follower(cluster)
    cluster.execute(leader, "CREATE TABLE s(x)")
    response = cluster.execute(leader, "INSERT INTO s VALUES (7)")
    index = int(response.headers["x-edgelite-replication-index"])
    body = {"requests": [{"type": "execute", "stmt": {"sql": "SELECT x FROM s"}},
                         {"type": "close"}]}
    read = cluster.http.post(other.url + "/v2/pipeline", json=body, headers={
        "x-edgelite-consistency": "session", "x-edgelite-bookmark": str(index)})
    assert read.status_code == 200
    assert int(read.headers["x-edgelite-replication-index"]) >= index
    assert read.json()["results"][0]["response"]["result"]["rows"] == [
        [{"type": "integer", "value": "7"}]]
    eventual = cluster.execute(other, "SELECT count(*) FROM s", consistency="eventual")
    assert eventual.status_code == 200


def _metric(cluster: Cluster, member: Any, name: str) -> float:
    text = cluster.http.get(member.url + "/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "_total "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_eventual_reads_with_a_staleness_bound(cluster: Cluster) -> None:
    leader = cluster.leader()
    other = follower(cluster)
    cluster.execute(leader, "CREATE TABLE st(x)")
    body = {"requests": [{"type": "execute", "stmt": {"sql": "SELECT count(*) FROM st"}},
                         {"type": "close"}]}

    def count_on_follower(max_staleness_ms: str) -> int:
        response = cluster.http.post(other.url + "/v2/pipeline", json=body, headers={
            "x-edgelite-consistency": "eventual",
            "x-edgelite-max-staleness-ms": max_staleness_ms})
        assert response.status_code == 200, response.text
        return int(response.json()["results"][0]["response"]["result"]["rows"][0][0]["value"])

    refreshed_before = _metric(cluster, other, "edgelite_stale_reads_refreshed")
    for n in range(1, 11):  # a 0 ms bound: every acknowledged write is visible
        assert cluster.execute(leader, "INSERT INTO st VALUES (1)").status_code == 200
        assert count_on_follower("0") == n
    refreshed = _metric(cluster, other, "edgelite_stale_reads_refreshed")
    assert refreshed >= refreshed_before + 10
    # Confirmed fresh a moment ago: an hour's bound is served locally, no leader round.
    assert count_on_follower("3600000") == 10
    assert _metric(cluster, other, "edgelite_stale_reads_refreshed") == refreshed
    bad = cluster.http.post(other.url + "/v2/pipeline", json=body, headers={
        "x-edgelite-consistency": "eventual", "x-edgelite-max-staleness-ms": "soon"})
    assert bad.status_code == 400 and "x-edgelite-max-staleness-ms" in bad.text


def test_interactive_transaction_started_on_a_follower(cluster: Cluster) -> None:
    other = follower(cluster)
    cluster.execute(other, "CREATE TABLE tx(x)")
    http = cluster.http
    first = http.post(other.url + "/v3/pipeline", json={"requests": [
        {"type": "execute", "stmt": {"sql": "BEGIN"}},
        {"type": "execute", "stmt": {"sql": "INSERT INTO tx VALUES (1)"}}]})
    assert first.status_code == 200, first.text
    baton, base_url = first.json()["baton"], first.json()["base_url"]
    assert baton and base_url == cluster.leader().url  # the stream lives on the leader
    # A client that ignores base_url keeps talking to the follower: it proxies.
    second = http.post(other.url + "/v3/pipeline", json={"baton": baton, "requests": [
        {"type": "execute", "stmt": {"sql": "INSERT INTO tx VALUES (2)"}},
        {"type": "execute", "stmt": {"sql": "COMMIT"}}, {"type": "close"}]})
    assert second.status_code == 200, second.text
    assert all(r["type"] == "ok" for r in second.json()["results"]), second.text
    for member in cluster.members.values():
        assert cluster.rows(member, "SELECT x FROM tx ORDER BY x") == [[1], [2]]


def test_websocket_writes_through_a_follower(cluster: Cluster) -> None:
    other = follower(cluster)
    with ws_connect(other.url.replace("http", "ws"), subprotocols=["hrana2"]) as socket:  # type: ignore[list-item]
        def request(request_id: int, body: dict[str, Any]) -> dict[str, Any]:
            socket.send(json.dumps({"type": "request", "request_id": request_id,
                                    "request": body}))
            while True:
                message = json.loads(socket.recv(timeout=15))
                if message.get("request_id") == request_id:
                    return message

        socket.send(json.dumps({"type": "hello", "jwt": None}))
        assert json.loads(socket.recv(timeout=10))["type"] == "hello_ok"
        assert request(1, {"type": "open_stream", "stream_id": 1})["type"] == "response_ok"
        for n, sql in enumerate(["CREATE TABLE w(x)", "INSERT INTO w VALUES (1)",
                                 "SELECT count(*) FROM w"], start=2):
            reply = request(n, {"type": "execute", "stream_id": 1, "stmt": {"sql": sql}})
            assert reply["type"] == "response_ok", reply
        rows = reply["response"]["result"]["rows"]
        assert rows == [[{"type": "integer", "value": "1"}]]
        assert request(9, {"type": "close_stream", "stream_id": 1})["type"] == "response_ok"
    converged(cluster)


def test_kill_leader_under_concurrent_writes_loses_no_acknowledged_write(
        cluster: Cluster) -> None:
    leader = cluster.leader()
    cluster.execute(leader, "CREATE TABLE acks(id INTEGER PRIMARY KEY, writer INTEGER)")
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    survivors = [m for m in cluster.members.values() if m is not leader]

    def write(worker: int) -> None:
        target = survivors[worker % len(survivors)]
        with httpx.Client(timeout=5) as http:
            n = 0
            while not stop.is_set():
                row_id = worker * 100_000 + n
                n += 1
                body = {"requests": [{"type": "execute", "stmt": {
                    "sql": "INSERT INTO acks(id, writer) VALUES (?, ?)",
                    "args": [{"type": "integer", "value": str(row_id)},
                             {"type": "integer", "value": str(worker)}]}},
                    {"type": "close"}]}
                try:
                    response = http.post(target.url + "/v2/pipeline", json=body)
                except httpx.HTTPError:
                    continue
                if response.status_code == 200 and \
                        response.json()["results"][0]["type"] == "ok":
                    with lock:
                        acknowledged.append(row_id)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    cluster.kill(leader.node_id)
    time.sleep(3.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 10
    new_leader = cluster.wait_for_leader()
    present = {row[0] for row in cluster.rows(new_leader, "SELECT id FROM acks")}
    missing = set(acknowledged) - present
    assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
    cluster.restart(leader.node_id)  # the old leader comes back and catches up
    converged(cluster)


def test_learner_joins_and_catches_up_then_a_voter_joins(cluster: Cluster) -> None:
    leader = cluster.leader()
    cluster.execute(leader, "CREATE TABLE j(x)")
    for i in range(20):
        cluster.execute(leader, "INSERT INTO j VALUES (?)", [i])
    learner = cluster.join("n4", learner=True)
    voter = cluster.join("n5")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = cluster.status(leader.node_id) or {}
        roles = {m["id"]: m["role"] for m in status.get("members", [])}
        if roles.get("n4") == "learner" and roles.get("n5") == "voter":
            break
        time.sleep(0.2)
    assert roles.get("n4") == "learner" and roles.get("n5") == "voter", (roles, cluster.logs())
    assert cluster.rows(learner, "SELECT count(*) FROM j") == [[20]]
    assert cluster.rows(voter, "SELECT count(*) FROM j") == [[20]]
    converged(cluster)


def test_transfer_and_remove(cluster: Cluster) -> None:
    leader = cluster.leader()
    target = follower(cluster)
    response = cluster.http.post(leader.admin_url + "/v1/cluster/transfer",
                                 json={"to": target.node_id}, timeout=40)
    assert response.status_code == 200, response.text
    assert cluster.leader().node_id == target.node_id
    removed = leader.node_id
    response = cluster.http.delete(f"{target.admin_url}/v1/cluster/members/{removed}",
                                   timeout=40)
    assert response.status_code == 200, response.text
    status = cluster.status(target.node_id)
    assert status is not None
    assert removed not in {m["id"] for m in status["members"]}
    cluster.kill(removed)
    assert cluster.execute(target, "CREATE TABLE after_remove(x)").status_code == 200


def test_catalog_is_replicated(tmp_path: Path) -> None:
    cluster = Cluster.start(tmp_path, 3, extra_args=("--enable-namespaces",))
    try:
        other = follower(cluster)
        admin = cluster.http
        assert admin.post(other.admin_url + "/v1/namespaces/shop/create", json={},
                          timeout=30).status_code == 200
        body = {"requests": [{"type": "execute", "stmt": {"sql": "CREATE TABLE p(x)"}},
                             {"type": "execute", "stmt": {"sql": "INSERT INTO p VALUES (1)"}},
                             {"type": "close"}]}
        assert admin.post(other.url + "/v2/pipeline", json=body,
                          headers={"x-namespace": "shop"}).status_code == 200
        assert admin.post(other.admin_url + "/v1/namespaces/shop/fork/shop2",
                          timeout=30).status_code == 200
        # The admin call returns once the leader applied it; followers follow shortly.
        for member in cluster.members.values():
            def names(m: Any = member) -> set[str]:
                return {n["name"] for n in admin.get(
                    m.admin_url + "/v1/namespaces").json()["namespaces"]}
            assert _eventually(lambda n=names: {"default", "shop", "shop2"} <= n()), \
                (member.node_id, names())
        converged(cluster, "shop")
        converged(cluster, "shop2")
        assert admin.delete(other.admin_url + "/v1/namespaces/shop2",
                            timeout=30).status_code == 200
        for member in cluster.members.values():
            def status(m: Any = member) -> int:
                return admin.post(m.url + "/v2/pipeline", json=body,
                                  headers={"x-namespace": "shop2"}).status_code
            assert _eventually(lambda s=status: s() == 404), (member.node_id, status())
    finally:
        cluster.close()


def test_full_restart_keeps_everything(cluster: Cluster) -> None:
    leader = cluster.leader()
    cluster.execute(leader, "CREATE TABLE r(x INTEGER PRIMARY KEY AUTOINCREMENT, y)")
    for i in range(10):
        cluster.execute(leader, "INSERT INTO r(y) VALUES (?)", [i])
    before = converged(cluster)
    for node_id in list(cluster.members):
        cluster.kill(node_id)
    for node_id in list(cluster.members):
        cluster.launch(cluster.members[node_id])
    leader = cluster.wait_for_leader()
    assert converged(cluster) == before
    cluster.execute(leader, "INSERT INTO r(y) VALUES (99)")
    assert cluster.rows(leader, "SELECT max(x) FROM r") == [[11]]


def test_cluster_metrics(cluster: Cluster) -> None:
    leader = cluster.leader()
    cluster.execute(leader, "CREATE TABLE m(x)")
    other = follower(cluster)
    assert cluster.execute(other, "INSERT INTO m VALUES (1)").status_code == 200
    leader_text = cluster.http.get(leader.url + "/metrics").text
    assert 'edgelite_raft_role{role="leader"} 1.0' in leader_text
    for member in cluster.members.values():
        if member is not leader:
            assert f'edgelite_raft_peer_lag_entries{{peer="{member.node_id}"}}' in leader_text
    assert "edgelite_raft_fsync_seconds_count" in leader_text
    assert 'edgelite_peer_sent_total{peer="' in leader_text
    follower_text = cluster.http.get(other.url + "/metrics").text
    assert 'edgelite_raft_role{role="follower"} 1.0' in follower_text
    assert "edgelite_forwarded_requests_total 1.0" in follower_text
    assert "edgelite_apply_seconds_count" in follower_text


def test_cluster_cli(cluster: Cluster) -> None:
    import subprocess
    import sys

    leader = cluster.leader()
    target = follower(cluster)

    def cli(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "edgelite.cli.main", "cluster",
                                 "--admin", leader.admin_url, *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    table = cli("status")
    for node_id in cluster.members:
        assert node_id in table
    after = subprocess.run([sys.executable, "-m", "edgelite.cli.main", "cluster", "status",
                            "--json", "--admin", leader.admin_url], capture_output=True,
                           text=True, timeout=60)  # the spelling: --admin last
    assert after.returncode == 0, after.stderr
    assert {m["id"] for m in json.loads(after.stdout)["members"]} == set(cluster.members)
    assert "leader" in table
    assert f"{target.node_id} leads now" in cli("transfer", target.node_id)
    assert cluster.leader().node_id == target.node_id
    bad = subprocess.run([sys.executable, "-m", "edgelite.cli.main", "cluster", "--admin",
                          leader.admin_url, "promote", "nobody"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and "not a learner" in bad.stderr


def test_request_ids_make_retries_exactly_once(cluster: Cluster) -> None:
    leader = cluster.leader()
    other = follower(cluster)
    cluster.execute(leader, "CREATE TABLE once(x)")
    body = {"requests": [{"type": "execute", "stmt": {"sql": "INSERT INTO once VALUES (1)"}},
                         {"type": "close"}]}
    headers = {"x-edgelite-request-id": "req-42"}
    first = cluster.http.post(other.url + "/v2/pipeline", json=body, headers=headers)
    assert first.json()["results"][0]["type"] == "ok", first.text
    retry = cluster.http.post(leader.url + "/v2/pipeline", json=body, headers=headers)
    result = retry.json()["results"][0]
    assert result["type"] == "error" and result["error"]["code"] == "ALREADY_APPLIED", result
    assert cluster.rows(leader, "SELECT count(*) FROM once") == [[1]]
    for member in (leader, other):
        status = cluster.http.get(member.url + "/v1/requests/req-42").json()
        assert status["committed"] is True and status["index"] > 0, status
        unknown = cluster.http.get(member.url + "/v1/requests/never-sent").json()
        assert unknown == {"request_id": "never-sent", "committed": False, "index": None}
