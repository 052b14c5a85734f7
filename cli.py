"""The `compliance` command line: parse arguments, call the core, print. No business logic here.

Only click is imported at start-up; each command imports what it needs, so `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from compliance.catalog import Catalog
    from compliance.db import Database
    from compliance.settings import Settings
    from compliance.store import Store

EXIT_OK = 0
EXIT_FAILING = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

EXIT_CODES_HELP = """\b
Exit codes:
  0  all good
  1  a control failed at or above --fail-on (scan), or a check such as
     `incident verify` found a problem
  2  bad usage, configuration or control file, or the database cannot be used
  3  internal error (run again with --debug for the traceback)"""

SEVERITIES = ("low", "medium", "high", "critical")


# -- plumbing ----------------------------------------------------------------------------------------


class App:
    """What the commands share: the configuration, the database and the loaded controls."""

    def __init__(self, config: str | None, debug: bool) -> None:
        self.config_option = config
        self.debug = debug
        self._db: Database | None = None

    @cached_property
    def settings(self) -> Settings:
        from compliance.settings import load_settings

        return load_settings(self.config_option)

    def database(self) -> Database:
        from compliance.db import Database

        if self._db is None:
            self._db = Database(self.settings.database_url)
        return self._db

    def store(self) -> Store:
        from compliance.store import Store

        return Store(self.database(), self.settings.zone)

    def catalog(self, paths: Sequence[str] = ()) -> Catalog:
        from compliance.catalog import load_catalog

        chosen = [Path(p) for p in paths] if paths else self.settings.control_paths
        return load_catalog(chosen, self.settings.targets, self.settings.scan.timeout)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


class ComplianceGroup(click.Group):
    """The root group: turns our errors into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            from compliance.errors import ComplianceError, ValidationFailed

            if isinstance(exc, ValidationFailed):
                for problem in exc.problems:
                    click.echo(str(problem), err=True)
                n = len(exc.problems)
                click.echo(f"{n} problem{'s' if n != 1 else ''} found", err=True)
                sys.exit(EXIT_USAGE)
            if isinstance(exc, ComplianceError):
                error(str(exc))
            if "--debug" in sys.argv or (isinstance(ctx.obj, App) and ctx.obj.debug):
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} "
                       "(run again with --debug for the traceback)", err=True)
            sys.exit(EXIT_INTERNAL)


