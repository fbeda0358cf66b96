"""Public/private key loading: every accepted format, every refusal names file and problem."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgelite.auth import (
    load_private_key,
    load_public_keys,
    parse_public_keys,
    public_key_to_base64url,
    verify_jwt,
)
from edgelite.errors import ConfigError
from tests.auth.helpers import NOW_S, eddsa, public_pem, raw_public_b64url


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def write(tmp_path: Path, text: str | bytes, name: str = "key.pem") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


def test_single_pem_public_key_file(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    keys = load_public_keys(write(tmp_path, public_pem(key)))
    assert keys.raw_bytes() == (raw(key),)
    assert str(tmp_path / "key.pem") in keys.source


@pytest.mark.parametrize("separator", ["", "\n", "\n\n", "\r\n"])
def test_concatenated_pem_blocks_keep_their_order(
    tmp_path: Path, key: Ed25519PrivateKey, other_key: Ed25519PrivateKey, separator: str
) -> None:
    text = public_pem(key) + separator + public_pem(other_key)
    keys = load_public_keys(write(tmp_path, text))
    assert keys.raw_bytes() == (raw(key), raw(other_key))


def test_raw_base64url_key_as_sqld_accepts_it(key: Ed25519PrivateKey) -> None:
    text = raw_public_b64url(key)
    assert len(text) == 43 and "=" not in text
    keys = parse_public_keys(text, source="env SQLD_AUTH_JWT_KEY")
    assert keys.raw_bytes() == (raw(key),)
    token = eddsa(key, {"a": "rw"})
    assert verify_jwt(token, keys, now_s=NOW_S) == {"a": "rw"}


def test_raw_base64url_keys_one_per_line_with_padding_and_blank_lines(
    tmp_path: Path, key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    text = f"\n{raw_public_b64url(key)}=\n\n  {raw_public_b64url(other_key)}  \n"
    keys = load_public_keys(write(tmp_path, text, "keys.txt"))
    assert keys.raw_bytes() == (raw(key), raw(other_key))


def test_public_key_to_base64url_round_trips(key: Ed25519PrivateKey) -> None:
    text = public_key_to_base64url(key.public_key())
    assert parse_public_keys(text, source="s").raw_bytes() == (raw(key),)


def test_openssl_generated_key_pair_is_accepted(tmp_path: Path) -> None:
    private = tmp_path / "openssl.key"
    public = tmp_path / "openssl.pub"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)],
        check=True, capture_output=True,
    )
    subprocess.run(
        ["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)],
        check=True, capture_output=True,
    )
    signer = load_private_key(private)
    keys = load_public_keys(public)
    assert verify_jwt(eddsa(signer, {"a": "ro"}), keys, now_s=NOW_S) == {"a": "ro"}


def test_private_key_pem_is_refused_as_verification_key(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = write(tmp_path, pem)
    with pytest.raises(ConfigError, match="private key") as caught:
        load_public_keys(path)
    assert str(path) in caught.value.message
    assert "public key" in caught.value.message


def test_private_key_hidden_among_public_keys_is_refused(
    tmp_path: Path, key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    private = other_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ConfigError, match="PEM block 2 is a private key"):
        load_public_keys(write(tmp_path, public_pem(key) + private))


def _other_algorithm_public_pems() -> list[tuple[str, str]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return [
        (key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(), name)
        for key, name in ((rsa_key, "RSA"), (ec_key, "EC"))
    ]


@pytest.mark.parametrize(("pem", "kind"), _other_algorithm_public_pems())
def test_non_ed25519_public_keys_are_refused(tmp_path: Path, pem: str, kind: str) -> None:
    with pytest.raises(ConfigError, match=f"is a {kind} public key; only Ed25519"):
        load_public_keys(write(tmp_path, pem))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no key found"),
        ("   \n\n", "no key found"),
        ("hello world", "not a PEM block and not URL-safe base64"),
        ("AAAA", "decodes to 3 bytes"),
        ("A" * 44, "decodes to 33 bytes"),
        ("A" * 42 + "+/", "not a PEM block and not URL-safe base64"),
        ("A", "invalid base64url"),
        ("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n", "no complete PEM block"),
        ("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "cannot decode"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "unsupported PEM"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no complete PEM"),
    ],
)
def test_bad_key_text_is_refused_with_the_problem_named(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=problem) as caught:
        load_public_keys(path)
    assert str(path) in caught.value.message


def test_stray_text_around_pem_blocks_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ConfigError, match="unexpected text outside the PEM blocks"):
        parse_public_keys(public_pem(key) + "trailing junk\n", source="s")
    with pytest.raises(ConfigError, match="unexpected text outside the PEM blocks"):
        parse_public_keys(raw_public_b64url(key) + "\n" + public_pem(key), source="s")


def test_key_file_read_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.pem: no such file"):
        load_public_keys(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="is a directory"):
        load_public_keys(tmp_path)
    with pytest.raises(ConfigError, match="not ASCII text"):
        load_public_keys(write(tmp_path, b"\x00\xff\xfe binary"))
    with pytest.raises(ConfigError, match="larger than"):
        load_public_keys(write(tmp_path, b"A" * (1024 * 1024 + 1)))
    not_a_directory = write(tmp_path, "x", "plain") / "key.pem"
    with pytest.raises(ConfigError, match="cannot read"):
        load_public_keys(not_a_directory)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = write(tmp_path, public_pem(key))
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        load_public_keys(path)


def test_load_private_key_accepts_pkcs8_pem(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    loaded = load_private_key(write(tmp_path, pem))
    assert loaded.public_key().public_bytes_raw() == raw(key)


def test_load_private_key_refusals(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    with pytest.raises(ConfigError, match="this is a public key"):
        load_private_key(write(tmp_path, public_pem(key), "pub.pem"))
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ConfigError, match="encrypted private keys are not supported"):
        load_private_key(write(tmp_path, encrypted, "enc.pem"))
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="is a RSA private key; only Ed25519"):
        load_private_key(write(tmp_path, rsa_pem, "rsa.pem"))
    with pytest.raises(ConfigError, match="no PEM block found"):
        load_private_key(write(tmp_path, raw_public_b64url(key), "raw.txt"))
    two = public_pem(key) + public_pem(key)
    with pytest.raises(ConfigError, match="holds 2 PEM blocks"):
        load_private_key(write(tmp_path, two, "two.pem"))
    broken = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigError, match="cannot decode the private key"):
        load_private_key(write(tmp_path, broken, "broken.pem"))
