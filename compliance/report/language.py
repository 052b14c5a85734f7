"""The report's languages: the gettext catalog, the names of codes, dates and numbers written per language.

Below the renderer and the trend chart, which both write in the reader's language, and used by the
digest and the breach alerts for the same dates and numbers.
"""

from __future__ import annotations

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

    from compliance.report.periods import Period

LANGUAGES = ("nl", "en")
LOCALES = {"nl": "nl_NL", "en": "en_GB"}
DOMAIN = "messages"
#: The gettext domain of the check plugins' message templates (`compliance.api.Message`).
CHECKS_DOMAIN = "checks"


def check_lang(lang: str) -> None:
    """Refuse a language the report is not written in."""
    if lang not in LANGUAGES:
        raise ComplianceError(f"unknown language '{lang}'; use one of {', '.join(LANGUAGES)}")


@cache
def translations(lang: str) -> NullTranslations:
    """The report's catalog for lang (English: no catalog, the msgids are English)."""
    from babel.support import Translations

    check_lang(lang)
    return Translations.load(str(files("compliance.report") / "locale"), [lang], domain=DOMAIN)


def gettext(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


@cache
def check_translations(lang: str) -> NullTranslations:
    """The catalog of the check messages' templates for lang (English: none, the templates are English)."""
    from babel.support import Translations

    check_lang(lang)
    return Translations.load(str(files("compliance.report") / "locale"), [lang], domain=CHECKS_DOMAIN)


class Localized(str):
    """A text as stored (English, or a municipality's own words) that knows how it reads in other languages.

    A control's title or owner carries its translations (`controls.translations`); a check's message
    carries its template and parameters (`compliance.api.Message`), translated through the gettext
    domain `checks`. As a `str` it is the stored text, so JSON output and comparisons stay language-neutral;
    `localized(value, lang)` gives the text to print.
    """

    __slots__ = ("template", "translations")
    translations: Mapping[str, str]
    template: Mapping[str, Any] | None

    def __new__(cls, text: str, translations: Mapping[str, str] | None = None,
                template: Mapping[str, Any] | None = None) -> Localized:
        value = super().__new__(cls, text)
        value.translations = translations or {}
        value.template = template
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Localized, (str(self), dict(self.translations), self.template))

    def in_lang(self, lang: str) -> str:
        """The text in lang: its translation, else its template translated, else the text as stored."""
        if self.translations.get(lang):
            return self.translations[lang]
        if self.template is not None and lang != "en":
            from compliance.status import render_message

            return render_message(self.template, check_translations(lang).gettext, lang)
        return str(self)


def localized(value: Any, lang: str) -> Any:
    """A value to print in lang: a `Localized` text in that language, anything else as it is."""
    return value.in_lang(lang) if isinstance(value, Localized) else value


def control_text(text: str, translations: Any, field: str) -> str:
    """A control's field (title, owner, ...) as stored, with its translations from `controls.translations`."""
    found = {lang: texts[field] for lang, texts in (translations or {}).items()
             if isinstance(texts, Mapping) and isinstance(texts.get(field), str)}
    return Localized(text, found) if found else text


def check_message(message: str, evidence: Any) -> str:
    """A result's message as stored, with the template it was made from (kept in its evidence), if any."""
    from compliance.status import MESSAGE_KEY

    stored = evidence.get(MESSAGE_KEY) if isinstance(evidence, Mapping) else None
    if isinstance(stored, Mapping) and isinstance(stored.get("template"), str):
        return Localized(message, template=stored)
    return message


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
