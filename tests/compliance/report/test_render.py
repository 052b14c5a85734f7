"""The report in HTML, PDF and Markdown, in Dutch and English: the texts and figures are there, and text
from checks is shown as text, never interpreted as HTML or as a template."""

from __future__ import annotations

import html
import io
import re
from typing import Any

import pytest

from compliance.report import build_overview, render, render_html, trend_png, trend_svg
from tests.compliance.report.conftest import AMSTERDAM, AS_OF, NOW, Seeded, local
from tests.compliance.report.history import History, Spec

#: Per language: texts and figures the seeded week must show (see conftest.py), compared with `comparable`.
EXPECTED = {
    "en": ["Risk overview", "week 10, 2026", "2–8 Mar 2026", "41.2%", "+9.6", "Top risks",
           "Logging of security events", "critical", "23 Feb 2026", "partly, until 20 Mar 2026",
           "BIO2 8.15.01", "ISO/IEC 27002:2022 8.15", "GDPR art. 32", "Exceptions ending within 30 days",
           "Screening moved to HR system", "Checks that could not run", "probe e: error",
           "Controls not evaluated in time", "Supplier agreements reviewed", "never", "Mean time to resolve",
           "12.0 days", "Personal-data breaches", "Notified to the Dutch DPA (AP)", "50.0%", "very high",
           "Technological controls", "16.7%", "−16.6", "red"],
    "nl": ["Risico-overzicht", "week 10, 2026", "2–8 mrt 2026", "41,2%", "+9,6", "Grootste risico",
           "Logging of security events", "kritiek", "23 feb 2026", "deels, t/m 20 mrt 2026",
           "BIO2 8.15.01", "ISO/IEC 27002:2022 8.15", "AVG art. 32", "Uitzonderingen die binnen 30 dagen aflopen",
           "Screening moved to HR system", "Controles die niet konden draaien", "probe e: error",
           "Maatregelen die niet op tijd zijn gecontroleerd", "Supplier agreements reviewed", "nooit",
           "Gemiddelde oplostijd", "12,0 dagen", "Datalekken", "Gemeld bij de Autoriteit Persoonsgegevens", "50,0%",
           "zeer hoog", "Technologische beheersmaatregelen", "16,7%", "−16,6", "rood"],
}


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.split())


#: A dash between the ends of a range, with whatever spacing the locale data puts around it.
RANGE_DASH = re.compile(r"\s*[-‐‑‒–—]\s*")


def comparable(text: str) -> str:
    """Text as a reader compares it, not as a library set it.

    Babel's typography changes between releases (2.19 writes "2 – 8 Mar 2026" with thin spaces where
    2.14 wrote "2–8 Mar 2026"), so every run of Unicode whitespace (thin, narrow no-break, no-break
    spaces, line breaks) counts as one space, and a dash with or without spaces around it as one "–".
    """
    return RANGE_DASH.sub("–", " ".join(text.split()))


def test_comparable_ignores_the_typography_of_ranges() -> None:
    variants = ["2–8 Mar 2026", "2 – 8 Mar 2026", "2\u2009–\u20098\u00a0Mar\u202f2026", "2-8 Mar 2026",
                "2 —\n8 Mar 2026"]
    assert {comparable(variant) for variant in variants} == {"2–8 Mar 2026"}


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_html_pdf_and_markdown_show_the_figures(database: Any, seeded: Seeded, lang: str) -> None:
    overview = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW)
    page = comparable(html.unescape(re.sub(r"<[^>]+>", " ", render_html(overview, lang))))
    document = render(overview, "pdf", lang)
    assert isinstance(document, bytes) and document.startswith(b"%PDF-")
    printed = comparable(pdf_text(document))
    markdown = comparable(str(render(overview, "md", lang)).replace("\\", ""))
    for expected in map(comparable, EXPECTED[lang]):
        assert expected in page, f"HTML lacks {expected!r}"
        assert expected in printed, f"PDF lacks {expected!r}"
        assert expected in markdown, f"Markdown lacks {expected!r}"
    other = "nl" if lang == "en" else "en"
    assert comparable(EXPECTED[other][0]) not in page


def test_the_html_is_self_contained_with_the_chart_inline(database: Any, seeded: Seeded) -> None:
    overview = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW)
    page = render_html(overview, "en")
    assert page.count("<svg") == 1 and "<?xml" not in page
    assert not re.search(r"""(src|href)=["'](?!#|data:)""", page.replace('xmlns:xlink="http', ""))
    assert '<link rel="stylesheet"' not in page and "<style>" in page
    mail = render_html(overview, "en", chart_src="cid:trend")
    assert '<img src="cid:trend" alt="Compliance over the last 12 periods"' in mail and "<svg" not in mail


def test_the_trend_chart_as_png_and_svg(database: Any, seeded: Seeded) -> None:
    overview = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW)
    png = trend_png(overview, "nl")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    svg = trend_svg(overview, "nl")
    assert svg.startswith("<svg") and 'aria-label="Naleving over de laatste 12 perioden"' in svg
    assert svg == trend_svg(overview, "nl")  # the same figures give the same chart


HOSTILE = "<script>alert('x')</script> {{ 7*7 }} {% if 1 %}yes{% endif %} **bold** | pipe"


def test_text_from_checks_is_shown_as_text(database: Any, store: Any, probe_plugin: type) -> None:
    hostile = Spec("X-1", title="<b>Title</b> {{ 7*7 }}", owner="<i>owner</i>")
    History(database, store).scan(local(2), {hostile: {HOSTILE: "fail"}})
    overview = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW)
    [risk] = overview.to_json()["top_risks"]
    assert (risk["title"], risk["targets"][0]["target"]) == ("<b>Title</b> {{ 7*7 }}", HOSTILE)

    page = render_html(overview, "en")
    assert "<script>alert" not in page and "<b>Title" not in page and "<i>owner" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; {{ 7*7 }} {% if 1 %}yes{% endif %}" in page
    assert "&lt;b&gt;Title&lt;/b&gt; {{ 7*7 }}" in page and "&lt;i&gt;owner&lt;/i&gt;" in page
    assert "49" not in re.sub(r"<svg.*</svg>", "", page, flags=re.S)

    printed = "".join(pdf_text(bytes(render(overview, "pdf", "en"))).split())  # line breaks fall anywhere
    assert "<script>alert('x')</script>{{7*7}}{%if1%}yes{%endif%}" in printed
    assert "<b>Title</b>{{7*7}}" in printed and "<i>owner</i>" in printed

    markdown = str(render(overview, "md", "en"))
    assert r"&lt;script&gt;alert('x')&lt;/script&gt; {{ 7\*7 }} {% if 1 %}yes{% endif %} \*\*bold\*\* \| pipe" \
        in markdown
    assert "<script>" not in markdown and "<b>" not in markdown and "49" not in markdown


@pytest.mark.parametrize(("lang", "sentence", "blind"), [
    ("en", "1 of {n} BIO2 measures monitored", "BIO2 measures not monitored"),
    ("nl", "1 van {n} BIO2-maatregelen gemonitord", "BIO2-maatregelen niet gemonitord"),
])
def test_coverage_next_to_the_score(database: Any, seeded: Seeded, lang: str, sentence: str, blind: str) -> None:
    from compliance.frameworks import load

    total = len(load("bio2").measures)
    overview = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW)
    for fmt in ("md", "html"):
        text = str(render(overview, fmt, lang))
        assert sentence.format(n=total) in text and blind in text
        assert f"1 / {len([m for m in load('bio2').measures if m.control.startswith('8.')])}" in text
