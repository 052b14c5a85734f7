"""The root exception and the error record that points at a place in a file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class ComplianceError(Exception):
    """An error the user can fix: bad input, configuration or environment.

    The CLI prints it without a traceback and exits with code 2.
    """


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a file: where it is, what is wrong and how to fix it."""

    path: str
    line: int
    col: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{display_path(self.path)}:{self.line}:{self.col}"
        return f"{where}: {self.message}" + (f" ({self.hint})" if self.hint else "")


class ValidationFailed(ComplianceError):
    """One or more problems in control or configuration files, all reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.col))
        super().__init__("\n".join(str(p) for p in self.problems))


def display_path(path: str | os.PathLike[str]) -> str:
    """A path relative to the working directory when it lies below it, else as given."""
    p = Path(path)
    try:  # a symbolic link is shown where it is, not where it points (which may be nowhere, or itself)
        return str(Path(os.path.abspath(p)).relative_to(Path.cwd()))
    except ValueError:
        pass
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, RuntimeError, OSError):  # RuntimeError: a symbolic link loop (Python < 3.13)
        return str(p)


def did_you_mean(value: str, choices: list[str] | tuple[str, ...] | set[str]) -> str:
    """A ' did you mean X?' suffix when one of the choices is close to value, else ''."""
    import difflib

    close = difflib.get_close_matches(value, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
