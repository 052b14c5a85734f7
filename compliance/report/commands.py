"""`compliance report`: the risk overview for management."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from compliance.cli import App, error, org_typed, pass_app
from compliance.safe_output import write_private


@click.command(short_help="The risk overview for management.")
@click.option("--period", type=click.Choice(["week", "month", "quarter", "year"]), default="week",
              show_default=True, help="The calendar period to report on: the one that contains --as-of.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Report the state at the end of this day (in the configured time zone) [default: today].")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf", "md", "json"]), default="html",
              show_default=True, help="html and pdf for people, md for a wiki, json for other tools.")
@click.option("--lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file [default: standard output].")
@click.option("--all-orgs", "all_orgs", is_flag=True,
              help="Every organisation you may act for side by side, each in a group: leading, on the way, "
                   "starting (instead of one organisation's overview; not with --org).")
@click.option("--anonymise", is_flag=True,
              help="With --all-orgs: neutral codes (G01, G02, ...) instead of the organisations' names and codes.")
@click.option("--leading", type=click.IntRange(0, 100), metavar="PCT",
              help="With --all-orgs: the share of organisations that is leading, in percent [default: 20].")
@click.option("--starting", type=click.IntRange(0, 100), metavar="PCT",
              help="With --all-orgs: the share of organisations that is starting, in percent [default: 20].")
@pass_app
def report(app: App, period: str, as_of: Any, fmt: str, lang: str, output: str | None, all_orgs: bool,
           anonymise: bool, leading: int | None, starting: int | None) -> None:
    """The risk overview for management: compliance per theme, trend, top risks, breaches.

    One self-contained report: the compliance score weighted by severity and its change, a traffic
    light per BIO2 theme, the trend over 12 periods, the top risks with owner and exception,
    exceptions about to end, what changed, blind spots (checks that could not run, controls not
    evaluated in time) and breach-register counts. The JSON form is documented in docs/report.md.
    PDF needs the system libraries Pango and HarfBuzz (the README names the packages).

    With --all-orgs, the organisations you may act for side by side (for a shared service centre):
    per organisation its score per BIO2 theme, trend, open critical findings and breach counts,
    and its group, ranked by score: the top --leading percent leading, the bottom --starting
    percent starting, the rest on the way. --org, COMPLIANCE_ORG and `org:` do not apply to it.
    """
    from compliance.report import build_overview, render

    if not all_orgs:
        given = [name for name, value in (("--anonymise", anonymise), ("--leading", leading is not None),
                                          ("--starting", starting is not None)) if value]
        if given:
            error(f"{', '.join(given)} only go with --all-orgs")
    elif org_typed():
        error("--all-orgs covers every organisation you may act for; leave out --org")
    if fmt == "pdf" and output is None and sys.stdout.isatty():
        error("a PDF does not belong on a terminal; add --output report.pdf (or redirect the output)")
    content: str | bytes
    if all_orgs:
        content = _comparison(app, period, as_of.date() if as_of else None, fmt, lang, anonymise, leading,
                              starting)
    else:
        overview = build_overview(app.database(), period, as_of.date() if as_of else None, app.settings.zone,
                                  default_schedule=app.settings.schedule.default_cron, kinds=_check_kinds(app))
        content = render(overview, fmt, lang, organisation=app.settings.incidents.organisation)
    if output:
        write_private(Path(output), content if isinstance(content, bytes) else content.encode("utf-8"))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(content, nl=False)  # bytes (PDF) go to the binary stream as they are


def _comparison(app: App, period: str, as_of: date | None, fmt: str, lang: str, anonymise: bool,
                leading: int | None, starting: int | None) -> str | bytes:
    """The organisations the user may act for side by side (compliance.report.comparison)."""
    from compliance import orgs
    from compliance.report.comparison import DEFAULT_LEADING, DEFAULT_STARTING, compare, overviews, render_comparison

    leading = DEFAULT_LEADING if leading is None else leading
    starting = DEFAULT_STARTING if starting is None else starting
    if leading + starting > 100:
        error(f"--leading {leading} and --starting {starting} together exceed 100 percent")
    visible = app.visible_orgs()
    if not visible:
        error(f"user '{orgs.current_user()[0]}' may act for none of this monitor's organisations; the `orgs:` "
              "section of compliance.yaml names who may act for which organisation")
    found = overviews(app.home_database(), visible, app.shared_settings, period, as_of)
    comparison = compare(found, leading=leading, starting=starting, anonymise=anonymise,
                         restricted=len(visible) < len(orgs.registry(app.home_database())))
    return render_comparison(comparison, fmt, lang)


def _check_kinds(app: App) -> dict[str, str] | None:
    """Per control id `automated`, `evidence` or `unconfigured`, from the catalog and the configured target
    groups (a check on a group without targets does not run); None when the catalog does not load (the
    report then leaves the automated/evidence split of its coverage out).

    The controls are those `compliance controls list` shows: validated once, then read from the cache
    while their files, the settings and the plugins are unchanged (`compliance.catalog.listing`).
    """
    from compliance.catalog.files import discover
    from compliance.catalog.listing import listed
    from compliance.errors import ComplianceError
    from compliance.soa import control_kind

    settings = app.settings
    if discover(settings.control_paths)[1]:
        return None  # a control path missing or unreadable fails validation: known without loading the models
    try:
        controls = listed(settings.control_paths, settings.targets, bundled=settings.controls.bundled)
    except ComplianceError:
        return None
    return {c.id: control_kind(c, settings.targets) for c in controls}
