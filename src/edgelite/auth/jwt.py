"""EdDSA (Ed25519) JWT verification, written against the JWS compact form directly.

Why not a general JWT library: the only algorithm we accept is EdDSA, and pinning it
is the whole defence against algorithm confusion (``alg: none``, HS256 keyed with the
public key bytes, RS256). Doing the few steps ourselves also lets the caller pass the
current time (``now_s``), so expiry is testable without patching clocks. PyJWT is used
in the tests as an independent implementation to check interoperability.

Order of checks (each failure raises ``AuthenticationError`` with sqld's reason):

1. shape: ASCII, bounded length, three base64url segments, JSON object header
   with ``alg == "EdDSA"`` and no ``crit``                  -> ``AUTH_JWT_INVALID``
2. signature over ``header.payload`` with each key in order -> ``AUTH_JWT_INVALID``
   if none verifies
3. payload is a JSON object; ``exp``/``nbf`` are numbers    -> ``AUTH_JWT_INVALID``
4. ``exp < now - leeway``                                   -> ``AUTH_JWT_EXPIRED``
5. ``nbf > now + leeway``                                   -> ``AUTH_JWT_IMMATURE``

Nothing about the claims is looked at before the signature verifies, so an attacker
learns nothing from the reason (beyond "not signed by us").
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import re
import types
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature

from edgelite.auth.keys import PublicKeySet
from edgelite.auth.reasons import AuthReason

ALGORITHM = "EdDSA"
DEFAULT_LEEWAY_S = 60.0
# Turso tokens are a few hundred bytes; fine-grained `p` claims with many namespaces
# stay far below this. The bound caps the work a hostile client can ask for.
JWT_BYTES_MAX = 64 * 1024
ED25519_SIGNATURE_BYTES = 64

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


@dataclasses.dataclass(frozen=True, slots=True)
class SignedClaims:
    """The time-independent result of verifying a token: its claims and validity window.

    Everything here depends only on the token text and the keys, so it may be cached
    per token; the window is checked against the clock on every use (``check_window``).
    """

    claims: Mapping[str, Any]
    exp: int | float | None
    nbf: int | float | None

    def check_window(self, *, now_s: float, leeway_s: float) -> None:
        """Raise ``AUTH_JWT_EXPIRED`` if ``exp < now - leeway``, ``AUTH_JWT_IMMATURE`` if
        ``nbf > now + leeway``."""
        assert leeway_s >= 0, "leeway_s must not be negative"
        if self.exp is not None and self.exp < now_s - leeway_s:
            raise AuthReason.JWT_EXPIRED.error()
        if self.nbf is not None and self.nbf > now_s + leeway_s:
            raise AuthReason.JWT_IMMATURE.error()


def verify_jwt(
    token: str, keys: PublicKeySet, *, now_s: float, leeway_s: float = DEFAULT_LEEWAY_S
) -> dict[str, Any]:
    """Verify ``token`` and return its claims (a JSON object as a dict).

    Raises ``AuthenticationError`` (``AUTH_JWT_INVALID``, ``AUTH_JWT_EXPIRED`` or
    ``AUTH_JWT_IMMATURE``). ``now_s`` is Unix time in seconds.
    """
    signed = verify_signature(token, keys)
    signed.check_window(now_s=now_s, leeway_s=leeway_s)
    return dict(signed.claims)


def verify_signature(token: str, keys: PublicKeySet) -> SignedClaims:
    """Steps 1-3 of the module docstring: shape, signature, claims object, time-claim types."""
    header_b64, payload_b64, signature = _split(token)
    header = _decode_json_object(header_b64)
    if header is None or header.get("alg") != ALGORITHM or "crit" in header:
        # `crit` names extensions the verifier must understand; we understand none.
        raise AuthReason.JWT_INVALID.error()
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if not _signed_by_any(keys, signature, signing_input):
        raise AuthReason.JWT_INVALID.error()
    claims = _decode_json_object(payload_b64)
    if claims is None:
        raise AuthReason.JWT_INVALID.error()
    return SignedClaims(
        claims=types.MappingProxyType(claims),
        exp=_numeric_date(claims, "exp"),
        nbf=_numeric_date(claims, "nbf"),
    )


def encode_segment(data: bytes) -> str:
    """base64url without padding, as JWS compact serialization requires."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_json_segment(value: Mapping[str, Any]) -> str:
    """A JSON object as a compact JWS segment."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return encode_segment(text.encode("ascii"))


def _split(token: str) -> tuple[str, str, bytes]:
    if len(token) > JWT_BYTES_MAX or not token.isascii():
        raise AuthReason.JWT_INVALID.error()
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(part) for part in parts):
        raise AuthReason.JWT_INVALID.error()
    signature = _decode_segment(parts[2])
    if signature is None or len(signature) != ED25519_SIGNATURE_BYTES:
        raise AuthReason.JWT_INVALID.error()
    return parts[0], parts[1], signature


def _decode_segment(segment: str) -> bytes | None:
    if len(segment) % 4 == 1:  # no base64 text has this length
        return None
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None


def _decode_json_object(segment: str) -> dict[str, Any] | None:
    """The JSON object in a segment, or ``None`` when it is not exactly one object.

    Duplicate member names are refused: parsers disagree on which one wins, and a
    token that means different things to different readers is not one to honour.
    """
    raw = _decode_segment(segment)
    if raw is None:
        return None
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _signed_by_any(keys: PublicKeySet, signature: bytes, signing_input: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, signing_input)
        except InvalidSignature:
            continue
        return True
    return False


def _numeric_date(claims: Mapping[str, Any], name: str) -> int | float | None:
    """A NumericDate claim; ``None`` when absent or JSON null (sqld treats null as absent).

    Kept as ``int`` when integral: Python compares int and float exactly, whereas
    ``float()`` of a 400-digit integer would overflow.
    """
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthReason.JWT_INVALID.error()
    if isinstance(value, float) and not math.isfinite(value):
        raise AuthReason.JWT_INVALID.error()
    return value
