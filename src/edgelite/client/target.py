"""What ``connect(database)`` names: a remote server (HTTP or WebSocket) or a local file.

URL forms (scheme mapping as in ``@libsql/client``, protocol.md §8.1):

==========================  ===================================================
``libsql://host[:port]``    Hrana 3 over HTTPS; ``?tls=0`` for plain HTTP
``http://`` / ``https://``  Hrana 3 over HTTP(S)
``ws://`` / ``wss://``      Hrana over WebSocket (hrana3, falling back to hrana2)
``file:path`` / ``file:///abs``  a local SQLite file (URI parameters kept)
``:memory:`` / a path       a local SQLite database
==========================  ===================================================

Query parameters of remote URLs: ``authToken`` (as in the Turso docs), ``tls``
(``libsql://`` only), ``consistency`` (``strong``, ``session``, ``eventual``) and
``namespace`` (sent as ``x-namespace``). Anything else is refused, so a typo does not
silently connect with defaults.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import urllib.parse
from typing import Final

from edgelite.client.errors import InterfaceError, ProgrammingError

__all__ = ["CONSISTENCY_LEVELS", "Kind", "RemoteTarget", "parse_target"]

CONSISTENCY_LEVELS: Final = ("strong", "session", "eventual")
_URL_PARAMETERS: Final = frozenset({"authToken", "tls", "consistency", "namespace",
                                    "maxStalenessMs"})
MAX_STALENESS_MS_MAX: Final = 86_400_000


class Kind(enum.Enum):
    HTTP = "http"
    WEBSOCKET = "ws"
    LOCAL = "local"


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteTarget:
    """A server to talk to. ``base_url`` is http(s) or ws(s), without query or fragment."""

    kind: Kind
    base_url: str
    auth_token: str | None
    consistency: str
    namespace: str | None
    # eventual/session reads: at most this old (x-edgelite-max-staleness-ms)
    max_staleness_ms: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LocalTarget:
    """A local database: ``path`` as APSW opens it; ``uri`` when it is a ``file:`` URI."""

    path: str
    uri: bool


def _flag(value: str, name: str) -> bool:
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise InterfaceError(f"URL parameter {name}={value!r} must be 0 or 1")


def _consistency(value: str | None) -> str:
    level = (value or "session").strip().lower()
    if level not in CONSISTENCY_LEVELS:
        raise ProgrammingError(
            f"consistency must be one of {', '.join(CONSISTENCY_LEVELS)}, got {value!r}"
        )
    return level


def _max_staleness(value: object) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not 0 <= number <= MAX_STALENESS_MS_MAX \
            or (isinstance(value, float) and not value.is_integer()):
        raise ProgrammingError(f"max_staleness_ms must be a whole number of milliseconds "
                               f"from 0 to {MAX_STALENESS_MS_MAX}, got {value!r}")
    return number


def _query(parsed: urllib.parse.SplitResult) -> dict[str, str]:
    pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    query: dict[str, str] = {}
    for key, value in pairs:
        if key not in _URL_PARAMETERS:
            raise InterfaceError(
                f"unknown URL parameter {key!r}; supported: {', '.join(sorted(_URL_PARAMETERS))}"
            )
        query[key] = value
    return query


def _remote(
    parsed: urllib.parse.SplitResult, auth_token: str | None, consistency: str | None,
    namespace: str | None, max_staleness_ms: int | None = None,
) -> RemoteTarget:
    query = _query(parsed)
    scheme = parsed.scheme.lower()
    if "tls" in query and scheme != "libsql":
        raise InterfaceError("URL parameter tls is only meaningful in libsql:// URLs")
    if scheme == "libsql":
        tls = _flag(query.get("tls", "1"), "tls")
        if not tls and parsed.port is None:
            raise InterfaceError("a libsql:// URL with tls=0 needs an explicit port")
        scheme = "https" if tls else "http"
    if not parsed.hostname:
        raise InterfaceError(f"the URL {parsed.geturl()!r} has no host")
    kind = Kind.WEBSOCKET if scheme in ("ws", "wss") else Kind.HTTP
    base_url = urllib.parse.urlunsplit((scheme, parsed.netloc, parsed.path, "", ""))
    return RemoteTarget(
        kind=kind,
        base_url=base_url.rstrip("/"),
        auth_token=auth_token if auth_token is not None else query.get("authToken") or None,
        consistency=_consistency(consistency if consistency is not None
                                 else query.get("consistency")),
        namespace=namespace if namespace is not None else query.get("namespace") or None,
        max_staleness_ms=_max_staleness(max_staleness_ms if max_staleness_ms is not None
                                        else query.get("maxStalenessMs")),
    )


def parse_target(
    database: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    *,
    auth_token: str | None = None,
    consistency: str | None = None,
    namespace: str | None = None,
    uri: bool = False,
    max_staleness_ms: int | None = None,
) -> RemoteTarget | LocalTarget:
    """Decide where ``database`` points. Keyword arguments win over URL parameters."""
    if isinstance(database, bytes | os.PathLike):
        path = os.fsdecode(database)
        return LocalTarget(path, uri=False)
    if not isinstance(database, str):
        raise ProgrammingError(
            f"database must be a URL or a path, got {type(database).__name__}"
        )
    parsed = urllib.parse.urlsplit(database)
    scheme = parsed.scheme.lower()
    if scheme in ("libsql", "http", "https", "ws", "wss"):
        return _remote(parsed, auth_token, consistency, namespace, max_staleness_ms)
    if consistency is not None:
        _consistency(consistency)  # validate even where it has no effect
    if scheme == "file" or (uri and database.startswith("file:")):
        return LocalTarget(database, uri=True)
    if "://" in database:
        raise InterfaceError(
            f"unsupported URL scheme {parsed.scheme!r}: use libsql, http(s), ws(s) or file"
        )
    return LocalTarget(database, uri=False)
