"""The ``gulou`` group imports a subcommand's module only when it runs, and lists every command as before."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from gulou.cli import COMMANDS, cli
from gulou.cli.lazy import LazyCommand, LazyGroup


def _eager() -> click.Group:
    """The same group with every command imported and added up front, as it was built before."""
    group = click.Group("gulou", help=cli.help, context_settings=cli.context_settings, params=list(cli.params))
    for name in COMMANDS:
        group.add_command(LazyGroup(lazy_commands=COMMANDS).load(name), name)
    return group


def test_every_table_entry_is_a_command_under_its_own_name() -> None:
    for name in COMMANDS:
        command = LazyGroup(lazy_commands=COMMANDS).load(name)
        assert command.name == name


def test_the_table_help_is_the_command_help() -> None:
    for name, entry in COMMANDS.items():
        command = LazyGroup(lazy_commands=COMMANDS).load(name)
        assert command.help is not None
        assert entry.help == command.help.split("\n\n")[0].strip(), name
        assert command.short_help is None, f"{name}: a short_help of its own must go in the table too"


@pytest.mark.parametrize("width", [60, 80, 110, 200])
def test_help_lists_the_commands_as_the_eager_group_did(width: int) -> None:
    runner = CliRunner()
    lazy = runner.invoke(cli, ["--help"], prog_name="gulou", terminal_width=width)
    eager = runner.invoke(_eager(), ["--help"], prog_name="gulou", terminal_width=width)
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.output == eager.output
    for name in COMMANDS:
        assert f"  {name} " in lazy.output


@pytest.mark.parametrize("args", [["ingest", "--help"], ["bench", "--help"], ["bench", "ingest", "--help"],
                                  ["stats", "--help"], ["alerts", "--help"]])
def test_subcommand_help_is_unchanged(args: list[str]) -> None:
    runner = CliRunner()
    lazy = runner.invoke(cli, args, prog_name="gulou")
    eager = runner.invoke(_eager(), args, prog_name="gulou")
    assert lazy.exit_code == 0, lazy.output
    assert lazy.output == eager.output


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"], prog_name="gulou")
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output


def test_a_target_that_is_not_a_command_is_refused() -> None:
    group = LazyGroup(lazy_commands={"x": LazyCommand("gulou.cli.lazy:LazyCommand", "Not a command.")})
    with pytest.raises(TypeError, match="not a click command"):
        group.load("x")


def _modules_after(args: list[str]) -> set[str]:
    code = ("import sys; from gulou.cli import cli\n"
            f"try:\n    cli({args!r}, prog_name='gulou')\nexcept SystemExit:\n    pass\n"
            "print('\\n'.join(sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stderr.split())


def test_listing_the_commands_imports_none_of_them() -> None:
    loaded = _modules_after(["--help"])
    assert not {m for m in loaded if m.startswith("gulou.cli.") and m != "gulou.cli.lazy"}
    assert not {"sqlalchemy", "paho", "nats", "httpx", "pydantic"} & loaded


def test_the_collector_command_leaves_the_off_path_stacks_out() -> None:
    # SQLAlchemy (alert workflow), the bus client, HTTP channels and report plotting: none runs in a collector.
    loaded = _modules_after(["ingest", "--help"])
    assert "gulou.cli.ingest" in loaded
    assert not {"sqlalchemy", "nats", "httpx", "matplotlib", "polars", "gulou.app.bus"} & loaded
