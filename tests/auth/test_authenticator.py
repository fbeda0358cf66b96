"""Authorization header / WebSocket hello handling: every sqld failure reason, Basic, fuzzing."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgelite.auth import (
    BASIC_FULL_ACCESS,
    FULL_ACCESS,
    Access,
    AllowAll,
    Identity,
    RequireCredentials,
    build_authenticator,
    parse_http_auth,
    split_authorization,
)
from edgelite.errors import AuthenticationError, ConfigError
from tests.auth.helpers import NOW_S, eddsa, keyset, public_pem, raw_public_b64url

CREDENTIAL = base64.b64encode(b"user:pass word").decode()  # ends with "="
FIXED_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
FIXED_AUTH = RequireCredentials(jwt_keys=keyset(FIXED_KEY), basic_credential=CREDENTIAL)


def failure(authenticate: object, *args: object) -> tuple[str, str]:
    assert callable(authenticate)
    with pytest.raises(AuthenticationError) as caught:
        authenticate(*args)
    return caught.value.code, caught.value.message


@pytest.fixture
def jwt_only(key: Ed25519PrivateKey) -> RequireCredentials:
    return RequireCredentials(jwt_keys=keyset(key))


def test_bearer_token_gives_its_identity(
    jwt_only: RequireCredentials, key: Ed25519PrivateKey
) -> None:
    identity = jwt_only.authenticate_header(f"Bearer {eddsa(key, {'a': 'ro'})}", NOW_S)
    assert identity.access_to("default") is Access.READ
    for scheme in ("bearer", "BEARER", "BeArEr"):
        token = eddsa(key, {"id": "db1"})
        assert jwt_only.authenticate_header(f"{scheme} {token}", NOW_S).access_to("db1") is (
            Access.WRITE
        )


@pytest.mark.parametrize(
    ("header", "code", "text"),
    [
        (None, "AUTH_HEADER_NOT_FOUND", "Expected authorization header but none given"),
        ("", "AUTH_HEADER_MALFORMED", "Auth string does not conform to '<scheme> <token>' form"),
        ("Bearer", "AUTH_HEADER_MALFORMED",
         "Auth string does not conform to '<scheme> <token>' form"),
        ("Bearer\ttoken", "AUTH_HEADER_MALFORMED",
         "Auth string does not conform to '<scheme> <token>' form"),
        ("Bearer tök", "AUTH_HEADER_MALFORMED", "Non-ASCII auth header"),
        ("Bearer a\nb", "AUTH_HEADER_MALFORMED", "Non-ASCII auth header"),
        ("Basic dXNlcjpwYXNz", "AUTH_HTTP_HEADER_UNSUPPORTED_SCHEME",
         "The authentication scheme in the `Authorization` HTTP header is not supported"),
        ("Token abc", "AUTH_HTTP_HEADER_UNSUPPORTED_SCHEME",
         "The authentication scheme in the `Authorization` HTTP header is not supported"),
        (" Bearer abc", "AUTH_HTTP_HEADER_UNSUPPORTED_SCHEME",
         "The authentication scheme in the `Authorization` HTTP header is not supported"),
        ("Bearer None", "AUTH_JWT_INVALID", "The JWT is invalid"),  # Python libsql-client
        ("Bearer ", "AUTH_JWT_INVALID", "The JWT is invalid"),  # Rust core without a token
        ("Bearer  abc", "AUTH_JWT_INVALID", "The JWT is invalid"),
    ],
)
def test_header_failures_use_sqlds_reasons(
    jwt_only: RequireCredentials, header: str | None, code: str, text: str
) -> None:
    assert failure(jwt_only.authenticate_header, header, NOW_S) == (code, text)


def test_expired_and_immature_tokens_in_header(
    jwt_only: RequireCredentials, key: Ed25519PrivateKey
) -> None:
    expired = eddsa(key, {"exp": NOW_S - 61})
    immature = eddsa(key, {"nbf": NOW_S + 61})
    assert failure(jwt_only.authenticate_header, f"Bearer {expired}", NOW_S) == (
        "AUTH_JWT_EXPIRED", "The JWT has expired")
    assert failure(jwt_only.authenticate_header, f"Bearer {immature}", NOW_S) == (
        "AUTH_JWT_IMMATURE", "The JWT is immature (not valid yet)")


def test_leeway_is_configurable(key: Ed25519PrivateKey) -> None:
    strict = RequireCredentials(jwt_keys=keyset(key), leeway_s=0)
    token = eddsa(key, {"exp": NOW_S - 1})
    assert failure(strict.authenticate_header, f"Bearer {token}", NOW_S)[0] == "AUTH_JWT_EXPIRED"
    lenient = RequireCredentials(jwt_keys=keyset(key))
    assert lenient.authenticate_header(f"Bearer {token}", NOW_S).access_to("x") is Access.WRITE
    with pytest.raises(ConfigError, match="leeway"):
        RequireCredentials(jwt_keys=keyset(key), leeway_s=-1)


def test_malformed_claims_in_a_signed_token_are_invalid(
    jwt_only: RequireCredentials, key: Ed25519PrivateKey
) -> None:
    token = eddsa(key, {"a": "admin"})
    assert failure(jwt_only.authenticate_header, f"Bearer {token}", NOW_S)[0] == (
        "AUTH_JWT_INVALID"
    )


def test_websocket_hello_jwt(jwt_only: RequireCredentials, key: Ed25519PrivateKey) -> None:
    identity = jwt_only.authenticate_jwt(eddsa(key, {"a": "ro", "id": "db1"}), NOW_S)
    assert identity.access_to("db1") is Access.READ
    assert identity.access_to("db2") is Access.NONE
    assert failure(jwt_only.authenticate_jwt, None, NOW_S) == (
        "AUTH_HEADER_NOT_FOUND", "Expected authorization header but none given")
    assert failure(jwt_only.authenticate_jwt, "", NOW_S)[0] == "AUTH_JWT_INVALID"
    # the hello carries the bare token, not "Bearer <token>"
    bearer = f"Bearer {eddsa(key, {})}"
    assert failure(jwt_only.authenticate_jwt, bearer, NOW_S)[0] == "AUTH_JWT_INVALID"


def test_allow_all_ignores_credentials_entirely() -> None:
    allow = AllowAll()
    for header in (None, "", "Bearer None", "Bearer garbage", "Basic x", "tök\n"):
        assert allow.authenticate_header(header, NOW_S) is FULL_ACCESS
    for token in (None, "", "garbage"):
        assert allow.authenticate_jwt(token, NOW_S) is FULL_ACCESS
    assert FULL_ACCESS.access_to("anything") is Access.WRITE
    assert FULL_ACCESS.can_attach("anything")


def test_basic_auth_legacy_mode() -> None:
    basic = RequireCredentials(basic_credential=parse_http_auth(f"basic:{CREDENTIAL}"))
    assert basic.authenticate_header(f"Basic {CREDENTIAL}", NOW_S) is BASIC_FULL_ACCESS
    assert basic.authenticate_header(f"basic {CREDENTIAL.rstrip('=')}", NOW_S) is (
        BASIC_FULL_ACCESS
    )
    rejected = ("AUTH_BASIC_REJECTED", "The `Basic` HTTP authentication credentials were rejected")
    for wrong in ("Basic ", "Basic x", f"Basic {CREDENTIAL}x", f"Basic x{CREDENTIAL}",
                  f"Basic {CREDENTIAL[:-2]}"):
        assert failure(basic.authenticate_header, wrong, NOW_S) == rejected
    assert failure(basic.authenticate_header, "Bearer abc", NOW_S)[0] == (
        "AUTH_HTTP_HEADER_UNSUPPORTED_SCHEME"
    )
    assert basic.authenticate_jwt(CREDENTIAL, NOW_S) is BASIC_FULL_ACCESS
    assert failure(basic.authenticate_jwt, "nope", NOW_S) == rejected
    assert failure(basic.authenticate_jwt, "ü", NOW_S) == rejected


def test_jwt_and_basic_together(key: Ed25519PrivateKey) -> None:
    both = RequireCredentials(jwt_keys=keyset(key), basic_credential=CREDENTIAL)
    assert both.authenticate_header(f"Basic {CREDENTIAL}", NOW_S) is BASIC_FULL_ACCESS
    token = eddsa(key, {"a": "ro"})
    assert both.authenticate_header(f"Bearer {token}", NOW_S).access_to("d") is Access.READ
    assert both.authenticate_jwt(token, NOW_S).access_to("d") is Access.READ


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="needs JWT keys or an HTTP Basic credential"):
        RequireCredentials()
    for arg, problem in [
        ("dXNlcjpwYXNz", "expected 'basic:"),
        ("bearer:abc", "unsupported scheme 'bearer'"),
        ("basic:", "must not be empty"),
        ("basic:==", "must not be empty"),
        ("basic:a b", "printable ASCII"),
    ]:
        with pytest.raises(ConfigError, match=problem):
            parse_http_auth(arg)
    with pytest.raises(ConfigError, match="printable ASCII"):
        RequireCredentials(basic_credential="ü")


def test_split_authorization() -> None:
    assert split_authorization("Bearer a b") == ("Bearer", "a b")
    assert split_authorization("X ") == ("X", "")


# --- fuzzing -------------------------------------------------------------------------------

_header_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F)),
    st.builds(lambda s, t: f"{s} {t}", st.sampled_from(["Bearer", "bearer", "Basic", "X"]),
              st.text()),
    st.builds(
        lambda parts: "Bearer " + ".".join(parts),
        st.lists(st.text(alphabet="ABCabc012_-=+/.", max_size=40), min_size=1, max_size=4),
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(header=st.one_of(st.none(), _header_text))
def test_any_header_raises_only_authentication_error(header: str | None) -> None:
    try:
        identity = FIXED_AUTH.authenticate_header(header, NOW_S)
    except AuthenticationError as exc:
        assert exc.code.startswith("AUTH_")
        assert exc.http_status == 401
    else:
        # only the correct Basic credential can get here without a signed token
        assert identity is BASIC_FULL_ACCESS
    assert AllowAll().authenticate_header(header, NOW_S) is FULL_ACCESS


@settings(max_examples=200, deadline=None)
@given(token=st.one_of(st.none(), st.text()))
def test_any_hello_jwt_raises_only_authentication_error(token: str | None) -> None:
    try:
        identity = FIXED_AUTH.authenticate_jwt(token, NOW_S)
    except AuthenticationError as exc:
        assert exc.code.startswith("AUTH_")
    else:
        raise AssertionError(f"unsigned text was accepted: {token!r} -> {identity}")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)
_claim_values = {
    "a": st.one_of(st.sampled_from(["rw", "ro", "roa", "rwa", "ddl", ""]), _json),
    "id": st.one_of(st.sampled_from(["db1", ""]), _json),
    "p": st.one_of(
        st.dictionaries(
            st.sampled_from(["rw", "ro", "roa", "rwa", "ddl", "zz"]),
            st.one_of(
                st.fixed_dictionaries({}, optional={"ns": st.one_of(
                    st.lists(st.sampled_from(["db1", "db2", ""])), _json),
                    "tags": st.one_of(st.lists(st.text(max_size=3)), _json)}),
                _json,
            ),
        ),
        _json,
    ),
    "exp": st.one_of(st.integers(), st.floats(allow_nan=False), _json),
    "nbf": st.one_of(st.integers(), _json),
}


@settings(max_examples=300, deadline=None)
@given(claims=st.fixed_dictionaries({}, optional=_claim_values))
def test_any_signed_claims_give_an_identity_or_authentication_error(
    claims: dict[str, object],
) -> None:
    token = eddsa(FIXED_KEY, claims)
    try:
        identity = FIXED_AUTH.authenticate_header(f"Bearer {token}", NOW_S)
    except AuthenticationError as exc:
        assert exc.code in {"AUTH_JWT_INVALID", "AUTH_JWT_EXPIRED", "AUTH_JWT_IMMATURE"}
    else:
        assert isinstance(identity, Identity)
        assert Identity.from_dict(identity.to_dict()) == identity


def test_build_authenticator_from_configuration(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    assert isinstance(build_authenticator(), AllowAll)
    key_file = tmp_path / "jwt.pub"
    key_file.write_text(public_pem(key))
    token = eddsa(key, {"a": "ro"})
    for auth in (
        build_authenticator(jwt_key_file=key_file, leeway_s=5),
        build_authenticator(jwt_key=raw_public_b64url(key)),
        build_authenticator(jwt_key_file=str(key_file), http_auth=f"basic:{CREDENTIAL}"),
    ):
        assert isinstance(auth, RequireCredentials)
        assert auth.authenticate_header(f"Bearer {token}", NOW_S).access_to("d") is Access.READ
    configured = build_authenticator(jwt_key_file=key_file, leeway_s=5)
    assert isinstance(configured, RequireCredentials) and configured.leeway_s == 5
    basic_only = build_authenticator(http_auth=f"basic:{CREDENTIAL}")
    assert basic_only.authenticate_header(f"Basic {CREDENTIAL}", NOW_S) is BASIC_FULL_ACCESS
    with pytest.raises(ConfigError, match="not both"):
        build_authenticator(jwt_key_file=key_file, jwt_key=raw_public_b64url(key))
    with pytest.raises(ConfigError, match="no such file"):
        build_authenticator(jwt_key_file=tmp_path / "missing")


def test_cached_verification_still_checks_the_clock(key: Ed25519PrivateKey) -> None:
    auth = RequireCredentials(jwt_keys=keyset(key), leeway_s=0)
    token = eddsa(key, {"a": "ro", "exp": NOW_S + 100, "nbf": NOW_S - 100})
    assert auth.authenticate_jwt(token, NOW_S).access_to("x") is Access.READ
    assert auth.authenticate_jwt(token, NOW_S + 50).access_to("x") is Access.READ
    assert failure(auth.authenticate_jwt, token, NOW_S + 101)[0] == "AUTH_JWT_EXPIRED"
    assert failure(auth.authenticate_jwt, token, NOW_S - 101)[0] == "AUTH_JWT_IMMATURE"
    assert auth.authenticate_header(f"Bearer {token}", NOW_S).access_to("x") is Access.READ


def test_cache_is_bounded_and_keyed_by_the_exact_token(key: Ed25519PrivateKey) -> None:
    auth = RequireCredentials(jwt_keys=keyset(key), verified_tokens_max=4)
    tokens = [eddsa(key, {"a": "ro" if n % 2 else "rw", "n": n}) for n in range(10)]
    for n, token in enumerate(tokens):
        expected = Access.READ if n % 2 else Access.WRITE
        assert auth.authenticate_jwt(token, NOW_S).access_to("x") is expected
    for n, token in enumerate(tokens):  # evicted or not, every answer is the token's own
        expected = Access.READ if n % 2 else Access.WRITE
        assert auth.authenticate_jwt(token, NOW_S).access_to("x") is expected
        swapped = "B" if token[-10] == "A" else "A"  # a middle character: all 6 bits count
        tampered = token[:-10] + swapped + token[-9:]
        assert failure(auth.authenticate_jwt, tampered, NOW_S)[0] == "AUTH_JWT_INVALID"
    assert auth._verified.cache_info().currsize <= 4  # type: ignore[attr-defined]
    long_token = eddsa(key, {"a": "ro", "pad": "x" * 3000})
    assert auth.authenticate_jwt(long_token, NOW_S).access_to("x") is Access.READ
    assert auth.authenticate_jwt(long_token, NOW_S).access_to("x") is Access.READ
