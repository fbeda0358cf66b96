"""The ``edgelite`` command: wiring only; each command lives in its own module."""

from __future__ import annotations

import importlib

import click

from edgelite import __version__

# (module, attribute) of every sub-command; each module defines one click command/group.
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("edgelite.cli.dev", "dev"),
    ("edgelite.cli.serve", "serve"),
    ("edgelite.cli.cluster", "cluster"),
    ("edgelite.cli.keys", "keygen"),
    ("edgelite.cli.keys", "token"),
    ("edgelite.cli.shell", "shell"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgelite")
def cli() -> None:
    """edgelite: distributed SQLite for edge applications."""


def _register() -> None:
    for module_name, attr in _COMMANDS:
        cli.add_command(getattr(importlib.import_module(module_name), attr))


_register()


def main() -> None:
    cli(prog_name="edgelite")


if __name__ == "__main__":
    main()
