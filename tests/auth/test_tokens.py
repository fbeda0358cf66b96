"""Minting tokens, durations, and writing key pairs to disk."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgelite.auth import (
    Access,
    RequireCredentials,
    generate_private_key,
    load_private_key,
    load_public_keys,
    mint_token,
    parse_duration,
    verify_jwt,
    write_key_pair,
)
from edgelite.errors import ConfigError
from tests.auth.helpers import NOW_S, keyset


def test_minted_token_has_sqld_claims_and_verifies_with_pyjwt(key: Ed25519PrivateKey) -> None:
    token = mint_token(key, read_only=True, expires_in_s=3600, namespace="db1", now_s=NOW_S + 0.7)
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "JWT"}
    claims = pyjwt.decode(
        token, key.public_key(), algorithms=["EdDSA"], options={"verify_exp": False}
    )
    assert claims == {"a": "ro", "iat": int(NOW_S), "exp": int(NOW_S) + 3600, "id": "db1"}
    assert verify_jwt(token, keyset(key), now_s=NOW_S) == claims


@pytest.mark.parametrize(
    ("read_only", "namespace", "expected"),
    [
        (False, None, {"default": Access.WRITE, "db1": Access.WRITE}),
        (True, None, {"default": Access.READ, "db1": Access.READ}),
        (False, "db1", {"default": Access.NONE, "db1": Access.WRITE}),
        (True, "db1", {"default": Access.NONE, "db1": Access.READ}),
    ],
)
def test_minted_token_grants_what_was_asked(
    key: Ed25519PrivateKey, read_only: bool, namespace: str | None, expected: dict[str, Access]
) -> None:
    token = mint_token(key, read_only=read_only, expires_in_s=None, namespace=namespace,
                       now_s=NOW_S)
    identity = RequireCredentials(jwt_keys=keyset(key)).authenticate_jwt(token, NOW_S)
    assert {name: identity.access_to(name) for name in expected} == expected


def test_minted_token_expires(key: Ed25519PrivateKey) -> None:
    token = mint_token(key, read_only=False, expires_in_s=600, namespace=None, now_s=NOW_S)
    keys = keyset(key)
    verify_jwt(token, keys, now_s=NOW_S + 600, leeway_s=0)
    with pytest.raises(Exception, match="The JWT has expired"):
        verify_jwt(token, keys, now_s=NOW_S + 601, leeway_s=0)
    forever = mint_token(key, read_only=False, expires_in_s=None, namespace=None, now_s=NOW_S)
    assert "exp" not in verify_jwt(forever, keys, now_s=NOW_S + 10**9)


def test_mint_token_refuses_nonsense(key: Ed25519PrivateKey) -> None:
    for lifetime in (0, -5, float("nan"), 10**12):
        with pytest.raises(ConfigError, match="lifetime"):
            mint_token(key, read_only=False, expires_in_s=lifetime, namespace=None, now_s=NOW_S)
    with pytest.raises(ConfigError, match="namespace must not be empty"):
        mint_token(key, read_only=False, expires_in_s=None, namespace="", now_s=NOW_S)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("3600s", 3600), ("30m", 1800), ("12h", 43200), ("7d", 604800),
     ("2w", 1209600), (" 7D ", 604800), ("never", None), ("NEVER", None)],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "whole number with a unit"), ("7", "whole number with a unit"),
     ("d", "whole number with a unit"), ("1.5h", "whole number with a unit"),
     ("-1h", "whole number with a unit"), ("1h30m", "whole number with a unit"),
     ("7y", "whole number with a unit"), ("9" * 5000 + "s", "whole number with a unit"),
     ("0s", "longer than zero"), ("999999w", "longer than 100 years")],
)
def test_parse_duration_refusals(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_duration(text)


@pytest.fixture(params=[0o022, 0o077, 0o000])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_key_pair_modes_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    key = generate_private_key()
    files = write_key_pair(key, tmp_path / "k.pem", tmp_path / "k.pub", force=False)
    assert mode(files.private_key_path) == 0o600
    assert mode(files.public_key_path) == 0o644
    assert load_public_keys(files.public_key_path).raw_bytes() == (
        key.public_key().public_bytes_raw(),
    )
    assert load_private_key(files.private_key_path).private_bytes_raw() == key.private_bytes_raw()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "k.pub"]  # no temp files


def test_write_key_pair_never_overwrites_without_force(tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    public.write_text("keep me")
    with pytest.raises(ConfigError, match=r"k\.pub already exists \(use --force"):
        write_key_pair(generate_private_key(), private, public, force=False)
    assert not private.exists()  # nothing written when either file exists
    assert public.read_text() == "keep me"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="already exists"):
        write_key_pair(generate_private_key(), dangling, tmp_path / "x.pub", force=False)


def test_write_key_pair_force_replaces_and_tightens_mode(tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    private.write_text("old")
    private.chmod(0o644)
    public.write_text("old")
    key = generate_private_key()
    write_key_pair(key, private, public, force=True)
    assert mode(private) == 0o600
    assert load_private_key(private).private_bytes_raw() == key.private_bytes_raw()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "k.pub"]


def test_write_key_pair_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="same file"):
        write_key_pair(generate_private_key(), tmp_path / "k", tmp_path / "k", force=True)
    with pytest.raises(ConfigError, match="cannot create a file in"):
        write_key_pair(
            generate_private_key(), tmp_path / "no" / "k.pem", tmp_path / "no" / "k.pub",
            force=False,
        )
