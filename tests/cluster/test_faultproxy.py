"""The fault-injecting proxy itself, driven from plain synchronous code."""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faultproxy import Direction, FaultNetwork, FaultProxy, Mode

ROOT = Path(__file__).resolve().parents[2]
QUIET_S = 0.3  # how long "nothing arrives" is watched; only ever a lower bound
WAIT_S = 5.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: EchoServer = self.server  # type: ignore[assignment]
        while data := self.request.recv(65536):
            with server.lock:
                server.received.extend(data)
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.received = bytearray()
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def total(self) -> int:
        with self.lock:
            return len(self.received)

    def total_reaches(self, expected: int) -> int:
        """The byte count once it reached ``expected`` (or after WAIT_S, whatever it is)."""
        deadline = time.monotonic() + WAIT_S
        while self.total() < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.total()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.port, name="echo") as running:
        yield running


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=WAIT_S)


def recv_exactly(sock: socket.socket, size: int, timeout_s: float = WAIT_S) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def nothing_arrives(sock: socket.socket) -> bool:
    """True if neither bytes nor an end of stream arrive within QUIET_S."""
    sock.settimeout(QUIET_S)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    return False


def closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(WAIT_S)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_forwards_both_ways(proxy: FaultProxy, echo: EchoServer) -> None:
    with connect(proxy) as sock:
        payload = bytes(range(256)) * 1000
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
    stats = proxy.stats()
    assert stats["connections_accepted"] == 1
    assert stats["upstream_bytes_forwarded"] == len(payload) == echo.total()


def test_partition_drop_loses_bytes_and_heal_restores_the_link(proxy: FaultProxy,
                                                              echo: EchoServer) -> None:
    with connect(proxy) as sock:
        proxy.partition()
        sock.sendall(b"lost")
        assert nothing_arrives(sock)
        assert echo.total() == 0
        proxy.heal()
        sock.sendall(b"found")
        assert recv_exactly(sock, 5) == b"found"  # "lost" never arrives
    assert proxy.stats()["upstream_bytes_dropped"] == 4


