"""Batons and the stream table: forgery, reuse, concurrency, expiry, bounds."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgelite.errors import BatonError, ConfigError, OverloadedError, StreamExpiredError
from edgelite.protocol.hrana.batons import BatonCodec, BatonFields
from edgelite.protocol.hrana.stream_table import StreamState, StreamTable

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def _table(**overrides: object) -> StreamTable:
    options: dict[str, object] = {"idle_timeout_s": 10.0, "streams_max": 4}
    options.update(overrides)
    return StreamTable(BatonCodec(KEY, "n1"), **options)  # type: ignore[arg-type]


# --- codec --------------------------------------------------------------------------------


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.text(max_size=20))
def test_issue_then_parse(stream_id: int, seq: int, node_id: str) -> None:
    codec = BatonCodec(KEY, node_id)
    baton = codec.issue(stream_id, seq)
    assert set(baton) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert codec.parse(baton) == BatonFields(stream_id, seq, node_id)


def test_batons_of_another_key_are_invalid() -> None:
    baton = BatonCodec(OTHER_KEY).issue(1, 0)
    with pytest.raises(BatonError, match=r"^Received an invalid baton$"):
        BatonCodec(KEY).parse(baton)


@given(st.integers(0, 200), st.integers(0, 7))
def test_any_flipped_bit_is_detected(position: int, bit: int) -> None:
    codec = BatonCodec(KEY, "node")
    raw = bytearray(base64.urlsafe_b64decode(codec.issue(7, 3) + "=="))
    raw[position % len(raw)] ^= 1 << bit
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(BatonError, match="invalid baton"):
        codec.parse(forged)


@pytest.mark.parametrize(
    "garbage",
    ["", "x", "abc", "@@@@", "a" * 10_000, "l1VJYd", "OR+ABR", "AAAA====", 42, None, b"abc"],
)
def test_garbled_batons_are_invalid(garbage: object) -> None:
    with pytest.raises(BatonError, match="invalid baton"):
        BatonCodec(KEY).parse(garbage)


@given(st.text(max_size=100))
def test_arbitrary_text_is_never_a_valid_baton(text: str) -> None:
    with pytest.raises(BatonError):
        BatonCodec(KEY).parse(text)


def test_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        BatonCodec(b"short")
    with pytest.raises(ConfigError, match="longer than 255"):
        BatonCodec(KEY, "n" * 256)


# --- stream table -------------------------------------------------------------------------


def test_baton_chain_of_an_interactive_transaction() -> None:
    table = _table()
    stream_id = table.open(now_s=0.0)
    assert table.state(stream_id) is StreamState.BUSY
    first = table.release(stream_id, now_s=1.0)
    assert table.resume(first, now_s=2.0) == stream_id
    second = table.release(stream_id, now_s=3.0)
    assert second != first
    assert table.resume(second, now_s=4.0) == stream_id
    table.close(stream_id)
    assert stream_id not in table and len(table) == 0
    table.check_invariants()


def test_reused_baton_is_rejected() -> None:
    table = _table()
    stream_id = table.open(0.0)
    first = table.release(stream_id, 0.0)
    table.resume(first, 1.0)
    table.release(stream_id, 1.0)
    with pytest.raises(BatonError, match=r"^Received a baton that has already been used$"):
        table.resume(first, 2.0)


def test_baton_used_while_its_stream_is_busy_is_rejected() -> None:
    table = _table()
    stream_id = table.open(0.0)
    baton = table.release(stream_id, 0.0)
    table.resume(baton, 1.0)
    with pytest.raises(BatonError, match="already been used"):
        table.resume(baton, 1.5)


def test_forged_and_foreign_batons_are_rejected() -> None:
    table = _table()
    stream_id = table.open(0.0)
    table.release(stream_id, 0.0)
    with pytest.raises(BatonError, match=r"^Received an invalid baton$"):
        table.resume(BatonCodec(OTHER_KEY, "n1").issue(stream_id, 0), 1.0)
    with pytest.raises(BatonError, match="belongs to node 'n2'"):
        table.resume(BatonCodec(KEY, "n2").issue(stream_id, 0), 1.0)
    with pytest.raises(BatonError, match=r"^Received an invalid baton$"):
        table.resume(BatonCodec(KEY, "n1").issue(stream_id + 100, 0), 1.0)


def test_baton_of_a_closed_stream_is_invalid() -> None:
    table = _table()
    stream_id = table.open(0.0)
    baton = table.release(stream_id, 0.0)
    table.close(stream_id)
    with pytest.raises(BatonError, match="invalid baton"):
        table.resume(baton, 1.0)


def test_idle_streams_expire_and_are_remembered_for_a_while() -> None:
    table = _table(idle_timeout_s=10.0, expired_memory_s=300.0)
    stream_id = table.open(0.0)
    baton = table.release(stream_id, 0.0)
    assert table.expire(10.0) == []
    assert table.expire(10.5) == [stream_id]
    assert table.expire(11.0) == []
    with pytest.raises(StreamExpiredError, match="expired due to inactivity") as caught:
        table.resume(baton, 12.0)
    assert caught.value.code == "STREAM_EXPIRED"
    assert table.expire(310.0) == []
    with pytest.raises(StreamExpiredError):
        table.resume(baton, 310.0)
    table.expire(311.0)
    with pytest.raises(BatonError, match="invalid baton"):
        table.resume(baton, 311.0)
    table.check_invariants()


def test_expiry_is_checked_on_resume_and_reported_by_the_next_sweep() -> None:
    table = _table()
    stream_id = table.open(0.0)
    baton = table.release(stream_id, 0.0)
    with pytest.raises(StreamExpiredError):
        table.resume(baton, 10.5)
    assert stream_id not in table
    assert table.expire(10.6) == [stream_id]


def test_busy_streams_never_expire() -> None:
    table = _table()
    stream_id = table.open(0.0)
    assert table.expire(1_000.0) == []
    baton = table.release(stream_id, 1_000.0)
    assert table.resume(baton, 1_005.0) == stream_id


def test_each_request_resets_the_idle_timer() -> None:
    table = _table()
    stream_id = table.open(0.0)
    baton = table.release(stream_id, 0.0)
    for step in range(1, 20):
        table.resume(baton, step * 9.0)
        baton = table.release(stream_id, step * 9.0)
        assert table.expire(step * 9.0 + 1) == []


def test_open_streams_are_bounded_and_ids_never_repeat() -> None:
    table = _table(streams_max=2, first_stream_id=100)
    first, second = table.open(0.0), table.open(0.0)
    assert (first, second) == (100, 101)
    with pytest.raises(OverloadedError, match="streams_max=2"):
        table.open(0.0)
    table.close(first)
    assert table.open(0.0) == 102


def test_expired_memory_is_bounded() -> None:
    table = _table(streams_max=10, expired_max=3)
    batons = []
    for _ in range(5):
        stream_id = table.open(0.0)
        batons.append(table.release(stream_id, 0.0))
    assert len(table.expire(11.0)) == 5
    table.check_invariants()
    for baton in batons[:2]:
        with pytest.raises(BatonError):
            table.resume(baton, 12.0)
    for baton in batons[2:]:
        with pytest.raises(StreamExpiredError):
            table.resume(baton, 12.0)


@given(
    st.lists(st.sampled_from(["open", "release", "resume", "reuse", "close", "wait"]), max_size=40)
)
def test_random_operation_sequences_keep_the_invariants(operations: list[str]) -> None:
    table = _table(streams_max=3, idle_timeout_s=5.0, expired_max=2)
    now = 0.0
    busy: list[int] = []
    batons: dict[int, str] = {}
    used: list[str] = []
    for operation in operations:
        if operation == "open" and len(table) < 3:
            busy.append(table.open(now))
        elif operation == "release" and busy:
            stream_id = busy.pop()
            batons[stream_id] = table.release(stream_id, now)
        elif operation == "resume" and batons:
            stream_id, baton = batons.popitem()
            try:
                assert table.resume(baton, now) == stream_id
                busy.append(stream_id)
            except StreamExpiredError:
                assert stream_id not in table
            used.append(baton)
        elif operation == "reuse" and used:
            with pytest.raises((BatonError, StreamExpiredError)):
                table.resume(used[-1], now)
        elif operation == "close" and busy:
            table.close(busy.pop())
        elif operation == "wait":
            now += 3.0
            for stream_id in table.expire(now):
                batons.pop(stream_id, None)
        table.check_invariants()
