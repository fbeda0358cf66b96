"""Which database a request is for (protocol.md §7.1), as a pure function."""

from __future__ import annotations

import base64

import pytest

from edgelite.errors import InvalidNamespaceError
from edgelite.server.namespaces import namespace_for, namespace_from_host


@pytest.mark.parametrize(("host", "expected"), [
    ("db1.example.com", "db1"),
    ("db1.localhost:8080", "db1"),
    ("localhost:8080", "default"),
    ("localhost", "default"),
    ("127.0.0.1:8080", "default"),
    ("127.0.0.1", "default"),
    ("[::1]:8080", "default"),
    ("10.1.2.3", "default"),
    ("", "default"),
])
def test_host(host: str, expected: str) -> None:
    assert namespace_from_host(host) == expected


def test_precedence() -> None:
    encoded = base64.b64encode(b"from-bin").decode().rstrip("=")
    headers = {"x-namespace-bin": encoded, "x-namespace": "from-header",
               "host": "from-host.localhost"}
    assert namespace_for(headers, "from-path", enabled=True) == "from-path"
    assert namespace_for(headers, None, enabled=True) == "from-bin"
    del headers["x-namespace-bin"]
    assert namespace_for(headers, None, enabled=True) == "from-header"
    del headers["x-namespace"]
    assert namespace_for(headers, None, enabled=True) == "from-host"


def test_disabled_means_default() -> None:
    headers = {"x-namespace": "db1", "host": "db1.example.com"}
    assert namespace_for(headers, "db2", enabled=False) == "default"


def test_bad_binary_name() -> None:
    with pytest.raises(InvalidNamespaceError):
        namespace_for({"x-namespace-bin": "!!!"}, None, enabled=True)
