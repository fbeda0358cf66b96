"""Which database a request is for (protocol.md §7.1).

With namespaces enabled, the first match wins: the path prefix ``/dev/<name>/``,
``x-namespace-bin`` (base64 of the name, padding optional), ``x-namespace``, then the
first label of ``Host`` — unless Host is an IP address (``127.0.0.1`` must never select
namespace ``127``) or has no dot (``localhost``), which mean ``default``. With
namespaces disabled every request goes to ``default``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping

from edgelite.errors import InvalidNamespaceError

DEFAULT = "default"


def namespace_for(headers: Mapping[str, str], path_namespace: str | None, *,
                  enabled: bool) -> str:
    if not enabled:
        return DEFAULT
    if path_namespace:
        return path_namespace
    encoded = headers.get("x-namespace-bin")
    if encoded:
        return _decode_binary_name(encoded)
    named = headers.get("x-namespace")
    if named:
        return named
    return namespace_from_host(headers.get("host", ""))


def namespace_from_host(host: str) -> str:
    hostname = _strip_port(host.strip())
    if not hostname or "." not in hostname or _is_ip_address(hostname):
        return DEFAULT
    return hostname.split(".", 1)[0]


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [::1]:8080
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _is_ip_address(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def _decode_binary_name(encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidNamespaceError(
            "Invalid namespace: x-namespace-bin is not base64 of a UTF-8 name") from exc
