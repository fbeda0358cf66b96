"""Routing a baton to the node that holds its stream, without its key."""

from __future__ import annotations

from edgelite.protocol.hrana import BatonCodec, baton_node_id


def test_node_id_is_readable_without_the_key() -> None:
    baton = BatonCodec(b"k" * 32, "n2").issue(7, 3)
    assert baton_node_id(baton) == "n2"
    assert baton_node_id(BatonCodec(b"k" * 32).issue(7, 3)) == ""


def test_garbage_has_no_node() -> None:
    for junk in ("", "nope", "!!!!", "A" * 10, None, 42):
        assert baton_node_id(junk) is None
