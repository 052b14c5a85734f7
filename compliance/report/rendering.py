"""Rendering the risk overview as HTML, PDF, Markdown or JSON, in Dutch or English.

Templates only format what `Overview` holds. Texts come from the gettext catalog `messages`
(locale/nl/LC_MESSAGES/messages.po; English is the msgid itself); dates and numbers are formatted
for the language by Babel. HTML is autoescaped, Markdown escapes every value it prints, and no
value is ever used as a template, so text from checks (HTML, Jinja syntax) is shown as text.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from compliance.errors import ComplianceError
from compliance.report import labels

if TYPE_CHECKING:
    from babel.support import NullTranslations
    from jinja2 import Environment

    from compliance.report.overview import Overview
    from compliance.report.periods import Period

LANGUAGES = ("nl", "en")
FORMATS = ("html", "pdf", "md", "json")
LOCALES = {"nl": "nl_NL", "en": "en_GB"}
DOMAIN = "messages"
#: The Debian and Ubuntu packages of the system libraries that WeasyPrint loads (Pango, HarfBuzz).
PDF_SYSTEM_PACKAGES = ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz0b", "libharfbuzz-subset0")


class PdfUnavailable(ComplianceError):
    """PDF output needs WeasyPrint (a dependency, imported only for a PDF) and the system libraries it loads."""


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ComplianceError(f"unknown language '{lang}'; use one of {', '.join(LANGUAGES)}")


@cache
def translations(lang: str) -> NullTranslations:
    """The report's catalog for lang (English: no catalog, the msgids are English)."""
    from babel.support import Translations

    _check_lang(lang)
    return Translations.load(str(files("compliance.report") / "locale"), [lang], domain=DOMAIN)


