"""The compatibility scenarios against a *follower* of a three-node edgelite cluster.

Clients are unmodified and only know one URL; pointing them at a follower makes every
write, stream, baton, stored SQL text and cursor go through the follower's
forwarding to the leader. The assertions are the single-node ones (``js_checks`` and
the ``exercise_*`` flows of the Python client modules), so a client-visible difference
between a follower and a single node fails here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import libsql
import pytest
import turso_serverless

from tests.compat import test_py_libsql as libsql_flows
from tests.compat import test_py_libsql_client as libsql_client_flows
from tests.compat import test_turso_serverless as turso_flows
from tests.compat.conftest import extra_server_logs
from tests.compat.expect import ok
from tests.compat.harness import Target, run_node
from tests.compat.js_checks import CHECKS, RunContext
from tests.support.cluster import Cluster, Member

pytestmark = pytest.mark.timeout(300)
JS_TRANSPORTS = ("http", "ws")


@pytest.fixture(scope="module")
def cluster(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if target.is_sqld:
        pytest.skip("cluster scenarios start `edgelite serve`; sqld is not a member of it")
    started = Cluster.start(tmp_path_factory.mktemp("compat-cluster"), size=3)
    for member in started.members.values():
        extra_server_logs[f"cluster {member.node_id}"] = member.log_path
    try:
        yield started
    finally:
        started.close()
        for member in started.members.values():
            extra_server_logs.pop(f"cluster {member.node_id}", None)


@pytest.fixture(scope="module")
def follower(cluster: Cluster) -> Member:
    leader = cluster.leader()
    return next(m for m in cluster.members.values() if m.node_id != leader.node_id)


def ws(member: Member) -> str:
    return f"ws://127.0.0.1:{member.http_port}"


@pytest.fixture(scope="module")
def js_runs(follower: Member) -> dict[str, dict[str, Any]]:
    """One run of every common @libsql/client scenario per transport, on the follower."""
    return {transport: run_node("libsql_client.mjs", {
        "url": follower.url if transport == "http" else ws(follower), "authToken": None,
        "prefix": f"k_{transport}_", "distinctSql": RunContext(transport, "").distinct_sql,
        "scenarios": list(CHECKS)}) for transport in JS_TRANSPORTS}


@pytest.mark.usefixtures("node")
@pytest.mark.parametrize("scenario", list(CHECKS))
@pytest.mark.parametrize("transport", JS_TRANSPORTS)
def test_libsql_client_on_a_follower(js_runs: dict[str, dict[str, Any]], transport: str,
                                     scenario: str) -> None:
    CHECKS[scenario](ok(js_runs[transport], scenario), RunContext(transport, f"k_{transport}_"))


async def test_python_libsql_client_on_a_follower(follower: Member,
                                                  unique: Callable[[str], str]) -> None:
    await libsql_client_flows.exercise_execute(ws(follower), None, unique("k_c_exec"))
    await libsql_client_flows.exercise_batch(ws(follower), None, unique("k_c_batch"))
    await libsql_client_flows.exercise_transactions(ws(follower), None, unique("k_c_tx"))
    await libsql_client_flows.exercise_http_v1(follower.url, None, unique("k_c_http"))


def test_python_libsql_client_dbapi2_on_a_follower(follower: Member,
                                                   unique: Callable[[str], str]) -> None:
    libsql_client_flows.exercise_dbapi2(ws(follower), None, unique("k_c_dbapi"))


def test_python_libsql_on_a_follower(follower: Member, unique: Callable[[str], str]) -> None:
    opened: list[libsql.Connection] = []

    def connect() -> libsql.Connection:
        opened.append(libsql.connect(database=follower.url, auth_token=""))
        return opened[-1]

    try:
        libsql_flows.exercise_dbapi(connect, unique("k_d21"))
        libsql_flows.exercise_errors_and_counts(connect, unique("k_d22"))
    finally:
        for connection in opened:
            connection.close()


def test_turso_serverless_on_a_follower(follower: Member, unique: Callable[[str], str]) -> None:
    opened: list[turso_serverless.Connection] = []

    def connect() -> turso_serverless.Connection:
        opened.append(turso_serverless.connect(follower.url))
        return opened[-1]

    try:
        turso_flows.exercise_dbapi(connect, unique("k_e23"))
    finally:
        for connection in opened:
            connection.close()
