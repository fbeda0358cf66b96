"""The chaos scenarios, in one table so the profiles can budget them.

Every scenario runs all four workloads (register, set, bank, session) against the
same cluster and ends with the recovery, convergence and workload checks; they differ
in cluster size and in the nemeses they draw from. ``ci_seconds`` is the fault time
of the short (CI) profile.

Profiles. Without ``EDGELITE_CHAOS_MINUTES`` every scenario injects faults for its
``ci_seconds`` (the whole suite stays under about four minutes on two cores). With
``EDGELITE_CHAOS_MINUTES=M`` each scenario's fault time is scaled by the same factor so
that the suite takes about ``M`` minutes (``make chaos``: 20).
"""

from __future__ import annotations

from tests.chaos.runner import WITH_AUTH, Scenario, chaos_minutes

SCENARIO_OVERHEAD_S = 20.0  # start, recovery, convergence, checks, stop (measured ~15)

CRASH = Scenario("crash", ("kill-leader", "kill-follower", "kill-majority", "kill-all",
                           "terminate-leader", "corrupt-log"), 16,
                 first=("kill-all", "corrupt-log"), hold_s=(1.5, 3.5))
PAUSE = Scenario("pause", ("pause-leader", "pause-follower"), 10)
PARTITION = Scenario("partition", ("isolate-leader", "partition-halves",
                                   "partition-one-way", "partition-ring", "slow-node"),
                     14, size=5)
# Membership changes start while another fault is active (the first ones by design).
MEMBERSHIP = Scenario("membership", ("membership", "membership", "transfer",
                                     "isolate-leader", "partition-halves", "kill-follower",
                                     "pause-follower"), 14, concurrent_max=2,
                      first=("partition-halves", "membership", "kill-follower", "membership",
                             "pause-follower", "membership"), workers=WITH_AUTH,
                      extra_args=("--enable-namespaces",))
COMBINED = Scenario("combined", ("kill-leader", "kill-follower", "terminate-leader",
                                 "pause-leader",
                                 "pause-follower", "isolate-leader", "partition-halves",
                                 "partition-one-way", "partition-ring", "slow-node",
                                 "transfer", "membership"), 16, size=5, concurrent_max=3,
                    workers=WITH_AUTH, extra_args=("--enable-namespaces",))
DISK_FULL = Scenario("disk-full", ("disk-full",), 6, tmpfs_nodes=("n1",),
                     hold_s=(2.0, 4.0))
FSYNC = Scenario("fsync", ("fsync-fail",), 6, fiu=True, hold_s=(1.0, 3.0))

NEMESIS_SCENARIOS = (CRASH, PAUSE, PARTITION, MEMBERSHIP, COMBINED)
ALL = (*NEMESIS_SCENARIOS, DISK_FULL, FSYNC)
EXTRA_TESTS = 1  # test_controls.py: fixed sequences on one cluster, not scaled


def scale() -> float:
    """How much longer than in CI each scenario runs in the current profile."""
    minutes = chaos_minutes()
    if minutes is None:
        return 1.0
    ci_total = sum(s.ci_seconds for s in ALL)
    budget = minutes * 60 - (len(ALL) + EXTRA_TESTS) * SCENARIO_OVERHEAD_S
    return max(1.0, budget / ci_total)


def fault_seconds(scenario: Scenario) -> float:
    return scenario.ci_seconds * scale()


def timeout_for(scenario: Scenario) -> float:
    """pytest-timeout for a scenario: its fault time plus generous fixed costs."""
    return fault_seconds(scenario) * 1.5 + 240

__all__ = ["ALL", "COMBINED", "CRASH", "DISK_FULL", "FSYNC", "MEMBERSHIP",
           "NEMESIS_SCENARIOS", "PARTITION", "PAUSE", "fault_seconds", "scale",
           "timeout_for"]
