"""``edgelite keygen`` and ``edgelite token create``: key pairs and signed tokens.

Exit status: 0 on success, 2 for usage errors (bad option values, an unusable
``--key-file``), 1 for anything else (e.g. refusing to overwrite existing files).
Messages go to stderr; ``token create`` prints only the token on stdout so that
``TOKEN=$(edgelite token create --key-file K)`` works.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from edgelite.auth import (
    generate_private_key,
    load_private_key,
    mint_token,
    parse_duration,
    write_key_pair,
)
from edgelite.errors import ConfigError

PRIVATE_KEY_NAME = "jwt_private.pem"
PUBLIC_KEY_NAME = "jwt_public.pem"


@click.command()
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Directory for {PRIVATE_KEY_NAME} and {PUBLIC_KEY_NAME} (default: current).",
)
@click.option(
    "--private-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (use with --public-key-file).",
)
@click.option(
    "--public-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the public key (use with --private-key-file).",
)
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen(
    out_dir: Path | None,
    private_key_file: Path | None,
    public_key_file: Path | None,
    force: bool,
) -> None:
    """Make an Ed25519 key pair for JWT authentication.

    The private key (mode 0600) signs tokens; keep it secret. The public key is what a
    server needs (--auth-jwt-key-file); it is also accepted by sqld.
    """
    private_path, public_path = _key_paths(out_dir, private_key_file, public_key_file)
    try:
        if out_dir is not None:
            out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        files = write_key_pair(generate_private_key(), private_path, public_path, force=force)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot create {out_dir}: {exc.strerror}") from exc
    click.echo(f"private key (keep secret): {files.private_key_path}")
    click.echo(f"public key:                {files.public_key_path}")
    click.echo("")
    click.echo("Start a server that requires tokens:")
    click.echo(f"  edgelite dev --auth-jwt-key-file {files.public_key_path}")
    click.echo("Make a token:")
    click.echo(f"  edgelite token create --key-file {files.private_key_path} --expires 7d")


def _key_paths(
    out_dir: Path | None, private_key_file: Path | None, public_key_file: Path | None
) -> tuple[Path, Path]:
    if (private_key_file is None) != (public_key_file is None):
        raise click.UsageError("--private-key-file and --public-key-file go together")
    if private_key_file is not None and public_key_file is not None:
        if out_dir is not None:
            raise click.UsageError("use either --out-dir or the two --*-key-file options")
        return private_key_file, public_key_file
    directory = out_dir if out_dir is not None else Path(".")
    return directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME


@click.group()
def token() -> None:
    """Create access tokens (EdDSA JWTs) for a server started with a public key."""


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, ctx=ctx, param=param) from exc


def _namespace(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value:
        raise click.BadParameter("must not be empty", ctx=ctx, param=param)
    return value


@token.command("create")
@click.option(
    "--key-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The private key PEM written by `edgelite keygen`.",
)
@click.option("--read-only", is_flag=True, help="Allow reads only (claim a=ro).")
@click.option(
    "--expires",
    default="never",
    show_default=True,
    callback=_duration,
    help="Lifetime: e.g. 30m, 12h, 7d, 3600s, 2w, or never.",
)
@click.option(
    "--namespace",
    default=None,
    callback=_namespace,
    help="Limit the token to one namespace (claim id). Default: all namespaces.",
)
def create(
    key_file: Path, read_only: bool, expires: float | None, namespace: str | None
) -> None:
    """Print a signed token for clients (authToken / auth_token / Bearer)."""
    try:
        private_key = load_private_key(key_file)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="'--key-file'") from exc
    try:
        value = mint_token(
            private_key,
            read_only=read_only,
            expires_in_s=expires,
            namespace=namespace,
            now_s=time.time(),
        )
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(value)
