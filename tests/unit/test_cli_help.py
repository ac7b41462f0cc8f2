"""`--help` of every command, walked from the click group (never a list kept by hand).

- each command's one-line summary, as `reconcile --help` lists it, is not cut by click ("...");
- every option has a help text;
- the AWS flags are offered only by commands that call AWS (validate, schema, completion do not);
- every command has the output options (-v, -q, --no-color).
"""

from __future__ import annotations

import click
import pytest

from reconciler.cli import cli

AWS_FLAGS = {"--region", "--profile", "--endpoint-url", "--registry"}
OUTPUT_FLAGS = {"--no-color", "--verbose", "--quiet"}
NO_AWS = {"validate", "schema", "completion", "report merge"}
COMMANDS = sorted(cli.commands)  # what `reconcile --help` lists: groups (`report`) too


def _leaves(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command that runs, by its full name (`report merge`): a group's own options are none."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_leaves(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


LEAVES = _leaves(cli)


def _flags(command: click.Command) -> set[str]:
    return {flag for p in command.params if isinstance(p, click.Option) for flag in p.opts}


def test_the_walk_sees_every_command() -> None:
    assert {"plan", "apply", "destroy", "drift", "validate", "schema", "completion", "report"} <= set(COMMANDS)
    assert {"plan", "report merge"} <= set(LEAVES) and "report" not in LEAVES


@pytest.mark.parametrize("name", COMMANDS)
def test_the_summary_is_not_cut(name: str) -> None:
    command = cli.commands[name]
    # what `reconcile --help` shows beside the name: click's own cut at its default width
    shown = command.get_short_help_str(limit=45)
    assert not shown.endswith("..."), f"{name}: {shown!r} is cut; shorten the docstring's first line or short_help"
    assert shown, f"{name} has no summary"
    # click cuts a docstring's line to fit the terminal (about 45 characters on 80 columns): a summary
    # that fits 45 is whole at any width, and a short_help= is never cut
    assert len(shown) <= 45, f"{name}: {shown!r} is {len(shown)} characters; give it a short_help= of at most 45"


def test_the_group_help_lists_no_cut_summary() -> None:
    text = cli.get_help(click.Context(cli, info_name="reconcile", max_content_width=60, terminal_width=60))
    listed = text.split("Commands:", 1)[1].splitlines()  # a narrow terminal: click cuts sooner
    assert len([line for line in listed if line.startswith("  ") and not line.startswith("   ")]) == len(COMMANDS)
    cut = [line for line in listed if line.rstrip().endswith("...")]
    assert not cut, cut


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_every_option_has_a_help_text(name: str) -> None:
    command = LEAVES[name]
    context = click.Context(command, info_name=name)
    missing = [p.name for p in command.get_params(context)
               if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not missing, f"{name}: options without help: {missing}"


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_aws_flags_only_where_aws_is_called(name: str) -> None:
    flags = _flags(LEAVES[name])
    if name in NO_AWS:
        assert not flags & AWS_FLAGS, f"{name} makes no AWS call but offers {sorted(flags & AWS_FLAGS)}"
    else:
        assert flags >= AWS_FLAGS, f"{name} calls AWS; it lost {sorted(AWS_FLAGS - flags)}"


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_every_command_has_the_output_options(name: str) -> None:
    assert _flags(LEAVES[name]) >= OUTPUT_FLAGS
