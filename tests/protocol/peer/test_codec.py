"""The peer message codec: round trips for every message, validation, fuzzing."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgelite.errors import ProtocolError
from edgelite.protocol.peer.codec import (
    CLUSTER_MESSAGE_TYPES,
    RAFT_MESSAGE_TYPES,
    decode_peer_message,
    encode_peer_message,
)
from edgelite.protocol.peer.messages import ForwardRequest, ForwardResponse, RpcRequest
from edgelite.raft import messages as rm
from edgelite.raft.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    SnapshotMeta,
    encode_conf_change,
)
from tests.protocol.peer.strategies import json_like, peer_messages

CONF = ConfState(frozenset({"n1", "n2", "n3"}), frozenset({"edge-tokyo"}))
META = SnapshotMeta(index=90_210, term=7, conf_state=CONF, size_bytes=3 << 30,
                    id="snap-0000000007-0000090210")


def realistic_raft_messages() -> list[Any]:
    big = bytes(range(256)) * 4096  # a 1 MiB changeset
    entries = (
        Entry(7, 100, EntryKind.NOOP),
        Entry(7, 101, EntryKind.NORMAL, big),
        Entry(7, 102, EntryKind.CONF_CHANGE,
              encode_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "edge-tokyo"))),
        *(Entry(7, 103 + i, EntryKind.NORMAL, b"w" * (i * 37)) for i in range(50)),
    )
    chunk = bytes(reversed(range(256))) * 1024
    return [
        rm.AppendEntries("n1", "n2", 7, 99, 6, entries, 98),
        rm.AppendEntries("n1", "n3", 7, 152, 7, (), 152),
        rm.AppendEntriesResponse("n2", "n1", 7, True, 152),
        rm.AppendEntriesResponse("n3", "n1", 7, False, 99, hint_index=80, hint_term=5),
        rm.RequestVote("n2", "n3", 8, 152, 7, pre_vote=True),
        rm.RequestVote("n2", "n3", 8, 152, 7, transfer=True),
        rm.RequestVoteResponse("n3", "n2", 8, True, pre_vote=True),
        rm.Heartbeat("n1", "n2", 7, 150, read_seq=12),
        rm.HeartbeatResponse("n2", "n1", 7, read_seq=12),
        rm.InstallSnapshot("n1", "edge-tokyo", 7, META, 1 << 20, len(chunk), chunk, False),
        rm.InstallSnapshot("n1", "edge-tokyo", 7, META, (3 << 30) - 5, 5, b"tail!", True),
        rm.InstallSnapshot("n1", "edge-tokyo", 7, META, 0, 4096, b"", False),  # core's form
        rm.InstallSnapshotResponse("edge-tokyo", "n1", 7, META.id, 2 << 20, False),
        rm.InstallSnapshotResponse("edge-tokyo", "n1", 7, META.id, 3 << 30, True, 90_210),
        rm.TimeoutNow("n1", "n2", 7),
        rm.ReadIndexRequest("edge-tokyo", "n1", 7, b"read-ctx-42"),
        rm.ReadIndexResponse("n1", "edge-tokyo", 7, 152, b"read-ctx-42"),
    ]


@pytest.mark.parametrize("message", realistic_raft_messages(),
                         ids=lambda m: type(m).__name__)
def test_raft_messages_round_trip(message: Any) -> None:
    decoded = decode_peer_message(encode_peer_message(message))
    assert decoded == message
    assert type(decoded) is type(message)
    if isinstance(message, rm.AppendEntries):
        assert isinstance(decoded.entries, tuple)
        assert all(type(e.kind) is EntryKind for e in decoded.entries)


def test_every_raft_message_type_is_covered() -> None:
    covered = {type(m) for m in realistic_raft_messages()}
    assert covered == set(RAFT_MESSAGE_TYPES)
    assert set(RAFT_MESSAGE_TYPES) == set(rm.Message.__args__)


def test_large_entries_cost_little_beyond_their_data() -> None:
    data = b"x" * 1_000_000
    message = rm.AppendEntries("n1", "n2", 1, 0, 0, (Entry(1, 1, data=data),), 0)
    assert len(encode_peer_message(message)) < len(data) + 64


def test_forwarded_request_and_response_round_trip() -> None:
    request = ForwardRequest(
        request_id=(1 << 63) - 1, kind="pipeline", namespace="tenant-a",
        identity={"sub": "alice", "a": "rw", "p": {"rw": {"ns": ["tenant-a"]}}, "exp": None},
        payload=b'{"requests":[]}', headers={"x-edgelite-consistency": "strong"})
    response = ForwardResponse(request_id=request.request_id, status=200, payload=b"{}",
                               headers={"content-type": "application/json"})
    for message in (request, response, RpcRequest(5, request)):
        assert decode_peer_message(encode_peer_message(message)) == message


def test_wire_layout_is_pinned() -> None:
    # tag, then the fields in order: changing this breaks mixed-version clusters
    assert encode_peer_message(rm.Heartbeat("a", "b", 3, 4, 5)) == \
        b"\x96\x05\xa1a\xa1b\x03\x04\x05"
    entry_message = rm.AppendEntries("a", "b", 1, 0, 0, (Entry(1, 1, EntryKind.NOOP),), 0)
    assert msgspec.msgpack.decode(encode_peer_message(entry_message)) == \
        [1, "a", "b", 1, 0, 0, [[1, 1, 1, b""]], 0]


def test_tags_are_unique() -> None:
    tags = [msgspec.msgpack.decode(encode_peer_message(m))[0]
            for m in realistic_raft_messages()]
    assert len(set(tags)) == len(RAFT_MESSAGE_TYPES)
    cluster_tags = [t.__struct_config__.tag for t in CLUSTER_MESSAGE_TYPES]
    assert len(set(cluster_tags)) == len(cluster_tags)
    assert not set(cluster_tags) & set(tags)


@pytest.mark.parametrize(("wire", "needle"), [
    ([5, "a", "b", -1, 4, 5], ">= 0"),                      # negative term
    ([5, "", "b", 3, 4, 5], "length >= 1"),                   # empty node id
    ([5, "a", "b", 3, 4], "length"),                          # missing field
    ([99, "a"], "Invalid value 99"),                           # unknown tag
    ([1, "a", "b", 1, 0, 0, [[1, 1, 7, b""]], 0], "<= 2"),    # unknown entry kind
    ([7, "a", "b", 1, [5, 0, [[], []], 0, "s"], 0, 1, b"", False], "snapshot index 5"),
    ([7, "a", "b", 1, [5, 1, [["x"], ["x"]], 0, "s"], 0, 1, b"", False], "both voter"),
    ([7, "a", "b", 1, [5, 1, [[], []], 0, "s"], 0, 2, b"abc", False], "carries 3 bytes"),
    ([33, b"short"], "length >= 32"),                          # HelloAck proof size
    ([32, 1, "c", "a", "b", b"tiny"], "length >= 16"),       # Hello nonce size
    ([48, 1, [5, "a", "b", 3, 4, 5]], "Invalid value 5"),     # raft message as RPC body
])
def test_invalid_messages_raise_protocol_error(wire: list[Any], needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle):
        decode_peer_message(msgspec.msgpack.encode(wire))


def test_encoding_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ProtocolError, match="not a peer message"):
        encode_peer_message(object())  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="cannot encode Heartbeat"):
        encode_peer_message(rm.Heartbeat("a", "b", 1 << 64, 0))
    with pytest.raises(ProtocolError, match="cannot encode ForwardRequest"):
        encode_peer_message(ForwardRequest(1, "k", "n", {"x": object()}, b"", {}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(peer_messages)
def test_every_message_round_trips(message: Any) -> None:
    assert decode_peer_message(encode_peer_message(message)) == message


@settings(max_examples=1000)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_peer_message(data)


@settings(max_examples=300)  # 20,000 examples ran clean once; CI keeps a quick sample
@given(tag=st.integers(min_value=0, max_value=60), fields=st.lists(json_like, max_size=10))
def test_plausible_arrays_raise_only_protocol_error(tag: int, fields: list[Any]) -> None:
    try:
        message = decode_peer_message(msgspec.msgpack.encode([tag, *fields]))
    except ProtocolError:
        return
    # whatever decodes must encode back to something that decodes to the same value
    assert decode_peer_message(encode_peer_message(message)) == message


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(message=peer_messages, data=st.data())
def test_corrupted_valid_messages_raise_only_protocol_error(message: Any,
                                                           data: st.DataObject) -> None:
    encoded = bytearray(encode_peer_message(message))
    flips = data.draw(st.lists(st.integers(0, len(encoded) - 1), min_size=1, max_size=4))
    for position in flips:
        encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    for candidate in (bytes(encoded), bytes(encoded[:cut])):
        with contextlib.suppress(ProtocolError):
            decode_peer_message(candidate)


def test_deep_nesting_is_a_protocol_error() -> None:
    # a ForwardRequest whose identity holds 100,000 nested arrays
    payload = b"\x97\x28\x01\xa1k\xa1n\x81\xa1i" + b"\x91" * 100_000 + b"\x90\xc4\x00\x80"
    with pytest.raises(ProtocolError):
        decode_peer_message(payload)


def test_decoded_values_are_the_core_types() -> None:
    meta = decode_peer_message(encode_peer_message(realistic_raft_messages()[9])).meta
    assert isinstance(meta, SnapshotMeta)
    assert isinstance(meta.conf_state.voters, frozenset)
    assert dataclasses.is_dataclass(meta)
