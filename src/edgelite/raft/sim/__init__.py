"""Deterministic simulation of edgelite Raft clusters under faults.

``python -m edgelite.raft.sim --seeds N --start-seed S`` runs N seeded simulations
(see ``docs/design/simulation.md``); :func:`run_seed` runs one from Python.
"""

from __future__ import annotations

from edgelite.raft.sim.oracle import InvariantViolation
from edgelite.raft.sim.world import SimOptions, SimResult, World

__all__ = ["InvariantViolation", "SimOptions", "SimResult", "World", "run_seed", "voters_for"]


def voters_for(seed: int, nodes: str) -> int:
    """Cluster size for ``seed``: ``"3"``, ``"5"``, or ``"mixed"`` (odd seeds 3, even 5)."""
    if nodes == "mixed":
        return 3 if seed % 2 else 5
    if nodes not in ("3", "5"):
        raise ValueError(f"--nodes must be 3, 5 or mixed, got {nodes!r}")
    return int(nodes)


def run_seed(options: SimOptions) -> SimResult:
    """Run one simulation to completion; never raises for a failed check."""
    return World(options).run()
