"""Hypothesis strategies for every peer message, with realistic shapes."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from edgelite.protocol.peer.messages import (
    ForwardRequest,
    ForwardResponse,
    Hello,
    HelloAck,
    HelloReject,
    Ping,
    Pong,
    RpcFailure,
    RpcReply,
    RpcRequest,
)
from edgelite.raft import messages as rm
from edgelite.raft.types import ConfState, Entry, EntryKind, SnapshotMeta

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
SMALL = st.integers(min_value=0, max_value=1 << 40)
node_ids = st.text(min_size=1, max_size=12)
blobs = st.binary(max_size=2048)

entries = st.builds(Entry, term=SMALL, index=SMALL, kind=st.sampled_from(EntryKind), data=blobs)


@st.composite
def conf_states(draw: st.DrawFn) -> ConfState:
    voters = draw(st.frozensets(node_ids, max_size=5))
    learners = draw(st.frozensets(node_ids, max_size=3)) - voters
    return ConfState(voters, learners)


@st.composite
def snapshot_metas(draw: st.DrawFn) -> SnapshotMeta:
    index = draw(SMALL)
    term = 0 if index == 0 else draw(st.integers(min_value=1, max_value=1 << 40))
    return SnapshotMeta(index, term, draw(conf_states()), draw(SMALL), draw(st.text(max_size=40)))


@st.composite
def install_snapshots(draw: st.DrawFn) -> rm.InstallSnapshot:
    data = draw(blobs)
    return rm.InstallSnapshot(draw(node_ids), draw(node_ids), draw(U64), draw(snapshot_metas()),
                              draw(U64), len(data), data, draw(st.booleans()))


def _raft(kind: type, **extra: Any) -> st.SearchStrategy[Any]:
    return st.builds(kind, from_id=node_ids, to_id=node_ids, term=U64, **extra)


raft_messages = st.one_of(
    _raft(rm.AppendEntries, prev_log_index=U64, prev_log_term=U64,
          entries=st.lists(entries, max_size=8).map(tuple), commit=U64),
    _raft(rm.AppendEntriesResponse, success=st.booleans(), index=U64, hint_index=U64,
          hint_term=U64),
    _raft(rm.RequestVote, last_log_index=U64, last_log_term=U64, pre_vote=st.booleans(),
          transfer=st.booleans()),
    _raft(rm.RequestVoteResponse, granted=st.booleans(), pre_vote=st.booleans()),
    _raft(rm.Heartbeat, commit=U64, read_seq=U64),
    _raft(rm.HeartbeatResponse, read_seq=U64),
    install_snapshots(),
    _raft(rm.InstallSnapshotResponse, snapshot_id=st.text(max_size=40), next_offset=U64,
          done=st.booleans(), last_index=U64),
    _raft(rm.TimeoutNow),
    _raft(rm.ReadIndexRequest, context=blobs),
    _raft(rm.ReadIndexResponse, index=U64, context=blobs),
)

json_like = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
headers = st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5)
I64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
forward_requests = st.builds(
    ForwardRequest, request_id=I64, kind=st.text(max_size=16), namespace=st.text(max_size=30),
    identity=st.dictionaries(st.text(max_size=10), json_like, max_size=4), payload=blobs,
    headers=headers)
forward_responses = st.builds(ForwardResponse, request_id=I64,
                              status=st.integers(min_value=0, max_value=999),
                              payload=blobs, headers=headers)
rpc_bodies = forward_requests | forward_responses

cluster_messages = st.one_of(
    st.builds(Hello, protocol_version=st.integers(min_value=0, max_value=1 << 32),
              cluster_id=st.text(min_size=1, max_size=20), node_id=node_ids, peer_id=node_ids,
              nonce=st.binary(min_size=16, max_size=64)),
    st.builds(HelloAck, proof=st.binary(min_size=32, max_size=32)),
    st.builds(HelloReject, reason=st.text(max_size=20), detail=st.text(max_size=100)),
    st.builds(Ping, seq=U64),
    st.builds(Pong, seq=U64),
    forward_requests,
    forward_responses,
    st.builds(RpcRequest, rpc_id=U64, body=rpc_bodies),
    st.builds(RpcReply, rpc_id=U64, body=rpc_bodies),
    st.builds(RpcFailure, rpc_id=U64, message=st.text(max_size=200)),
)

peer_messages = raft_messages | cluster_messages
