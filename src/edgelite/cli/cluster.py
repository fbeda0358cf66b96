"""``edgelite cluster status|add|remove|promote|transfer --admin URL``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import click
import httpx
from rich.console import Console
from rich.table import Table

TIMEOUT_S_DEFAULT = 40.0
F = TypeVar("F", bound=Callable[..., Any])


def _admin_options(command: F) -> F:
    """``--admin`` and friends, accepted after the sub-command too (``edgelite cluster
    status --admin URL``) as well as before it."""
    command = click.option("--timeout", type=float, default=None,
                           help=f"Seconds to wait (default {TIMEOUT_S_DEFAULT:g}).")(command)
    command = click.option("--admin-auth-key", "key", default=None,
                           help="The admin API key, if the cluster uses one.")(command)
    return click.option("--admin", default=None,
                        help="Admin URL of any member (http://host:port).")(command)


def _settings(ctx: click.Context, admin: str | None, key: str | None,
              timeout: float | None) -> None:
    """The sub-command's own options win over the group's."""
    group = ctx.obj or {}
    ctx.obj = {"admin": admin or group.get("admin"), "key": key or group.get("key"),
               "timeout": timeout or group.get("timeout") or TIMEOUT_S_DEFAULT}
    if not ctx.obj["admin"]:
        raise click.UsageError("give the admin URL of a member: --admin http://host:port "
                               "(or EDGELITE_ADMIN_URL)")


def _client(ctx: click.Context) -> tuple[httpx.Client, str]:
    admin: str = ctx.obj["admin"].rstrip("/")
    headers = {"Authorization": f"Basic {ctx.obj['key']}"} if ctx.obj.get("key") else {}
    return httpx.Client(timeout=ctx.obj["timeout"], headers=headers), admin


def _call(ctx: click.Context, method: str, path: str, body: Any = None) -> Any:
    client, admin = _client(ctx)
    with client:
        try:
            response = client.request(method, admin + path, json=body)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {admin}: {exc}") from exc
    if response.status_code != 200:
        detail = response.text.strip() or f"HTTP {response.status_code}"
        with contextlib.suppress(ValueError):
            detail = response.json().get("message", detail)
        raise click.ClickException(detail)
    return response.json() if response.content else None


@click.group()
@click.option("--admin", envvar="EDGELITE_ADMIN_URL",
              help="Admin URL of any member (http://host:port).")
@click.option("--admin-auth-key", "key", envvar="EDGELITE_ADMIN_AUTH_KEY",
              help="The admin API key, if the cluster uses one.")
@click.option("--timeout", type=float, default=None,
              help=f"Seconds to wait (default {TIMEOUT_S_DEFAULT:g}).")
@click.pass_context
def cluster(ctx: click.Context, admin: str | None, key: str | None,
            timeout: float | None) -> None:
    """Inspect and change cluster membership (``--admin`` before or after the command)."""
    ctx.obj = {"admin": admin, "key": key, "timeout": timeout}


@cluster.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_admin_options
@click.pass_context
def status(ctx: click.Context, as_json: bool, admin: str | None, key: str | None,
           timeout: float | None) -> None:
    """Leader, members, roles, addresses, applied index and lag."""
    _settings(ctx, admin, key, timeout)
    data = _call(ctx, "GET", "/v1/cluster")
    if as_json:
        click.echo(httpx.Response(200, json=data).text)
        return
    table = Table(title=f"leader {data['leader_id']}  term {data['term']}  "
                        f"commit {data['commit_index']}")
    for column in ("id", "role", "state", "location", "client URL", "applied", "lag"):
        table.add_column(column)
    for member in data["members"]:
        table.add_row(member["id"], member["role"], str(member["state"] or "unreachable"),
                      member["location"] or "-", member["http_url"] or "-",
                      _text(member["applied_index"]), _text(member["lag"]))
    Console().print(table)


@cluster.command()
@click.argument("node_id")
@click.option("--peer", required=True, help="HOST:PORT of the node's peer listener.")
@click.option("--learner", is_flag=True, help="Add as a non-voting replica.")
@click.option("--http-url", default="", help="The node's client URL.")
@click.option("--admin-url", default="", help="The node's admin URL.")
@click.option("--location", default="", help="Location label.")
@_admin_options
@click.pass_context
def add(ctx: click.Context, node_id: str, peer: str, learner: bool, http_url: str,
        admin_url: str, location: str, admin: str | None, key: str | None,
        timeout: float | None) -> None:
    """Add a member (as a learner first; voters are promoted once caught up)."""
    _settings(ctx, admin, key, timeout)
    _call(ctx, "POST", "/v1/cluster/members", {
        "node_id": node_id, "peer": peer, "learner": learner, "http_url": http_url,
        "admin_url": admin_url, "location": location})
    click.echo(f"added {node_id} as a {'learner' if learner else 'voter-to-be'}")


@cluster.command()
@click.argument("node_id")
@_admin_options
@click.pass_context
def remove(ctx: click.Context, node_id: str, admin: str | None, key: str | None,
           timeout: float | None) -> None:
    """Remove a voter or learner."""
    _settings(ctx, admin, key, timeout)
    _call(ctx, "DELETE", f"/v1/cluster/members/{node_id}")
    click.echo(f"removed {node_id}")


@cluster.command()
@click.argument("node_id")
@_admin_options
@click.pass_context
def promote(ctx: click.Context, node_id: str, admin: str | None, key: str | None,
            timeout: float | None) -> None:
    """Make a learner a voter."""
    _settings(ctx, admin, key, timeout)
    _call(ctx, "POST", f"/v1/cluster/members/{node_id}/promote")
    click.echo(f"promoted {node_id}")


@cluster.command()
@click.argument("node_id")
@_admin_options
@click.pass_context
def transfer(ctx: click.Context, node_id: str, admin: str | None, key: str | None,
             timeout: float | None) -> None:
    """Hand leadership to a voter."""
    _settings(ctx, admin, key, timeout)
    _call(ctx, "POST", "/v1/cluster/transfer", {"to": node_id})
    click.echo(f"{node_id} leads now")


def _text(value: Any) -> str:
    return "-" if value is None else str(value)
