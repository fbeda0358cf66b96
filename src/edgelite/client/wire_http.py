"""Hrana 3 over HTTP, client side, without I/O: ``Pipeline`` -> request, response -> ``Reply``.

Every pipeline is one ``POST <base>/v3/pipeline`` (protocol.md §3.1). The stream token is
an ``HttpStream`` (the baton and the ``base_url`` the server asked us to use for it).
Failures of the whole request become ``WireError`` with what we know about whether the
server may have run it (protocol.md §3.7):

==========================  ====================  ==========  =========
answer                      code                  executed    retryable
==========================  ====================  ==========  =========
400 JSON ``STREAM_EXPIRED``  STREAM_EXPIRED        no          no
400 text (bad baton)         BATON_INVALID         no          no
400 text (other)             PROTOCOL_ERROR        no          no
401                          AUTH_* (or AUTH_FAILED)  no       no
403                          AUTH_PERMISSION_DENIED   no       no
404                          NAMESPACE_NOT_FOUND   no          no
429                          OVERLOADED            no          yes
5xx, other                   the body's code       maybe       no
==========================  ====================  ==========  =========
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Final

from edgelite.client.errors import DataError
from edgelite.client.exchange import Executed, Pipeline, Reply, WireError
from edgelite.errors import ProtocolError
from edgelite.protocol.hrana import (
    PipelineRequest,
    decode_pipeline_response,
    encode_pipeline_request,
)

__all__ = ["BOOKMARK_HEADER", "CONSISTENCY_HEADER", "INDEX_HEADER", "HttpStream", "HttpWire"]

CONSISTENCY_HEADER: Final = "x-edgelite-consistency"
BOOKMARK_HEADER: Final = "x-edgelite-bookmark"
MAX_STALENESS_HEADER: Final = "x-edgelite-max-staleness-ms"
INDEX_HEADER: Final = "x-edgelite-replication-index"
_PIPELINE_PATH: Final = "/v3/pipeline"
_SHOWN_BODY_CHARS_MAX: Final = 300


@dataclasses.dataclass(frozen=True, slots=True)
class HttpStream:
    baton: str
    base_url: str | None


def parse_index(value: str | None) -> int | None:
    """The replication index header, or None if absent or not a number."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


class HttpWire:
    """Builds pipeline requests for one server and reads its answers."""

    def __init__(self, base_url: str, *, auth_token: str | None,
                 namespace: str | None = None, client_name: str = "edgelite-python",
                 max_staleness_ms: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"content-type": "application/json", "x-libsql-client-version": client_name}
        if max_staleness_ms is not None:
            headers[MAX_STALENESS_HEADER] = str(max_staleness_ms)
        if auth_token is not None:
            headers["authorization"] = f"Bearer {auth_token}"
        if namespace is not None:
            headers["x-namespace"] = namespace
        self._headers: Final = headers

    def request(self, pipeline: Pipeline) -> tuple[str, dict[str, str], bytes]:
        """``(url, headers, body)``; raises DataError if a parameter has no JSON form."""
        stream = pipeline.stream
        if stream is None:
            baton, base = None, self.base_url
        else:
            assert isinstance(stream, HttpStream), stream
            baton, base = stream.baton, (stream.base_url or self.base_url).rstrip("/")
        try:
            body = encode_pipeline_request(
                PipelineRequest(baton=baton, requests=pipeline.requests))
        except ProtocolError as exc:
            raise DataError(f"cannot send the parameters: {exc.message}",
                            code="ARGS_INVALID") from exc
        headers = dict(self._headers)
        headers[CONSISTENCY_HEADER] = pipeline.consistency
        if pipeline.bookmark is not None:
            headers[BOOKMARK_HEADER] = str(pipeline.bookmark)
        return base + _PIPELINE_PATH, headers, body

    def reply(self, status: int, headers: Mapping[str, str], body: bytes) -> Reply:
        if status != 200:
            raise http_error(status, headers.get("content-type", ""), body)
        try:
            response = decode_pipeline_response(body)
        except ProtocolError as exc:
            raise WireError(f"the server sent an invalid pipeline response: {exc.message}",
                            code="PROTOCOL_ERROR", executed=Executed.MAYBE) from exc
        stream = (HttpStream(response.baton, response.base_url)
                  if response.baton is not None else None)
        return Reply(response.results, stream, parse_index(headers.get(INDEX_HEADER)))


def _json_fields(body: bytes) -> tuple[str | None, str | None]:
    """``(code, message)`` of a JSON error body (edgelite and sqld shapes), if any."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    code = parsed.get("code")
    message = parsed.get("message") or parsed.get("error")
    return (code if isinstance(code, str) else None,
            message if isinstance(message, str) else None)


def http_error(status: int, content_type: str, body: bytes) -> WireError:
    """The ``WireError`` for a non-200 answer (table in the module docstring)."""
    is_json = content_type.split(";")[0].strip().lower() == "application/json"
    code, message = _json_fields(body) if is_json else (None, None)
    text = message or body.decode("utf-8", "replace")[:_SHOWN_BODY_CHARS_MAX].strip()
    if status == 400:
        if code == "STREAM_EXPIRED":
            return WireError(
                "the server closed this connection's stream after it stayed idle too long "
                f"(STREAM_EXPIRED: {text})", code="STREAM_EXPIRED", executed=Executed.NO,
                status=status)
        if "baton" in text.lower():
            return WireError(f"the server no longer knows this stream ({text}); it may "
                             "have restarted", code="BATON_INVALID", executed=Executed.NO,
                             status=status)
        return WireError(f"the server rejected the request: {text}",
                         code=code or "PROTOCOL_ERROR", executed=Executed.NO, status=status)
    if status == 401:
        return WireError(f"authentication failed: {text} (check auth_token / authToken)",
                         code=code or "AUTH_FAILED", executed=Executed.NO, status=status)
    if status == 403:
        return WireError(f"permission denied: {text}",
                         code=code or "AUTH_PERMISSION_DENIED", executed=Executed.NO,
                         status=status)
    if status == 404:
        return WireError(f"not found: {text or 'no Hrana endpoint at this URL'}",
                         code=code or "NAMESPACE_NOT_FOUND", executed=Executed.NO,
                         status=status)
    if status == 429:
        return WireError(f"the server is overloaded: {text}", code=code or "OVERLOADED",
                         executed=Executed.NO, retryable=True, status=status)
    return WireError(f"the server failed the request (HTTP {status}): {text}",
                     code=code or "SERVER_ERROR", executed=Executed.MAYBE, status=status)
