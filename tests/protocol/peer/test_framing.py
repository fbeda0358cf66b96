"""Length-prefixed frames: encoding, incremental decoding, limits."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelite.errors import ProtocolError
from edgelite.protocol.peer.framing import FRAME_HEADER_BYTES, FrameDecoder, encode_frame


def test_frame_is_big_endian_length_then_payload() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"x" * 300)[:4] == struct.pack(">I", 300)


def test_encode_refuses_empty_and_oversized_payloads() -> None:
    with pytest.raises(ProtocolError, match="empty"):
        encode_frame(b"")
    with pytest.raises(ProtocolError, match="exceeds frame_bytes_max=4"):
        encode_frame(b"12345", frame_bytes_max=4)
    assert encode_frame(b"1234", frame_bytes_max=4) == b"\x00\x00\x00\x041234"


def test_decoder_returns_frames_split_across_and_within_chunks() -> None:
    decoder = FrameDecoder(100)
    stream = encode_frame(b"one") + encode_frame(b"two") + encode_frame(b"three")
    assert decoder.feed(stream[:2]) == []
    assert decoder.feed(stream[2:9]) == [b"one"]
    assert decoder.buffered_bytes == 2
    assert decoder.feed(stream[9:]) == [b"two", b"three"]
    assert decoder.buffered_bytes == 0
    decoder.check_eof()


def test_oversized_header_is_rejected_before_its_payload_arrives() -> None:
    decoder = FrameDecoder(10)
    with pytest.raises(ProtocolError, match="11 bytes exceeds frame_bytes_max=10"):
        decoder.feed(struct.pack(">I", 11))
    # poisoned: the stream has lost its framing, later bytes are never trusted
    with pytest.raises(ProtocolError):
        decoder.feed(encode_frame(b"ok"))
    with pytest.raises(ProtocolError):
        decoder.check_eof()


def test_oversized_frame_after_good_frames_in_one_chunk_still_raises() -> None:
    decoder = FrameDecoder(10)
    with pytest.raises(ProtocolError):
        decoder.feed(encode_frame(b"fine") + struct.pack(">I", 1 << 31) + b"x")


def test_zero_length_header_is_malformed() -> None:
    with pytest.raises(ProtocolError, match="zero length"):
        FrameDecoder(10).feed(b"\x00\x00\x00\x00")


def test_truncated_stream_is_reported_at_eof() -> None:
    decoder = FrameDecoder(10)
    decoder.feed(encode_frame(b"abcdef")[:-1])
    with pytest.raises(ProtocolError, match="inside a frame"):
        decoder.check_eof()


def test_limit_can_be_raised_after_the_handshake() -> None:
    decoder = FrameDecoder(8)
    head = encode_frame(b"a" * 20)
    with pytest.raises(ProtocolError):
        FrameDecoder(8).feed(head)
    decoder.feed(encode_frame(b"small")[:3])
    decoder.frame_bytes_max = 64
    assert decoder.feed(encode_frame(b"small")[3:] + head) == [b"small", b"a" * 20]
    with pytest.raises(ValueError):
        decoder.frame_bytes_max = 0


def test_buffer_never_holds_more_than_one_incomplete_frame() -> None:
    decoder = FrameDecoder(1000)
    frame = encode_frame(b"z" * 1000)
    for byte_index in range(len(frame) - 1):
        assert decoder.feed(frame[byte_index : byte_index + 1]) == []
        assert decoder.buffered_bytes == byte_index + 1 <= FRAME_HEADER_BYTES + 999
    assert decoder.feed(frame[-1:]) == [b"z" * 1000]


@settings(max_examples=200)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_any_chunking_yields_the_same_frames(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder(300)
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        out.extend(decoder.feed(memoryview(stream)[start:end]))
    assert out == payloads
    decoder.check_eof()


@settings(max_examples=300)
@given(data=st.binary(max_size=200), limit=st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes, limit: int) -> None:
    decoder = FrameDecoder(limit)
    try:
        for frame in decoder.feed(data):
            assert 1 <= len(frame) <= limit
        assert decoder.buffered_bytes < FRAME_HEADER_BYTES + limit
    except ProtocolError:
        pass