def error(message: str) -> NoReturn:
    """Stop with a user error (exit 2)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


pass_app = click.make_pass_decorator(App)


def format_option(*choices: str, default: str = "table") -> Callable[[Any], Any]:
    return click.option("--format", "fmt", type=click.Choice(choices), default=default, show_default=True,
                        help="Output format; json and csv are for scripts and never change shape.")


def controls_option() -> Callable[[Any], Any]:
    return click.option("--controls", "control_paths", multiple=True, type=click.Path(exists=False),
                        help="Control file or folder to load instead of the config's controls.paths "
                             "(repeatable).")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: Any) -> Any:
    from datetime import date, datetime

    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def emit_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _json_default(v) if not isinstance(v, str | int | float) else v
                         for v in row])


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output is not cut to 80 columns: a table goes to a file or a pager whole
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
               styles: dict[str, str] | None = None) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*[_cell(v, styles) for v in row])
    console().print(table)


STATUS_STYLE = {"pass": "green", "fail": "red", "error": "yellow", "skipped": "dim", "open": "red",
                "accepted": "yellow", "resolved": "green", "critical": "bold red", "high": "red"}


def _cell(value: Any, styles: dict[str, str] | None) -> Any:
    from rich.text import Text

    text = "" if value is None else str(value)
    style = (styles or STATUS_STYLE).get(text, "")
    return Text(text, style=style)


def local_time(app: App, value: Any, *, date_only: bool = False) -> str:
    if value is None:
        return ""
    local = value.astimezone(app.settings.zone)
    return local.strftime("%Y-%m-%d") if date_only else local.strftime("%Y-%m-%d %H:%M")


def who(explicit: str | None) -> str:
    """The person to record: --by, else the operating-system user."""
    if explicit:
        return explicit
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


# -- the root ----------------------------------------------------------------------------------------


@click.group(cls=ComplianceGroup, epilog=EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config", envvar="COMPLIANCE_CONFIG", type=click.Path(dir_okay=False),
              help="Config file [default: ./compliance.yaml; env: COMPLIANCE_CONFIG].")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(package_name="compliance-monitor", prog_name="compliance")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool) -> None:
    """Compliance monitor for Dutch municipalities: BIO2 controls, scans, findings and the breach register.

    \b
    Start here:
      compliance init             set up compliance.yaml, controls/ and the database in this folder
      compliance controls validate   check your control files, every mistake at once
      compliance scan             run the checks and store the results
      compliance findings         see what is open, since when, and what was resolved
      compliance demo             try everything against demo targets on this machine
    """
    app = App(config, debug)
    ctx.obj = app
    ctx.call_on_close(app.close)


def main() -> None:
    cli(prog_name="compliance")


# -- init, demo, db ---------------------------------------------------------------------------------


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite compliance.yaml and controls/example.yaml if present.")
def init(force: bool) -> None:
    """Set up a monitor in the current folder.

    Writes compliance.yaml and controls/example.yaml (existing files are kept unless --force) and
    creates or migrates the database named in the config (an SQLite file by default).
    """
    from compliance.project import init_project

    result = init_project(Path.cwd(), force=force, database_url=os.environ.get("COMPLIANCE_DATABASE_URL"))
    from compliance.errors import display_path

    for path in result.written:
        click.echo(f"wrote {display_path(path)}")
    for path in result.kept:
        click.echo(f"kept  {display_path(path)} (exists; --force overwrites)")
    click.echo(f"database {result.database} is at the current schema")
    click.echo("next: edit controls/, run `compliance controls validate`, then `compliance scan`")


@cli.command()
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

    with BannerServer() as server:
        config = prepare_demo(Path(folder), server.port)
        app = App(str(config), ctx.obj.debug)
        try:
            _run_scan(app, control_ids=(), tags=(), fmt=fmt, fail_on="none", control_paths=())
        finally:
            app.close()
    if fmt == "table":
        click.echo(f"\nThe demo lives in {folder}/. Try: cd {folder} && compliance findings")


@cli.group()
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
@pass_app
def db_status(app: App) -> None:
    """Show the database URL (without password) and its schema revision."""
    from compliance import db as database

    url = app.settings.database_url
    current = database.current_revision(url)
    click.echo(f"database: {database.safe_url(url)}")
    click.echo(f"schema:   {current or 'none'} (this version needs {database.SCHEMA_HEAD})")
    if current != database.SCHEMA_HEAD:
        sys.exit(EXIT_FAILING)


# -- controls and checks -----------------------------------------------------------------------------


@cli.group()
def controls() -> None:
    """List and validate control definitions (YAML)."""


@controls.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@controls_option()
@pass_app
def controls_validate(app: App, paths: tuple[str, ...], control_paths: tuple[str, ...]) -> None:
    """Check control files and report every mistake at once.

    PATHS are files or folders (default: the config's controls.paths). Each problem is printed as
    `path:line:col: what is wrong (how to fix)`. Exits 0 when all is valid, 2 otherwise.
    """
    from compliance.catalog import discover
    from compliance.errors import ValidationFailed

    chosen = paths + control_paths
    try:
        catalog = app.catalog(chosen)
    except ValidationFailed as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        n = len(exc.problems)
        click.echo(f"{n} problem{'s' if n != 1 else ''} found", err=True)
        sys.exit(EXIT_USAGE)
    files, _ = discover([Path(p) for p in chosen] if chosen else app.settings.control_paths)
    click.echo(f"{len(catalog)} control{'s' if len(catalog) != 1 else ''} in {len(files)} "
               f"file{'s' if len(files) != 1 else ''}: valid")


@controls.command("list")
@controls_option()
@click.option("--tag", "tags", multiple=True, help="Only controls with this tag (repeatable: any of them).")
@format_option("table", "json")
@pass_app
def controls_list(app: App, control_paths: tuple[str, ...], tags: tuple[str, ...], fmt: str) -> None:
    """List the controls with their theme, severity, checks and schedule."""
    from compliance.errors import display_path

    selected = [c for c in app.catalog(control_paths) if not tags or set(tags) & set(c.tags)]
    if fmt == "json":
        emit_json([{**c.model_dump(mode="json"), "source": display_path(c.source), "line": c.line}
                   for c in selected])
        return
    emit_table(["Id", "Title", "Theme", "Severity", "Checks", "Schedule"], [
        (c.id, c.title, c.theme, c.severity.value, ", ".join(s.plugin for s in c.checks), c.schedule or "")
        for c in selected
    ])


@cli.group()
def checks() -> None:
    """Check plugins: the built-in ones and those installed from other packages."""


@checks.command("list")
@format_option("table", "json")
def checks_list(fmt: str) -> None:
    """List the installed check plugins, where they come from and their parameters."""
    from compliance import plugins

    rows = []
    for name in plugins.names():
        try:
            cls = plugins.load(name)
        except plugins.PluginError as exc:
            rows.append({"name": name, "origin": plugins.origin(name), "summary": f"BROKEN: {exc}",
                         "parameters": [], "target_param": None})
            continue
        doc = (cls.__doc__ or "").strip().splitlines()
        rows.append({"name": name, "origin": plugins.origin(name), "summary": doc[0] if doc else "",
                     "parameters": list(cls.Params.model_fields), "target_param": cls.target_param})
    if fmt == "json":
        emit_json(rows)
        return
    emit_table(["Plugin", "Parameters", "Origin", "What it checks"],
               [(r["name"], ", ".join(r["parameters"]), r["origin"], r["summary"]) for r in rows])


# -- scan --------------------------------------------------------------------------------------------


@cli.command()
@click.option("--control", "control_ids", multiple=True, metavar="ID", help="Only this control (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only controls with this tag (repeatable: any of them).")
@format_option("table", "json")
@click.option("--fail-on", type=click.Choice([*SEVERITIES, "none"]), default="low", show_default=True,
              help="Exit 1 when a control of this severity or higher fails (accepted risks excepted); "
                   "`none` never exits 1.")
@controls_option()
@pass_app
def scan(app: App, control_ids: tuple[str, ...], tags: tuple[str, ...], fmt: str, fail_on: str,
         control_paths: tuple[str, ...]) -> None:
    """Run the checks of the controls and store results and findings.

    Shows progress on a terminal, then a table of results (or one JSON object with `scan_id` and
    `results`). Each control is stored as soon as its checks are done; a check that crashes or hangs
    becomes an `error` result and the scan goes on.
    """
    _run_scan(app, control_ids=control_ids, tags=tags, fmt=fmt, fail_on=fail_on, control_paths=control_paths)


def _run_scan(app: App, *, control_ids: Sequence[str], tags: Sequence[str], fmt: str, fail_on: str,
              control_paths: Sequence[str]) -> None:
    from compliance.engine import run_scan
    from compliance.errors import did_you_mean

    catalog = app.catalog(control_paths)
    for cid in control_ids:
        if catalog.get(cid) is None:
            hint = did_you_mean(cid, catalog.ids())
            error(f"no control with id '{cid}'" + (f"; {hint}" if hint else "") +
                  " (see `compliance controls list`)")
    selected = [c for c in catalog if (not control_ids or c.id in control_ids)
                and (not tags or set(tags) & set(c.tags))]
    if not selected:
        error("no controls selected: check --control/--tag, or add controls to " +
              ", ".join(str(p) for p in (control_paths or app.settings.controls.paths)))
    store = app.store()
    if not control_paths:  # the full configured catalog: controls gone from it become inactive
        store.sync_controls(catalog, deactivate_missing=True)
    with _progress(enabled=sys.stderr.isatty()) as progress:
        report = run_scan(selected, app.settings, store, progress=progress)
    by_id = {c.id: c for c in selected}
    outcomes = sorted(report.outcomes, key=lambda o: list(by_id).index(o.control_id))
    if fmt == "json":
        emit_json({
            "scan_id": report.scan_id, "status": report.status,
            "started_at": report.started_at, "finished_at": report.finished_at,
            "summary": _summary(outcomes),
            "controls": [{"control": o.control_id, "title": by_id[o.control_id].title, "severity": o.severity,
                          "status": o.status.value, "accepted": o.accepted} for o in outcomes],
            "results": [
                {"control": o.control_id, "plugin": plugin, "check_index": index, "target": r.target,
                 "status": r.status.value, "message": r.message, "severity": o.severity,
                 "accepted": any(t.accepted and t.target in (r.target, "*") for t in o.targets),
                 "evidence": r.evidence}
                for o in outcomes for plugin, index, r in o.results
            ],
        })
    else:
        rows = []
        for o in outcomes:
            for t in sorted(o.targets, key=lambda t: t.target):
                status = "accepted" if t.accepted else t.status.value
                rows.append((o.control_id, o.severity, status, t.target, t.message))
            if not o.targets:
                rows.append((o.control_id, o.severity, o.status.value, "", "no targets to check"))
        emit_table(["Control", "Severity", "Status", "Target", "Message"], rows)
        s = _summary(outcomes)
        duration = (report.finished_at - report.started_at).total_seconds() if report.finished_at else 0
        click.echo(f"scan {report.scan_id}: {s['controls']} controls, {s['pass']} passed, {s['fail']} failed"
                   f" ({s['accepted']} accepted), {s['error']} could not be checked, {s['skipped']} skipped"
                   f" in {duration:.1f} s")
    if fail_on != "none":
        threshold = SEVERITIES.index(fail_on)
        if any(o.status.value == "fail" and not o.accepted and SEVERITIES.index(o.severity) >= threshold
               for o in outcomes):
            sys.exit(EXIT_FAILING)


def _summary(outcomes: Sequence[Any]) -> dict[str, int]:
    counts = {"controls": len(outcomes), "pass": 0, "fail": 0, "error": 0, "skipped": 0, "accepted": 0}
    for o in outcomes:
        counts[o.status.value] += 1
        counts["accepted"] += int(o.accepted)
    return counts


class _progress:
    """A progress bar on stderr while checks run, when stderr is a terminal; else nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int, int, str], None] | None:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TextColumn("{task.description}"), console=console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("", total=None)

        def update(done: int, total: int, control_id: str) -> None:
            self._bar.update(self._task, completed=done, total=total, description=control_id)

        return update

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- findings and exceptions -------------------------------------------------------------------------


