"""`compliance db`: create and migrate the database schema."""

from __future__ import annotations

import sys
from typing import Any

import click

from compliance.cli import EXIT_FAILING, EXIT_USAGE, App, emit_json, format_option, pass_app


@click.group(short_help="Create and migrate the database schema.")
def db() -> None:
    """Database schema: create and migrate (SQLite or PostgreSQL)."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create the tables or migrate them to this version's schema. Safe to run again."""
    from compliance import db as database
    from compliance.orgs import missing_error, org_url, registry

    url = app.shared_settings.database_url
    before = database.current_revision(url)
    after = database.upgrade(url)
    _report(database.safe_url(url), before, after)
    home = database.Database(url)
    try:
        others = [o for o in registry(home) if not o.first]
    finally:
        home.close()
    missing = False
    for other in others:  # each further organisation's database (`compliance org add`)
        org_db = org_url(url, other.location)
        before = database.current_revision(org_db)
        if before is None:  # `org add` made it migrated: gone, not new; an empty one would hide the loss
            click.echo(f"error: {missing_error(other)}", err=True)
            missing = True
            continue
        _report(f"of organisation {other.code}", before, database.upgrade(org_db))
    if missing:
        sys.exit(EXIT_USAGE)


def _report(which: str, before: str | None, after: str) -> None:
    if before == after:
        click.echo(f"database {which} is already at schema {after}")
    else:
        click.echo(f"database {which} migrated from {before or 'empty'} to schema {after}")


@db.command("status")
@format_option("text", "json", default="text")
@pass_app
def db_status(app: App, fmt: str) -> None:
    """Show the database URL (without password) and its schema revision; exit 1 when it needs `db upgrade`.

    With several organisations, the schema of each further organisation's database too.
    """
    from compliance import db as database
    from compliance.orgs import org_url, registry

    url = app.shared_settings.database_url
    current = database.current_revision(url)
    # the databases of the organisations after the first (`compliance org add`), once the register exists
    others = [(o.code, database.current_revision(org_url(url, o.location)))
              for o in (registry(app.home_database()) if current == database.SCHEMA_HEAD else []) if not o.first]
    if fmt == "json":
        found: dict[str, Any] = {"database": database.safe_url(url), "schema": current, "head": database.SCHEMA_HEAD,
                                 "current": current == database.SCHEMA_HEAD}
        if others:
            found["organisations"] = [{"code": code, "schema": rev, "current": rev == database.SCHEMA_HEAD}
                                      for code, rev in others]
        emit_json(found)
    else:
        click.echo(f"database: {database.safe_url(url)}")
        click.echo(f"schema:   {current or 'none'} (this version needs {database.SCHEMA_HEAD})")
        for code, rev in others:
            click.echo(f"organisation {code}: schema {rev or 'none'}")
    if current != database.SCHEMA_HEAD or any(rev != database.SCHEMA_HEAD for _, rev in others):
        sys.exit(EXIT_FAILING)


@db.command("prune")
@click.option("--dry-run", is_flag=True, help="Count what would be rolled up and removed; change nothing.")
@click.option("--raw-days", type=click.IntRange(min=1), metavar="DAYS",
              help="Keep this many days of raw results instead of the config's history.raw_days.")
@format_option("text", "json", default="text")
@pass_app
def db_prune(app: App, dry_run: bool, raw_days: int | None, fmt: str) -> None:
    """Roll up raw results older than history.raw_days into daily rollups, then delete them.

    \b
    For every local day (timezone in compliance.yaml) older than the retention, one row per
    control, check and target keeps the worst status, the counts per status and the newest
    (failing) result; then the day's raw results are deleted in batches. The report and
    `compliance ensia export` read the rollups for those days, with the same figures.
    Rollups older than history.keep days are removed (default: kept forever).

    \b
    Never removed: the newest result of each control and target, and the newest failing
    result of each open finding. Safe to run again (the scheduler daemon runs it daily on
    history.cron); an interrupted prune resumes where it stopped. On SQLite the file only
    shrinks after `VACUUM`; the freed pages are reused first.

    \b
    Examples:
      compliance db prune --dry-run           what 90 days of retention would remove
      compliance db prune --raw-days 30       keep 30 days of raw results this time
      compliance db prune --format json       the counts for scripts
    """
    from compliance.history import prune

    history = app.settings.history
    days = raw_days if raw_days is not None else history.raw_days
    if history.keep is not None and days is not None and history.keep <= days:
        from compliance.cli import error

        error(f"--raw-days {days} is not less than history.keep ({history.keep} days) in the config: rollups "
              "would be removed before or with the raw results they replace. Give at most --raw-days "
              f"{history.keep - 1}, or raise history.keep.")
    report = prune(app.database(), raw_days=days, keep=history.keep, zone=app.settings.zone, dry_run=dry_run)
    if fmt == "json":
        emit_json(report.as_dict())
        return
    verb = "would remove" if dry_run else "removed"
    if days is None:
        click.echo("history.raw_days is null: raw results are kept; nothing to roll up")
    else:
        cutoff = report.cutoff.astimezone(app.settings.zone).date().isoformat()
        span = (f"{len(report.days_rolled_up)} day(s) rolled up, {report.days_rolled_up[0]} to "
                f"{report.days_rolled_up[-1]}" if report.days_rolled_up else "no new day to roll up")
        click.echo(f"raw results before {cutoff} ({days} days kept): {span}")
        keeps, writes = ("would keep", "would write") if dry_run else ("kept", "wrote")
        click.echo(f"  {verb} {report.results_removed} raw result(s); {keeps} {report.results_kept} that an open "
                   f"finding or a last result needs; {writes} {report.rollups_written} rollup row(s)")
    if history.keep is not None:
        click.echo(f"rollups older than {history.keep} days: {verb} {report.rollups_removed} row(s) of "
                   f"{len(report.rollup_days_removed)} day(s)")
    if report.bytes_before is not None and report.bytes_after is not None and not dry_run:
        click.echo(f"database in use: {report.bytes_before:,} -> {report.bytes_after:,} bytes "
                   "(run VACUUM to shrink the file)")
