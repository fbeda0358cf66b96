"""A small runner for scripted Raft interaction tests (etcd-io/raft's datadriven style).

A script is a sequence of blocks separated by blank lines::

    # optional comment lines
    command arg arg key=value
    ----
    expected output (never contains a blank line)

The runner executes each command against an in-memory :class:`Cluster` and compares
what it prints (core log lines at INFO and above, plus the command's own output) with
the expected text. ``rewrite=True`` regenerates the expected outputs instead.

Commands (node ids are strings such as ``1``):

- ``add-nodes N [voters=(1,2,3)] [learners=(4)] [election=10] [heartbeat=1]
  [prevote=true] [checkquorum=true] [inflight=256] [msgbytes=1048576]``: the first call
  founds a cluster of nodes ``1..N`` (all voters unless told); later calls add ``N`` empty
  nodes that join through the leader.
- ``campaign ID``; ``tick ID [COUNT]``; ``tick-election ID``; ``tick-heartbeat ID``
- ``process-ready [ID ...]``; ``deliver-msgs [ID ...] [drop=true]``; ``stabilize``
- ``partition (1) (2,3)``; ``isolate ID``; ``heal``; ``restart ID``
- ``propose ID DATA``; ``propose-batch ID DATA ...``; ``conf-change ID KIND NODE``
- ``transfer-leader FROM TO``; ``read-index ID CTX``; ``compact ID``
- ``report-unreachable ID PEER``; ``status ID``; ``log ID``; ``raft-state``; ``applied ID``
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgelite.errors import EdgeliteError, NotLeaderError
from edgelite.raft import ConfChange, ConfChangeKind, Role
from edgelite.raft.describe import (
    describe_entry,
    describe_hard_state,
    describe_message,
    describe_ready,
)
from edgelite.raft.testing import Cluster

__all__ = ["Block", "parse_script", "run_script"]

SEPARATOR = "----"
_CONFIG_KEYS = {
    "election": ("election_timeout_ticks", int),
    "heartbeat": ("heartbeat_interval_ticks", int),
    "prevote": ("pre_vote", lambda text: text == "true"),
    "checkquorum": ("check_quorum", lambda text: text == "true"),
    "inflight": ("max_inflight_messages", int),
    "msgbytes": ("max_message_bytes", int),
}


@dataclass
class Block:
    comments: list[str]
    command: str
    expected: str


def parse_script(text: str) -> list[Block]:
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = chunk.splitlines()
        comments = [line for line in lines if line.startswith("#")]
        rest = [line for line in lines if not line.startswith("#")]
        if not rest:
            raise ValueError(f"block without a command: {chunk!r}")
        if SEPARATOR in rest:
            cut = rest.index(SEPARATOR)
            command, expected = " ".join(rest[:cut]), "\n".join(rest[cut + 1 :])
        else:
            command, expected = " ".join(rest), ""
        blocks.append(Block(comments, command.strip(), expected))
    return blocks


def render_script(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        lines = [*block.comments, block.command, SEPARATOR, block.expected]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


class _Capture(logging.Handler):
    """Appends core log lines to the transcript, interleaved with command output."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def _parse_args(words: list[str]) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    keyed: dict[str, str] = {}
    for word in words:
        if "=" in word:
            key, value = word.split("=", 1)
            keyed[key] = value
        else:
            positional.append(word)
    return positional, keyed


def _id_list(text: str) -> list[str]:
    return [part for part in re.split(r"[(),\s]+", text) if part]


