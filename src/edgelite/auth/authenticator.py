"""Turning credentials into an ``Identity``: the server's one entry point into auth.

Two authenticators, one protocol:

* ``AllowAll`` (auth disabled, sqld's default): every request gets ``FULL_ACCESS`` and
  the credentials are not looked at at all — clients such as Python ``libsql-client``
  send ``Authorization: Bearer None`` when they have no token.
* ``RequireCredentials``: a JWT (``Bearer``) verified with the configured public keys,
  and/or the legacy HTTP Basic credential (``--http-auth basic:<base64>``).

HTTP passes the raw ``Authorization`` header value; WebSocket passes the ``jwt`` field
of the ``hello`` message. Both take the current Unix time ``now_s`` from the caller.
Everything here is plain, synchronous and cheap (one Ed25519 verify per key tried).
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from edgelite.auth.jwt import DEFAULT_LEEWAY_S, SignedClaims, verify_signature
from edgelite.auth.keys import PublicKeySet, load_public_keys, parse_public_keys
from edgelite.auth.permissions import (
    BASIC_FULL_ACCESS,
    FULL_ACCESS,
    Identity,
    identity_from_claims,
)
from edgelite.auth.reasons import AuthReason
from edgelite.errors import ConfigError

CACHED_TOKEN_CHARS_MAX = 2048
# What an HTTP header value may hold as text (sqld: `HeaderValue::to_str` succeeds).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


class Authenticator(Protocol):
    """What the server needs from auth. Failures raise ``AuthenticationError``."""

    def authenticate_header(self, authorization: str | None, now_s: float) -> Identity:
        """The identity behind an HTTP ``Authorization`` header value (``None``: absent)."""
        ...

    def authenticate_jwt(self, token: str | None, now_s: float) -> Identity:
        """The identity behind a WebSocket ``hello`` ``jwt`` (``None``: absent or null)."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class AllowAll:
    """Authentication disabled: full access, credentials ignored entirely."""

    def authenticate_header(self, authorization: str | None, now_s: float) -> Identity:
        return FULL_ACCESS

    def authenticate_jwt(self, token: str | None, now_s: float) -> Identity:
        return FULL_ACCESS


@dataclasses.dataclass(frozen=True, slots=True)
class RequireCredentials:
    """Deny unless the caller proves who it is.

    ``jwt_keys`` enables ``Bearer <jwt>``; ``basic_credential`` enables
    ``Basic <base64(user:pass)>``. Invariant: at least one of them is set.

    Verifying a signature costs about 100 us per key tried, more than serving a point
    read, and clients send the same token on every request. So the time-independent
    part of verification (signature, claims, rights) is memoised per token text in a
    bounded LRU; the validity window (``exp``/``nbf``) is checked on every call. Only
    successes are cached, and only tokens up to ``CACHED_TOKEN_CHARS_MAX`` long, which
    bounds the cache's memory (about ``verified_tokens_max`` x 2 KiB).
    """

    jwt_keys: PublicKeySet | None = None
    basic_credential: str | None = None
    leeway_s: float = DEFAULT_LEEWAY_S
    verified_tokens_max: int = 1024
    _verified: Callable[[str], tuple[SignedClaims, Identity]] = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.jwt_keys is None and self.basic_credential is None:
            raise ConfigError("authentication needs JWT keys or an HTTP Basic credential")
        if self.leeway_s < 0:
            raise ConfigError(f"JWT leeway must not be negative (got {self.leeway_s} s)")
        if self.basic_credential is not None:
            _check_basic_credential(self.basic_credential)
        if self.verified_tokens_max < 0:
            raise ConfigError("verified_tokens_max must not be negative")
        cached = functools.lru_cache(maxsize=self.verified_tokens_max)(self._verify_token)
        object.__setattr__(self, "_verified", cached)

    def authenticate_header(self, authorization: str | None, now_s: float) -> Identity:
        scheme, param = split_authorization(authorization)
        scheme = scheme.lower()
        if scheme == "bearer" and self.jwt_keys is not None:
            return self._verify_jwt(param, now_s)
        if scheme == "basic" and self.basic_credential is not None:
            return self._check_basic(param)
        raise AuthReason.UNSUPPORTED_SCHEME.error()

    def authenticate_jwt(self, token: str | None, now_s: float) -> Identity:
        if token is None:
            raise AuthReason.HEADER_NOT_FOUND.error()
        if self.jwt_keys is not None:
            return self._verify_jwt(token, now_s)
        # Basic-only server: a WebSocket client can only carry the credential in `jwt`.
        return self._check_basic(token)

    def _verify_jwt(self, token: str, now_s: float) -> Identity:
        if len(token) <= CACHED_TOKEN_CHARS_MAX:
            signed, identity = self._verified(token)
        else:
            signed, identity = self._verify_token(token)
        signed.check_window(now_s=now_s, leeway_s=self.leeway_s)
        return identity

    def _verify_token(self, token: str) -> tuple[SignedClaims, Identity]:
        """Everything about ``token`` that does not depend on the time (memoised)."""
        assert self.jwt_keys is not None
        signed = verify_signature(token, self.jwt_keys)
        return signed, identity_from_claims(signed.claims)

    def _check_basic(self, given: str) -> Identity:
        assert self.basic_credential is not None
        expected = self.basic_credential.rstrip("=").encode("ascii")
        # Padding is optional on both sides (sqld trims it too); the comparison is
        # constant-time so the credential cannot be guessed byte by byte.
        candidate = given.rstrip("=").encode("ascii", errors="replace")
        if hmac.compare_digest(candidate, expected):
            return BASIC_FULL_ACCESS
        raise AuthReason.BASIC_REJECTED.error()


