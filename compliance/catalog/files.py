"""Where the control files are: those under the configured paths, and the catalog shipped with the product.

Apart from the models (`compliance.catalog.model`) because it needs neither pydantic nor PyYAML: the cached
`controls list` (`compliance.catalog.listing`) finds the files it was made from with it (issue 18).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path

from compliance.errors import Problem


def bundled_folder() -> Path:
    """The folder of the control catalog shipped with the product."""
    from importlib.resources import files

    return Path(str(files("compliance.controls")))


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """The YAML files named by paths (folders are searched recursively), in a stable order.

    A YAML name under a folder that is not a readable regular file (a dangling symbolic link, a link
    loop, a FIFO, a device) is a problem, not skipped: its controls would otherwise look removed and be
    marked inactive by the next scan.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if _is_dir(path):
            for found in sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")):
                if _is_dir(found):
                    continue
                problem = _not_a_file(found)
                if problem is None:
                    files.append(found)
                else:
                    problems.append(problem)
        elif path.is_symlink() or path.exists():
            problem = _not_a_file(path)
            if problem is None:
                files.append(path)
            else:
                problems.append(problem)
        else:
            problems.append(Problem(str(path), 0, 0, "no such file or folder",
                                    "check the path, or run `compliance init` to create controls/"))
    seen: set[Path] = set()
    unique = [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]  # type: ignore[func-returns-value]
    return unique, problems


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _not_a_file(path: Path) -> Problem | None:
    """Why path cannot be read as a control file, or None when it is a regular file."""
    import os
    import stat

    try:
        mode = path.stat().st_mode
    except OSError as exc:
        from compliance.yamlfile import unreadable  # PyYAML: only for a file that cannot be read

        if path.is_symlink() and exc.errno == errno.ENOENT:
            return Problem(str(path), 1, 1, f"symbolic link to '{os.readlink(path)}', which does not exist",
                           "fix or remove the link; its controls stay in the database until then")
        return unreadable(path, exc)
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return Problem(str(path), 1, 1, f"is {kind}, not a file",
                       "control files must be regular files; remove it or give it another name")
    return None
