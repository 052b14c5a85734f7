"""Several organisations side by side (`compliance report --all-orgs`), for a shared service centre.

Each organisation's figures are those of its own risk overview (`build_overview` on its own database):
nothing is queried here. Only numbers are taken from an overview (scores, traffic lights, counts), never
a control's title, a target or a message, so that `--anonymise` has only the name and code to replace.

Groups, in the manner of the yearly municipal ICT benchmark (docs/report.md explains them to readers):
the organisations with a score are ranked by it; of those `n`, the first round(n x leading / 100) are
*leading*, the last round(n x starting / 100) *starting*, the rest *on the way* (round: halves up, so 3
organisations at 20 % give one leader and one starter; 2 give none). A group never takes more than its
share: an organisation is in it only when every organisation scoring the same as it fits in too, so
tied organisations straddling a boundary are all left out (on the way). An organisation that would be
both leading and starting (one alone, or all scoring the same) is on the way. An organisation without a
score (no control counts) is in no group and has no rank.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from compliance.report.labels import N_

if TYPE_CHECKING:
    from jinja2 import Environment

    from compliance.db import Database
    from compliance.orgs import Org
    from compliance.report.overview import Overview
    from compliance.report.periods import Period
    from compliance.settings import Settings

DOMAIN = "comparison"
VERSION = 1
#: The groups, best first, and "none" for an organisation without a score; with their names.
GROUPS: Mapping[str, str] = {
    "leading": N_("leading"),
    "on_the_way": N_("on the way"),
    "starting": N_("starting"),
    "none": N_("no score"),
}
DEFAULT_LEADING = 20
DEFAULT_STARTING = 20


@dataclass(frozen=True, slots=True)
class ThemeStatus:
    theme: str
    clause: str
    score: float | None
    light: str


@dataclass(frozen=True, slots=True)
class OrgFigures:
    """One organisation's figures, all taken from its own risk overview: numbers only."""

    code: str  # the organisation's code, or its neutral code when anonymised
    name: str  # its name, or the neutral code
    score: float | None
    previous: float | None
    change: float | None
    passing: int
    failing: int
    accepted: int
    themes: tuple[ThemeStatus, ...]
    trend: tuple[float | None, ...]  # one score per period of `Comparison.trend_periods`, oldest first
    critical_findings: int  # open findings of critical controls (accepted ones included)
    critical_failing: int  # critical controls failing (not wholly accepted)
    breaches: Mapping[str, int]  # breach-register counts (BREACH_COUNTS)
    rank: int | None = None
    group: str = "none"


#: The breach-register counts taken from the overview's `IncidentFigures`.
BREACH_COUNTS = ("new", "open", "overdue", "notified_authority", "notified_within_72h")


@dataclass(frozen=True, slots=True)
class Comparison:
    organisations: tuple[OrgFigures, ...]  # by rank; organisations without a score last
    leading: int  # percent
    starting: int  # percent
    restricted: bool  # only the organisations the user may act for (`orgs:` in compliance.yaml)
    anonymised: bool
    generated_at: datetime
    as_of: date
    timezone: str
    period: Period
    previous_period: Period
    trend_periods: tuple[Period, ...]

    def count(self, group: str) -> int:
        return sum(o.group == group for o in self.organisations)

    def to_json(self) -> dict[str, Any]:
        """The JSON contract documented in docs/report.md ("Several organisations side by side")."""
        def period(p: Period) -> dict[str, Any]:
            return {"kind": p.kind, "label": p.label, "start": p.start.isoformat(), "end": p.end.isoformat(),
                    "complete": p.complete}

        return {
            "report": "organisation-comparison",
            "version": VERSION,
            "generated_at": self.generated_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "timezone": self.timezone,
            "period": period(self.period),
            "previous_period": period(self.previous_period),
            "anonymised": self.anonymised,
            "scope": "allowed" if self.restricted else "all",
            "groups": {"leading_percent": self.leading, "starting_percent": self.starting,
                       **{g: self.count(g) for g in GROUPS}},
            "trend_periods": [p.label for p in self.trend_periods],
            "organisations": [
                {"code": o.code, "name": o.name, "rank": o.rank, "group": o.group, "score": o.score,
                 "previous": o.previous, "change": o.change, "passing": o.passing, "failing": o.failing,
                 "accepted": o.accepted,
                 "themes": [{"theme": t.theme, "clause": t.clause, "score": t.score, "light": t.light}
                            for t in o.themes],
                 "trend": list(o.trend),
                 "critical": {"open_findings": o.critical_findings, "failing_controls": o.critical_failing},
                 "breaches": dict(o.breaches)}
                for o in self.organisations],
        }


def figures_of(code: str, name: str, o: Overview) -> OrgFigures:
    """The numbers the comparison shows, from one organisation's overview."""
    critical = [r for r in o.risks if r.severity == "critical"]
    return OrgFigures(
        code, name, o.compliance.percent, o.previous.percent, o.change, o.compliance.passing,
        o.compliance.failing, o.compliance.accepted,
        tuple(ThemeStatus(t.theme, t.clause, t.score.percent, t.light) for t in o.themes),
        tuple(p.score.percent for p in o.trend),
        sum(r.targets_failing for r in critical), sum(not r.accepted for r in critical),
        {name_: getattr(o.incidents, name_) for name_ in BREACH_COUNTS})


