"""What only remote connections do: authentication, streams that expire or vanish with a
server restart, and connection failures. Real server processes throughout."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import edgelite
from tests.client.conftest import AuthServer
from tests.support.processes import ServerProcess, free_port, start_server, wait_healthy

REMOTE = ("http", "ws")


def remote_url(server: ServerProcess, transport: str) -> str:
    return server.url if transport == "http" else server.ws_url


# --- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", REMOTE)
def test_token_in_url_parameter(auth_server: AuthServer, transport: str, table: str) -> None:
    url = f"{remote_url(auth_server.process, transport)}?authToken={auth_server.token}"
    conn = edgelite.connect(url)
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    conn.commit()
    assert conn.execute(f"SELECT v FROM {table}").fetchall() == [(1,)]
    conn.close()


@pytest.mark.parametrize("transport", REMOTE)
def test_token_keyword(auth_server: AuthServer, transport: str) -> None:
    conn = edgelite.connect(remote_url(auth_server.process, transport),
                            auth_token=auth_server.token)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    conn.close()


@pytest.mark.parametrize("transport", REMOTE)
@pytest.mark.parametrize("token", [None, "not-a-jwt"])
def test_missing_or_bad_token_is_a_clear_operational_error(
        auth_server: AuthServer, transport: str, token: str | None) -> None:
    url = remote_url(auth_server.process, transport)
    with pytest.raises(edgelite.OperationalError, match="authentication failed") as failure:
        conn = edgelite.connect(url, auth_token=token)
        try:
            conn.execute("SELECT 1")  # HTTP connects lazily; WebSocket fails in connect()
        finally:
            conn.close()
    assert failure.value.code.startswith("AUTH_")


@pytest.mark.parametrize("transport", REMOTE)
def test_read_only_token_cannot_write(auth_server: AuthServer, transport: str,
                                      table: str) -> None:
    writer = edgelite.connect(remote_url(auth_server.process, transport),
                              auth_token=auth_server.token, isolation_level=None)
    writer.execute(f"CREATE TABLE {table} (v)")
    writer.close()
    reader = edgelite.connect(remote_url(auth_server.process, transport),
                              auth_token=auth_server.read_only_token, isolation_level=None)
    assert reader.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    with pytest.raises(edgelite.OperationalError):
        reader.execute(f"INSERT INTO {table} VALUES (1)")
    assert reader.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    reader.close()


# --- streams that go away ------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_lived_streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("expiry"),
                           extra_args=("--stream-idle-timeout-s", "0.5"), name="expiry")
    yield process
    process.stop()


def idle_past_expiry() -> None:
    time.sleep(1.5)  # the server's idle timeout is 0.5 s


def test_expired_stream_is_a_clear_error_and_the_next_call_recovers(
        short_lived_streams: ServerProcess, table: str) -> None:
    conn = edgelite.connect(short_lived_streams.url)
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    assert conn.in_transaction
    idle_past_expiry()
    with pytest.raises(edgelite.OperationalError, match="idle") as expired:
        conn.execute(f"INSERT INTO {table} VALUES (2)")
    assert "transaction was lost" in str(expired.value)
    assert not conn.in_transaction
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    conn.execute(f"INSERT INTO {table} VALUES (3)")
    conn.commit()
    assert conn.execute(f"SELECT v FROM {table}").fetchall() == [(3,)]
    conn.close()


def test_commit_after_expiry_reports_the_loss(short_lived_streams: ServerProcess,
                                              table: str) -> None:
    conn = edgelite.connect(short_lived_streams.url)
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    idle_past_expiry()
    with pytest.raises(edgelite.OperationalError, match="transaction was lost"):
        conn.commit()
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    conn.close()


def test_rollback_after_expiry_is_quiet(short_lived_streams: ServerProcess,
                                        table: str) -> None:
    conn = edgelite.connect(short_lived_streams.url)
    conn.execute(f"CREATE TABLE {table} (v)")
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    idle_past_expiry()
    conn.rollback()  # the server already rolled it back
    assert not conn.in_transaction
    conn.close()


def test_idle_autocommit_connection_is_unaffected(short_lived_streams: ServerProcess) -> None:
    conn = edgelite.connect(short_lived_streams.url)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    idle_past_expiry()  # no stream is held outside a transaction
    assert conn.execute("SELECT 2").fetchone() == (2,)
    conn.close()


def _restart(server: ServerProcess) -> ServerProcess:
    """Crash ``server`` (SIGKILL) and start a new process on the same port and data."""
    server.kill()
    args = [sys.executable, "-m", "edgelite.cli.main", "dev", "--port", str(server.port),
            "--data-dir", str(server.data_dir)]
    with open(server.log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    restarted = ServerProcess(process, server.port, server.data_dir, server.log_path)
    wait_healthy(restarted.url, process, server.log_path)
    return restarted


@pytest.mark.parametrize("transport", REMOTE)
def test_server_restart_loses_the_transaction_not_the_connection(
        tmp_path: Path, transport: str) -> None:
    server = start_server(tmp_path, name=f"restart-{transport}")
    try:
        conn = edgelite.connect(remote_url(server, transport))
        conn.execute("CREATE TABLE t (v)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        conn.execute("INSERT INTO t VALUES (2)")
        server = _restart(server)
        with pytest.raises(edgelite.OperationalError, match="transaction was lost"):
            conn.execute("INSERT INTO t VALUES (3)")
        assert conn.execute("SELECT v FROM t").fetchall() == [(1,)]
        conn.close()
    finally:
        server.stop()


def test_connection_refused(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    conn = edgelite.connect(url, timeout=1.0)
    with pytest.raises(edgelite.OperationalError, match="cannot connect"):
        conn.execute("SELECT 1")
    conn.close()
    with pytest.raises(edgelite.OperationalError, match="cannot connect"):
        edgelite.connect(f"ws://127.0.0.1:{free_port()}", timeout=1.0)


def test_wrong_path_is_not_found(server: ServerProcess) -> None:
    conn = edgelite.connect(server.url + "/no/such/prefix")
    with pytest.raises(edgelite.OperationalError, match="not found"):
        conn.execute("SELECT 1")
    conn.close()


@pytest.mark.parametrize("transport", REMOTE)
def test_unclosed_connection_does_not_block_exit(server: ServerProcess, transport: str,
                                                 table: str) -> None:
    """A script that never calls close() (like two of the seed snippets) still exits."""
    url = remote_url(server, transport)
    script = (f"import edgelite\nconn = edgelite.connect({url!r})\n"
              f"conn.execute('CREATE TABLE {table} (v)')\n"
              f"conn.execute('INSERT INTO {table} VALUES (1)')\n")  # left uncommitted
    completed = subprocess.run([sys.executable, "-W", "error", "-c", script],
                               capture_output=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    if transport == "ws":  # the socket is gone, so the server rolled back at once
        conn = edgelite.connect(url)
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        conn.execute(f"INSERT INTO {table} VALUES (2)")
        conn.commit()
        conn.close()
