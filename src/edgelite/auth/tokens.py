"""Minting tokens and making key pairs (what ``edgelite keygen`` / ``token create`` do).

Tokens carry sqld's claims so they work with sqld and Turso tooling too:
``{"a": "rw"|"ro", "iat": <now>, ["exp": <now + ttl>], ["id": <namespace>]}`` signed
with EdDSA. The access claim is always written, so no token we mint relies on the
"missing ``a`` means read-write" compatibility rule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgelite.auth.jwt import ALGORITHM, encode_json_segment, encode_segment
from edgelite.errors import ConfigError

PRIVATE_KEY_FILE_MODE = 0o600
PUBLIC_KEY_FILE_MODE = 0o644

_DURATION = re.compile(r"(?P<count>[0-9]{1,12})(?P<unit>[smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Beyond this an expiry is meaningless (and large enough numbers overflow datetimes).
DURATION_S_MAX = 100 * 365 * 86400


def mint_token(
    private_key: Ed25519PrivateKey,
    *,
    read_only: bool,
    expires_in_s: float | None,
    namespace: str | None,
    now_s: float,
) -> str:
    """A signed EdDSA JWT granting read-only or read-write access.

    ``namespace`` limits it to one namespace (claim ``id``); ``None`` means all.
    ``expires_in_s=None`` means it never expires.
    """
    if expires_in_s is not None and not (0 < expires_in_s <= DURATION_S_MAX):
        raise ConfigError(f"token lifetime must be within (0, {DURATION_S_MAX}] s")
    if namespace is not None and not namespace:
        raise ConfigError("token namespace must not be empty")
    issued_at_s = math.floor(now_s)
    claims: dict[str, object] = {"a": "ro" if read_only else "rw", "iat": issued_at_s}
    if expires_in_s is not None:
        claims["exp"] = math.floor(now_s + expires_in_s)
    if namespace is not None:
        claims["id"] = namespace
    header = encode_json_segment({"alg": ALGORITHM, "typ": "JWT"})
    payload = encode_json_segment(claims)
    signature = private_key.sign(f"{header}.{payload}".encode("ascii"))
    return f"{header}.{payload}.{encode_segment(signature)}"


def parse_duration(text: str) -> float | None:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"3600s"``, ``"2w"`` -> seconds; ``"never"`` -> None."""
    cleaned = text.strip().lower()
    if cleaned == "never":
        return None
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        raise ConfigError(
            f"invalid duration {text!r}: use a whole number with a unit s, m, h, d or w "
            "(e.g. 30m, 12h, 7d), or 'never'"
        )
    seconds = int(match.group("count")) * _UNIT_S[match.group("unit")]
    if seconds <= 0:
        raise ConfigError(f"invalid duration {text!r}: must be longer than zero")
    if seconds > DURATION_S_MAX:
        raise ConfigError(f"invalid duration {text!r}: longer than 100 years; use 'never'")
    return float(seconds)


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM ('PRIVATE KEY'), the form OpenSSL and sqld tooling use."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PrivateKey) -> bytes:
    """The matching SubjectPublicKeyInfo PEM ('PUBLIC KEY') a server verifies with."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclasses.dataclass(frozen=True, slots=True)
class KeyPairFiles:
    private_key_path: Path
    public_key_path: Path


def write_key_pair(
    key: Ed25519PrivateKey, private_key_path: Path, public_key_path: Path, *, force: bool
) -> KeyPairFiles:
    """Write the private key (mode 0600) and public key (0644) PEM files.

    Without ``force`` nothing is written when either file exists. Each file appears
    atomically and complete (written to a temporary name, fsynced, then linked or
    renamed into place), so a crash never leaves a half-written key behind.
    """
    if private_key_path.resolve() == public_key_path.resolve():
        raise ConfigError(f"private and public key paths are the same file: {private_key_path}")
    if not force:
        for path in (private_key_path, public_key_path):
            if path.exists() or path.is_symlink():
                raise ConfigError(f"{path} already exists (use --force to overwrite)")
    _write_file(private_key_path, private_key_pem(key), PRIVATE_KEY_FILE_MODE, force=force)
    _write_file(public_key_path, public_key_pem(key), PUBLIC_KEY_FILE_MODE, force=force)
    return KeyPairFiles(private_key_path, public_key_path)


def _write_file(path: Path, data: bytes, mode: int, *, force: bool) -> None:
    directory = path.parent
    temporary = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        # O_EXCL + explicit mode: the private key is never readable by others, not
        # even for an instant, whatever the umask.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise ConfigError(f"cannot create a file in {directory}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # umask may have removed bits we want (0644)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _move_into_place(temporary, path, force=force)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_directory(directory)


def _move_into_place(temporary: Path, path: Path, *, force: bool) -> None:
    try:
        if force:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if `path` appeared meanwhile: never clobber
    except FileExistsError as exc:
        raise ConfigError(f"{path} already exists (use --force to overwrite)") from exc
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
