"""`compliance ensia`: the ENSIA BIO self-evaluation, proposed from the monitor's evidence."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from compliance.cli import App, controls_option, error, pass_app
from compliance.safe_output import write_private


@click.group(short_help="The ENSIA BIO self-evaluation: an answer per BIO2 measure.")
def ensia() -> None:
    """The ENSIA BIO self-evaluation: a proposed answer per BIO2 measure, with the evidence behind it."""


@ensia.command("export")
@click.option("--year", type=click.IntRange(2000, 9999), required=True,
              help="The accountability year (the calendar year, in the configured time zone).")
@click.option("--format", "fmt", type=click.Choice(["html", "csv", "json", "xlsx"]), default="html",
              show_default=True)
@click.option("--lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file [default: standard output].")
@controls_option()
@pass_app
def ensia_export(app: App, year: int, fmt: str, lang: str, output: str | None,
                 control_paths: tuple[str, ...]) -> None:
    """Propose the answer per BIO2 measure for the ENSIA BIO self-evaluation of YEAR.

    \b
    Per measure: voldoet / voldoet deels / voldoet niet / niet van toepassing (compliant, partly
    compliant, not compliant, not applicable), and why: the controls that cover it and how they stood
    over the year (passing all year, failing since, findings resolved, reopened), the attestations
    valid in the year, the exceptions with approver and end date, the not-applicable decisions with
    their reasons. Plus the annex of deviations (uitzonderingen op de VvT) with the reference of each
    risk analysis (--risk-analysis on `controls applicability` and `exceptions add`). The rule is in
    docs/ensia.md.

    \b
    compliance ensia export --year 2026 --format xlsx --output ensia-bio-2026.xlsx
    """
    from compliance.ensia import evaluate, render

    if fmt == "xlsx" and output is None and sys.stdout.isatty():
        error("a spreadsheet does not belong on a terminal; add --output ensia.xlsx (or redirect the output)")
    evaluation = evaluate(app.catalog(control_paths), app.database(), year, lang=lang, zone=app.settings.zone,
                          groups=app.settings.targets)
    content = render(evaluation, fmt, app.settings.zone)
    if output:
        write_private(Path(output), content)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(content, nl=False)  # bytes go to the binary stream as they are
