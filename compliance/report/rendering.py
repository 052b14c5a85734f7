"""Rendering the risk overview as HTML, PDF, Markdown or JSON, in Dutch or English.

Templates only format what `Overview` holds. Texts come from the gettext catalog `messages`
(locale/nl/LC_MESSAGES/messages.po; English is the msgid itself); dates and numbers are formatted
for the language by Babel. Control titles and owners and check messages are `Localized` texts: every
printed value goes through `localized`, so a Dutch report shows their Dutch wording (a text without a
translation or template is shown as stored). HTML is autoescaped, Markdown escapes every value it prints, and no
value is ever used as a template, so text from checks (HTML, Jinja syntax) is shown as text.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from functools import cache
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError
from compliance.report.language import Formatter, check_lang, label, localized, translations

if TYPE_CHECKING:
    from jinja2 import Environment

    from compliance.report.overview import Overview

FORMATS = ("html", "pdf", "md", "json")
#: The Debian and Ubuntu packages of the system libraries that WeasyPrint loads (Pango, HarfBuzz).
PDF_SYSTEM_PACKAGES = ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz0b", "libharfbuzz-subset0")


class PdfUnavailable(ComplianceError):
    """PDF output needs WeasyPrint (a dependency, imported only for a PDF) and the system libraries it loads."""


# -- templates ------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def markdown_text(value: Any) -> str:
    """A value as literal Markdown text: markup characters escaped, HTML shown as text, one line."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(_MD_SPECIAL.sub(r"\\\1", text).split())


@cache
def _environment(kind: str, lang: str) -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    if kind == "html":
        env = Environment(loader=PackageLoader("compliance.report", "templates"), autoescape=True,
                          extensions=["jinja2.ext.i18n"], undefined=StrictUndefined,
                          finalize=lambda value: localized(value, lang), trim_blocks=True, lstrip_blocks=True)
    else:
        # Markdown is not HTML: every printed value is escaped for Markdown instead
        env = Environment(loader=PackageLoader("compliance.report", "templates"), autoescape=False,
                          extensions=["jinja2.ext.i18n"], undefined=StrictUndefined,
                          finalize=lambda value: markdown_text(localized(value, lang)),
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["label"] = lambda kind_, value: label(kind_, value, lang)
    return env


def _context(overview: Overview, lang: str, organisation: str) -> dict[str, Any]:
    from compliance.report import overview as figures

    return {
        "o": overview, "f": Formatter(lang, overview.timezone), "lang": lang, "organisation": organisation,
        "green_from": figures.GREEN_FROM, "amber_from": figures.AMBER_FROM, "expiry_days": figures.EXPIRY_DAYS,
    }


def render_html(overview: Overview, lang: str = "nl", *, chart_src: str | None = None, organisation: str = "",
                for_print: bool = False) -> str:
    """The report as one self-contained HTML page (inline CSS; the trend chart as inline SVG).

    `chart_src` puts the chart in an `<img>` with that source instead (e.g. `cid:trend` in an e-mail
    with `trend_png` attached).
    """
    from markupsafe import Markup

    from compliance.report.charts import trend_svg

    check_lang(lang)
    chart = None if chart_src is not None else Markup(trend_svg(overview, lang))
    if for_print and chart_src is None:
        # WeasyPrint draws an SVG image with its SVG renderer; inline, it would read the chart's styles as CSS
        chart_src = "data:image/svg+xml;base64," + base64.b64encode(str(chart).encode("utf-8")).decode("ascii")
        chart = None
    return _environment("html", lang).get_template("report.html.j2").render(
        chart_svg=chart, chart_src=chart_src, for_print=for_print, **_context(overview, lang, organisation))


def render_markdown(overview: Overview, lang: str = "nl", *, organisation: str = "") -> str:
    """The report as Markdown (tables; the trend as a table instead of a chart)."""
    check_lang(lang)
    return _environment("md", lang).get_template("report.md.j2").render(**_context(overview, lang, organisation))


def render_pdf(overview: Overview, lang: str = "nl", *, organisation: str = "") -> bytes:
    """The HTML report printed to PDF by WeasyPrint."""
    return html_to_pdf(render_html(overview, lang, organisation=organisation, for_print=True))


def html_to_pdf(html: str) -> bytes:
    """A self-contained HTML page (made `for_print`) printed to PDF by WeasyPrint."""
    try:
        from weasyprint import HTML
    except ImportError:  # a dependency, so only missing from an environment installed without them
        raise PdfUnavailable("PDF output needs WeasyPrint, which is missing from this Python environment; "
                             "install it: pip install weasyprint") from None
    except OSError as exc:  # WeasyPrint loads Pango and HarfBuzz when imported
        raise PdfUnavailable(f"PDF output needs the system libraries Pango and HarfBuzz, which WeasyPrint could "
                             f"not load ({exc}); on Debian or Ubuntu install them: "
                             f"apt-get install -y {' '.join(PDF_SYSTEM_PACKAGES)}") from None
    # WeasyPrint logs notices about its own set-up (e.g. an optional font-subsetting library) as warnings,
    # which Python would print on the terminal of every report; keep only its errors
    log = logging.getLogger("weasyprint")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        pdf: bytes = HTML(string=html).write_pdf()
    finally:
        log.setLevel(level)
    return pdf


def render_json(overview: Overview, organisation: str = "") -> str:
    """The JSON contract; `organisation` names whose report it is (null when the config names none)."""
    document = overview.to_json()
    named = {"report": document.pop("report"), "version": document.pop("version"), "organisation": organisation or None}
    return json.dumps({**named, **document}, indent=2, ensure_ascii=False) + "\n"


def render(overview: Overview, fmt: str, lang: str = "nl", *, organisation: str = "") -> str | bytes:
    """The report in a format (html, pdf, md, json); PDF is bytes, the others text."""
    if fmt == "json":
        return render_json(overview, organisation)
    if fmt == "html":
        return render_html(overview, lang, organisation=organisation)
    if fmt == "md":
        return render_markdown(overview, lang, organisation=organisation)
    if fmt == "pdf":
        return render_pdf(overview, lang, organisation=organisation)
    raise ComplianceError(f"unknown report format '{fmt}'; use one of {', '.join(FORMATS)}")
