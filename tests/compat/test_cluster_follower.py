"""The compatibility scenarios against a *follower* of a three-node edgelite cluster.

Clients are unmodified and only know one URL; pointing them at a follower makes every
write, stream, baton, stored SQL text and cursor go through the follower's
forwarding to the leader. The assertions are the single-node ones (``js_checks`` and
the ``exercise_*`` flows of the Python client modules), so a client-visible difference
between a follower and a single node fails here. The cluster runs with JWT auth, so
the caller's identity must survive forwarding too (a read-only token cannot write
through a follower: scenarios 13 and 17).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import libsql
import pytest
import turso_serverless

from tests.compat import test_py_libsql as libsql_flows
from tests.compat import test_py_libsql_client as libsql_client_flows
from tests.compat import test_turso_serverless as turso_flows
from tests.compat.conftest import extra_server_logs
from tests.compat.expect import ok
from tests.compat.harness import AuthKeys, Target, run_node
from tests.compat.js_checks import CHECKS, RunContext, check_s13_auth, check_s17_ws_auth
from tests.support.cluster import Cluster, Member

pytestmark = pytest.mark.timeout(300)
JS_TRANSPORTS = ("http", "ws")


@pytest.fixture(scope="module")
def cluster(target: Target, auth_keys: AuthKeys,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if target.is_sqld:
        pytest.skip("cluster scenarios start `edgelite serve`; sqld is not a member of it")
    root = tmp_path_factory.mktemp("compat-cluster")
    key_file = auth_keys.write_key_file(root / "jwt_public.pem")
    started = Cluster.start(root / "members", size=3, wait=False,
                            extra_args=("--auth-jwt-key-file", str(key_file)))
    try:
        wait_writable(started, auth_keys.rw_token())
    except BaseException:
        started.close()
        raise
    for member in started.members.values():
        extra_server_logs[f"cluster {member.node_id}"] = member.log_path
    try:
        yield started
    finally:
        started.close()
        for member in started.members.values():
            extra_server_logs.pop(f"cluster {member.node_id}", None)


def wait_writable(cluster: Cluster, token: str, timeout_s: float = 60.0) -> None:
    """Like ``Cluster.wait_for_leader``, with a token (that helper probes without one)."""
    deadline = time.monotonic() + timeout_s
    body = {"requests": [{"type": "execute", "stmt": {"sql": "SELECT 1"}}, {"type": "close"}]}
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError, httpx.HTTPError):
            leader = cluster.leader(timeout_s=2)
            response = httpx.post(f"{leader.url}/v2/pipeline", json=body, timeout=5,
                                  headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"cluster not writable within {timeout_s}s:\n{cluster.logs()}")


@pytest.fixture(scope="module")
def follower(cluster: Cluster) -> Member:
    leader = cluster.leader()
    return next(m for m in cluster.members.values() if m.node_id != leader.node_id)


def ws(member: Member) -> str:
    return f"ws://127.0.0.1:{member.http_port}"


AUTH_SCENARIO = {"http": "s13_auth", "ws": "s17_ws_auth"}


@pytest.fixture(scope="module")
def js_runs(follower: Member, auth_keys: AuthKeys) -> dict[str, dict[str, Any]]:
    """One run of every common @libsql/client scenario per transport, plus the auth
    scenario of that transport, on the follower."""
    return {transport: run_node("libsql_client.mjs", {
        "url": follower.url if transport == "http" else ws(follower),
        "authToken": auth_keys.rw_token(), "tokens": auth_keys.script_tokens(),
        "prefix": f"k_{transport}_", "distinctSql": RunContext(transport, "").distinct_sql,
        "scenarios": [*CHECKS, AUTH_SCENARIO[transport]]}) for transport in JS_TRANSPORTS}


@pytest.mark.usefixtures("node")
@pytest.mark.parametrize("scenario", list(CHECKS))
@pytest.mark.parametrize("transport", JS_TRANSPORTS)
def test_libsql_client_on_a_follower(js_runs: dict[str, dict[str, Any]], transport: str,
                                     scenario: str) -> None:
    CHECKS[scenario](ok(js_runs[transport], scenario), RunContext(transport, f"k_{transport}_"))


@pytest.mark.usefixtures("node")
def test_libsql_client_auth_through_a_follower(js_runs: dict[str, dict[str, Any]]) -> None:
    check_s13_auth(ok(js_runs["http"], "s13_auth"))
    check_s17_ws_auth(ok(js_runs["ws"], "s17_ws_auth"))


async def test_python_libsql_client_on_a_follower(follower: Member, auth_keys: AuthKeys,
                                                  unique: Callable[[str], str]) -> None:
    token = auth_keys.rw_token()
    await libsql_client_flows.exercise_execute(ws(follower), token, unique("k_c_exec"))
    await libsql_client_flows.exercise_batch(ws(follower), token, unique("k_c_batch"))
    await libsql_client_flows.exercise_transactions(ws(follower), token, unique("k_c_tx"))
    await libsql_client_flows.exercise_http_v1(follower.url, token, unique("k_c_http"))


def test_python_libsql_client_dbapi2_on_a_follower(follower: Member, auth_keys: AuthKeys,
                                                   unique: Callable[[str], str]) -> None:
    libsql_client_flows.exercise_dbapi2(ws(follower), auth_keys.rw_token(),
                                        unique("k_c_dbapi"))


def test_python_libsql_on_a_follower(follower: Member, auth_keys: AuthKeys,
                                     unique: Callable[[str], str]) -> None:
    opened: list[libsql.Connection] = []

    def connect() -> libsql.Connection:
        opened.append(libsql.connect(database=follower.url, auth_token=auth_keys.rw_token()))
        return opened[-1]

    try:
        libsql_flows.exercise_dbapi(connect, unique("k_d21"))
        libsql_flows.exercise_errors_and_counts(connect, unique("k_d22"))
    finally:
        for connection in opened:
            connection.close()


def test_turso_serverless_on_a_follower(follower: Member, auth_keys: AuthKeys,
                                        unique: Callable[[str], str]) -> None:
    opened: list[turso_serverless.Connection] = []

    def connect() -> turso_serverless.Connection:
        opened.append(turso_serverless.connect(follower.url, auth_token=auth_keys.rw_token()))
        return opened[-1]

    try:
        turso_flows.exercise_dbapi(connect, unique("k_e23"))
    finally:
        for connection in opened:
            connection.close()