def share(n: int, percent: int) -> int:
    """round(n x percent / 100), halves up."""
    return (n * percent + 50) // 100


def groups_of(scores: Mapping[str, float | None], leading: int, starting: int) -> dict[str, str]:
    """Per key its group (see the module docstring)."""
    scored = [s for s in scores.values() if s is not None]
    leaders, starters = share(len(scored), leading), share(len(scored), starting)
    found = {}
    for key, score in scores.items():
        if score is None:
            found[key] = "none"
            continue
        lead = sum(s >= score for s in scored) <= leaders  # every organisation at least as good fits in
        start = sum(s <= score for s in scored) <= starters
        found[key] = "leading" if lead and not start else "starting" if start and not lead else "on_the_way"
    return found


def neutral_codes(orgs: Sequence[Org]) -> dict[str, str]:
    """Per organisation code a neutral one (G01, G02, ...), numbered in the order of a hash of where its
    data is and when it was added: stable from report to report (also over a rename), unrelated to the
    ranking and to the names, and not to be worked out from the report."""
    def key(org: Org) -> str:
        return hashlib.sha256(f"{org.location}\0{org.created_at.isoformat()}".encode()).hexdigest()

    width = max(2, len(str(len(orgs))))
    return {org.code: f"G{n:0{width}d}" for n, org in enumerate(sorted(orgs, key=key), start=1)}


def overviews(home: Database, organisations: Sequence[Org], shared: Settings, period: str = "week",
              as_of: date | None = None, *, now: datetime | None = None) -> list[tuple[Org, Overview]]:
    """Each organisation's risk overview, from its own database (closed after use) with its own settings,
    all as of the same moment."""
    from compliance.orgs import open_org
    from compliance.report.overview import build_overview

    now = now or datetime.now(UTC)
    found = []
    for org in organisations:
        settings = shared.for_org(org.code, name=org.name, first=org.first)
        database = open_org(home, org)
        try:
            found.append((org, build_overview(database, period, as_of, settings.zone, now=now,
                                              default_schedule=settings.schedule.default_cron)))
        finally:
            if database is not home:
                database.close()
    return found


def compare(overviews: Iterable[tuple[Org, Overview]], *, leading: int = DEFAULT_LEADING,
            starting: int = DEFAULT_STARTING, restricted: bool = False, anonymise: bool = False) -> Comparison:
    """The comparison of the organisations' overviews (all for the same period and day)."""
    pairs = list(overviews)
    if not pairs:
        raise ValueError("a comparison needs at least one organisation")
    codes = neutral_codes([org for org, _ in pairs]) if anonymise else {}
    figures = [figures_of(codes.get(org.code, org.code), codes.get(org.code, org.name), o) for org, o in pairs]
    groups = groups_of({f.code: f.score for f in figures}, leading, starting)
    scored = [f.score for f in figures if f.score is not None]
    ranked = [replace(f, rank=None if f.score is None else 1 + sum(s > f.score for s in scored),
                      group=groups[f.code]) for f in figures]
    ranked.sort(key=lambda f: (f.rank is None, f.rank or 0, f.code))
    first = pairs[0][1]
    return Comparison(tuple(ranked), leading, starting, restricted, anonymise, first.generated_at, first.as_of,
                      first.timezone, first.period, first.previous_period, tuple(p.period for p in first.trend))


# -- rendering --------------------------------------------------------------------------------------


def _environment(kind: str, lang: str) -> Environment:
    from importlib.resources import files

    from babel.support import Translations
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from compliance.report.language import check_lang, label
    from compliance.report.rendering import markdown_text

    check_lang(lang)
    # HTML is autoescaped; Markdown is not HTML, so every value printed in it is escaped for Markdown instead
    env = Environment(loader=PackageLoader("compliance.report", "templates"), autoescape=kind == "html",
                      extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=kind == "md",
                      finalize=None if kind == "html" else markdown_text)
    own = Translations.load(str(files("compliance.report") / "locale"), [lang], domain=DOMAIN)
    env.install_gettext_translations(own, newstyle=True)  # type: ignore[attr-defined]
    env.globals["label"] = lambda kind_, value: label(kind_, value, lang)
    env.globals["group"] = lambda value: own.gettext(GROUPS[value])
    return env


def render_comparison(c: Comparison, fmt: str, lang: str = "nl") -> str | bytes:
    """The comparison as html, pdf (bytes), md or json."""
    import json

    from compliance.report.language import Formatter
    from compliance.report.overview import AMBER_FROM, GREEN_FROM

    if fmt == "json":
        return json.dumps(c.to_json(), indent=2, ensure_ascii=False) + "\n"
    kind = "md" if fmt == "md" else "html"
    text = _environment(kind, lang).get_template(f"comparison.{kind}.j2").render(
        c=c, f=Formatter(lang, c.timezone), lang=lang, for_print=fmt == "pdf", green_from=GREEN_FROM,
        amber_from=AMBER_FROM)
    if fmt == "pdf":
        from compliance.report.rendering import html_to_pdf

        return html_to_pdf(text)
    return text
