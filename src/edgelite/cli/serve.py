"""``edgelite serve``: run one member of a replicated cluster."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import click
import httpx

from edgelite import settings
from edgelite.auth import build_authenticator
from edgelite.cli.loop import run_server, wait_until_stopped
from edgelite.cluster.addresses import MemberAddress
from edgelite.cluster.membership import join_proof
from edgelite.cluster.node import build_node
from edgelite.cluster.runtime import ClusterRuntime, RuntimeConfig
from edgelite.errors import ConfigError, EdgeliteError
from edgelite.server.app import Server, ServerConfig

logger = logging.getLogger("edgelite")
SECRET_BYTES_MIN = 16


def parse_host_port(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint=option)
    return host or "127.0.0.1", int(port)


def parse_bootstrap(value: str) -> dict[str, str]:
    """``n1=h1:7001,n2=h2:7001`` -> {"n1": "h1:7001", ...}."""
    founders: dict[str, str] = {}
    for part in value.split(","):
        node_id, sep, address = part.strip().partition("=")
        if not sep or not node_id or not address:
            raise click.BadParameter(f"expected ID=HOST:PORT, got {part!r}",
                                     param_hint="--bootstrap")
        parse_host_port(address, "--bootstrap")
        founders[node_id] = address
    return founders


def read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the cluster secret {path}: {exc.strerror}") from exc
    if len(secret) < SECRET_BYTES_MIN:
        raise ConfigError(f"the cluster secret in {path} must be at least "
                          f"{SECRET_BYTES_MIN} bytes (e.g. `head -c 32 /dev/urandom | "
                          "base64 > secret`)")
    return secret


@click.command()
@click.option("--node-id", required=True, help="This member's id (stable across restarts).")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for this member's databases and Raft log.")
@click.option("--listen", default="127.0.0.1:8080", show_default=True,
              help="HOST:PORT for clients (HTTP and WebSocket).")
@click.option("--peer-listen", required=True, help="HOST:PORT for other members.")
@click.option("--peer-advertise", help="HOST:PORT other members dial (default: --peer-listen).")
@click.option("--admin-listen", required=True, help="HOST:PORT of the admin API.")
@click.option("--cluster-secret-file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File with the secret every member shares (at least 16 bytes).")
@click.option("--bootstrap", help="Found a cluster: ID=PEERHOST:PORT,... of every founder "
              "(the same list on each founder).")
@click.option("--join", "join_url", help="Join an existing cluster through this admin URL.")
@click.option("--learner", is_flag=True, help="Join as a non-voting replica.")
@click.option("--location", default="", help="Free-form location label (e.g. fra).")
@click.option("--self-url", help="Public client URL of this member (default from --listen).")
@click.option("--auth-jwt-key-file", type=click.Path(exists=True, dir_okay=False),
              help="Ed25519 public key(s); enables JWT auth.")
@click.option("--enable-namespaces", is_flag=True, help="Many databases per cluster.")
@click.option("--admin-auth-key", help="Require 'Authorization: Basic KEY' on the admin API.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(**options: Any) -> None:
    """Run a cluster member until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=options["log_level"].upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if bool(options["bootstrap"]) == bool(options["join_url"]) and not _has_state(options):
        raise click.UsageError("give --bootstrap (found a cluster) or --join (join one); "
                               "a restarted member needs neither")
    try:
        runtime, server = _build(options)
    except EdgeliteError as exc:
        raise click.ClickException(exc.message) from exc
    run_server(_run(runtime, server, options))


def _has_state(options: dict[str, Any]) -> bool:
    return (Path(options["data_dir"]) / "raft").exists()


