"""Shared pieces of the transport tests: transports on 127.0.0.1 that a test makes and
the fixture stops, an inbox per node, bounded waits, and hand-driven raw peers.

Waits are bounded polls for a behaviour ("eventually delivered"), never timing claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import random
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgelite.cluster.transport import PeerTransport, TransportLimits
from edgelite.cluster.transport.connection import run_handshake
from edgelite.protocol.peer import (
    ForwardRequest,
    ForwardResponse,
    FrameDecoder,
    Handshake,
    HandshakeRole,
    PeerMessage,
    RpcBody,
    decode_peer_message,
    encode_frame,
    encode_peer_message,
)
from edgelite.raft.messages import Heartbeat

SECRET = b"cluster-secret-for-transport-tests"
WAIT_S = 10.0
FAST = TransportLimits(connect_timeout_s=1.0, handshake_timeout_s=1.0, backoff_initial_s=0.01,
                       backoff_max_s=0.2, ping_interval_s=0.1, idle_timeout_s=1.0)


class Inbox:
    """Everything one transport delivered, with a way to wait for more."""

    def __init__(self) -> None:
        self.items: list[tuple[str, PeerMessage]] = []
        self._changed = asyncio.Event()

    def __call__(self, peer_id: str, message: PeerMessage) -> None:
        self.items.append((peer_id, message))
        self._changed.set()

    async def wait_for(self, count: int) -> list[tuple[str, PeerMessage]]:
        async with asyncio.timeout(WAIT_S):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"not within {WAIT_S} s: {what}")


class Cluster:
    """Transports made by one test; all stopped at the end."""

    def __init__(self) -> None:
        self.transports: list[PeerTransport] = []
        self.inboxes: dict[str, Inbox] = {}

    async def node(self, node_id: str, *, port: int = 0, secret: bytes = SECRET,
                   **options: Any) -> PeerTransport:
        inbox = self.inboxes.setdefault(node_id, Inbox())
        options.setdefault("limits", FAST)
        options.setdefault("rng", random.Random(7))
        handler = options.pop("on_message", inbox)
        transport = PeerTransport(node_id, secret, "127.0.0.1", port, handler, **options)
        await transport.start()
        self.transports.append(transport)
        return transport

    async def pair(self, **options: Any) -> tuple[PeerTransport, PeerTransport]:
        a = await self.node("a", **options)
        b = await self.node("b", **options)
        a.set_peer("b", *b.listen_address)
        b.set_peer("a", *a.listen_address)
        return a, b

    async def stop(self) -> None:
        for transport in self.transports:
            await transport.stop()


def heartbeat(frm: str, to: str, commit: int) -> Heartbeat:
    return Heartbeat(frm, to, term=3, commit=commit)


async def raw_dial(address: tuple[str, int], *, node_id: str = "x", peer_id: str = "b",
                   secret: bytes = SECRET, nonce: bytes | None = None
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-driven authenticated connection, for sending what a transport never would."""
    reader, writer = await asyncio.open_connection(*address)
    handshake = Handshake(HandshakeRole.DIALER, secret=secret, cluster_id="edgelite",
                          node_id=node_id, nonce=nonce or random.randbytes(32),
                          expected_peer_id=peer_id)
    await run_handshake(handshake, reader, writer)
    return reader, writer


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(WAIT_S):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    return True


async def recorded_dialer_frames(address: tuple[str, int]) -> list[bytes]:
    """Complete one genuine handshake by hand; the frames the dialer sent, as on the wire."""
    reader, writer = await asyncio.open_connection(*address)
    handshake = Handshake(HandshakeRole.DIALER, secret=SECRET, cluster_id="edgelite",
                          node_id="x", nonce=random.randbytes(32), expected_peer_id="b")
    sent = [encode_frame(encode_peer_message(m)) for m in handshake.start()]
    writer.write(sent[0])
    while not handshake.done:
        size = int.from_bytes(await reader.readexactly(4), "big")
        replies = handshake.receive(decode_peer_message(await reader.readexactly(size)))
        for message in replies:
            sent.append(encode_frame(encode_peer_message(message)))
            writer.write(sent[-1])
    writer.close()
    return sent


async def replay(address: tuple[str, int], frames: list[bytes]) -> list[PeerMessage]:
    """Send recorded frames on a new connection; what came back before the close."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"".join(frames))
    received = FrameDecoder(1 << 16)
    messages: list[PeerMessage] = []
    async with asyncio.timeout(WAIT_S):
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                messages.extend(decode_peer_message(f) for f in received.feed(data))
    writer.close()
    return messages


def forward(request_id: int, payload: bytes = b"q") -> ForwardRequest:
    return ForwardRequest(request_id, "pipeline", "db", {"sub": "alice"}, payload, {})


async def echo_handler(peer_id: str, body: RpcBody) -> RpcBody:
    assert isinstance(body, ForwardRequest)
    return ForwardResponse(body.request_id, 200, peer_id.encode() + b":" + body.payload, {})


def certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: x509.Name | None, issuer_key: Any, key: Any,
              is_ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (x509.CertificateBuilder().subject_name(name)
                   .issuer_name(issuer or name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True))
        if not is_ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("edgelite test CA", None, ca_key, ca_key, True)
    node_key = ec.generate_private_key(ec.SECP256R1())
    node = build("node", ca.subject, ca_key, node_key, False)
    paths = {"ca": directory / "ca.pem", "cert": directory / "node.pem",
             "key": directory / "node.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(node.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(node_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return paths


def tls_contexts(paths: dict[str, Path], *, client_cert: bool = True
              ) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(paths["ca"]))
    server.load_cert_chain(paths["cert"], paths["key"])
    server.verify_mode = ssl.CERT_REQUIRED  # mutual TLS
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(paths["ca"]))
    if client_cert:
        client.load_cert_chain(paths["cert"], paths["key"])
    return server, client