def test_partition_hold_delivers_the_held_bytes_after_heal(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.partition(mode=Mode.HOLD)
        sock.sendall(b"held")
        assert nothing_arrives(sock)
        proxy.heal()
        assert recv_exactly(sock, 4) == b"held"


def test_hold_applies_backpressure_to_the_sender(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.partition(Direction.UPSTREAM, Mode.HOLD)
        sock.setblocking(False)
        sent = 0
        with pytest.raises(BlockingIOError):
            for _ in range(10_000):  # at most 640 MiB: the buffers fill long before
                sent += sock.send(b"x" * 65536)
        proxy.heal()
        assert sent > 0


def test_one_way_partitions(proxy: FaultProxy, echo: EchoServer) -> None:
    with connect(proxy) as sock:
        proxy.partition(Direction.DOWNSTREAM)
        sock.sendall(b"ping")
        assert echo.total_reaches(4) == 4  # the request got through...
        assert nothing_arrives(sock)  # ...only the reply was cut
        proxy.heal()
        proxy.partition(Direction.UPSTREAM)
        sock.sendall(b"pong")
        assert nothing_arrives(sock)
        assert echo.total() == 4  # a lower bound: the cut held it for QUIET_S at least


def test_delay_holds_each_chunk_back(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.delay(1000, Direction.UPSTREAM)
        sock.sendall(b"slow")
        assert nothing_arrives(sock)  # a lower bound only: at least QUIET_S < 1 s late
        assert recv_exactly(sock, 4) == b"slow"
        proxy.delay(0)
        sock.sendall(b"fast")
        assert recv_exactly(sock, 4) == b"fast"


def test_pause_and_resume(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.pause()
        sock.sendall(b"zz")
        assert nothing_arrives(sock)
        proxy.resume()
        assert recv_exactly(sock, 2) == b"zz"


def test_reset_closes_current_connections_only(proxy: FaultProxy) -> None:
    with connect(proxy) as old:
        old.sendall(b"a")
        assert recv_exactly(old, 1) == b"a"
        proxy.reset()
        assert closed_by_peer(old)
    with connect(proxy) as new:
        new.sendall(b"b")
        assert recv_exactly(new, 1) == b"b"
    assert proxy.stats()["connections_accepted"] == 2


def test_a_close_waits_for_the_partition_to_heal() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            FaultProxy("127.0.0.1", listener.getsockname()[1]) as link, \
            connect(link) as sock:
        listener.settimeout(WAIT_S)
        accepted, _ = listener.accept()
        link.partition(Direction.DOWNSTREAM)
        accepted.close()  # the target hangs up while its replies are cut off
        assert nothing_arrives(sock)  # no EOF through the partition
        link.heal()
        assert closed_by_peer(sock)


def test_target_down_closes_the_dialler(echo: EchoServer) -> None:
    port = echo.port
    echo.shutdown()
    echo.server_close()
    with FaultProxy("127.0.0.1", port) as broken, connect(broken) as sock:
        assert closed_by_peer(sock)


def test_network_cuts_one_direction_on_either_connection(echo: EchoServer) -> None:
    targets = {"a": ("127.0.0.1", echo.port), "b": ("127.0.0.1", echo.port)}
    # a dials b: a's bytes go upstream through proxy(a, b); b dials a: a's bytes come
    # back downstream through proxy(b, a)
    with FaultNetwork(targets) as net, \
            socket.create_connection(net.address("a", "b"), timeout=WAIT_S) as a_to_b, \
            socket.create_connection(net.address("b", "a"), timeout=WAIT_S) as b_to_a:
        net.cut("a", "b")
        a_to_b.sendall(b"1")  # a -> b: cut
        assert nothing_arrives(a_to_b)
        b_to_a.sendall(b"2")  # b -> a reaches the echo, but the echo back is a -> b
        assert echo.total_reaches(1) == 1
        assert nothing_arrives(b_to_a)
        net.heal()
        a_to_b.sendall(b"3")
        assert recv_exactly(a_to_b, 1) == b"3"


def test_network_partition_isolates_a_group(echo: EchoServer) -> None:
    nodes = {name: ("127.0.0.1", echo.port) for name in ("a", "b", "c")}
    with FaultNetwork(nodes) as net:
        net.partition({"c"})
        for a, b in (("a", "b"), ("b", "a")):
            with socket.create_connection(net.address(a, b), timeout=WAIT_S) as sock:
                sock.sendall(b"k")
                assert recv_exactly(sock, 1) == b"k"
        for a, b in (("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")):
            with socket.create_connection(net.address(a, b), timeout=WAIT_S) as sock:
                sock.sendall(b"k")
                assert nothing_arrives(sock)


def test_command_line_proxy_with_control_port(echo: EchoServer) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.faultproxy", "--link",
         f"e=0:127.0.0.1:{echo.port}", "--control", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ports = json.loads(process.stdout.readline())
        with socket.create_connection(("127.0.0.1", ports["control"]), timeout=WAIT_S) as ctl, \
                socket.create_connection(("127.0.0.1", ports["links"]["e"]),
                                         timeout=WAIT_S) as sock:
            control = ctl.makefile("rw")

            def command(line: str) -> dict[str, object]:
                control.write(line + "\n")
                control.flush()
                return dict(json.loads(control.readline()))

            assert command("e partition both drop") == {"ok": True}
            sock.sendall(b"gone")
            assert nothing_arrives(sock)
            assert command("e heal") == {"ok": True}
            sock.sendall(b"back")
            assert recv_exactly(sock, 4) == b"back"
            stats = command("e stats")["stats"]
            assert isinstance(stats, dict) and stats["upstream_bytes_dropped"] == 4
            assert command("nope heal")["ok"] is False
            assert command("e partition sideways")["ok"] is False
    finally:
        process.terminate()
        assert process.wait(WAIT_S) == 0
        assert process.stdout is not None
        process.stdout.close()
