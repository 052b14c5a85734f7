"""`compliance db`: create and migrate the database schema."""

from __future__ import annotations

import sys

import click

from compliance.cli import EXIT_FAILING, App, emit_json, format_option, pass_app


@click.group(short_help="Create and migrate the database schema.")
def db() -> None:
    """Database schema: create and migrate (SQLite or PostgreSQL)."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create the tables or migrate them to this version's schema. Safe to run again."""
    from compliance import db as database

    url = app.settings.database_url
    before = database.current_revision(url)
    after = database.upgrade(url)
    if before == after:
        click.echo(f"database {database.safe_url(url)} is already at schema {after}")
    else:
        click.echo(f"database {database.safe_url(url)} migrated from {before or 'empty'} to schema {after}")


@db.command("status")
@format_option("text", "json", default="text")
@pass_app
def db_status(app: App, fmt: str) -> None:
    """Show the database URL (without password) and its schema revision; exit 1 when it needs `db upgrade`."""
    from compliance import db as database

    url = app.settings.database_url
    current = database.current_revision(url)
    if fmt == "json":
        emit_json({"database": database.safe_url(url), "schema": current, "head": database.SCHEMA_HEAD,
                   "current": current == database.SCHEMA_HEAD})
    else:
        click.echo(f"database: {database.safe_url(url)}")
        click.echo(f"schema:   {current or 'none'} (this version needs {database.SCHEMA_HEAD})")
    if current != database.SCHEMA_HEAD:
        sys.exit(EXIT_FAILING)
