"""A click group that imports a subcommand's module only when that subcommand runs.

Each subcommand's module pulls in what it needs (SQLAlchemy, the bus client, matplotlib, ...); importing all of
them for every ``gulou`` invocation cost a collector process about 80 MB of RSS it never used. The table keeps
each command's one-line help, so ``gulou --help`` lists every command without importing any of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a subcommand lives (``"module:attr"``) and the first paragraph of its help, for the listing."""

    target: str
    help: str


class LazyGroup(click.Group):
    """A ``click.Group`` whose subcommands are named in a table and imported on first use."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, LazyCommand] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, eager and lazy, sorted as click sorts them."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing its module the first time it is asked for."""
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy_commands:
            return command
        command = self.load(cmd_name)
        # Cache it: later lookups (and click's own) then skip the import machinery.
        self.add_command(command, cmd_name)
        return command

    def load(self, cmd_name: str) -> click.Command:
        """Import the module named in the table and return its command object."""
        module_name, _, attr = self.lazy_commands[cmd_name].target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name].target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands with their short help from the table, so listing them imports none of them."""
        listed: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            # A stand-in carrying the table's help words it exactly as the real command would (same truncation).
            command = self.commands.get(name) or click.Command(name, help=self.lazy_commands[name].help)
            if not command.hidden:
                listed.append((name, command))
        if not listed:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in listed)
        with formatter.section("Commands"):
            formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in listed])
