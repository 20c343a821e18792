"""The Colab notebook cannot drift from the CLI: every `denoise ...` line in it is parsed by the real
click commands (options, choices, types, required options), without running any work."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import click
import nbformat
import pytest

from denoise.cli import main

NOTEBOOK = Path(__file__).resolve().parent.parent / "colab" / "Train_denoise.ipynb"
PLACEHOLDER = re.compile(r"\{(\w+)\}|\$(\w+)")


def code_cells() -> list[str]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def logical_lines(source: str) -> list[str]:
    """Lines with backslash continuations joined, as IPython joins them for shell commands."""
    lines, pending = [], ""
    for line in source.splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
        else:
            lines.append(pending + line)
            pending = ""
    return lines + ([pending] if pending else [])


def shell_commands(source: str) -> list[str]:
    """The IPython shell escapes (`!cmd`, at any indentation) of a cell, without the `!`."""
    return [line.strip()[1:].strip() for line in logical_lines(source) if line.strip().startswith("!")]


def notebook_variables(cells: list[str]) -> dict[str, object]:
    """Values of the notebook's top-level assignments that need nothing Colab-only to evaluate."""
    namespace: dict[str, object] = {"Path": Path}
    for source in cells:
        python = "\n".join(
            re.sub(r"^(\s*)[!%].*$", r"\1pass", line) for line in logical_lines(source)
        )
        for node in ast.parse(python).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    value = eval(compile(ast.Expression(node.value), "<notebook>", "eval"), namespace)
                except Exception:  # needs Colab (drive, files) or runtime state: not used in commands
                    continue
                namespace[node.targets[0].id] = value
    return namespace


def expand(command: str, variables: dict[str, object]) -> str:
    """Substitute `{NAME}` and `$NAME` as IPython does; an unknown name fails the test."""
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"notebook command uses {name}, which the notebook never sets: {command}"
        return str(variables[name])

    return PLACEHOLDER.sub(value, command)


def parse(args: list[str]) -> tuple[str, dict]:
    """Parse `denoise ARGS` with the real CLI and return (subcommand, its parameters); run nothing."""
    if args and args[0].startswith("-"):  # group options such as --version exit while parsing
        with pytest.raises(click.exceptions.Exit) as exit_info:
            main.make_context("denoise", list(args))
        assert exit_info.value.exit_code == 0
        return args[0], {}
    root = click.Context(main, info_name="denoise")
    name, command, rest = main.resolve_command(root, list(args))
    with command.make_context(name, rest, parent=root) as ctx:
        return name, ctx.params


def notebook_commands() -> list[list[str]]:
    cells = code_cells()
    variables = notebook_variables(cells)
    commands = []
    for source in cells:
        for command in shell_commands(source):
            args = shlex.split(expand(command, variables))
            if args and args[0] == "denoise":
                commands.append(args[1:])
    return commands


def test_notebook_is_cleared():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_every_denoise_command_in_the_notebook_parses():
    parsed = [parse(args) for args in notebook_commands()]
    names = {name for name, _ in parsed}
    assert {"data-creation", "train", "evaluate", "predict", "export"} <= names
    assert any(name == "train" and params["resume"] for name, params in parsed)
    creation = [params for name, params in parsed if name == "data-creation"]
    assert all(params["noise_classes"] and params["out_dir"] for params in creation)


def test_the_parser_catches_drift():
    """The checks above can fail: a wrong option, choice or value, or an unset variable."""
    with pytest.raises(click.NoSuchOption):
        parse(["train", "--data-dir", "d", "--out", "o", "--epoch", "3"])
    with pytest.raises(click.BadParameter):
        parse(["predict", "a.wav", "b.wav", "--runtime", "gpu"])
    with pytest.raises(click.MissingParameter):
        parse(["data-creation", "--voice-dir", "v", "--noise-dir", "n", "--nb-samples", "5"])
    with pytest.raises(click.UsageError):
        parse(["data-creaton", "--voice-dir", "v"])
    with pytest.raises(AssertionError, match="never sets: denoise train --out"):
        expand("denoise train --out {NOWHERE}", {})
    assert shell_commands("if x:\n    !denoise train \\\n        --resume\n") == ["denoise train          --resume"]