class Interpreter:
    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        self.cluster: Cluster | None = None
        self.out: list[str] = []

    @property
    def c(self) -> Cluster:
        assert self.cluster is not None, "add-nodes first"
        return self.cluster

    def run(self, command: str) -> str:
        name, *words = command.split()
        handler: Callable[[list[str], dict[str, str]], None] = getattr(
            self, "cmd_" + name.replace("-", "_")
        )
        positional, keyed = _parse_args(words)
        self.out = []
        capture = _Capture(self.out)
        raft_logger = logging.getLogger("edgelite.raft")
        old_level = raft_logger.level
        raft_logger.addHandler(capture)
        raft_logger.setLevel(logging.INFO)
        try:
            try:
                handler(positional, keyed)
            except EdgeliteError as exc:
                hint = ""
                if isinstance(exc, NotLeaderError):
                    hint = f" (leader hint: {exc.leader_id or '-'})"
                self.out.append(f"error {type(exc).__name__}: {exc.message}{hint}")
        finally:
            raft_logger.removeHandler(capture)
            raft_logger.setLevel(old_level)
        return "\n".join(self.out) if self.out else "ok"

    # -- cluster shape ------------------------------------------------------------------

    def cmd_add_nodes(self, args: list[str], kw: dict[str, str]) -> None:
        count = int(args[0])
        if self.cluster is None:
            config = {_CONFIG_KEYS[k][0]: _CONFIG_KEYS[k][1](v) for k, v in kw.items()
                      if k in _CONFIG_KEYS}
            ids = [str(n) for n in range(1, count + 1)]
            voters = _id_list(kw["voters"]) if "voters" in kw else ids
            learners = _id_list(kw.get("learners", ""))
            self.cluster = Cluster.founded(
                voters, lambda node: random.Random(f"{self.seed}-{node}"), learners, **config
            )
            self.out.clear()  # bootstrap chatter; one summary line per node instead
            for node_id in sorted(self.c.nodes):
                raft = self.c.nodes[node_id].raft
                self.out.append(f"{node_id}: {raft.role.value} term={raft.term} "
                                f"commit={raft.log.committed} {raft.conf.describe()}")
            return
        start = max(int(node) for node in self.c.nodes) + 1
        for number in range(start, start + count):
            self.c.add_node(str(number))

    def cmd_restart(self, args: list[str], kw: dict[str, str]) -> None:
        self.c.restart(args[0])

    # -- time and messages --------------------------------------------------------------

    def cmd_campaign(self, args: list[str], kw: dict[str, str]) -> None:
        self.c.nodes[args[0]].raft.campaign()

    def cmd_tick(self, args: list[str], kw: dict[str, str]) -> None:
        self.c.tick(args[0], int(args[1]) if len(args) > 1 else 1)

    def cmd_tick_election(self, args: list[str], kw: dict[str, str]) -> None:
        """Tick until the node's election timer fires once (a leader: one CheckQuorum)."""
        raft = self.c.nodes[args[0]].raft
        if raft.role is Role.LEADER:
            ticks = raft.config.election_timeout_ticks - raft.election_elapsed
        else:
            ticks = raft.randomized_election_timeout - raft.election_elapsed
        self.c.tick(args[0], max(ticks, 1))

    def cmd_tick_heartbeat(self, args: list[str], kw: dict[str, str]) -> None:
        raft = self.c.nodes[args[0]].raft
        self.c.tick(args[0], raft.config.heartbeat_interval_ticks)

    def _process_ready(self, node_id: str) -> bool:
        raft = self.c.nodes[node_id].raft
        if not raft.has_ready():
            return False
        ready = raft.ready()
        self.out.append(f"> {node_id} handling Ready")
        self.out.extend("  " + line for line in describe_ready(ready).splitlines())
        self.c.nodes[node_id].handle_ready(ready, self.c.in_flight.append)
        return True

    def cmd_process_ready(self, args: list[str], kw: dict[str, str]) -> None:
        self._process_readies(args)

    def _process_readies(self, args: list[str]) -> bool:
        busy = False
        for node_id in args or sorted(self.c.nodes):
            busy = self._process_ready(node_id) or busy
        return busy

    def cmd_deliver_msgs(self, args: list[str], kw: dict[str, str]) -> None:
        self._deliver(args, drop=kw.get("drop") == "true")

    def _deliver(self, args: list[str], *, drop: bool = False) -> bool:
        busy = False
        for node_id in args or sorted({m.to_id for m in self.c.in_flight}):
            doomed = [m for m in self.c.in_flight if m.to_id == node_id]
            busy = busy or bool(doomed)
            if drop:
                self.c.in_flight = [m for m in self.c.in_flight if m.to_id != node_id]
                self.out.extend(f"dropped: {describe_message(m)}" for m in doomed)
                continue
            self.out.append(f"> {node_id} receiving messages")
            before = len(self.c.dropped)
            for message in self.c.deliver_one_by_one(node_id):
                self.out.append("  " + describe_message(message))
            self.out.extend(f"  dropped: {describe_message(m)}" for m in self.c.dropped[before:])
        return busy

    def cmd_stabilize(self, args: list[str], kw: dict[str, str]) -> None:
        for _ in range(100):
            if not (self._process_readies([]) | self._deliver([])):
                return
        raise AssertionError("stabilize: no quiescence after 100 rounds")

    def cmd_partition(self, args: list[str], kw: dict[str, str]) -> None:
        groups = re.findall(r"\(([^)]*)\)", " ".join(args))
        self.c.partition(*[_id_list(group) for group in groups])

    def cmd_isolate(self, args: list[str], kw: dict[str, str]) -> None:
        self.c.isolate(args[0])

    def cmd_heal(self, args: list[str], kw: dict[str, str]) -> None:
        self.c.heal()

    # -- client operations --------------------------------------------------------------

    def cmd_propose(self, args: list[str], kw: dict[str, str]) -> None:
        ticket = self.c.nodes[args[0]].raft.propose(args[1].encode())
        self.out.append(f"ticket term={ticket.term} index={ticket.index}")

    def cmd_propose_batch(self, args: list[str], kw: dict[str, str]) -> None:
        tickets = self.c.nodes[args[0]].raft.propose_batch([a.encode() for a in args[1:]])
        self.out.extend(f"ticket term={t.term} index={t.index}" for t in tickets)

    def cmd_conf_change(self, args: list[str], kw: dict[str, str]) -> None:
        cc = ConfChange(ConfChangeKind(args[1]), args[2])
        ticket = self.c.nodes[args[0]].raft.propose_conf_change(cc)
        self.out.append(f"ticket term={ticket.term} index={ticket.index}")

    def cmd_transfer_leader(self, args: list[str], kw: dict[str, str]) -> None:
        self.c.nodes[args[0]].raft.transfer_leadership(args[1])

    def cmd_read_index(self, args: list[str], kw: dict[str, str]) -> None:
        self.c.nodes[args[0]].raft.read_index(args[1].encode())

    def cmd_compact(self, args: list[str], kw: dict[str, str]) -> None:
        node = self.c.nodes[args[0]]
        meta = node.take_snapshot()
        self.out.append(
            f"snapshot index={meta.index} term={meta.term} size={meta.size_bytes} "
            f"first_index={node.storage.first_index()}"
        )

    def cmd_report_unreachable(self, args: list[str], kw: dict[str, str]) -> None:
        self.c.nodes[args[0]].raft.report_unreachable(args[1])

    # -- inspection ---------------------------------------------------------------------

    def cmd_status(self, args: list[str], kw: dict[str, str]) -> None:
        raft = self.c.nodes[args[0]].raft
        status = raft.status()
        self.out.append(
            f"{status.node_id} {status.role.value} term={status.term} "
            f"leader={status.leader_id or '-'} commit={status.commit} applied={status.applied} "
            f"log=[{status.first_index},{status.last_index}] {status.conf_state.describe()}"
        )
        self.out.extend(f"  {node}: {pr.describe()}" for node, pr in sorted(raft.progress.items()))
        if status.lead_transferee:
            self.out.append(f"  transferring to {status.lead_transferee}")

    def cmd_log(self, args: list[str], kw: dict[str, str]) -> None:
        node = self.c.nodes[args[0]]
        log = node.raft.log
        self.out.append(f"hard: {describe_hard_state(node.storage.hard_state)}")
        snapshot = node.storage.snapshot_meta()
        if snapshot is not None:
            self.out.append(f"snapshot: index={snapshot.index} term={snapshot.term}")
        entries = log.entries(log.first_index(), log.last_index() + 1, 1 << 62)
        self.out.extend(describe_entry(entry) for entry in entries)

    def cmd_raft_state(self, args: list[str], kw: dict[str, str]) -> None:
        for node_id in sorted(self.c.nodes):
            n = self.c.nodes[node_id]
            self.out.append(
                f"{n.id}: {n.raft.role.value} term={n.raft.term} leader={n.raft.lead or '-'} "
                f"commit={n.raft.log.committed} applied={n.applied_index}"
            )

    def cmd_applied(self, args: list[str], kw: dict[str, str]) -> None:
        node = self.c.nodes[args[0]]
        payloads = " ".join(data.decode() for _, data in node.applied)
        reads = " ".join(f"{rs.context.decode()}@{rs.index}" for rs in node.read_states)
        self.out.append(f"applied_index={node.applied_index} data=[{payloads}] reads=[{reads}]")


def run_script(path: Path, *, rewrite: bool) -> list[tuple[Block, str]]:
    """Run ``path``; returns (block, actual output) pairs, rewriting the file if asked."""
    blocks = parse_script(path.read_text())
    interpreter = Interpreter()
    results = [(block, interpreter.run(block.command)) for block in blocks]
    if rewrite:
        for block, actual in results:
            block.expected = actual
        path.write_text(render_script(blocks))
    return results
