"""`compliance report`: the risk overview for management."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from compliance.cli import App, error, pass_app
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
@pass_app
def report(app: App, period: str, as_of: Any, fmt: str, lang: str, output: str | None) -> None:
    """The risk overview for management: compliance per theme, trend, top risks, breaches.

    One self-contained report: the compliance score weighted by severity and its change, a traffic
    light per BIO2 theme, the trend over 12 periods, the top risks with owner and exception,
    exceptions about to end, what changed, blind spots (checks that could not run, controls not
    evaluated in time) and breach-register counts. The JSON form is documented in docs/report.md.
    PDF needs the system libraries Pango and HarfBuzz (the README names the packages).
    """
    from compliance.report import build_overview, render

    if fmt == "pdf" and output is None and sys.stdout.isatty():
        error("a PDF does not belong on a terminal; add --output report.pdf (or redirect the output)")
    overview = build_overview(app.database(), period, as_of.date() if as_of else None, app.settings.zone,
                              default_schedule=app.settings.schedule.default_cron, kinds=_check_kinds(app))
    content = render(overview, fmt, lang, organisation=app.settings.incidents.organisation)
    if output:
        write_private(Path(output), content if isinstance(content, bytes) else content.encode("utf-8"))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(content, nl=False)  # bytes (PDF) go to the binary stream as they are


def _check_kinds(app: App) -> dict[str, str] | None:
    """Per control id `automated`, `evidence` or `unconfigured`, from the catalog and the configured target
    groups (a check on a group without targets does not run); None when the catalog does not load (the
    report then leaves the automated/evidence split of its coverage out)."""
    from compliance.errors import ComplianceError
    from compliance.soa import control_kind

    try:
        return {c.id: control_kind(c, app.settings.targets) for c in app.catalog()}
    except ComplianceError:
        return None
