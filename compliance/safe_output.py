"""Output that other programs read: spreadsheet cells that stay text, terminal text without control
sequences, and files that only the monitor's user can read.

Values in the monitor come from people (incident titles, exception reasons) and from check plugins
(messages, targets); none of them may act on the program that reads the output:

- a spreadsheet runs a CSV cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a
  formula (CSV injection): such a text gets a leading single quote, as OWASP advises, while numbers
  (`-3`, `1.5e3`) stay numbers;
- a terminal obeys escape sequences (ESC, OSC, CSI, BEL, ...): they are shown as `\\x1b`-style
  escapes, as are the Unicode controls that reorder text on screen (Trojan Source);
- reports, exports and evidence may hold personal data: they are written readable by their owner
  only (files 0600, folders 0700), like the database.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from compliance.errors import ComplianceError, display_path

__all__ = [
    "FORMULA_START",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "SafeCsvWriter",
    "printable",
    "private_dir",
    "spreadsheet_text",
    "write_private",
]

#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A plain number: a spreadsheet reads it as the number it is, so it keeps its sign.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def spreadsheet_text(value: str) -> str:
    """VALUE with a leading `'` when a spreadsheet would run it as a formula; numbers stay as they are."""
    if value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


class SafeCsvWriter:
    """csv.writer whose text cells cannot turn into formulas; None becomes an empty cell.

    Numbers (int, float) are written as they are; any other value is written as its text. A cell with a
    carriage return or a new line is always quoted, whatever the line terminator (csv.writer quotes only
    for the characters of its own terminator, so with "\\n" a lone "\\r" would break the row). Every CSV
    the monitor writes goes through this class.
    """

    def __init__(self, stream: _Writable, *, lineterminator: str = "\r\n", **fmtparams: Any) -> None:
        self._stream = stream
        self._terminator = lineterminator
        self._line = io.StringIO()
        self._writer = csv.writer(self._line, lineterminator="\r\n", **fmtparams)

    def writerow(self, row: Iterable[Any]) -> None:
        self._line.seek(0)
        self._line.truncate()
        self._writer.writerow([_csv_cell(v) for v in row])
        self._stream.write(self._line.getvalue()[:-2] + self._terminator)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    return spreadsheet_text(value if isinstance(value, str) else str(value))


def _control_pattern() -> re.Pattern[str]:
    controls = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))]
    # the bidirectional embeddings, overrides and isolates: they reorder what a terminal shows
    bidi = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
    return re.compile("[" + re.escape("".join(controls + bidi)) + "]")


_CONTROL = _control_pattern()


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, multiline: bool = False) -> str:
    """TEXT for a terminal: control characters shown as `\\x1b`, `\\x07`, `\\u202e`, ...

    With MULTILINE, new lines and tabs stay (a description of several paragraphs); otherwise they are
    escaped too, so that a one-line value (a title, a target) cannot forge a line of its own.
    """
    if multiline:
        return _CONTROL.sub(lambda m: m.group() if m.group() in "\n\t" else _escape(m), text)
    return _CONTROL.sub(_escape, text)


def private_dir(folder: Path) -> None:
    """Create FOLDER (and missing parents) readable by the monitor's user only; an existing FOLDER is
    made so too."""
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    folder.chmod(PRIVATE_DIR)


def write_private(path: Path, content: bytes) -> None:
    """Write CONTENT to PATH, readable and writable by the monitor's user only (0600).

    A new file is created with that mode, so it is never readable by others, not even for a moment; an
    existing regular file is made private before it is overwritten. Other files (`/dev/stdout`, a
    named pipe) are written as they are. A path that cannot be written is a ComplianceError (exit 2).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as out:
            if stat.S_ISREG(os.fstat(fd).st_mode) and hasattr(os, "fchmod"):
                os.fchmod(fd, PRIVATE_FILE)
            out.write(content)
    except OSError as exc:
        raise ComplianceError(f"cannot write {display_path(path)}: {exc.strerror or exc}; choose a path in a "
                              "folder that exists and that you may write to") from None