def build_authenticator(
    *,
    jwt_key_file: str | Path | None = None,
    jwt_key: str | None = None,
    http_auth: str | None = None,
    leeway_s: float = DEFAULT_LEEWAY_S,
) -> Authenticator:
    """The authenticator a node's configuration asks for; ``AllowAll`` when none is set.

    ``jwt_key_file`` is ``--auth-jwt-key-file``; ``jwt_key`` the key text itself (sqld's
    ``SQLD_AUTH_JWT_KEY``); ``http_auth`` is ``--http-auth basic:<base64>``. Giving both a
    key file and key text is refused rather than guessing which one wins.
    """
    if jwt_key_file is not None and jwt_key is not None:
        raise ConfigError("give the JWT public key as a file or as text, not both")
    keys: PublicKeySet | None = None
    if jwt_key_file is not None:
        keys = load_public_keys(jwt_key_file)
    elif jwt_key is not None:
        keys = parse_public_keys(jwt_key, source="JWT key text")
    basic = parse_http_auth(http_auth) if http_auth is not None else None
    if keys is None and basic is None:
        return AllowAll()
    return RequireCredentials(jwt_keys=keys, basic_credential=basic, leeway_s=leeway_s)


def split_authorization(authorization: str | None) -> tuple[str, str]:
    """Split an ``Authorization`` value into ``(scheme, credentials)`` at the first space.

    Mirrors sqld: absent -> ``AUTH_HEADER_NOT_FOUND``; characters outside visible ASCII,
    space and tab -> ``AUTH_HEADER_MALFORMED`` ("Non-ASCII auth header"); no space ->
    ``AUTH_HEADER_MALFORMED``. The credentials part is returned as is (possibly empty).
    """
    if authorization is None:
        raise AuthReason.HEADER_NOT_FOUND.error()
    if _HEADER_VALUE.fullmatch(authorization) is None:
        raise AuthReason.HEADER_NON_ASCII.error()
    scheme, space, param = authorization.partition(" ")
    if not space:
        raise AuthReason.HEADER_MALFORMED.error()
    return scheme, param


def parse_http_auth(arg: str) -> str:
    """The credential in ``--http-auth basic:<base64(user:pass)>``; ``ConfigError`` otherwise."""
    scheme, colon, credential = arg.partition(":")
    if not colon:
        raise ConfigError(f"--http-auth {arg!r}: expected 'basic:<base64 of user:password>'")
    if scheme != "basic":
        raise ConfigError(f"--http-auth: unsupported scheme {scheme!r}; only 'basic' exists")
    _check_basic_credential(credential)
    return credential


def _check_basic_credential(credential: str) -> None:
    if not credential.rstrip("="):
        raise ConfigError("HTTP Basic credential must not be empty")
    if not all(" " < char <= "~" for char in credential):
        raise ConfigError("HTTP Basic credential must be printable ASCII without spaces")
