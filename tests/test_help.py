"""Help that fits: every command's --help in three 80x24 screens, options grouped
into panels with one line of help each, the examples at the end."""

from __future__ import annotations

import pytest
import typer.main

from b12lab.cli import app

SCREEN = {"COLUMNS": "80", "LINES": "24"}
COMMANDS = typer.main.get_command(app).commands


def help_of(cli, *command: str) -> list[str]:
    result = cli(*command, "--help", env=SCREEN)
    assert result.exit_code == 0, result.output
    return result.stdout.rstrip("\n").split("\n")


def names_of(command: str) -> set[str]:
    names = set()
    for param in COMMANDS[command].params:
        names.update(param.opts + param.secondary_opts)
        if param.metavar:
            names.update({param.metavar, param.metavar.strip("[]")})
    return names


@pytest.mark.parametrize("command", [(), *[(name,) for name in COMMANDS]])
def test_help_fits_three_80_by_24_screens(cli, command):
    lines = help_of(cli, *command)
    assert len(lines) <= 72, "\n".join(lines)
    assert max(len(line) for line in lines) <= 80


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_has_one_line_of_help(cli, command):
    lines = help_of(cli, command)
    names = names_of(command) | {"--help", "[required]"}  # the required mark may wrap
    rows = [line.strip("│ *") for line in lines if line.startswith("│")]
    wrapped = [row for row in rows if row.split()[0] not in names]
    assert not wrapped, "\n".join(lines)
    assert len(rows) >= len(COMMANDS[command].params)


@pytest.mark.parametrize("command", ["interpret", "batch"])
def test_options_are_grouped_into_panels(cli, command):
    titles = [line.strip("╭─ ").split(" ─")[0] for line in help_of(cli, command) if "╭─" in line]
    for panel in ("Input", "Units and reading", "Clinical context", "Output"):
        assert panel in titles, titles
    assert "Arguments" not in titles


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_examples_come_last(cli, command):
    lines = [line.strip() for line in help_of(cli, command) if line.strip()]
    last_panel = max(i for i, line in enumerate(lines) if line.startswith("╰"))
    after = lines[last_panel + 1 :]
    assert after and after[0].startswith("Example"), lines
    assert all(f"b12lab {command}" in line for line in after[1:] or [after[0]])
