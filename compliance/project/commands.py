"""`compliance init` and `compliance demo`: set up a monitor, or try one against demo targets."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from compliance.cli import App, mounted


@click.command(short_help="Set up a monitor in the current folder.")
@click.option("--force", is_flag=True, help="Overwrite compliance.yaml and controls/example.yaml if present.")
@click.option("--catalog/--no-catalog", default=True, show_default=True,
              help="Take the shipped BIO2, AVG and Forum Standaardisatie controls (controls.bundled).")
def init(force: bool, catalog: bool) -> None:
    """Set up a monitor in the current folder.

    Writes compliance.yaml and controls/example.yaml (existing files are kept unless --force) and
    creates or migrates the database named in the config (an SQLite file by default). The config takes
    the shipped control catalog unless --no-catalog; `compliance controls coverage` shows what it covers.
    """
    from compliance.project import AUDIT_KEY_FILE, init_project

    result = init_project(Path.cwd(), force=force, database_url=os.environ.get("COMPLIANCE_DATABASE_URL"),
                          catalog=catalog)
    from compliance.errors import display_path

    for path in result.written:
        click.echo(f"wrote {display_path(path)}")
    for path in result.kept:
        click.echo(f"kept  {display_path(path)} (exists; --force overwrites)")
    if any(path.name == AUDIT_KEY_FILE for path in result.written):
        click.echo(f"{AUDIT_KEY_FILE} keys the breach register's audit trail (mode 0600): back it up apart from the "
                   "database; without it the register cannot be verified")
    click.echo(f"database {result.database} is at the current schema")
    program = this_program()
    click.echo(f"next: edit controls/, run `{program} controls validate`, then `{program} scan`")


@click.command(short_help="Try everything against demo targets on this machine.")
@click.option("--dir", "folder", type=click.Path(file_okay=False), default="demo", show_default=True,
              help="Folder for the demo's config, controls, database and targets.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def demo(ctx: click.Context, folder: str, fmt: str) -> None:
    """Run a scan of demo controls against demo targets on this machine.

    Creates FOLDER with a config, demo controls and targets (backups, logs, a secrets folder, a local
    service), scans them into an SQLite database and prints the results. Some controls fail on purpose.
    Afterwards: `cd FOLDER && compliance findings`.
    """
    from compliance.project import BannerServer, prepare_demo

    scan = mounted("scan")  # `compliance scan` itself, through the root: no command module imports another
    with BannerServer() as server:
        config = prepare_demo(Path(folder), server.port)
        app = App(str(config), ctx.obj.debug)
        try:
            with click.Context(scan, info_name="scan", parent=ctx, obj=app) as scan_ctx:
                scan_ctx.invoke(scan, control_ids=(), tags=(), fmt=fmt, fail_on="none", control_paths=())
        finally:
            app.close()
    if fmt == "table":
        click.echo(f"\nThe demo lives in {folder}/. Try: cd {shlex.quote(folder)} && {this_program()} findings")


def this_program() -> str:
    """This program as a shell would run it again: `compliance` when that is what PATH finds, else the
    absolute path of the running console script (a virtualenv that is not activated), else `python -m`."""
    import shutil

    script = Path(sys.argv[0])
    if script.name == "compliance" and script.is_file():
        on_path = shutil.which("compliance")
        if on_path and Path(on_path).resolve() == script.resolve():
            return "compliance"
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m compliance"
