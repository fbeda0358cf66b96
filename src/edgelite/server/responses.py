"""Errors become HTTP responses here, once, with sqld's statuses and bodies.

JSON error bodies carry sqld's ``{"error": ...}`` plus ``message`` and ``code`` (the
friendlier form protocol.md §3.7 allows: ``@libsql/client`` then reports the real code
instead of a bare HTTP status). Protocol errors are ``text/plain`` like sqld's.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from edgelite.errors import (
    AuthenticationError,
    BlockedError,
    ClusterError,
    DatabaseClosedError,
    EdgeliteError,
    InvalidNamespaceError,
    LimitExceededError,
    NamespaceError,
    NamespaceNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProtocolError,
    StreamExpiredError,
)

logger = logging.getLogger(__name__)
_json = msgspec.json.Encoder()


def json_response(body: object, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_json.encode(body), status=status,
                        content_type="application/json", headers=headers)


def error_body(error: str, message: str, code: str) -> dict[str, str]:
    return {"error": error, "message": message, "code": code}


def error_response(exc: BaseException) -> web.Response:
    """The HTTP answer for an error that fails a whole request."""
    if isinstance(exc, StreamExpiredError):
        return json_response({"message": exc.message, "code": "STREAM_EXPIRED"}, 400)
    if isinstance(exc, ProtocolError):
        return web.Response(text=exc.message, status=exc.http_status,
                            content_type="text/plain")
    if isinstance(exc, AuthenticationError):
        return json_response(error_body(f"Unauthorized: `{exc.message}`",
                                         f"Unauthorized: {exc.message}", exc.code), 401)
    if isinstance(exc, PermissionDeniedError | BlockedError):
        return json_response(error_body(exc.message, exc.message, exc.code), 403)
    if isinstance(exc, NamespaceNotFoundError):
        return json_response(error_body(exc.message, exc.message, exc.code), 404)
    if isinstance(exc, InvalidNamespaceError | NamespaceError):
        return json_response(error_body(exc.message, exc.message, exc.code), 400)
    if isinstance(exc, OverloadedError):
        return json_response(error_body("Too many concurrent requests", exc.message,
                                        exc.code), 429, headers={"Retry-After": "1"})
    if isinstance(exc, LimitExceededError):
        status = 413 if exc.limit == "request_bytes_max" else 400
        return json_response(error_body(exc.message, exc.message, exc.code), status)
    if isinstance(exc, ClusterError | DatabaseClosedError):
        return json_response(error_body(exc.message, exc.message, exc.code), 503,
                             headers={"Retry-After": "1"})
    if isinstance(exc, EdgeliteError):
        logger.warning("request failed: %s", exc.message)
        return json_response(error_body(f"Internal Error: `{exc.message}`", exc.message,
                                        exc.code), 500)
    logger.exception("unexpected error while serving a request", exc_info=exc)
    return json_response(error_body("Internal Error: `unexpected server error`",
                                    "Internal Error: unexpected server error",
                                    "INTERNAL_ERROR"), 500)