@cli.command()
@click.option("--status", "state", type=click.Choice(["open", "accepted", "resolved", "all"]), default="open",
              show_default=True, help="open: failing and not accepted; accepted: covered by an exception.")
@format_option("table", "json", "csv")
@pass_app
def findings(app: App, state: str, fmt: str) -> None:
    """Show findings: what fails, since when, what is accepted, what was resolved.

    A finding is one control on one target, from its first failure on. Times are shown in the
    configured time zone; JSON and CSV give them in ISO 8601 with offset.
    """
    views = app.store().findings(state)
    if fmt == "json":
        emit_json([_finding_json(v) for v in views])
    elif fmt == "csv":
        header = list(_finding_json(views[0]).keys()) if views else list(_FINDING_FIELDS)
        emit_csv(header, [list(_finding_json(v).values()) for v in views])
    else:
        emit_table(["Control", "Severity", "Target", "State", "Since", "Last failed", "Resolved", "Message"], [
            (v.control_id, v.severity, v.target,
             v.state + (f" until {v.exception_until}" if v.exception_until else ""),
             local_time(app, v.first_seen, date_only=True), local_time(app, v.last_seen),
             local_time(app, v.resolved_at), v.message)
            for v in views
        ])
        if not views:
            click.echo(f"no {state if state != 'all' else ''} findings".replace("  ", " "))


