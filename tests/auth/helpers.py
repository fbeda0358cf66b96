"""Helpers for auth tests: key pairs and hand-built JWS tokens.

``forge`` builds a compact JWS from any header/payload and any signer, so tests can
produce exactly the malformed or malicious tokens an attacker would send.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgelite.auth import PublicKeySet, parse_public_keys

NOW_S = 1_750_000_000.0  # a fixed "current time" for every verification in these tests


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def json_segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def forge(
    header: Any,
    payload: Any,
    sign: Callable[[bytes], bytes],
) -> str:
    """A compact JWS with the given header and payload, signed by ``sign``."""
    signing_input = f"{json_segment(header)}.{json_segment(payload)}"
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


def eddsa(key: Ed25519PrivateKey, payload: Any, header: Any = None) -> str:
    """A correctly signed EdDSA token (header defaults to sqld's)."""
    return forge(header or {"alg": "EdDSA", "typ": "JWT"}, payload, key.sign)


def public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def raw_public_b64url(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return b64url(raw)


def keyset(*keys: Ed25519PrivateKey) -> PublicKeySet:
    return parse_public_keys("".join(public_pem(key) for key in keys), source="test keys")
