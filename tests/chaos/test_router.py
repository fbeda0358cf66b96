"""The peer relay of the chaos suite: it learns the dialler from the handshake frame and
holds (never drops) the bytes of a cut direction until the cut heals."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import msgspec
import pytest

from tests.chaos.router import PeerRouter

QUIET_S = 0.3  # how long "nothing arrives" is watched


def hello(node_id: str, peer_id: str) -> bytes:
    """A frame shaped like the peer handshake's Hello (tag 32, dialler id 4th)."""
    payload = msgspec.msgpack.encode([32, 1, "cluster", node_id, peer_id, b"\0" * 32])
    return struct.pack(">I", len(payload)) + payload


class Target:
    """A TCP server standing in for node ``b``: records what it receives, echoes
    nothing until told to send."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connection: socket.socket | None = None
        self.accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.connection, _ = self.listener.accept()
        self.accepted.set()

    def receive(self, size: int, timeout_s: float) -> bytes:
        assert self.connection is not None
        self.connection.settimeout(timeout_s)
        data = b""
        try:
            while len(data) < size:
                chunk = self.connection.recv(size - len(data))
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
        return data

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.listener.close()


@pytest.fixture
def relay() -> Iterator[tuple[PeerRouter, Target, socket.socket]]:
    router = PeerRouter()
    target = Target()
    port = router.route("b", target.port)
    dialler = socket.create_connection(("127.0.0.1", port), timeout=5)
    dialler.sendall(hello("a", "b"))
    assert target.accepted.wait(5)
    frame = hello("a", "b")
    assert target.receive(len(frame), 5) == frame  # the handshake frame is passed on
    try:
        yield router, target, dialler
    finally:
        dialler.close()
        target.close()
        router.stop()


def test_a_one_way_cut_holds_that_direction_only(
        relay: tuple[PeerRouter, Target, socket.socket]) -> None:
    router, target, dialler = relay
    router.cut("a", "b")
    dialler.sendall(b"held")
    assert target.receive(4, QUIET_S) == b""  # a -> b is held ...
    assert target.connection is not None
    target.connection.sendall(b"flows")  # ... b -> a is not
    dialler.settimeout(5)
    assert dialler.recv(5) == b"flows"
    router.heal()
    assert target.receive(4, 5) == b"held"  # delivered after the heal, not dropped


def test_a_partition_holds_both_directions_until_healed(
        relay: tuple[PeerRouter, Target, socket.socket]) -> None:
    router, target, dialler = relay
    router.partition(["a"], ["b"])
    dialler.sendall(b"up")
    assert target.connection is not None
    target.connection.sendall(b"down")
    assert target.receive(2, QUIET_S) == b""
    dialler.settimeout(QUIET_S)
    with pytest.raises(TimeoutError):
        dialler.recv(4)
    router.heal()
    assert target.receive(2, 5) == b"up"
    dialler.settimeout(5)
    assert dialler.recv(4) == b"down"


def test_rules_name_the_dialler_from_its_handshake(
        relay: tuple[PeerRouter, Target, socket.socket]) -> None:
    router, target, dialler = relay
    router.cut("c", "b")  # another node's link: this connection is a -> b
    dialler.sendall(b"free")
    assert target.receive(4, 5) == b"free"
