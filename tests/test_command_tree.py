"""The command tree as users and scripts rely on it: every command's path, help and parameters.

tests/data/command_tree.json was captured from the single-file cli.py before its commands moved to
their domains; the tree built from the live root must equal it, so moving commands changes nothing a
user sees. Change the file only together with a deliberate change of the command line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from compliance.cli import cli

CAPTURED = Path(__file__).parent / "data" / "command_tree.json"


def walk(command: click.Command, ctx: click.Context, path: list[str]) -> list[dict[str, Any]]:
    info = {"path": path, "help": command.help, "short_help": command.get_short_help_str(limit=300),
            "epilog": command.epilog, "hidden": command.hidden,
            "params": [param.to_info_dict() for param in command.params]}
    found = [info]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, [*path, name]
            found += walk(sub, click.Context(sub, info_name=name, parent=ctx), [*path, name])
    return found


def test_the_command_tree_is_the_one_captured_before_the_split() -> None:
    live = walk(cli, click.Context(cli, info_name="compliance"), ["compliance"])
    # through JSON as the capture went, so that tuples, types and defaults compare the same way
    assert json.loads(json.dumps(live, default=str, sort_keys=True)) == json.loads(CAPTURED.read_text("utf-8"))
