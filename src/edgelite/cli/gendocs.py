"""Generate ``docs/cli.md`` (from ``--help``) and ``docs/configuration.md`` (from the
settings table). ``python -m edgelite.cli.gendocs [--check]``; a test runs ``--check``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edgelite import settings
from edgelite.cli.main import cli

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _help_of(command: click.Command, path: list[str]) -> list[str]:
    context = click.Context(command, info_name=" ".join(path), terminal_width=88,
                            max_content_width=88)
    lines = [f"## `{' '.join(path)}`", "", "```text", command.get_help(context).rstrip(),
             "```", ""]
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(context)):
            sub = command.get_command(context, name)
            if sub is not None:
                lines.extend(_help_of(sub, [*path, name]))
    return lines


def cli_reference() -> str:
    header = ["# Command-line reference", "",
              "Generated from `--help` by `python -m edgelite.cli.gendocs`; do not edit.", ""]
    return "\n".join(header + _help_of(cli, ["edgelite"]))


def configuration_reference() -> str:
    lines = ["# Configuration", "",
             "Generated from the settings table (`src/edgelite/settings.py`) by "
             "`python -m edgelite.cli.gendocs`; do not edit.", "",
             "Every setting can be given as an environment variable `EDGELITE_<NAME>` "
             "(upper case); command-line flags, where a command has one, take precedence.",
             "", "| setting | environment variable | type | default | unit | meaning |",
             "|---|---|---|---|---|---|"]
    for setting in settings.SETTINGS:
        default = setting.default if setting.default != "" else "(empty)"
        lines.append(f"| `{setting.name}` | `{setting.env_var}` | {setting.type.__name__} | "
                     f"`{default}` | {setting.unit} | {setting.help} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    check = "--check" in sys.argv[1:]
    stale = []
    for name, text in (("cli.md", cli_reference()),
                       ("configuration.md", configuration_reference())):
        path = DOCS / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        sys.exit(f"out of date: {', '.join(stale)} (run `make docs`)")


if __name__ == "__main__":
    main()
