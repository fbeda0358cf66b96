"""Sync on a 3-node cluster: one cluster id everywhere, pulls and change streams served
by followers, pushes forwarded to the leader and merged once, retention on every node."""

from __future__ import annotations

import concurrent.futures
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, Member
from tests.sync.conftest import SyncClient, wait_until

RETAIN = 30
SETTINGS = {"EDGELITE_SNAPSHOT_ENTRIES": "10", "EDGELITE_SNAPSHOT_TRAILING_ENTRIES": "0",
            "EDGELITE_RETAIN_ENTRIES": str(RETAIN)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster.start(tmp_path_factory.mktemp("sync-cluster"), 3, env=SETTINGS)
    yield started
    started.close()


Members = tuple[SyncClient, list[SyncClient]]


@pytest.fixture
def members(cluster: Cluster) -> Iterator[Members]:
    """A client for the leader and one for each follower."""
    leader = cluster.leader()
    followers = [m for m in cluster.members.values() if m.node_id != leader.node_id]
    made = _client(leader), [_client(m) for m in followers]
    yield made
    for client in (made[0], *made[1]):
        client.http.close()


def _client(member: Member) -> SyncClient:
    made = SyncClient(member.url, member.admin_url, "default")
    made.headers["x-edgelite-consistency"] = "strong"
    return made


def test_every_member_names_the_same_database(members: Members) -> None:
    leader, followers = members
    ids = {c.info()["database_id"] for c in [leader, *followers]}
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{16}/default/0", ids.pop())


def test_followers_serve_long_polls_and_change_streams(members: Members) -> None:
    leader, (follower, _) = members
    created = leader.sql("CREATE TABLE IF NOT EXISTS seen(x)")
    wait_until(lambda: follower.pull(0)["applied_index"] >= created, what="the follower")
    position = follower.pull(0)["applied_index"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(follower.pull, position, wait_ms=20_000)
        written = leader.sql("INSERT INTO seen VALUES ('from the leader')")
        pulled = waiting.result(timeout=20)
    assert written in [e[0] for e in pulled["entries"]]
    stream = follower.get("/v1/changes", since=position, wait_ms=0)
    changes = [json.loads(line) for line in stream.text.splitlines()]
    assert any(c["type"] == "change" and c["index"] == written for c in changes)


def test_a_push_through_a_follower_is_merged_once_on_the_leader(members: Members,
                                                                tmp_path: Path) -> None:
    leader, (first, second) = members
    created = leader.sql("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT)")
    # The replica is bootstrapped from this follower's copy: it must have the table.
    wait_until(lambda: first.info()["applied_index"] >= created, what="the follower applied")
    replica = first.replica(tmp_path / "replica.db")
    body = replica.change("INSERT INTO notes VALUES (100, 'offline')")
    accepted = first.push(body, "cluster-push-1")
    assert accepted.status_code == 200, accepted.text
    index = accepted.json()["index"]
    retried = second.push(body, "cluster-push-1")  # the retry reaches another member
    assert retried.status_code == 409, retried.text
    assert retried.json() == {**retried.json(), "code": "ALREADY_APPLIED", "index": index}
    for member in (leader, first, second):
        assert member.rows("SELECT count(*) FROM notes WHERE id = 100") == [[1]]


def test_a_policy_set_through_a_follower_reaches_every_member(members: Members) -> None:
    leader, followers = members
    leader.sql("CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY, v INTEGER)")
    followers[0].set_policy("docs", "max-version:v")
    for member in (leader, *followers):
        wait_until(lambda m=member: m.info()["conflict_policies"].get("docs")
                   == "max-version:v", what="the policy on every member")


def test_every_member_keeps_the_retention_window_across_snapshots(members: Members) -> None:
    leader, followers = members
    leader.sql("CREATE TABLE IF NOT EXISTS w(x)")
    for i in range(80):
        last = leader.sql("INSERT INTO w VALUES (?)", [i])

    def first_index(client: SyncClient) -> int:
        text = client.http.get(client.url + "/metrics").text
        match = re.search(r"^edgelite_log_retained_from_index (\S+)$", text, re.MULTILINE)
        assert match is not None
        return int(float(match.group(1)))

    for client in (leader, *followers):
        wait_until(lambda c=client: first_index(c) > 20, what="compaction on every member")
        wait_until(lambda c=client: c.info()["applied_index"] >= last, what="applied")
        applied = client.info()["applied_index"]
        assert applied - first_index(client) + 1 >= RETAIN
        assert client.pull(applied - RETAIN)["entries"][-1][0] == last
        assert client.get("/v1/sync/pull", since=1).status_code == 410
