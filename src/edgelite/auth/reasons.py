"""Why authentication failed: sqld's reason texts and codes (protocol.md §6.4).

The server turns an ``AuthenticationError`` into HTTP 401 with the body
``{"error": "Unauthorized: `<message>`"}`` and, on WebSocket, into ``hello_error`` with
``{"message": "Authentication failed: <message>", "code": <code>}``. The message of the
exception is therefore the bare reason text, exactly as sqld words it, so that users who
match on it (or on the code) see the same thing as with sqld.
"""

from __future__ import annotations

import enum

from edgelite.errors import AuthenticationError


class AuthReason(enum.Enum):
    """Each failure: ``(code, reason text)``. The texts are sqld's, verbatim."""

    HEADER_NOT_FOUND = ("AUTH_HEADER_NOT_FOUND", "Expected authorization header but none given")
    HEADER_NON_ASCII = ("AUTH_HEADER_MALFORMED", "Non-ASCII auth header")
    HEADER_MALFORMED = (
        "AUTH_HEADER_MALFORMED",
        "Auth string does not conform to '<scheme> <token>' form",
    )
    UNSUPPORTED_SCHEME = (
        "AUTH_HTTP_HEADER_UNSUPPORTED_SCHEME",
        "The authentication scheme in the `Authorization` HTTP header is not supported",
    )
    JWT_INVALID = ("AUTH_JWT_INVALID", "The JWT is invalid")
    JWT_EXPIRED = ("AUTH_JWT_EXPIRED", "The JWT has expired")
    JWT_IMMATURE = ("AUTH_JWT_IMMATURE", "The JWT is immature (not valid yet)")
    BASIC_REJECTED = (
        "AUTH_BASIC_REJECTED",
        "The `Basic` HTTP authentication credentials were rejected",
    )
    FAILED = ("AUTH_FAILED", "Authentication failed")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[1]

    def error(self) -> AuthenticationError:
        """A fresh ``AuthenticationError`` carrying this reason's text and code."""
        return AuthenticationError(self.text, code=self.code)
