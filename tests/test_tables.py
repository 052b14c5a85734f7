"""Tables for people (`compliance.cli.emit_table`): folded to the width, escaped, coloured only on a terminal."""

from __future__ import annotations

import io
import re

import pytest

from compliance.cli import emit_table

ANSI = re.compile(r"\x1b\[[0-9;]*m")
MESSAGE = ("The certificate of mail.gemeente.example expires on 2026-12-01 and the chain misses the "
           "intermediate of the issuing authority; renew it and serve the whole chain")


class Terminal(io.StringIO):
    """Standard output as a terminal of `columns` columns."""

    def isatty(self) -> bool:
        return True


def table(capsys: pytest.CaptureFixture[str], *args: object, **kwargs: object) -> str:
    emit_table(*args, **kwargs)  # type: ignore[arg-type]
    return capsys.readouterr().out


def test_a_wide_table_folds_its_widest_column_to_the_width(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    out = table(capsys, ["Control", "Status", "Message"], [["BIO-TLS", "fail", MESSAGE], ["BIO-MFA", "pass", "ok"]])
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 72
    assert len(lines) > 7  # the message took several lines
    assert "BIO-TLS" in lines[3] and "fail" in lines[3]  # the short columns were not folded
    words = " ".join(line.split("│")[3].strip() for line in lines[3:-1] if "│" in line).split()
    assert " ".join(words).startswith(" ".join(MESSAGE.split()[:20]))  # nothing of the message lost
    assert not ANSI.search(out)  # piped: no colours


def test_piped_output_is_not_cut_to_80_columns(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = table(capsys, ["Control", "Message"], [["BIO-TLS", MESSAGE]])
    assert MESSAGE in out  # 200 columns when piped: the message on one line


def test_cells_keep_new_lines_and_show_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    out = table(capsys, ["Id", "Title"], [["DL-2026-0001", "Letter\nsent twice\x1b[2J"], ["DL-2026-0002", None],
                                          ["DL-2026-0003", "a\tb"]], title="Breaches [register]")
    lines = out.splitlines()
    assert len({len(line) for line in lines[1:]}) == 1  # a tab does not shift the border
    assert "a   b" in out
    assert lines[0] == "Breaches [register]"
    assert "Letter" in lines[4] and "sent twice\\x1b[2J" in lines[5]
    assert "\x1b" not in out
    assert "None" not in out


def test_colours_on_a_terminal_only_and_not_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [["BIO-TLS", "fail"], ["BIO-MFA", "pass"], ["BIO-LOG", "off"]]
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "100")
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    emit_table(["Control", "Status"], rows)
    out = screen.getvalue()
    assert "\x1b[31mfail" in out and "\x1b[32mpass" in out  # red and green
    assert "\x1b[1mControl" in out  # a bold header
    plain = ANSI.sub("", out).splitlines()
    assert len({len(line) for line in plain}) == 1  # colour codes do not shift the columns

    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    emit_table(["Control", "Status"], rows, styles={"off": "yellow"})
    assert "\x1b[33moff" in screen.getvalue() and "\x1b[31mfail" not in screen.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    emit_table(["Control", "Status"], rows)
    assert not ANSI.search(screen.getvalue())


def test_a_table_too_wide_to_fit_is_folded_as_narrow_as_it_goes(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    columns = ["Control", "Severity", "Target", "State", "Since", "Last failed", "Message"]
    out = table(capsys, columns, [["BIO-TLS", "critical", "mail.gemeente.example", "open", "2026-11-29",
                                   "2026-11-29 10:00", MESSAGE]])
    widths = {len(line) for line in out.splitlines()}
    assert len(widths) == 1
    # no column wider than its header or 8 characters: 7 columns, 3 characters of border each, plus 1
    assert widths.pop() <= sum(max(8, len(c)) for c in columns) + 3 * len(columns) + 1
    assert "Last failed" in out  # a header is never folded


def test_wide_characters_line_up_after_an_ascii_table_in_the_same_process() -> None:
    # an ASCII-only table does not import wcwidth (start-up, issue 18); a later table with wide characters
    # must still be measured by their width on a terminal, not by their number
    import subprocess
    import sys

    probe = ("import sys\nfrom compliance.cli import emit_table\n"
             "emit_table(['Id'], [['BIO-01']])\nprint('wcwidth' in sys.modules)\n"
             "emit_table(['Name', 'X'], [['日本語', 'x'], ['abcdef', 'y']])\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[5] == "False"
    import wcwidth

    widths = {wcwidth.wcswidth(line) for line in lines[6:]}
    assert len(widths) == 1, lines[6:]  # every line of the second table as wide as the others
