"""Ed25519 key material: public keys that verify tokens, private keys that mint them.

Accepted public-key text (the formats sqld accepts, protocol.md §6.2):

* one or more PEM ``PUBLIC KEY`` blocks (Ed25519 SubjectPublicKeyInfo), concatenated
  when several keys are valid at once (rotation: any of them may verify);
* the raw 32-byte Ed25519 public key in URL-safe base64 without padding; as an
  extension, several such keys one per line (padding ``=`` is tolerated).

Anything else is a ``ConfigError`` that names the source (a file path or an
environment variable) and the problem. A ``PRIVATE KEY`` given where a public key is
expected is refused explicitly: a server should never hold the signing key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from edgelite.errors import ConfigError

ED25519_PUBLIC_KEY_BYTES = 32
# Key files are tiny; a bound keeps a mistaken path (a database, a log) from being read whole.
KEY_FILE_BYTES_MAX = 1024 * 1024

_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----(?P<body>.*?)-----END (?P=label)-----",
    re.DOTALL,
)
_BASE64URL_KEY = re.compile(r"[A-Za-z0-9_-]+={0,2}")


@dataclasses.dataclass(frozen=True, slots=True)
class PublicKeySet:
    """The public keys a server verifies tokens with, tried in order.

    Invariant: at least one key (an empty set would reject every token, which is
    never what a configuration means).
    """

    keys: tuple[Ed25519PublicKey, ...]
    source: str

    def __post_init__(self) -> None:
        assert self.keys, "a PublicKeySet holds at least one key"

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[Ed25519PublicKey]:
        return iter(self.keys)

    def raw_bytes(self) -> tuple[bytes, ...]:
        """Each key as its 32 raw bytes (for comparisons and for logging fingerprints)."""
        return tuple(
            key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            for key in self.keys
        )


def parse_public_keys(text: str, *, source: str) -> PublicKeySet:
    """Parse public-key text in any accepted format; ``source`` names it in errors."""
    if not text.strip():
        raise ConfigError(f"{source}: no key found (the text is empty)")
    if "-----BEGIN" in text:
        keys = _parse_pem_public_keys(text, source)
    else:
        keys = _parse_base64url_public_keys(text, source)
    return PublicKeySet(keys=tuple(keys), source=source)


def load_public_keys(path: str | Path) -> PublicKeySet:
    """Read and parse a public-key file (``--auth-jwt-key-file``)."""
    source = f"JWT key file {path}"
    return parse_public_keys(_read_key_file(Path(path), source), source=source)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an unencrypted PKCS#8 PEM Ed25519 private key (what ``edgelite keygen`` writes)."""
    source = f"private key file {path}"
    text = _read_key_file(Path(path), source)
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise ConfigError(f"{source}: no PEM block found; expected '-----BEGIN PRIVATE KEY-----'")
    if len(blocks) > 1:
        raise ConfigError(f"{source}: holds {len(blocks)} PEM blocks; expected exactly one")
    label = blocks[0].group("label")
    if label == "PUBLIC KEY":
        raise ConfigError(
            f"{source}: this is a public key; minting a token needs the private key "
            "(the file edgelite keygen wrote with mode 0600)"
        )
    if label == "ENCRYPTED PRIVATE KEY":
        raise ConfigError(f"{source}: encrypted private keys are not supported")
    if label != "PRIVATE KEY":
        raise ConfigError(
            f"{source}: unsupported PEM block '{label}'; expected a PKCS#8 'PRIVATE KEY'"
        )
    try:
        key = serialization.load_pem_private_key(blocks[0].group(0).encode("ascii"), None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{source}: cannot decode the private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"{source}: is a {_key_kind(key)} private key; only Ed25519 (EdDSA) is supported"
        )
    return key


def public_key_to_base64url(key: Ed25519PublicKey) -> str:
    """The raw-key text form (URL-safe base64, no padding) that sqld also accepts."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _read_key_file(path: Path, source: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(KEY_FILE_BYTES_MAX + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"{source}: no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{source}: is a directory, not a key file") from exc
    except PermissionError as exc:
        raise ConfigError(f"{source}: permission denied") from exc
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > KEY_FILE_BYTES_MAX:
        raise ConfigError(f"{source}: larger than {KEY_FILE_BYTES_MAX} bytes; not a key file")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: not ASCII text (byte {exc.start}); expected PEM or base64url"
        ) from exc


def _parse_pem_public_keys(text: str, source: str) -> list[Ed25519PublicKey]:
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise ConfigError(
            f"{source}: found '-----BEGIN' but no complete PEM block "
            "(missing or mismatched '-----END ...-----' line?)"
        )
    keys: list[Ed25519PublicKey] = []
    position = 0
    for number, block in enumerate(blocks, start=1):
        _reject_stray_text(text[position : block.start()], source)
        position = block.end()
        keys.append(_pem_block_public_key(block, number, source))
    _reject_stray_text(text[position:], source)
    return keys


def _reject_stray_text(between: str, source: str) -> None:
    stray = between.strip()
    if stray:
        preview = stray.splitlines()[0][:40]
        raise ConfigError(
            f"{source}: unexpected text outside the PEM blocks ({preview!r}); "
            "a truncated or unterminated block?"
        )


def _pem_block_public_key(block: re.Match[str], number: int, source: str) -> Ed25519PublicKey:
    label = block.group("label")
    where = f"{source}: PEM block {number}"
    if "PRIVATE KEY" in label:
        raise ConfigError(
            f"{where} is a private key ('{label}'); the server needs the public key "
            "(the .pub file from edgelite keygen, or `openssl pkey -in KEY -pubout`)"
        )
    if label != "PUBLIC KEY":
        raise ConfigError(
            f"{where}: unsupported PEM format '{label}'; expected 'PUBLIC KEY' (Ed25519)"
        )
    try:
        key = serialization.load_pem_public_key(block.group(0).encode("ascii"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{where}: cannot decode the public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(
            f"{where} is a {_key_kind(key)} public key; only Ed25519 (EdDSA) is supported"
        )
    return key


def _parse_base64url_public_keys(text: str, source: str) -> list[Ed25519PublicKey]:
    keys: list[Ed25519PublicKey] = []
    for number, line in enumerate(text.splitlines(), start=1):
        candidate = line.strip()
        if not candidate:
            continue
        where = f"{source}: line {number}"
        if not _BASE64URL_KEY.fullmatch(candidate):
            raise ConfigError(
                f"{where}: not a PEM block and not URL-safe base64 "
                "(expected a raw Ed25519 public key: 43 characters of A-Z a-z 0-9 - _)"
            )
        unpadded = candidate.rstrip("=")
        try:
            raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"{where}: invalid base64url ({exc})") from exc
        if len(raw) != ED25519_PUBLIC_KEY_BYTES:
            raise ConfigError(
                f"{where}: decodes to {len(raw)} bytes; "
                f"an Ed25519 public key has {ED25519_PUBLIC_KEY_BYTES}"
            )
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise ConfigError(f"{where}: not a valid Ed25519 public key ({exc})") from exc
    return keys


def _key_kind(key: object) -> str:
    """A short human name for a key object's algorithm ("RSA", "EC", ...)."""
    name = type(key).__name__
    for suffix in ("PrivateKey", "PublicKey"):
        name = name.removesuffix(suffix)
    return name.lstrip("_") or "unknown"
