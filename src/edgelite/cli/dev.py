"""``edgelite dev``: a local server on one machine, ready in a second."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from edgelite import settings
from edgelite.auth import build_authenticator
from edgelite.cli.loop import run_server, wait_until_stopped
from edgelite.cluster.node import Node, build_node
from edgelite.cluster.runtime import ClusterRuntime, MemberAddress, RuntimeConfig
from edgelite.errors import ConfigError, EdgeliteError
from edgelite.server.app import Server, ServerConfig

logger = logging.getLogger("edgelite")


def _host_port(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint=option)
    return host or "127.0.0.1", int(port)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (HTTP and WebSocket).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one.")
@click.option("--db-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Serve this one SQLite file as the default database.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory holding every database (default: ./edgelite-data).")
@click.option("--auth-jwt-key-file", type=click.Path(exists=True, dir_okay=False),
              help="Ed25519 public key(s) (PEM or base64url); enables JWT auth.")
@click.option("--http-auth", help="Legacy HTTP Basic auth: basic:<base64(user:pass)>.")
@click.option("--enable-namespaces", is_flag=True,
              help="Choose the database per request (x-namespace, Host, /dev/<name>).")
@click.option("--admin-listen", help="HOST:PORT of the admin API (off by default).")
@click.option("--admin-auth-key", help="Require 'Authorization: Basic KEY' on the admin API.")
@click.option("--stream-idle-timeout-s", type=float,
              help="Close Hrana HTTP streams idle this long (default 30).")
@click.option("--txn-timeout-s", type=float,
              help="How long a transaction may hold the write lock while others wait.")
@click.option("--self-url", help="Absolute URL clients should use (sent as base_url).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def dev(**options: Any) -> None:
    """Run a local edgelite server (a one-node database) until Ctrl-C."""
    logging.basicConfig(level=options["log_level"].upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server_config, node = build(options)
        authenticator = build_authenticator(
            jwt_key_file=options["auth_jwt_key_file"], http_auth=options["http_auth"],
            leeway_s=settings.load()["jwt_leeway_s"])
    except EdgeliteError as exc:
        raise click.ClickException(exc.message) from exc
    run_server(_serve(node, authenticator, server_config, options))


def build(options: dict[str, Any]) -> tuple[ServerConfig, Node]:
    overrides = {"stream_idle_timeout_s": options.get("stream_idle_timeout_s"),
                 "txn_timeout_s": options.get("txn_timeout_s"),
                 "self_url": options.get("self_url"),
                 "enable_namespaces": options.get("enable_namespaces") or None}
    values = settings.load(overrides)
    db_file, data_dir = options.get("db_file"), options.get("data_dir")
    if db_file is not None and data_dir is not None:
        raise ConfigError("give --db-file or --data-dir, not both")
    if db_file is None and data_dir is None:
        data_dir = Path("edgelite-data")
    if db_file is not None and values["enable_namespaces"]:
        raise ConfigError("--enable-namespaces needs --data-dir (a --db-file is one database)")
    admin_host, admin_port = (None, None)
    if options.get("admin_listen"):
        admin_host, admin_port = _host_port(options["admin_listen"], "--admin-listen")
    node = build_node(values, data_dir=data_dir, db_file=db_file)
    server_config = ServerConfig(
        host=options.get("host") or "127.0.0.1", port=options.get("port", 8080),
        admin_host=admin_host, admin_port=admin_port,
        admin_auth_key=options.get("admin_auth_key"),
        namespaces_enabled=values["enable_namespaces"], self_url=values["self_url"] or None,
        request_bytes_max=values["request_bytes_max"],
        statements_per_request_max=values["statements_per_request_max"],
        concurrent_requests_max=values["concurrent_requests_max"],
        stream_idle_timeout_s=values["stream_idle_timeout_s"],
        streams_max=values["streams_max"], stored_sql_max=values["stored_sql_max"],
        stored_sql_bytes_max=values["stored_sql_bytes_max"])
    return server_config, node


async def _serve(node: Node, authenticator: Any, config: ServerConfig,
                 options: dict[str, Any]) -> int:
    runtime = ClusterRuntime(node, RuntimeConfig(
        node_id="dev", data_dir=_cluster_dir(options),
        self_address=MemberAddress("dev", http_url=f"http://{config.host}:{config.port}"),
        bootstrap={"dev": ""}, snapshot_entries=settings.load()["snapshot_entries"],
        snapshot_trailing_entries=settings.load()["snapshot_trailing_entries"]))
    await runtime.start()
    await runtime.wait_writable(timeout_s=30)
    server = Server(node, authenticator, config, runtime)
    try:
        await server.start()
    except BaseException:
        await runtime.stop()
        raise
    _print_banner(config, server, options)
    status = await wait_until_stopped(runtime)
    click.echo("edgelite: shutting down", err=True)
    await server.stop()
    await runtime.stop()
    return status


def _cluster_dir(options: dict[str, Any]) -> Path:
    """Where the one-node cluster keeps its Raft log: the data directory, or next to a
    --db-file (``<file>.edgelite/``)."""
    if options.get("db_file") is not None:
        db_file = Path(options["db_file"])
        return db_file.with_name(db_file.name + ".edgelite")
    return Path(options.get("data_dir") or "edgelite-data")


def _print_banner(config: ServerConfig, server: Server, options: dict[str, Any]) -> None:
    url = f"http://{config.host}:{server.bound_port}"
    where = options.get("db_file") or options.get("data_dir") or "edgelite-data"
    lines = [
        "edgelite dev server",
        f"  database:  {where}",
        f"  URL:       {url}   (libSQL clients: libsql://{config.host}:{server.bound_port}"
        "?tls=0)",
        f"  Python:    edgelite.connect(\"{url}\")",
    ]
    if server.bound_admin_port is not None:
        lines.append(f"  admin API: http://{config.admin_host}:{server.bound_admin_port}")
    if options.get("auth_jwt_key_file"):
        lines.append("  auth:      JWT (Ed25519) required; mint a token with "
                     "`edgelite token create --key-file <private key>`")
    lines.append("Press Ctrl-C to stop.")
    click.echo("\n".join(lines))
    sys.stdout.flush()
