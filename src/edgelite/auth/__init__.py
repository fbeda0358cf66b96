"""Authentication and authorisation: Ed25519 JWTs with sqld's claims, deny by default.

The server builds one ``Authenticator`` at start-up (``AllowAll`` when auth is off,
``RequireCredentials`` otherwise), calls ``authenticate_header`` (HTTP) or
``authenticate_jwt`` (WebSocket hello) per request or connection, and then
``require(identity, namespace, needs_write=...)`` before touching a database.
Plain functions and frozen objects only: no I/O besides reading key files, no clock
(callers pass ``now_s``), no asyncio. See docs/design/auth.md.
"""

from __future__ import annotations

from edgelite.auth.authenticator import (
    AllowAll,
    Authenticator,
    RequireCredentials,
    build_authenticator,
    parse_http_auth,
    split_authorization,
)
from edgelite.auth.jwt import DEFAULT_LEEWAY_S, SignedClaims, verify_jwt, verify_signature
from edgelite.auth.keys import (
    PublicKeySet,
    load_private_key,
    load_public_keys,
    parse_public_keys,
    public_key_to_base64url,
)
from edgelite.auth.permissions import (
    BASIC_FULL_ACCESS,
    FULL_ACCESS,
    Access,
    Identity,
    Principal,
    identity_from_claims,
    require,
    require_attach,
)
from edgelite.auth.reasons import AuthReason
from edgelite.auth.tokens import (
    KeyPairFiles,
    generate_private_key,
    mint_token,
    parse_duration,
    private_key_pem,
    public_key_pem,
    write_key_pair,
)

__all__ = [
    "BASIC_FULL_ACCESS",
    "DEFAULT_LEEWAY_S",
    "FULL_ACCESS",
    "Access",
    "AllowAll",
    "AuthReason",
    "Authenticator",
    "Identity",
    "KeyPairFiles",
    "Principal",
    "PublicKeySet",
    "RequireCredentials",
    "SignedClaims",
    "build_authenticator",
    "generate_private_key",
    "identity_from_claims",
    "load_private_key",
    "load_public_keys",
    "mint_token",
    "parse_duration",
    "parse_http_auth",
    "parse_public_keys",
    "private_key_pem",
    "public_key_pem",
    "public_key_to_base64url",
    "require",
    "require_attach",
    "split_authorization",
    "verify_jwt",
    "verify_signature",
    "write_key_pair",
]
