"""``edgelite keygen`` and ``edgelite token create`` through click and as a real process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgelite.auth import Access, RequireCredentials, load_public_keys, verify_jwt
from edgelite.cli.keys import PRIVATE_KEY_NAME, PUBLIC_KEY_NAME, keygen, token
from edgelite.cli.main import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_main_registers_the_commands() -> None:
    assert cli.commands["keygen"] is keygen
    assert cli.commands["token"] is token
    assert "create" in token.commands


def test_keygen_into_a_new_directory_then_token_create(tmp_path: Path) -> None:
    out = tmp_path / "keys" / "nested"
    code, stdout, stderr = run("keygen", "--out-dir", str(out))
    assert (code, stderr) == (0, "")
    private, public = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert str(private) in stdout and str(public) in stdout
    assert f"--auth-jwt-key-file {public}" in stdout

    code, stdout, stderr = run("token", "create", "--key-file", str(private), "--read-only",
                               "--expires", "12h", "--namespace", "db1")
    assert (code, stderr) == (0, "")
    assert stdout.count("\n") == 1  # only the token, so $(...) captures exactly it
    now_s = time.time()
    claims = verify_jwt(stdout.strip(), load_public_keys(public), now_s=now_s)
    assert claims["a"] == "ro" and claims["id"] == "db1"
    assert abs(claims["exp"] - (now_s + 12 * 3600)) < 120


def test_keygen_with_explicit_paths_and_default_expiry(tmp_path: Path) -> None:
    private, public = tmp_path / "a.key", tmp_path / "b.pub"
    code, _, _ = run("keygen", "--private-key-file", str(private),
                     "--public-key-file", str(public))
    assert code == 0
    code, stdout, _ = run("token", "create", "--key-file", str(private))
    assert code == 0
    identity = RequireCredentials(jwt_keys=load_public_keys(public)).authenticate_jwt(
        stdout.strip(), time.time()
    )
    assert identity.access_to("anything") is Access.WRITE
    claims = verify_jwt(stdout.strip(), load_public_keys(public), now_s=time.time())
    assert "exp" not in claims  # default --expires never, like `turso db tokens create`


def test_keygen_default_directory_is_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("keygen")[0] == 0
    assert sorted(os.listdir(tmp_path)) == [PRIVATE_KEY_NAME, PUBLIC_KEY_NAME]


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert run("keygen", "--out-dir", str(tmp_path))[0] == 0
    before = (tmp_path / PRIVATE_KEY_NAME).read_bytes()
    code, stdout, stderr = run("keygen", "--out-dir", str(tmp_path))
    assert code == 1 and stdout == ""
    assert "already exists (use --force to overwrite)" in stderr
    assert (tmp_path / PRIVATE_KEY_NAME).read_bytes() == before
    assert run("keygen", "--out-dir", str(tmp_path), "--force")[0] == 0
    assert (tmp_path / PRIVATE_KEY_NAME).read_bytes() != before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--private-key-file", "a"], "go together"),
        (["--public-key-file", "b"], "go together"),
        (["--out-dir", "d", "--private-key-file", "a", "--public-key-file", "b"],
         "either --out-dir or"),
    ],
)
def test_keygen_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, stderr = run("keygen", *args)
    assert code == 2 and message in stderr


def test_token_create_errors(tmp_path: Path) -> None:
    assert run("keygen", "--out-dir", str(tmp_path))[0] == 0
    private, public = str(tmp_path / PRIVATE_KEY_NAME), str(tmp_path / PUBLIC_KEY_NAME)
    cases = [
        (["--key-file", private, "--expires", "soon"], "invalid duration 'soon'"),
        (["--key-file", private, "--expires", "0s"], "longer than zero"),
        (["--key-file", private, "--namespace", ""], "must not be empty"),
        (["--key-file", public], "this is a public key"),
        (["--key-file", str(tmp_path / "missing.pem")], "no such file"),
        (["--key-file", str(tmp_path)], "--key-file"),
        ([], "Missing option '--key-file'"),
    ]
    for args, message in cases:
        code, stdout, stderr = run("token", "create", *args)
        assert (code, stdout) == (2, ""), args
        assert message in stderr, (args, stderr)


def test_real_process_keygen_token_create_and_verify(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def edgelite(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edgelite.cli.main", *args],
            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
        )

    made = edgelite("keygen", "--out-dir", "keys")
    assert made.returncode == 0, made.stderr
    minted = edgelite("token", "create", "--key-file", f"keys/{PRIVATE_KEY_NAME}",
                      "--expires", "30m")
    assert minted.returncode == 0, minted.stderr
    assert minted.stderr == ""
    value = minted.stdout.strip()
    assert minted.stdout == value + "\n"
    keys = load_public_keys(tmp_path / "keys" / PUBLIC_KEY_NAME)
    identity = RequireCredentials(jwt_keys=keys).authenticate_header(
        f"Bearer {value}", time.time()
    )
    assert identity.access_to("default") is Access.WRITE
    failed = edgelite("token", "create", "--key-file", f"keys/{PUBLIC_KEY_NAME}")
    assert failed.returncode == 2 and failed.stdout == ""
    assert "this is a public key" in failed.stderr
