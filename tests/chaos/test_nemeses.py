"""Chaos scenarios with process, network and log-damage nemeses (reliability.md F1–F8,
F10, F12, F13, F16–F19).

Each scenario starts a real cluster whose peer links run through the fault relay,
runs the register, set, bank and session workloads through random members while its
nemesis injects faults, heals everything, and then checks: the register history is
linearizable, no acknowledged insert is lost and no failed one appears, every bank read
sums to the constant, session reads never go back, every member recovers, and all
members end with equal content hashes at equal applied index. The seed is printed;
``EDGELITE_CHAOS_SEED=<seed>`` replays the schedule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.runner import Scenario, chaos_seed, run_scenario
from tests.chaos.scenarios import (
    NEMESIS_SCENARIOS,
    fault_seconds,
    timeout_for,
)


def _case(scenario: Scenario) -> object:
    return pytest.param(scenario, id=scenario.name,
                        marks=pytest.mark.timeout(timeout_for(scenario)))


@pytest.mark.parametrize("scenario", [_case(s) for s in NEMESIS_SCENARIOS])
def test_scenario(scenario: Scenario, tmp_path: Path) -> None:
    run_scenario(scenario, tmp_path, chaos_seed(scenario.name), fault_seconds(scenario))