_FINDING_FIELDS = ("id", "control", "title", "severity", "target", "state", "last_status", "message",
                   "first_seen", "last_seen", "resolved_at", "exception", "exception_until")


def _finding_json(v: Any) -> dict[str, Any]:
    return dict(zip(_FINDING_FIELDS, (
        v.id, v.control_id, v.title, v.severity, v.target, v.state, v.last_status, v.message, v.first_seen,
        v.last_seen, v.resolved_at, v.exception_id, v.exception_until), strict=True))


@cli.group()
def exceptions() -> None:
    """Accepted risks: a failing control accepted until a date, with reason and approver."""


@exceptions.command("add")
@click.argument("control")
@click.option("--reason", required=True, help="Why the risk is accepted for now.")
@click.option("--approved-by", required=True, help="Who accepted the risk (name and role).")
@click.option("--until", required=True, type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Last day the risk is accepted; from the day after, the finding counts as failing again.")
@click.option("--target", "target_pattern", default="*", show_default=True,
              help="Only targets matching this pattern (shell-style, e.g. 'https://*.gemeente.nl').")
@click.option("--by", "by", help="Who records this [default: the operating-system user].")
@format_option("text", "json", default="text")
@controls_option()
@pass_app
def exceptions_add(app: App, control: str, reason: str, approved_by: str, until: Any, target_pattern: str,
                   by: str | None, fmt: str, control_paths: tuple[str, ...]) -> None:
    """Accept the risk of a failing CONTROL until a date."""
    from compliance.errors import did_you_mean

    catalog = app.catalog(control_paths)
    if catalog.get(control) is None:
        hint = did_you_mean(control, catalog.ids())
        error(f"no control with id '{control}'" + (f"; {hint}" if hint else "") + " (see `compliance controls list`)")
    view = app.store().add_exception(control, reason=reason, approved_by=approved_by, until=until.date(),
                                     created_by=who(by), target_pattern=target_pattern)
    if fmt == "json":
        emit_json(_exception_json(view, app))
    else:
        click.echo(f"exception {view.id}: {control} ({target_pattern}) accepted until {view.until} "
                   f"by {view.approved_by}")


@exceptions.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also expired and revoked exceptions.")
@format_option("table", "json", "csv")
@pass_app
def exceptions_list(app: App, show_all: bool, fmt: str) -> None:
    """List exceptions in force (or all of them with --all)."""
    store = app.store()
    views = store.exceptions(include_inactive=show_all)
    data = [_exception_json(v, app) for v in views]
    if fmt == "json":
        emit_json(data)
    elif fmt == "csv":
        emit_csv(list(data[0]) if data else ["id"], [list(d.values()) for d in data])
    else:
        emit_table(["Id", "Control", "Target", "Until", "State", "Approved by", "Reason"],
                   [(d["id"], d["control"], d["target"], d["until"], d["state"], d["approved_by"], d["reason"])
                    for d in data])


def _exception_json(v: Any, app: App) -> dict[str, Any]:
    today = app.store().today()
    state = v.state if v.state == "revoked" else ("active" if v.in_force(today) else "expired")
    return {"id": v.id, "control": v.control_id, "target": v.target_pattern, "until": v.until, "state": state,
            "reason": v.reason, "approved_by": v.approved_by, "created_at": v.created_at,
            "created_by": v.created_by, "revoked_at": v.revoked_at, "revoked_by": v.revoked_by,
            "revoke_reason": v.revoke_reason}


@exceptions.command("revoke")
@click.argument("exception_id", type=int)
@click.option("--reason", default="", help="Why the exception ends early.")
@click.option("--by", "by", help="Who revokes it [default: the operating-system user].")
@pass_app
def exceptions_revoke(app: App, exception_id: int, reason: str, by: str | None) -> None:
    """End an exception now: its findings count as failing again."""
    view = app.store().revoke_exception(exception_id, by=who(by), reason=reason)
    click.echo(f"exception {view.id} for {view.control_id} revoked")


if __name__ == "__main__":
    main()