def gettext(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


def label(kind: str, value: str | None, lang: str) -> str:
    """The translated name of a code (a theme, severity, light, ...); unknown codes as written."""
    if value is None:
        return ""
    name = labels.KINDS[kind].get(value)
    return gettext(lang)(name) if name is not None else value


# -- formatting for the language ----------------------------------------------------------------


class Formatter:
    """Dates, times, numbers and periods written the way the language writes them."""

    def __init__(self, lang: str, zone: str) -> None:
        self.lang = lang
        self.locale = LOCALES[lang]
        self.zone = ZoneInfo(zone)
        self._ = gettext(lang)

    def day(self, value: date | datetime | None, style: str = "d MMMM y") -> str:
        from babel.dates import format_date

        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(self.zone).date()
        return format_date(value, style, locale=self.locale)

    def short_day(self, value: date | datetime | None) -> str:
        """A date for a table cell: 9 Feb 2026 (nl: 9 feb 2026)."""
        return self.day(value, "d MMM y")

    def time(self, value: datetime | None) -> str:
        from babel.dates import format_datetime

        return "" if value is None else format_datetime(value, "d MMMM y HH:mm", tzinfo=self.zone, locale=self.locale)

    def short_time(self, value: datetime | None) -> str:
        from babel.dates import format_datetime

        return "" if value is None else format_datetime(value, "d MMM y HH:mm", tzinfo=self.zone, locale=self.locale)

    def number(self, value: float | int | None, digits: int = 0) -> str:
        from babel.numbers import format_decimal

        if value is None:
            return "–"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, pattern, locale=self.locale)

    def percent(self, value: float | None) -> str:
        from babel.numbers import format_percent

        return "–" if value is None else format_percent(value / 100, "#,##0.0%", locale=self.locale)

    def points(self, value: float | None) -> str:
        """A change in percentage points, always signed: +4.2 / −1.0 (nl: +4,2 / −1,0)."""
        if value is None:
            return "–"
        sign = "+" if value > 0 else "−" if value < 0 else "±"
        return sign + self.number(abs(value), 1)

    def period(self, p: Period) -> str:
        """The period's name: week 8, 2026 / February 2026 / Q1 2026 / 2026."""
        if p.kind == "week":
            year, week, _ = p.start.isocalendar()
            return self._("week %(week)d, %(year)d") % {"week": week, "year": year}
        if p.kind == "month":
            return self.day(p.start, "LLLL y")
        if p.kind == "quarter":
            return self._("Q%(quarter)d %(year)d") % {"quarter": (p.start.month - 1) // 3 + 1, "year": p.start.year}
        return str(p.start.year)

    def period_short(self, p: Period) -> str:
        """A short name for a chart axis: W8 / Feb / Q1 '26 / 2026."""
        if p.kind == "week":
            return self._("W%(week)d") % {"week": p.start.isocalendar()[1]}
        if p.kind == "month":
            return self.day(p.start, "LLL").rstrip(".")
        if p.kind == "quarter":
            return self._("Q%(quarter)d '%(year)02d") % {"quarter": (p.start.month - 1) // 3 + 1,
                                                          "year": p.start.year % 100}
        return str(p.start.year)

    def span(self, p: Period) -> str:
        """The days a period covers: 16–18 February 2026 (one day: 16 February 2026)."""
        from babel.dates import format_interval

        if p.start == p.end:
            return self.day(p.start)
        return format_interval(p.start, p.end, "yMMMMd", locale=self.locale)

    def references(self, refs: Mapping[str, tuple[str, ...]]) -> list[str]:
        """Each framework with its numbers: "BIO2 8.15.01, 8.15.02", "GDPR art. 32"."""
        return [f"{label('reference', key, self.lang)} {', '.join(numbers)}" for key, numbers in refs.items()]


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
                          trim_blocks=True, lstrip_blocks=True)
    else:
        # Markdown is not HTML: every printed value is escaped for Markdown instead
        env = Environment(loader=PackageLoader("compliance.report", "templates"), autoescape=False,
                          extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, finalize=markdown_text,
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

    _check_lang(lang)
    chart = None if chart_src is not None else Markup(trend_svg(overview, lang))
    if for_print and chart_src is None:
        # WeasyPrint draws an SVG image with its SVG renderer; inline, it would read the chart's styles as CSS
        chart_src = "data:image/svg+xml;base64," + base64.b64encode(str(chart).encode("utf-8")).decode("ascii")
        chart = None
    return _environment("html", lang).get_template("report.html.j2").render(
        chart_svg=chart, chart_src=chart_src, for_print=for_print, **_context(overview, lang, organisation))


def render_markdown(overview: Overview, lang: str = "nl", *, organisation: str = "") -> str:
    """The report as Markdown (tables; the trend as a table instead of a chart)."""
    _check_lang(lang)
    return _environment("md", lang).get_template("report.md.j2").render(**_context(overview, lang, organisation))


def render_pdf(overview: Overview, lang: str = "nl", *, organisation: str = "") -> bytes:
    """The HTML report printed to PDF by WeasyPrint."""
    try:
        from weasyprint import HTML
    except ImportError:  # a dependency, so only missing from an environment installed without them
        raise PdfUnavailable("PDF output needs WeasyPrint, which is missing from this Python environment; "
                             "install it: pip install weasyprint") from None
    except OSError as exc:  # WeasyPrint loads Pango and HarfBuzz when imported
        raise PdfUnavailable(f"PDF output needs the system libraries Pango and HarfBuzz, which WeasyPrint could "
                             f"not load ({exc}); on Debian or Ubuntu install them: "
                             f"apt-get install -y {' '.join(PDF_SYSTEM_PACKAGES)}") from None
    html = render_html(overview, lang, organisation=organisation, for_print=True)
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


def render_json(overview: Overview) -> str:
    return json.dumps(overview.to_json(), indent=2, ensure_ascii=False) + "\n"


def render(overview: Overview, fmt: str, lang: str = "nl", *, organisation: str = "") -> str | bytes:
    """The report in a format (html, pdf, md, json); PDF is bytes, the others text."""
    if fmt == "json":
        return render_json(overview)
    if fmt == "html":
        return render_html(overview, lang, organisation=organisation)
    if fmt == "md":
        return render_markdown(overview, lang, organisation=organisation)
    if fmt == "pdf":
        return render_pdf(overview, lang, organisation=organisation)
    raise ComplianceError(f"unknown report format '{fmt}'; use one of {', '.join(FORMATS)}")
