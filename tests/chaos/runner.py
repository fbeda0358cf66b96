"""One chaos run: start a routed cluster, run the workloads under a nemesis, heal, wait
for recovery and convergence, check, and report.

``EDGELITE_CHAOS_MINUTES`` selects the profile (see ``scenarios.py``).
``EDGELITE_CHAOS_SEED=S`` replays a schedule; without it each run draws a seed and
prints it (and every failure names it with the command that replays it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.chaos.auth_workload import AuthWorkload
from tests.chaos.bank import BankWorkload
from tests.chaos.client import Client, Outcome, execute
from tests.chaos.context import RunContext, Workload
from tests.chaos.harness import ChaosCluster
from tests.chaos.nemesis import Nemesis
from tests.chaos.register import RegisterWorkload
from tests.chaos.router import PeerRouter
from tests.chaos.session import SessionWorkload
from tests.chaos.set_workload import SetWorkload

RECOVERY_TIMEOUT_S = 20.0
CONVERGENCE_TIMEOUT_S = 60.0
DEGRADED_CONVERGENCE_TIMEOUT_S = 5.0
POST_HEAL_WORK_S = 2.0


def chaos_minutes() -> float | None:
    text = os.environ.get("EDGELITE_CHAOS_MINUTES", "").strip()
    return float(text) if text else None


def chaos_seed(name: str) -> int:
    text = os.environ.get("EDGELITE_CHAOS_SEED", "").strip()
    if text:
        return int(text)
    return random.SystemRandom().randrange(1, 2**31)


WORKERS = {"register": 3, "set": 2, "bank": 2, "session": 2}
WITH_AUTH = {**WORKERS, "auth": 1}  # needs extra_args=("--enable-namespaces",)


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    nemeses: Sequence[str]
    ci_seconds: float
    size: int = 3
    concurrent_max: int = 1
    first: tuple[str, ...] = ()  # kinds injected first, in order (then random ones)
    workers: dict[str, int] = dataclasses.field(default_factory=lambda: dict(WORKERS))
    hold_s: tuple[float, float] = (1.5, 4.0)
    gap_s: tuple[float, float] = (0.5, 2.0)
    tmpfs_nodes: tuple[str, ...] = ()
    fiu: bool = False
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    extra_args: tuple[str, ...] = ()  # for every member's ``edgelite serve``


def workloads_for(scenario: Scenario) -> list[Workload]:
    makers: dict[str, Callable[[], Workload]] = {
        "register": RegisterWorkload, "set": SetWorkload, "bank": BankWorkload,
        "session": SessionWorkload, "auth": AuthWorkload}
    return [makers[name]() for name, count in scenario.workers.items() if count]


def run_scenario(scenario: Scenario, root: Path, seed: int,
                 duration: float) -> dict[str, Any]:
    """Run ``scenario`` with ``duration`` seconds of faults; returns its report, raises
    AssertionError on any violation."""
    print(f"chaos {scenario.name}: seed {seed}, {duration:.0f} s of faults "
          f"(replay: EDGELITE_CHAOS_SEED={seed})", flush=True)
    begun = time.monotonic()
    router = PeerRouter()
    cluster = ChaosCluster.launch_routed(root, scenario.size, router, env=scenario.env,
                                         tmpfs_nodes=scenario.tmpfs_nodes, fiu=scenario.fiu,
                                         extra_args=scenario.extra_args)
    run = RunContext(cluster, seed)
    report: dict[str, Any] = {"scenario": scenario.name, "seed": seed,
                              "fault_seconds": round(duration, 1),
                              "startup_s": round(time.monotonic() - begun, 1)}
    try:
        _run(run, scenario, duration, report)
    except Exception:  # the harness itself gave up (no leader for a check, ...)
        run.violation(f"run aborted:\n{traceback.format_exc()}")
    finally:
        run.stop.set()
        closing = time.monotonic()
        cluster.close()
        router.stop()
        report["close_s"] = round(time.monotonic() - closing, 1)
        report["total_s"] = round(time.monotonic() - begun, 1)
    report.update(_log_counts(cluster))
    report["events"], report["notes"] = run.events, run.notes
    report["violations"] = run.violations
    (root / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "events"}, default=str),
          flush=True)
    if run.violations:
        raise AssertionError(_failure_text(scenario, run, report, root))
    return report


def _run(run: RunContext, scenario: Scenario, duration: float,
         report: dict[str, Any]) -> None:
    workloads = workloads_for(scenario)
    setup_client = Client()
    for workload in workloads:
        workload.setup(run, setup_client)
    threads = _start_workers(run, scenario, workloads)
    nemesis = Nemesis(run, scenario.nemeses, concurrent_max=scenario.concurrent_max,
                      hold_s=scenario.hold_s, gap_s=scenario.gap_s, first=scenario.first)
    started = time.monotonic()
    nemesis.supervise()
    try:
        _work_under_faults(run, nemesis, threads, duration, report, setup_client)
        report["workload_s"] = round(time.monotonic() - started, 1)
        for workload in workloads:
            workload.check(run, setup_client)
            report[workload.name] = workload.summary()
    finally:
        nemesis.stop_supervising()
    report["check_s"] = round(time.monotonic() - started - report["workload_s"], 1)
    setup_client.close()


def _work_under_faults(run: RunContext, nemesis: Nemesis, threads: list[threading.Thread],
                       duration: float, report: dict[str, Any], client: Client) -> None:
    """Faults for ``duration``, heal, wait for recovery, stop the workers, converge."""
    try:
        nemesis.run_for(duration)
    finally:
        nemesis.heal_all()
        run.event("all faults healed")
    report["faults_injected"] = nemesis.injected
    report["recovery_s"] = _wait_recovered(run, client)
    run.degraded = report["recovery_s"] is None
    run.sleep(POST_HEAL_WORK_S)
    run.stop.set()
    for thread in threads:
        thread.join(timeout=60)
        if thread.is_alive():
            run.violation(f"workload thread {thread.name} did not stop")
    report["convergence_s"] = _wait_converged(
        run, DEGRADED_CONVERGENCE_TIMEOUT_S if run.degraded else CONVERGENCE_TIMEOUT_S)


def _start_workers(run: RunContext, scenario: Scenario,
                   workloads: list[Workload]) -> list[threading.Thread]:
    threads = []
    for workload in workloads:
        for worker in range(scenario.workers[workload.name]):
            thread = threading.Thread(target=_work, args=(run, workload, worker),
                                      name=f"{workload.name}-{worker}", daemon=True)
            thread.start()
            threads.append(thread)
    return threads


def _work(run: RunContext, workload: Workload, worker: int) -> None:
    client = Client()
    try:
        workload.work(run, worker, run.rng(workload.name, worker), client)
    except Exception:
        run.violation(f"{workload.name} worker {worker} crashed:\n{traceback.format_exc()}")
    finally:
        client.close()


def _wait_recovered(run: RunContext, client: Client) -> float | None:
    """Seconds until every live member serves a strong read and takes a write (F19)."""
    started = time.monotonic()
    deadline = started + RECOVERY_TIMEOUT_S
    # Every member, running or not: one that exited is restarted by the supervisor.
    pending = set(run.cluster.in_cluster())
    while pending and time.monotonic() < deadline:
        for node_id in sorted(pending):
            member = run.cluster.members[node_id]
            read = client.pipeline(member, [execute("SELECT count(*) FROM sqlite_master")])
            write = client.pipeline(member, [execute(
                "CREATE TABLE IF NOT EXISTS recovered(node TEXT PRIMARY KEY)")])
            if read.outcome is Outcome.OK and write.outcome is Outcome.OK:
                pending.discard(node_id)
        if pending:
            time.sleep(0.2)
    if pending:
        run.violation(f"no recovery: {sorted(pending)} still cannot serve a strong read and "
                      f"a write {RECOVERY_TIMEOUT_S:g} s after every fault healed (F19)")
        return None
    return round(time.monotonic() - started, 1)


def _wait_converged(run: RunContext, timeout_s: float) -> float | None:
    """Seconds until every live member has the same applied index and content hash."""
    started = time.monotonic()
    seen: dict[str, tuple[int, str]] = {}
    while time.monotonic() < started + timeout_s:
        seen = run.cluster.content_hashes()
        live = {m.node_id for m in run.cluster.live()}
        if set(seen) == live and len(set(seen.values())) == 1:
            return round(time.monotonic() - started, 1)
        time.sleep(0.3)
    by_index: dict[int, set[str]] = {}
    for index, digest in seen.values():
        by_index.setdefault(index, set()).add(digest)
    diverged = {i: d for i, d in by_index.items() if len(d) > 1}
    what = "DIVERGED: different content at equal applied index" if diverged else \
        "did not converge"
    run.violation(f"replicas {what} within {timeout_s:g} s: {seen}")
    return None


def _log_counts(cluster: ChaosCluster) -> dict[str, int]:
    """What the members' logs say happened: snapshots taken and installed (F13)."""
    counts = {"snapshots_taken": 0, "snapshots_installed": 0, "leaders_elected": 0}
    for member in cluster.members.values():
        if not member.log_path.exists():
            continue
        text = member.log_path.read_text(errors="replace")
        counts["snapshots_taken"] += text.count(" took snapshot ")
        counts["snapshots_installed"] += text.count(" installed snapshot ")
        counts["leaders_elected"] += text.count(" became leader at term ")
    return counts


def _failure_text(scenario: Scenario, run: RunContext, report: dict[str, Any],
                  root: Path) -> str:
    lines = [f"chaos scenario {scenario.name} failed; seed {run.seed}",
             f"replay: EDGELITE_CHAOS_SEED={run.seed} .venv/bin/python -m pytest "
             f"tests/chaos -k {scenario.name}",
             f"data and logs: {root}", "", "violations:", *run.violations, "",
             "nemesis and harness events:", *run.events, "",
             "summary: " + json.dumps({k: report.get(k) for k in (
                 "register", "set", "bank", "session", "auth")}, default=str), "",
             "log excerpts:"]
    for member in run.cluster.members.values():
        if member.log_path.exists():
            text = member.log_path.read_text(errors="replace").splitlines()
            notable = [line for line in text if any(w in line for w in (
                "ERROR", "CRITICAL", "Traceback", "Error", "fatal"))]
            lines.append(f"--- {member.node_id}: {len(text)} lines, last notable:")
            lines.extend(notable[-15:])
    return "\n".join(lines)


__all__ = ["Scenario", "chaos_minutes", "chaos_seed", "run_scenario"]
