"""`compliance org`: the organisations (municipalities) this monitor serves."""

from __future__ import annotations

import click

from compliance.cli import App, emit_json, emit_table, error, format_option, local_time, pass_app, who


@click.group(short_help="The organisations (municipalities) this monitor serves.")
def org() -> None:
    """The organisations (municipalities) this monitor serves, each with its own data.

    \b
    A shared service centre runs one monitor for several municipalities. Each has its own
    findings, exceptions, evidence, applicability decisions, breach register (numbering and
    audit chain), report, ENSIA export, digest and alerts; the catalog, the check plugins and
    the configuration are shared, and `organisations: CODE:` in compliance.yaml sets what
    differs (targets, own controls, digest recipients, Slack channel, privacy officer).
    Each organisation's data is in a database of its own: an SQLite file beside the first
    one, or a schema of the same PostgreSQL database.

    \b
    Every command acts for one organisation: --org CODE (before or after the command),
    COMPLIANCE_ORG, `org: CODE` in compliance.yaml, or the only one there is. The data that
    was there before there were several is organisation `default`; rename it.

    \b
    Examples:
      compliance org rename default utrecht --name "Gemeente Utrecht"
      compliance org add zeist --name "Gemeente Zeist"
      compliance org list
      compliance findings --org zeist
      compliance report --all-orgs --format html --output vergelijking.html
    """


def _may_manage(app: App) -> None:
    """Adding or renaming organisations: everyone without `orgs:`, else only a user granted "*"."""
    user, allowed = app.access()
    if allowed is not None:
        error(f"user '{user}' may not add or rename organisations: that needs \"*\" under `orgs:` in compliance.yaml")


@org.command("add")
@click.argument("code")
@click.option("--name", required=True, help='The organisation\'s name as it appears in reports ("Gemeente Zeist").')
@click.option("--by", help="Who adds it [default: the operating-system user].")
@pass_app
def org_add(app: App, code: str, name: str, by: str | None) -> None:
    """Add organisation CODE (lower-case letters, digits, hyphens) with a database of its own.

    \b
    The database is created at this version's schema: on SQLite a file beside the first one
    (compliance-CODE.db, readable by its owner only), on PostgreSQL the schema org_CODE.
    Then give it its targets and recipients under `organisations: CODE:` in compliance.yaml
    and scan it: compliance scan --org CODE.
    """
    from compliance import orgs

    _may_manage(app)
    added = orgs.add(app.home_database(), code, name.strip(), who(by))
    click.echo(f"organisation {added.code} ({added.name}) added; its data: {added.location}")


@org.command("rename")
@click.argument("code")
@click.argument("new_code", required=False)
@click.option("--name", help="A new name for reports.")
@pass_app
def org_rename(app: App, code: str, new_code: str | None, name: str | None) -> None:
    """Give organisation CODE a new code NEW_CODE and/or a new --name; its data stays where it is.

    \b
    Update --org, COMPLIANCE_ORG and the `org:`, `orgs:` and `organisations:` entries that
    name the old code.
    """
    from compliance import orgs

    if new_code is None and name is None:
        error("give a new code, --name NAME, or both")
    _may_manage(app)
    renamed = orgs.rename(app.home_database(), code, new_code, name.strip() if name is not None else None)
    click.echo(f"organisation {code} is now {renamed.code} ({renamed.name})")


@org.command("list")
@format_option("table", "json")
@pass_app
def org_list(app: App, fmt: str) -> None:
    """List the organisations you may act for, with the one commands use now marked."""

    visible = app.visible_orgs()
    current = app.org_option or app.shared_settings.org or (visible[0].code if len(visible) == 1 else None)
    if fmt == "json":
        emit_json([{"code": o.code, "name": o.name, "location": o.location or "(first database)",
                    "created_at": o.created_at, "created_by": o.created_by, "current": o.code == current}
                   for o in visible])
        return
    emit_table(["", "Code", "Name", "Data", "Added", "By"],
               [["*" if o.code == current else "", o.code, o.name, o.location or "(first database)",
                 local_time(app, o.created_at), o.created_by] for o in visible])
