"""Rendering of the statement of applicability, and its Dutch catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from compliance.report.soa import render_soa
from compliance.soa import SoaRow


def test_compiled_catalog_matches_its_source() -> None:
    folder = files("compliance.report") / "locale" / "nl" / "LC_MESSAGES"
    with (folder / "soa.po").open("rb") as po, (folder / "soa.mo").open("rb") as mo:
        source, compiled = read_po(po), read_mo(mo)
    expected = {m.id: m.string for m in source if m.id}
    actual = {m.id: m.string for m in compiled if m.id}
    assert actual == expected, "soa.mo is stale: run `pybabel compile -d compliance/report/locale -D soa`"


def row(**changes: object) -> SoaRow:
    base = {"number": "7.4", "title": "Premises <watched>", "theme": "physical", "measures": [],
            "applies": False, "reason": "<script>alert(1)</script> {{ 7*7 }}", "decided_by": "CISO",
            "decided_at": datetime(2026, 11, 24, 10, 0, tzinfo=UTC), "measures_not_applicable": {},
            "coverage": "none", "controls": [], "status": "none"}
    return SoaRow(**{**base, **changes})  # type: ignore[arg-type]


def test_text_from_the_database_is_shown_as_text_never_markup() -> None:
    html = render_soa([row()], "html", "en", generated=datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in html and "<script>" not in html
    assert "Premises &lt;watched&gt;" in html and "49" not in html


def test_dutch_and_english_headings_and_dates() -> None:
    nl = render_soa([row()], "md", "nl")
    en = render_soa([row()], "md", "en")
    assert "## Fysieke beheersmaatregelen" in nl and "| 7.4 | Premises <watched> | – | nee |" in nl
    assert "## Physical controls" in en and "| 7.4 | Premises <watched> | – | no |" in en
    moment = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert "Opgesteld op 2 maart 2026 09:30." in render_soa([row()], "md", "nl", generated=moment)
    assert "Generated on 2 March 2026 09:30." in render_soa([row()], "md", "en", generated=moment)
