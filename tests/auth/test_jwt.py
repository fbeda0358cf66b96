"""EdDSA JWT verification: rotation, time claims with leeway, algorithm confusion, shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgelite.auth import AuthReason, verify_jwt
from edgelite.auth.jwt import JWT_BYTES_MAX
from edgelite.errors import AuthenticationError
from tests.auth.helpers import NOW_S, b64url, eddsa, forge, json_segment, keyset, public_pem


def reason_of(token: str, keys: Any, *, now_s: float = NOW_S, leeway_s: float = 60.0) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verify_jwt(token, keys, now_s=now_s, leeway_s=leeway_s)
    return caught.value.code


def test_valid_token_returns_its_claims(key: Ed25519PrivateKey) -> None:
    claims = {"a": "ro", "id": "db1", "exp": NOW_S + 10, "custom": [1, {"x": None}]}
    assert verify_jwt(eddsa(key, claims), keyset(key), now_s=NOW_S) == claims


def test_token_made_by_pyjwt_verifies(key: Ed25519PrivateKey) -> None:
    token = pyjwt.encode({"a": "rw", "exp": int(NOW_S) + 5}, key, algorithm="EdDSA")
    assert verify_jwt(token, keyset(key), now_s=NOW_S)["a"] == "rw"


def test_rotation_any_configured_key_verifies(
    key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    keys = keyset(key, other_key)
    assert verify_jwt(eddsa(other_key, {"a": "rw"}), keys, now_s=NOW_S) == {"a": "rw"}
    assert verify_jwt(eddsa(key, {"a": "ro"}), keys, now_s=NOW_S) == {"a": "ro"}
    stranger = Ed25519PrivateKey.generate()
    assert reason_of(eddsa(stranger, {"a": "rw"}), keys) == "AUTH_JWT_INVALID"


def test_expired_token_signed_by_second_key_reports_expired(
    key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    token = eddsa(other_key, {"exp": NOW_S - 300})
    assert reason_of(token, keyset(key, other_key)) == "AUTH_JWT_EXPIRED"


@pytest.mark.parametrize(
    ("exp_offset_s", "leeway_s", "expected"),
    [
        (3600, 60, None),
        (0, 0, None),  # exp == now is still accepted (expired means exp < now - leeway)
        (-1, 0, "AUTH_JWT_EXPIRED"),
        (-59, 60, None),
        (-60, 60, None),
        (-61, 60, "AUTH_JWT_EXPIRED"),
        (-86400, 60, "AUTH_JWT_EXPIRED"),
    ],
)
def test_exp_with_leeway(
    key: Ed25519PrivateKey, exp_offset_s: int, leeway_s: float, expected: str | None
) -> None:
    token = eddsa(key, {"exp": int(NOW_S) + exp_offset_s})
    if expected is None:
        verify_jwt(token, keyset(key), now_s=NOW_S, leeway_s=leeway_s)
    else:
        assert reason_of(token, keyset(key), leeway_s=leeway_s) == expected


@pytest.mark.parametrize(
    ("nbf_offset_s", "leeway_s", "expected"),
    [
        (-3600, 60, None),
        (0, 0, None),
        (1, 0, "AUTH_JWT_IMMATURE"),
        (60, 60, None),
        (61, 60, "AUTH_JWT_IMMATURE"),
    ],
)
def test_nbf_with_leeway(
    key: Ed25519PrivateKey, nbf_offset_s: int, leeway_s: float, expected: str | None
) -> None:
    token = eddsa(key, {"nbf": int(NOW_S) + nbf_offset_s})
    if expected is None:
        verify_jwt(token, keyset(key), now_s=NOW_S, leeway_s=leeway_s)
    else:
        assert reason_of(token, keyset(key), leeway_s=leeway_s) == expected


def test_time_claims_edge_values(key: Ed25519PrivateKey) -> None:
    keys = keyset(key)
    # null counts as absent; huge integers compare exactly instead of overflowing
    verify_jwt(eddsa(key, {"exp": None, "nbf": None}), keys, now_s=NOW_S)
    verify_jwt(eddsa(key, {"exp": 10**400}), keys, now_s=NOW_S)
    assert reason_of(eddsa(key, {"exp": -(10**400)}), keys) == "AUTH_JWT_EXPIRED"
    verify_jwt(eddsa(key, {"exp": NOW_S + 0.5}), keys, now_s=NOW_S)
    verify_jwt(eddsa(key, {"iat": "whenever"}), keys, now_s=NOW_S)  # iat is ignored
    for bad in ("tomorrow", True, [1], {"t": 1}):
        assert reason_of(eddsa(key, {"exp": bad}), keys) == "AUTH_JWT_INVALID"
        assert reason_of(eddsa(key, {"nbf": bad}), keys) == "AUTH_JWT_INVALID"


def test_expired_and_immature_together_report_expired(key: Ed25519PrivateKey) -> None:
    token = eddsa(key, {"exp": NOW_S - 1000, "nbf": NOW_S + 1000})
    assert reason_of(token, keyset(key)) == "AUTH_JWT_EXPIRED"


# --- algorithm confusion ---------------------------------------------------------------


def test_alg_none_is_rejected(key: Ed25519PrivateKey) -> None:
    keys = keyset(key)
    unsigned = f"{json_segment({'alg': 'none', 'typ': 'JWT'})}.{json_segment({'a': 'rw'})}."
    assert reason_of(unsigned, keys) == "AUTH_JWT_INVALID"
    for alg in ("none", "None", "NONE"):
        forged = forge({"alg": alg}, {"a": "rw"}, lambda _: b"\x00" * 64)
        assert reason_of(forged, keys) == "AUTH_JWT_INVALID"


def test_alg_none_with_a_genuine_eddsa_signature_is_rejected(key: Ed25519PrivateKey) -> None:
    # Even a valid signature does not rescue a header that names another algorithm.
    for alg in ("none", "ES256", "Ed25519", "eddsa", None, 1):
        assert reason_of(eddsa(key, {"a": "rw"}, {"alg": alg}), keyset(key)) == (
            "AUTH_JWT_INVALID"
        )
    assert reason_of(eddsa(key, {"a": "rw"}, {"typ": "JWT"}), keyset(key)) == (
        "AUTH_JWT_INVALID"
    )


@pytest.mark.parametrize("secret_form", ["pem", "raw", "b64url"])
def test_hs256_keyed_with_the_public_key_is_rejected(
    key: Ed25519PrivateKey, secret_form: str
) -> None:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    secret = {
        "pem": public_pem(key).encode(),
        "raw": raw,
        "b64url": b64url(raw).encode(),
    }[secret_form]
    token = forge(
        {"alg": "HS256", "typ": "JWT"},
        {"a": "rw"},
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )
    assert reason_of(token, keyset(key)) == "AUTH_JWT_INVALID"
    # HS512 gives a 64-byte MAC, the same length as an Ed25519 signature
    token512 = forge(
        {"alg": "HS512"}, {"a": "rw"}, lambda data: hmac.new(secret, data, hashlib.sha512).digest()
    )
    assert reason_of(token512, keyset(key)) == "AUTH_JWT_INVALID"


def test_rs256_token_is_rejected(key: Ed25519PrivateKey) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = pyjwt.encode({"a": "rw"}, rsa_key, algorithm="RS256")
    assert reason_of(token, keyset(key)) == "AUTH_JWT_INVALID"
    relabelled = forge(
        {"alg": "EdDSA"},
        {"a": "rw"},
        lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
    )
    assert reason_of(relabelled, keyset(key)) == "AUTH_JWT_INVALID"


def test_crit_header_is_rejected(key: Ed25519PrivateKey) -> None:
    token = eddsa(key, {"a": "rw"}, {"alg": "EdDSA", "crit": ["b64"], "b64": False})
    assert reason_of(token, keyset(key)) == "AUTH_JWT_INVALID"


# --- tampering and malformed shapes -------------------------------------------------------


def test_tampered_payload_or_header_is_rejected(key: Ed25519PrivateKey) -> None:
    token = eddsa(key, {"a": "ro"})
    header, _payload, signature = token.split(".")
    upgraded = f"{header}.{json_segment({'a': 'rw'})}.{signature}"
    assert reason_of(upgraded, keyset(key)) == "AUTH_JWT_INVALID"
    other_header = json_segment({"alg": "EdDSA", "typ": "JWT", "kid": "x"})
    assert reason_of(f"{other_header}.{_payload}.{signature}", keyset(key)) == (
        "AUTH_JWT_INVALID"
    )


def test_duplicate_claim_names_are_rejected(key: Ed25519PrivateKey) -> None:
    header = json_segment({"alg": "EdDSA"})
    payload = b64url(b'{"a":"ro","a":"rw"}')
    signature = b64url(key.sign(f"{header}.{payload}".encode()))
    assert reason_of(f"{header}.{payload}.{signature}", keyset(key)) == "AUTH_JWT_INVALID"


def _signed_raw_payload(key: Ed25519PrivateKey, payload: bytes) -> str:
    header = json_segment({"alg": "EdDSA"})
    body = b64url(payload)
    return f"{header}.{body}.{b64url(key.sign(f'{header}.{body}'.encode()))}"


@pytest.mark.parametrize(
    "payload",
    [b"[1,2]", b'"a"', b"null", b"42", b"", b"{", b"\xff\xfe", b'{"exp": NaN}',
     b'{"exp": Infinity}', b"[" * 100_000 + b"]" * 100_000],
)
def test_signed_payload_that_is_not_a_json_object_is_invalid(
    key: Ed25519PrivateKey, payload: bytes
) -> None:
    token = _signed_raw_payload(key, payload)
    if len(token) > JWT_BYTES_MAX:
        token = _signed_raw_payload(key, b"[" * 20_000 + b"]" * 20_000)
    assert reason_of(token, keyset(key)) == "AUTH_JWT_INVALID"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "None",
        "a.b",
        "a.b.c.d",
        "..",
        "eyJhbGciOiJFZERTQSJ9.e30.",
        "eyJhbGciOiJFZERTQSJ9.e30.A",
        "eyJhbGciOiJFZERTQSJ9.e30." + "A" * 85,  # not 64 bytes
        "eyJhbGciOiJFZERTQSJ9=.e30." + "A" * 86,  # padding is not allowed
        "eyJhbGciOiJFZERTQSJ9.e30." + "+" * 86,  # standard alphabet is not allowed
        "eyJhbGciOiJFZERTQSJ9.é30." + "A" * 86,
        "x" * (JWT_BYTES_MAX + 1),
    ],
)
def test_malformed_tokens_are_invalid(key: Ed25519PrivateKey, token: str) -> None:
    assert reason_of(token, keyset(key)) == "AUTH_JWT_INVALID"


def test_oversized_but_well_formed_token_is_invalid(key: Ed25519PrivateKey) -> None:
    token = eddsa(key, {"pad": "x" * JWT_BYTES_MAX})
    assert reason_of(token, keyset(key)) == "AUTH_JWT_INVALID"


def test_reason_texts_and_codes_are_sqlds() -> None:
    table = {
        AuthReason.HEADER_NOT_FOUND: (
            "AUTH_HEADER_NOT_FOUND", "Expected authorization header but none given"),
        AuthReason.HEADER_MALFORMED: (
            "AUTH_HEADER_MALFORMED", "Auth string does not conform to '<scheme> <token>' form"),
        AuthReason.HEADER_NON_ASCII: ("AUTH_HEADER_MALFORMED", "Non-ASCII auth header"),
        AuthReason.UNSUPPORTED_SCHEME: (
            "AUTH_HTTP_HEADER_UNSUPPORTED_SCHEME",
            "The authentication scheme in the `Authorization` HTTP header is not supported"),
        AuthReason.JWT_INVALID: ("AUTH_JWT_INVALID", "The JWT is invalid"),
        AuthReason.JWT_EXPIRED: ("AUTH_JWT_EXPIRED", "The JWT has expired"),
        AuthReason.JWT_IMMATURE: ("AUTH_JWT_IMMATURE", "The JWT is immature (not valid yet)"),
        AuthReason.BASIC_REJECTED: (
            "AUTH_BASIC_REJECTED", "The `Basic` HTTP authentication credentials were rejected"),
        AuthReason.FAILED: ("AUTH_FAILED", "Authentication failed"),
    }
    assert set(table) == set(AuthReason)
    for reason, (code, text) in table.items():
        error = reason.error()
        assert isinstance(error, AuthenticationError)
        assert (error.code, error.message, str(error)) == (code, text, text)
        assert error.http_status == 401


def test_claims_are_returned_as_parsed_json(key: Ed25519PrivateKey) -> None:
    claims = {"p": {"rw": {"ns": ["ü", "a b"]}}, "n": 1.5, "big": 2**70}
    verified = verify_jwt(eddsa(key, claims), keyset(key), now_s=NOW_S)
    assert json.dumps(verified, sort_keys=True) == json.dumps(claims, sort_keys=True)
