"""Rendering the statement of applicability (VvT) as JSON, CSV, Markdown or HTML, in Dutch or English.

The rows come from `compliance.soa.statement`; this module only formats them. Texts come from the
gettext domain `soa` (compliance/report/locale/<lang>/LC_MESSAGES/soa.po).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, tzinfo
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from compliance.safe_output import SafeCsvWriter

if TYPE_CHECKING:
    from compliance.soa import SoaRow

DOMAIN = "soa"
#: The BIO2 hygiene categories of a measure, as the VvT names them (translated through `soa`).
HYGIENE_LABELS = {"basishygiene": "basic hygiene", "ketenhygiene": "chain hygiene",
                  "overheidsrisico": "government risk"}
#: CSV columns: one line per ISO control (`row` control) followed by one per BIO2 measure (`row` measure).
CSV_FIELDS = ("row", "number", "control", "title", "theme", "hygiene", "measures", "applicable", "reason",
              "decided_by", "decided_at", "measures_not_applicable", "coverage", "controls", "status")


def render_soa(rows: list[SoaRow], fmt: str, lang: str, zone: tzinfo = UTC, generated: datetime | None = None) -> str:
    generated = generated or datetime.now(UTC)
    if fmt == "json":
        return json.dumps({"generated_at": generated.isoformat(), "lang": lang, "summary": _summary(rows),
                           "controls": [r.as_dict() for r in rows],
                           "measures": [m.as_dict() for r in rows for m in r.measure_rows]},
                          indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = SafeCsvWriter(out, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for row in rows:
            writer.writerow(_csv_line({**row.as_dict(), "row": "control", "control": row.number}))
            for measure in row.measure_rows:
                writer.writerow(_csv_line({**measure.as_dict(), "row": "measure"}))
        return out.getvalue()
    themes: dict[str, list[SoaRow]] = {}
    for row in rows:
        themes.setdefault(row.theme, []).append(row)
    text: str = _template(fmt, lang).render(themes=list(themes.items()), summary=_summary(rows),
                                            generated=generated.astimezone(zone), lang=lang)
    return text


def _csv_line(d: dict[str, Any]) -> list[Any]:
    def cell(key: str) -> Any:
        value = d.get(key)
        if key in ("measures", "controls", "hygiene"):
            return "; ".join(value or ())
        if key == "measures_not_applicable":
            return "; ".join(f"{m}: {r}" for m, r in (value or {}).items())
        if key == "applicable":
            return "yes" if value else "no"
        if isinstance(value, datetime):
            return value.isoformat()
        return "" if value is None else value

    return [cell(k) for k in CSV_FIELDS]


def _summary(rows: list[SoaRow]) -> dict[str, int]:
    measures = [m for r in rows for m in r.measure_rows]
    applicable = [m for m in measures if m.applies]
    return {"controls": len(rows), "applicable": sum(r.applies for r in rows),
            "not_applicable": sum(not r.applies for r in rows),
            "automated": sum(r.coverage == "automated" for r in rows),
            "evidence": sum(r.coverage == "evidence" for r in rows),
            "none": sum(r.coverage == "none" for r in rows),
            "measures": sum(len(r.measures) for r in rows),
            "measures_applicable": len(applicable),
            "measures_not_applicable": len(measures) - len(applicable),
            "measures_automated": sum(m.coverage == "automated" for m in applicable),
            "measures_evidence": sum(m.coverage == "evidence" for m in applicable),
            "measures_none": sum(m.coverage == "none" for m in applicable)}


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
    env.filters["hygiene"] = lambda value: translations.gettext(HYGIENE_LABELS.get(value) or str(value))
    env.filters["md"] = lambda value: str(value).replace("|", "\\\\|").replace("\\n", " ")
    return env.get_template(f"soa.{fmt}.j2")
