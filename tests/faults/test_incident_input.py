"""Hostile input to the breach register: control characters, line breaks, lengths and numbers the
database cannot hold, years 0001 and 9999. Each is refused with exit 2, the field and the fix, and the
database is exactly as before (a dump of every register table before and after)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import Project
from tests.incidents.conftest import LETTER, new_letter, ok

pytestmark = pytest.mark.faults

_TABLES = ("incidents", "incident_events", "incident_notifications", "incident_links")


def dump(db_url: str) -> dict[str, list[Any]]:
    from compliance.db import Database

    db = Database(db_url)
    try:
        with db.sessions() as session:
            return {table: [tuple(row) for row in session.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
                    for table in _TABLES}
    finally:
        db.close()


def replace(args: tuple[str, ...], option: str, value: str) -> list[str]:
    """LETTER with `option` set to value (added when LETTER has no such option)."""
    out = list(args)
    if option in out:
        out[out.index(option) + 1] = value
    else:
        out += [option, value]
    return out


NEW_CASES = [
    ("--title", "Letter \x1b[31mred\x1b[0m", "--title contains an escape character (ESC, terminal control) (U+001B) "
                                            "at character 8. Remove it: type or paste the text as plain text"),
    ("--title", "Letter \x1b]0;pwned\x07", "--title contains an escape character (ESC, terminal control) (U+001B)"),
    ("--title", "Letter\x07", "--title contains a bell character (BEL) (U+0007) at character 7."),
    ("--title", "Letter\nsecond line", "--title contains a line break; it is one line. Put the details in "
                                       "--description or --note"),
    ("--processor", "Printer BV\nline", "--processor contains a line break; it is one line."),
    ("--description", "Lines\r\nwith CR", "--description contains a carriage return (U+000D) at character 6."),
    ("--cause", "abc\u202edcba", "--cause contains a control character (U+202E) at character 4."),
    ("--cause", "nul\x00byte", "--cause contains a NUL character (U+0000) at character 4."),
    ("--by", "anna\x1b[2J", "--by contains an escape character (ESC, terminal control) (U+001B) at character 5."),
    ("--by", "anna\nmallory", "--by contains a line break; it is one line."),
    ("--by", "a" * 201, "--by is 201 characters long; the most is 200. Give a user name or a role"),
    ("--by", " ", "--by must not be empty."),
    ("--subjects", "2147483648", "--subjects 2147483648 is more than the register can hold (2147483647); give the "
                                 "approximate number"),
    ("--subjects", str(10**20), f"--subjects {10**20} is more than the register can hold (2147483647)"),
    ("--records", str(10**20), f"--records {10**20} is more than the register can hold (2147483647)"),
    ("--aware-at", "0001-01-01T00:00", "--aware-at '0001-01-01T00:00' has the year 1, outside 1900-2999. Write the "
                                       "date with its whole year, e.g. 2026-11-27T16:40"),
    ("--occurred-at", "0001-01-01T00:00Z", "--occurred-at '0001-01-01T00:00Z' has the year 1, outside 1900-2999."),
    ("--aware-at", "9999-12-31T23:59", "--aware-at '9999-12-31T23:59' has the year 9999, outside 1900-2999."),
    ("--ended-at", "9999-12-31T23:59:59+14:00", "--ended-at '9999-12-31T23:59:59+14:00' has the year 9999"),
]


@pytest.mark.parametrize(("option", "value", "message"), NEW_CASES,
                         ids=[f"{o}-{i}" for i, (o, _, _) in enumerate(NEW_CASES)])
def test_new_refuses_bad_input_and_changes_nothing(project: Project, option: str, value: str, message: str) -> None:
    new_letter(project)  # something in the register that must stay as it is
    before = dump(project.db_url)
    result = project.run("incident", "new", *replace(LETTER, option, value))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert dump(project.db_url) == before


def _decided(project: Project) -> str:
    incident = new_letter(project)
    ok(project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "no",
                   "--reason", "high risk for the person", "--format", "json"))
    return incident


LATER_CASES = [
    (("update", "{id}", "--title", "two\nlines"), "--title contains a line break"),
    (("update", "{id}", "--measures-taken", "done\x1b]8;;http://x\x07"), "--measures-taken contains an escape "
                                                                          "character"),
    (("update", "{id}", "--subjects", str(10**20)), "is more than the register can hold (2147483647)"),
    (("update", "{id}", "--ended-at", "0001-01-01T00:00"), "has the year 1, outside 1900-2999."),
    (("notify", "{id}", "--authority", "--delay-reason", "late", "--reference", "M2026\n1234"),
     "--reference contains a line break"),
    (("notify", "{id}", "--authority", "--delay-reason", "late", "--reference", "M2026-\x1b[8m1234"),
     "--reference contains an escape"),
    (("notify", "{id}", "--authority", "--reference", "M2026-1", "--at", "0001-01-01T00:00"),
     "--at '0001-01-01T00:00' has the year 1"),
    (("notify", "{id}", "--authority", "--delay-reason", "late", "--reference", "M2026-1", "--by", "x" * 300),
     "--by is 300 characters long; the most is 200."),
    (("notify", "{id}", "--authority", "--delay-reason", "late", "--reference", "M2026-1", "--note", "ok\x07"),
     "--note contains a bell"),
    (("decide", "{id}", "--notify-authority", "yes", "--notify-subjects", "no", "--reason", "r\x1b[1m"),
     "--reason contains an escape character"),
    (("decide", "{id}", "--notify-authority", "yes", "--notify-subjects", "no", "--reason", "r", "--force",
      "--force-reason", "why\x1b[0m"), "--force-reason contains an escape character"),
    (("link", "{id}", "--control", "X", "--by", "eve\r"), "--by contains a carriage return"),
]


@pytest.mark.parametrize(("args", "message"), LATER_CASES, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(LATER_CASES)])
def test_later_steps_refuse_bad_input_and_change_nothing(project: Project, args: tuple[str, ...],
                                                         message: str) -> None:
    incident = _decided(project)
    before = dump(project.db_url)
    result = project.run("incident", *[a.format(id=incident) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert dump(project.db_url) == before


def test_multi_line_text_with_tabs_is_still_accepted(project: Project) -> None:
    data = ok(project.run("incident", "new", *replace(LETTER, "--description", "First line.\n\tIndented second."),
                          "--format", "json"))
    assert data["description"] == "First line.\n\tIndented second."
    assert project.run("incident", "verify").exit_code == 0
