"""Rendering the statement of applicability (VvT) as JSON, CSV, Markdown or HTML, in Dutch or English.

The rows come from `compliance.soa.statement`; this module only formats them. Texts come from the
gettext domain `soa` (compliance/report/locale/<lang>/LC_MESSAGES/soa.po).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, tzinfo
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.soa import SoaRow

DOMAIN = "soa"
CSV_FIELDS = ("number", "title", "theme", "measures", "applicable", "reason", "decided_by", "decided_at",
              "measures_not_applicable", "coverage", "controls", "status")


def render_soa(rows: list[SoaRow], fmt: str, lang: str, zone: tzinfo = UTC, generated: datetime | None = None) -> str:
    generated = generated or datetime.now(UTC)
    data = [r.as_dict() for r in rows]
    if fmt == "json":
        return json.dumps({"generated_at": generated.isoformat(), "lang": lang, "controls": data},
                          indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for d in data:
            writer.writerow([
                "; ".join(d[k]) if k in ("measures", "controls") else
                "; ".join(f"{m}: {r}" for m, r in d[k].items()) if k == "measures_not_applicable" else
                ("yes" if d[k] else "no") if k == "applicable" else
                d[k].isoformat() if isinstance(d[k], datetime) else d[k] if d[k] is not None else ""
                for k in CSV_FIELDS])
        return out.getvalue()
    themes: dict[str, list[SoaRow]] = {}
    for row in rows:
        themes.setdefault(row.theme, []).append(row)
    text: str = _template(fmt, lang).render(themes=list(themes.items()), summary=_summary(rows),
                                            generated=generated.astimezone(zone), lang=lang)
    return text


def _summary(rows: list[SoaRow]) -> dict[str, int]:
    return {"controls": len(rows), "applicable": sum(r.applies for r in rows),
            "not_applicable": sum(not r.applies for r in rows),
            "automated": sum(r.coverage == "automated" for r in rows),
            "evidence": sum(r.coverage == "evidence" for r in rows),
            "none": sum(r.coverage == "none" for r in rows),
            "measures": sum(len(r.measures) for r in rows)}


def _template(fmt: str, lang: str) -> Any:
    from babel.dates import format_date, format_datetime
    from babel.support import Translations
    from jinja2 import Environment, PackageLoader, select_autoescape

    env: Any = Environment(loader=PackageLoader("compliance.report", "templates"), extensions=["jinja2.ext.i18n"],
                      autoescape=select_autoescape(enabled_extensions=("html", "html.j2")),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    locale = "nl_NL" if lang == "nl" else "en_GB"
    translations = Translations.load(str(files("compliance.report") / "locale"), [lang], domain=DOMAIN)
    env.install_gettext_translations(translations, newstyle=True)
    env.filters["date"] = lambda value: format_date(value, "long", locale=locale) if value else ""
    env.filters["datetime"] = lambda value: format_datetime(value, "d MMMM y HH:mm", locale=locale) if value else ""
    env.filters["md"] = lambda value: str(value).replace("|", "\\\\|").replace("\\n", " ")
    return env.get_template(f"soa.{fmt}.j2")