def _build(options: dict[str, Any]) -> tuple[ClusterRuntime, Server]:
    values = settings.load({"enable_namespaces": options["enable_namespaces"] or None,
                            "self_url": options.get("self_url")})
    host, port = parse_host_port(options["listen"], "--listen")
    peer_host, peer_port = parse_host_port(options["peer_listen"], "--peer-listen")
    admin_host, admin_port = parse_host_port(options["admin_listen"], "--admin-listen")
    advertise = options.get("peer_advertise") or f"{peer_host}:{peer_port}"
    self_url = values["self_url"] or f"http://{host}:{port}"
    data_dir = Path(options["data_dir"])
    node = build_node(values, data_dir=data_dir, db_file=None)
    secret = read_secret(options["cluster_secret_file"])
    bootstrap = parse_bootstrap(options["bootstrap"]) if options["bootstrap"] else None
    if bootstrap is not None and options["node_id"] not in bootstrap:
        raise ConfigError(f"--bootstrap must list this node ({options['node_id']})")
    address = MemberAddress(options["node_id"], peer=advertise, http_url=self_url,
                            admin_url=f"http://{admin_host}:{admin_port}",
                            location=options["location"])
    runtime = ClusterRuntime(node, RuntimeConfig(
        node_id=options["node_id"], data_dir=data_dir, self_address=address,
        peer_listen=(peer_host, peer_port), secret=secret, bootstrap=bootstrap,
        tick_interval_s=values["tick_interval_ms"] / 1000,
        election_timeout_ticks=values["election_timeout_ticks"],
        commit_timeout_s=values["commit_timeout_s"],
        forward_timeout_s=values["forward_timeout_s"], leader_wait_s=values["leader_wait_s"],
        snapshot_entries=values["snapshot_entries"],
        snapshot_trailing_entries=values["snapshot_trailing_entries"]))
    authenticator = build_authenticator(jwt_key_file=options["auth_jwt_key_file"],
                                        leeway_s=values["jwt_leeway_s"])
    server = Server(node, authenticator, ServerConfig(
        host=host, port=port, admin_host=admin_host, admin_port=admin_port,
        admin_auth_key=options.get("admin_auth_key"),
        namespaces_enabled=values["enable_namespaces"], self_url=self_url,
        request_bytes_max=values["request_bytes_max"],
        statements_per_request_max=values["statements_per_request_max"],
        concurrent_requests_max=values["concurrent_requests_max"],
        stream_idle_timeout_s=values["stream_idle_timeout_s"],
        streams_max=values["streams_max"], stored_sql_max=values["stored_sql_max"],
        stored_sql_bytes_max=values["stored_sql_bytes_max"],
        default_consistency=values["default_consistency"]), runtime)
    return runtime, server


async def _run(runtime: ClusterRuntime, server: Server, options: dict[str, Any]) -> int:
    await runtime.start()
    await server.start()
    try:
        if options["join_url"] and not runtime.has_members():
            await _join(runtime, options)
        click.echo(f"edgelite member {options['node_id']} serving on "
                   f"{server.config.host}:{server.bound_port} (peers "
                   f"{options['peer_listen']}, admin {options['admin_listen']})")
        return await wait_until_stopped(runtime)
    finally:
        click.echo("edgelite: shutting down", err=True)
        await server.stop()
        await runtime.stop()


async def _join(runtime: ClusterRuntime, options: dict[str, Any]) -> None:
    """Ask the cluster to add this node, retrying through elections (bounded)."""
    address = runtime.config.self_address
    assert runtime.config.secret is not None
    body = dict(address.to_json(), learner=options["learner"],
                proof=join_proof(runtime.config.secret, address.node_id))
    url = options["join_url"].rstrip("/") + "/v1/cluster/join"
    headers = {"Authorization": f"Basic {options['admin_auth_key']}"} \
        if options.get("admin_auth_key") else {}
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=35) as client:
        while True:
            try:
                response = await client.post(url, json=body, headers=headers)
                if response.status_code == 200:
                    members = [MemberAddress.from_json(m) for m in response.json()["members"]]
                    runtime.learn_addresses(members)
                    logger.info("joined the cluster through %s", options["join_url"])
                    return
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                problem = str(exc)
            if time.monotonic() > deadline:
                raise click.ClickException(f"could not join through {url}: {problem}")
            logger.info("join not accepted yet (%s); retrying", problem)
            await asyncio.sleep(1.0)
