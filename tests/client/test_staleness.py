"""``max_staleness_ms``: sent by the client, honoured by the server (docs/consistency.md)."""

from __future__ import annotations

import httpx
import pytest

import edgelite
from tests.support.processes import ServerProcess


def _refreshed(server: ServerProcess) -> float:
    for line in httpx.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("edgelite_stale_reads_refreshed_total "):
            return float(line.split()[-1])
    raise AssertionError("edgelite_stale_reads_refreshed_total is not in /metrics")


@pytest.mark.parametrize("scheme", ["http", "ws"])
def test_a_zero_bound_makes_every_eventual_read_confirm_a_read_point(
        server: ServerProcess, scheme: str) -> None:
    url = server.url if scheme == "http" else server.ws_url
    before = _refreshed(server)
    with edgelite.connect(url, consistency="eventual", max_staleness_ms=0) as conn:
        for _ in range(3):
            assert conn.execute("SELECT 1").fetchall() == [(1,)]
    assert _refreshed(server) >= before + 3
    # An hour's bound right after: served without a new read point.
    with edgelite.connect(url + "?maxStalenessMs=3600000", consistency="eventual") as conn:
        settled = _refreshed(server)
        assert conn.execute("SELECT 2").fetchall() == [(2,)]
    assert _refreshed(server) == settled


@pytest.mark.parametrize("value", [-1, "soon", 1.5, True, 86_400_001])
def test_a_bad_bound_is_refused_before_connecting(value: object) -> None:
    with pytest.raises(edgelite.ProgrammingError, match="max_staleness_ms"):
        edgelite.connect("http://127.0.0.1:9", max_staleness_ms=value)  # type: ignore[arg-type]
