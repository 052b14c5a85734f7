"""The `compliance` command line: parse arguments, call the core, print. No business logic here.

Only click is imported at start-up; each command imports what it needs, so `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import shlex
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
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `cmd | head`

EXIT_CODES_HELP = """\b
Exit codes:
  0  all good
  1  a control failed at or above --fail-on (scan), or a check such as
     `incident verify` found a problem
  2  bad usage, configuration or control file, or the database cannot be used
  3  internal error (run again with --debug for the traceback)
  141  the reader of the output went away (`| head`); nothing is printed"""

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

        return load_settings(self.config_option, require=True)

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
        return load_catalog(chosen, self.settings.targets, bundled=self.settings.controls.bundled)

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
        except BrokenPipeError:
            reader_gone()
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


def reader_gone() -> NoReturn:
    """Stop quietly because whoever read our output closed it (`compliance findings | head -1`).

    Standard output now points at /dev/null, so that what is still buffered is not reported as another
    broken pipe when the interpreter exits; the exit code is a shell's for a process killed by SIGPIPE.
    """
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(EXIT_BROKEN_PIPE)


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
              help="Config file [default: compliance.yaml in this folder or the nearest one above; "
                   "env: COMPLIANCE_CONFIG].")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              envvar="COMPLIANCE_LOG_LEVEL", show_default=True,
              help="Log messages from this level up (--debug: debug) [env: COMPLIANCE_LOG_LEVEL].")
@click.option("--log-format", type=click.Choice(["auto", "text", "json"]), default="auto",
              envvar="COMPLIANCE_LOG_FORMAT", show_default=True,
              help="Log lines on stderr: text with a timestamp, or without one when stderr is not a terminal "
                   "(auto: journald adds its own), or one JSON object per line [env: COMPLIANCE_LOG_FORMAT].")
@click.version_option(package_name="compliance-monitor", prog_name="compliance")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool, log_level: str, log_format: str) -> None:
    """Compliance monitor for Dutch municipalities: BIO2 controls, scans, findings and the breach register.

    \b
    Start here:
      compliance init             set up compliance.yaml, controls/ and the database in this folder
      compliance controls validate   check your control files, every mistake at once
      compliance scan             run the checks and store the results
      compliance findings         see what is open, since when, and what was resolved
      compliance demo             try everything against demo targets on this machine
    """
    from compliance.logs import configure_logging, reset_logging

    configure_logging("debug" if debug else log_level, log_format)
    ctx.call_on_close(reset_logging)
    app = App(config, debug)
    ctx.obj = app
    ctx.call_on_close(app.close)


def main() -> None:
    try:
        try:
            cli(prog_name="compliance")
        finally:
            sys.stdout.flush()  # now, where a closed pipe can still be handled, not at the interpreter's exit
    except BrokenPipeError:
        reader_gone()


# -- init, demo, db ---------------------------------------------------------------------------------


@cli.command(short_help="Set up a monitor in the current folder.")
@click.option("--force", is_flag=True, help="Overwrite compliance.yaml and controls/example.yaml if present.")
@click.option("--catalog/--no-catalog", default=True, show_default=True,
              help="Take the shipped BIO2, AVG and Forum Standaardisatie controls (controls.bundled).")
def init(force: bool, catalog: bool) -> None:
    """Set up a monitor in the current folder.

    Writes compliance.yaml and controls/example.yaml (existing files are kept unless --force) and
    creates or migrates the database named in the config (an SQLite file by default). The config takes
    the shipped control catalog unless --no-catalog; `compliance controls coverage` shows what it covers.
    """
    from compliance.project import init_project

    result = init_project(Path.cwd(), force=force, database_url=os.environ.get("COMPLIANCE_DATABASE_URL"),
                          catalog=catalog)
    from compliance.errors import display_path

    for path in result.written:
        click.echo(f"wrote {display_path(path)}")
    for path in result.kept:
        click.echo(f"kept  {display_path(path)} (exists; --force overwrites)")
    click.echo(f"database {result.database} is at the current schema")
    program = this_program()
    click.echo(f"next: edit controls/, run `{program} controls validate`, then `{program} scan`")


@cli.command(short_help="Try everything against demo targets on this machine.")
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


@cli.group(short_help="Create and migrate the database schema.")
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


# -- controls and checks -----------------------------------------------------------------------------


@cli.group(short_help="List and validate control definitions (YAML).")
def controls() -> None:
    """List and validate control definitions (YAML)."""


@controls.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@controls_option()
@format_option("text", "json", default="text")
@pass_app
def controls_validate(app: App, paths: tuple[str, ...], control_paths: tuple[str, ...], fmt: str) -> None:
    """Check control files and report every mistake at once.

    PATHS are files or folders (default: the config's controls.paths). Each problem is printed as
    `path:line:col: what is wrong (how to fix)`; with --format json as one object with `valid`,
    `controls` and `problems` (path, line, col, message, hint), e.g. for a CI job or an editor.
    Exits 0 when all is valid, 2 otherwise.
    """
    from compliance.catalog import discover
    from compliance.errors import ValidationFailed, display_path

    chosen = paths + control_paths
    try:
        catalog = app.catalog(chosen)
    except ValidationFailed as exc:
        if fmt == "json":
            emit_json({"valid": False, "controls": None, "problems": [
                {"path": display_path(p.path), "line": p.line, "col": p.col, "message": p.message, "hint": p.hint}
                for p in exc.problems]})
            sys.exit(EXIT_USAGE)
        raise  # printed by the root group: one line per problem and a count
    if fmt == "json":
        emit_json({"valid": True, "controls": len(catalog), "problems": []})
        return
    files, _ = discover([Path(p) for p in chosen] if chosen else app.settings.control_paths)
    shipped = sum(c.bundled for c in catalog)
    own = len(catalog) - shipped
    where = f"{own} control{'s' if own != 1 else ''} in {len(files)} file{'s' if len(files) != 1 else ''}"
    click.echo((f"{where} and {shipped} from the shipped catalog" if shipped else where) + ": valid")


FRAMEWORK_CHOICE = click.Choice(["bio2", "avg", "forum-standaardisatie"])


@controls.command("list")
@controls_option()
@click.option("--tag", "tags", multiple=True, help="Only controls with this tag (repeatable: any of them).")
@click.option("--framework", type=FRAMEWORK_CHOICE, help="Only controls that refer to this framework.")
@format_option("table", "json")
@pass_app
def controls_list(app: App, control_paths: tuple[str, ...], tags: tuple[str, ...], framework: str | None,
                  fmt: str) -> None:
    """List the controls with their theme, severity, checks and schedule.

    Bundled controls (from the catalog shipped with the product, see controls.bundled in
    compliance.yaml) are listed with your own; `--framework` keeps those of one framework.
    """
    from compliance.errors import display_path
    from compliance.soa import control_kind

    selected = [c for c in app.catalog(control_paths) if (not tags or set(tags) & set(c.tags))
                and (framework is None or framework in c.frameworks)]
    if fmt == "json":
        emit_json([{**c.model_dump(mode="json"), "source": "bundled" if c.bundled else display_path(c.source),
                    "line": c.line, "frameworks": c.frameworks, "kind": control_kind(c),
                    "overridden_in": display_path(c.override_source) if c.override_source else None}
                   for c in selected])
        return
    emit_table(["Id", "Title", "Theme", "Severity", "Kind", "Checks", "Source"], [
        (c.id, c.title + ("" if c.enabled else " (disabled)"), c.theme, c.severity.value, control_kind(c),
         ", ".join(s.plugin for s in c.checks),
         ("bundled" if c.bundled else display_path(c.source)) + (" + override" if c.override_source else ""))
        for c in selected
    ])


@controls.command("coverage")
@click.option("--framework", type=FRAMEWORK_CHOICE, default="bio2", show_default=True)
@controls_option()
@format_option("table", "json")
@pass_app
def controls_coverage(app: App, framework: str, control_paths: tuple[str, ...], fmt: str) -> None:
    """How much of a framework the controls cover: automated, by evidence, or not at all.

    Per theme (BIO2: the ISO/IEC 27002:2022 controls of clauses 5-8; AVG: the articles followed up;
    Forum Standaardisatie: the internet standards), counted over the enabled controls.
    """
    from compliance import soa

    catalog = app.catalog(control_paths)
    found = soa.decisions(app.database())
    groups = soa.coverage(catalog, framework, found)
    totals = {k: sum(g.as_dict()[k] for g in groups)
              for k in ("requirements", "automated", "evidence", "missing", "not_applicable")}
    if fmt == "json":
        emit_json({"framework": framework, "groups": [g.as_dict() for g in groups], "totals": totals})
        return
    rows: list[Sequence[Any]] = [(g.group, g.requirements, len(g.automated), len(g.evidence), len(g.missing),
                                  len(g.not_applicable)) for g in groups]
    rows.append(("total", *totals.values()))
    emit_table(["Theme", "Requirements", "Automated", "Evidence", "Missing", "Not applicable"], rows,
               title=f"Coverage of {framework}")


@controls.command("applicability")
@click.argument("subject", required=False)
@click.option("--not-applicable", "not_applicable", is_flag=True, help="Record that SUBJECT does not apply.")
@click.option("--applicable", is_flag=True, help="Record that SUBJECT applies (again).")
@click.option("--reason", default="", help="Why; required with --not-applicable.")
@click.option("--by", "by", help="Who decides [default: the operating-system user].")
@controls_option()
@format_option("table", "json")
@pass_app
def controls_applicability(app: App, subject: str | None, not_applicable: bool, applicable: bool, reason: str,
                           by: str | None, control_paths: tuple[str, ...], fmt: str) -> None:
    """Record or show which controls apply, for the statement of applicability (VvT).

    SUBJECT is an ISO/IEC 27002:2022 control (7.4), a BIO2 measure (7.04.01) or a control id. Controls
    that do not apply drop out of the compliance score. Without SUBJECT, list the decisions.

    \b
    compliance controls applicability 7.4 --not-applicable --reason "no own data centre; hosted at the SSC"
    """
    from compliance import soa

    if subject is None:
        if not_applicable or applicable:
            error("name the SUBJECT to decide on, e.g. `compliance controls applicability 7.4 --not-applicable`")
        found = soa.decisions(app.database())
        data = [{"subject": d.subject, "applicable": d.applies, "reason": d.reason, "decided_by": d.decided_by,
                 "decided_at": d.decided_at} for d in found.values()]
        if fmt == "json":
            emit_json(data)
        else:
            emit_table(["Subject", "Applicable", "Reason", "Decided by", "At"], [
                (d["subject"], "yes" if d["applicable"] else "no", d["reason"], d["decided_by"],
                 local_time(app, d["decided_at"])) for d in data])
        return
    if not_applicable == applicable:
        error("say --not-applicable (with --reason) or --applicable")
    canonical = soa.normalize_subject(subject, app.catalog(control_paths).ids())
    decision = soa.decide(app.database(), canonical, applies=applicable, reason=reason, by=who(by))
    if fmt == "json":
        emit_json({"subject": decision.subject, "applicable": decision.applies, "reason": decision.reason,
                   "decided_by": decision.decided_by, "decided_at": decision.decided_at})
    else:
        click.echo(f"{decision.subject}: {'applies' if decision.applies else 'does not apply'}"
                   + (f" ({decision.reason})" if decision.reason else ""))


@controls.command("soa")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "csv", "json"]), default="md",
              show_default=True)
@click.option("--lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file.")
@controls_option()
@pass_app
def controls_soa(app: App, fmt: str, lang: str, output: str | None, control_paths: tuple[str, ...]) -> None:
    """The statement of applicability (Verklaring van Toepasselijkheid, VvT).

    Every ISO/IEC 27002:2022 control with its BIO2 measures: applicable or not and why, how it is
    covered (automated check, evidence, none), the controls that cover it and their current status.
    """
    from compliance import soa
    from compliance.report.soa import render_soa

    rows = soa.statement(app.catalog(control_paths), app.database(), lang)
    text = render_soa(rows, fmt, lang, zone=app.settings.zone)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@cli.group(short_help="List and show the installed check plugins.")
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


@checks.command("show")
@click.argument("name")
@format_option("text", "json", default="text")
def checks_show(name: str, fmt: str) -> None:
    """Show one plugin's documentation: the secure state, the guideline each verdict follows, its
    parameters with their defaults, and an example control."""
    import inspect
    from datetime import timedelta

    from compliance import plugins
    from compliance.api import format_duration

    cls = plugins.load(name)
    module = inspect.getmodule(cls)
    doc = inspect.cleandoc((module.__doc__ if module is not None else None) or cls.__doc__ or "")
    parameters = []
    for field, info in cls.Params.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(default, timedelta):
            default = format_duration(default).replace(" ", "")  # as written in YAML: 3d, 1h30m
        elif not isinstance(default, str | int | float | bool | list | None):
            default = _json_default(default)
        parameters.append({"name": field, "required": info.is_required(), "default": default,
                           "description": " ".join((info.description or "").split())})
    if fmt == "json":
        emit_json({"name": name, "origin": plugins.origin(name), "target_param": cls.target_param,
                   "facts": list(cls.facts), "parameters": parameters, "doc": doc})
        return
    click.echo(f"{name} ({plugins.origin(name)})\n")
    click.echo(doc + "\n")
    click.echo("Parameters" + (f" (a plain string in `targets:` fills `{cls.target_param}`)" if cls.target_param
                               else "") + ":")
    for p in parameters:
        click.echo(f"  {p['name']}: " + ("required" if p["required"] else f"default {p['default']!r}")
                   + (f" — {p['description']}" if p["description"] else ""))


# -- evidence (attestations) -------------------------------------------------------------------------


class _AttestGroup(click.Group):
    """`compliance attest CONTROL ...` is short for `compliance attest add CONTROL ...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["add", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_AttestGroup, short_help="Record evidence for controls and see what expires.")
def attest() -> None:
    """Record evidence for controls that people show, and see what expires.

    \b
    compliance attest POLICY-01 --by "J. de Vries, CISO" --evidence policy-2026.pdf --valid-until 2027-12-31
    compliance attest list --expiring-within 30d
    """


@attest.command("add")
@click.argument("control")
@click.option("--by", "attested_by", required=True, help="Who vouches for the evidence (name and role).")
@click.option("--evidence", required=True, metavar="PATH_OR_URL",
              help="The document (its SHA-256 is stored) or a URL.")
@click.option("--valid-until", required=True, type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Last day the evidence counts; after it the control fails until renewed.")
@click.option("--note", help="A remark for the auditor.")
@click.option("--copy", "copy", is_flag=True, help="Also copy the file into the evidence store (evidence.store).")
@format_option("text", "json", default="text")
@controls_option()
@pass_app
def attest_add(app: App, control: str, attested_by: str, evidence: str, valid_until: Any, note: str | None,
               copy: bool, fmt: str, control_paths: tuple[str, ...]) -> None:
    """Record evidence that CONTROL is met, valid until a date."""
    from compliance import evidence as evidence_store
    from compliance.errors import did_you_mean

    catalog = app.catalog(control_paths)
    found = catalog.get(control)
    if found is None:
        hint = did_you_mean(control, catalog.ids())
        error(f"no control with id '{control}'" + (f"; {hint}" if hint else "") + " (see `compliance controls list`)")
    store = app.store()
    view = evidence_store.record(
        app.database(), control, by=attested_by, evidence=evidence, valid_until=valid_until.date(),
        recorded_by=who(None), note=note, today=store.today(),
        copy_to=app.settings.resolve(app.settings.evidence.store) if copy else None)
    if fmt == "json":
        emit_json(_attestation_json(view, store.today()))
        return
    click.echo(f"attestation {view.id}: {control} valid until {view.valid_until} ({view.attested_by})"
               + (f", sha256 {view.sha256[:12]}…" if view.sha256 else ""))
    if not any(spec.plugin == "evidence" for spec in found.checks):
        click.echo(f"note: {control} has no `evidence` check, so this attestation does not change its status",
                   err=True)


@attest.command("list")
@click.option("--expiring-within", default="30d", show_default=True, metavar="DURATION",
              help="Mark evidence that expires within this time (e.g. 30d, 8w).")
@click.option("--all", "show_all", is_flag=True, help="Every attestation ever recorded, not only the newest.")
@format_option("table", "json", "csv")
@pass_app
def attest_list(app: App, expiring_within: str, show_all: bool, fmt: str) -> None:
    """Show the evidence per control, what expires soon first."""
    from compliance import evidence as evidence_store
    from compliance.api import parse_duration

    try:
        window = parse_duration(expiring_within).days
    except ValueError as exc:
        error(f"--expiring-within: {exc}")
    db = app.database()
    views = evidence_store.history(db) if show_all else list(evidence_store.latest(db).values())
    today = app.store().today()
    data = sorted((_attestation_json(v, today, window) for v in views), key=lambda d: (d["valid_until"], d["id"]))
    if fmt == "json":
        emit_json(data)
    elif fmt == "csv":
        emit_csv(list(data[0]) if data else ["id"], [list(d.values()) for d in data])
    else:
        emit_table(["Control", "Valid until", "Days left", "State", "By", "Evidence"], [
            (d["control"], d["valid_until"], d["days_left"], d["state"], d["by"], d["evidence"]) for d in data],
            styles={"expired": "red", "expiring": "yellow", "valid": "green"})


def _attestation_json(view: Any, today: Any, window: int = 30) -> dict[str, Any]:
    days = view.days_left(today)
    state = "expired" if days < 0 else "expiring" if days <= window else "valid"
    return {"id": view.id, "control": view.control_id, "by": view.attested_by, "evidence": view.evidence,
            "sha256": view.sha256, "copy": view.copy_path, "valid_until": view.valid_until, "days_left": days,
            "state": state, "note": view.note, "recorded_at": view.recorded_at, "recorded_by": view.recorded_by}


# -- scan --------------------------------------------------------------------------------------------


@cli.command(short_help="Run the checks and store results and findings.")
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
                groups = sorted({s.targets for s in by_id[o.control_id].checks if isinstance(s.targets, str)})
                rows.append((o.control_id, o.severity, o.status.value, "", "no targets: fill in " + ", ".join(
                    f"targets.{g}" for g in groups) + " in compliance.yaml" if groups else "no targets to check"))
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


@cli.command(short_help="Show what fails, since when, and what was resolved.")
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


@cli.group(short_help="Accept the risk of a failing control until a date.")
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


# -- breach register (incidents) ---------------------------------------------------------------------
# Parsing and printing only; the rules live in the `incidents` package. The level names are the
# command-line contract of issue 3; tests/incidents check they match the package's tables.

_NATURES = ("confidentiality", "integrity", "availability")
_EI_LEVELS = ("negligible", "limited", "significant", "maximum")
_CONFIDENTIALITY = ("none", "exposed", "known-recipients", "unknown-recipients")
_INTEGRITY = ("none", "altered", "recoverable", "unrecoverable")
_AVAILABILITY = ("none", "recoverable", "temporary", "full")
_EXCEPTIONS = ("unintelligible", "risk-removed", "disproportionate-effort")
_INCIDENT_STATUSES = ("open", "assessed", "notified", "closed")
_YES_NO = click.Choice(["yes", "no"])


@cli.group(short_help="The personal-data breach register (GDPR articles 33, 34).")
def incident() -> None:
    """The register of personal-data breaches (GDPR art. 33/34): 72-hour clock, ENISA severity, audit trail.

    \b
    compliance incident new            register a breach (asks for what is missing on a terminal)
    compliance incident assess ID      ENISA severity and a recommendation on notifying
    compliance incident decide ID      record the decision on notifying, with its reason
    compliance incident notify ID      record a notification to the AP or the people concerned
    compliance incident close ID       close it once everything decided is done
    compliance incident list           open incidents first, with the time left
    compliance incident export ID      the answers for the AP notification form (--format ap)
    compliance incident verify         check that nobody altered the register outside the tool

    The register holds no personal data of the people concerned: counts and categories only.
    Times without an offset are local time (the config's timezone, Europe/Amsterdam by default).
    """


def _register(app: App) -> Any:
    from compliance.incidents import Register

    return Register(app.database(), zone=app.settings.zone, id_prefix=app.settings.incidents.id_prefix)


def _by_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--by", "by", help="Who does this [default: the operating-system user].")(f)


def _force_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--force-reason", metavar="TEXT",
                     help="Why text that looks like personal data may stay; recorded in the audit trail.")(f)
    return click.option("--force", is_flag=True,
                        help="Store free text even though it looks like personal data (BSN, e-mail address, "
                             "IBAN); needs --force-reason.")(f)


def _forced(force: bool, force_reason: str | None) -> str | None:
    if force_reason is not None and not force:
        error("--force-reason goes with --force")
    return (force_reason or "") if force else None


def _time(app: App, value: str | None, option: str) -> Any:
    from compliance.incidents.model import parse_time

    return None if value is None else parse_time(value, app.settings.zone, option)


def _incident_out(app: App, fmt: str, found: Any, message: str) -> None:
    from compliance.incidents.export import as_json

    if fmt == "json":
        emit_json(as_json(found, app.settings.zone))
    else:
        click.echo(message)


def _when(app: App, moment: Any) -> str:
    return f"{moment.astimezone(app.settings.zone).strftime('%a %Y-%m-%d %H:%M')} ({app.settings.timezone})"


def _fact_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the facts of a breach, shared by `new` and `update`."""
    options = [
        click.option("--title", help="What happened, in a line (no personal data)."),
        click.option("--aware-at", metavar="ISO8601",
                     help="When the municipality became aware: the 72-hour clock starts here."),
        click.option("--occurred-at", metavar="ISO8601", help="When the breach started."),
        click.option("--discovered-at", metavar="ISO8601", help="When it was discovered [default: --aware-at]."),
        click.option("--ended-at", metavar="ISO8601", help="When it ended, if it has."),
        click.option("--nature", "natures", multiple=True, metavar="NATURE",
                     help=f"{', '.join(_NATURES)} (repeatable)."),
        click.option("--data-category", "data_categories", multiple=True, metavar="CATEGORY",
                     help="contact, identity, bsn, id-document, credentials, behavioural, financial, social-welfare, "
                          "health, special, criminal, other (repeatable)."),
        click.option("--subjects", type=int, help="Approximate number of people concerned."),
        click.option("--subjects-max", type=int, help="Upper bound of the number of people, if it is a range."),
        click.option("--records", type=int, help="Approximate number of personal-data records."),
        click.option("--people", "people", multiple=True, metavar="GROUP",
                     help="residents, employees, children, vulnerable, business-contacts, other (repeatable)."),
        click.option("--description", help="The facts: what happened and how (no personal data)."),
        click.option("--how-discovered", help="How and by whom (a role, not a name) it was discovered."),
        click.option("--cause", help="The cause, e.g. a wrong address in the mailing, a phishing e-mail."),
        click.option("--processor", help="The processor (verwerker) involved, if any: an organisation."),
        click.option("--consequences", help="Likely consequences for the people concerned."),
        click.option("--measures-taken", help="Measures taken to address the breach and limit its effects."),
        click.option("--measures-planned", help="Measures planned."),
        click.option("--protection", help="How the data were protected before the breach (e.g. encryption)."),
        click.option("--cross-border/--no-cross-border", "cross_border", default=None,
                     help="Whether the processing is cross-border (other EU countries)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _facts(app: App, given: dict[str, Any]) -> dict[str, Any]:
    """The facts given on the command line, times parsed, lists only when given."""
    facts: dict[str, Any] = {}
    for name in ("aware_at", "occurred_at", "discovered_at", "ended_at"):
        if given.get(name) is not None:
            facts[name] = _time(app, given[name], "--" + name.replace("_", "-"))
    for name, key in (("natures", "nature"), ("data_categories", "data_categories"), ("people", "people")):
        if given.get(name):
            facts[key] = _split(given[name])
    for name in ("title", "description", "how_discovered", "cause", "processor", "consequences", "measures_taken",
                 "measures_planned", "protection", "subjects", "subjects_max", "records", "cross_border"):
        if given.get(name) is not None:
            facts[name] = given[name]
    return facts


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


_PROMPTS = {
    "title": "Title (what happened, no personal data)",
    "aware_at": "Became aware at (YYYY-MM-DD HH:MM local time, or 'now'); the 72-hour clock starts here",
    "occurred_at": "Breach started at (YYYY-MM-DD HH:MM)",
    "natures": f"Nature ({', '.join(_NATURES)}; several separated by commas)",
    "data_categories": "Data categories (contact, identity, bsn, id-document, credentials, behavioural, financial, "
                       "social-welfare, health, special, criminal, other; separated by commas)",
    "subjects": "Approximate number of people concerned",
    "description": "Description: the facts, what happened and how (no personal data)",
}


def _ask_missing(app: App, given: dict[str, Any]) -> None:
    """Fill in the required facts that are missing: by asking on a terminal, else exit 2 with the list."""
    from compliance.incidents.register import REQUIRED

    keys = [{"nature": "natures"}.get(name, name) for name in REQUIRED]
    missing = [k for k in keys if given.get(k) in (None, ())]
    if not missing:
        return
    if not sys.stdin.isatty():
        names = ", ".join("--" + {"natures": "nature", "data_categories": "data-category"}.get(k, k.replace("_", "-"))
                          for k in missing)
        error(f"missing required fields: {names} (give them as options; on a terminal "
              "`compliance incident new` asks for them)")

    def checked(key: str) -> Callable[[str], Any]:
        def convert(text: str) -> Any:
            from compliance.errors import ComplianceError

            try:
                if key in ("aware_at", "occurred_at"):
                    _time(app, text, "--" + key.replace("_", "-"))
                return text
            except ComplianceError as exc:
                raise click.UsageError(str(exc)) from None
        return convert

    for key in missing:
        if key == "subjects":
            given[key] = click.prompt(_PROMPTS[key], type=int)
        elif key in ("natures", "data_categories"):
            given[key] = (click.prompt(_PROMPTS[key]),)
        else:
            given[key] = click.prompt(_PROMPTS[key], default="now" if key == "aware_at" else None,
                                      value_proc=checked(key))


@incident.command("new")
@_fact_options
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_new(app: App, by: str | None, force: bool, force_reason: str | None, fmt: str, **given: Any) -> None:
    """Register a personal-data breach; print its id and the 72-hour deadline.

    Required: --title, --aware-at, --occurred-at, --nature, --data-category, --subjects, --description.
    On a terminal you are asked for what is missing; in a script a missing field is an error (exit 2).
    Times are ISO 8601 (2026-11-27T16:40, local time unless an offset such as +01:00 or Z is given).

    \b
    compliance incident new --title "Benefit decision sent to a wrong address" \\
      --aware-at "2026-11-27 16:40" --occurred-at "2026-11-26 09:00" --nature confidentiality \\
      --data-category social-welfare --data-category contact --subjects 1 --people residents \\
      --description "A letter with a benefit decision was sent to the wrong address."
    """
    from compliance.incidents import Draft

    _ask_missing(app, given)
    facts = _facts(app, given)
    found = _register(app).register(Draft(**facts), by=who(by), force_reason=_forced(force, force_reason))
    clock = found.clock()
    _incident_out(app, fmt, found, "\n".join([
        f"registered {found.id}: {found.title}",
        f"became aware  {_when(app, found.aware_at)}",
        f"deadline      {_when(app, found.deadline)}, 72 hours after becoming aware: {clock.describe()}",
        f"next: compliance incident assess {found.id} --ei ... --confidentiality ... --integrity ... "
        "--availability ...",
    ]))


@incident.command("update")
@click.argument("incident_id", metavar="ID")
@_fact_options
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_update(app: App, incident_id: str, by: str | None, force: bool, force_reason: str | None, fmt: str,
                    **given: Any) -> None:
    """Change facts of an incident that is not closed; each change is recorded in the audit trail.

    A repeatable option (--nature, --data-category, --people) replaces the whole list.
    """
    facts = _facts(app, given)
    if not facts:
        error("nothing to change: give at least one option, e.g. --measures-taken TEXT (see --help)")
    found = _register(app).update(incident_id, facts, by=who(by), force_reason=_forced(force, force_reason))
    _incident_out(app, fmt, found, f"{found.id}: changed {', '.join(sorted(facts))}")


@incident.command("assess")
@click.argument("incident_id", metavar="ID")
@click.option("--dpc", type=click.IntRange(1, 4),
              help="Data processing context 1-4 [default: the highest basic score of the data categories].")
@click.option("--dpc-reason", default="", help="Why the DPC differs from the basic score (required then).")
@click.option("--ei", required=True, type=click.Choice(_EI_LEVELS),
              help="Ease of identification: 0.25, 0.5, 0.75, 1.")
@click.option("--confidentiality", required=True, type=click.Choice(_CONFIDENTIALITY),
              help="Loss of confidentiality: 0, 0, 0.25, 0.5.")
@click.option("--integrity", required=True, type=click.Choice(_INTEGRITY), help="Loss of integrity: 0, 0, 0.25, 0.5.")
@click.option("--availability", required=True, type=click.Choice(_AVAILABILITY),
              help="Loss of availability: 0, 0, 0.25, 0.5.")
@click.option("--malicious", is_flag=True, help="Intentional: theft, hacking, selling data (+0.5).")
@click.option("--unintelligible", is_flag=True,
              help="The data were unintelligible to others: state-of-the-art encryption or hashing, key safe "
                   "(art. 34(3)(a)).")
@click.option("--risk-removed", is_flag=True,
              help="Measures taken since make the high risk no longer likely (art. 34(3)(b)).")
@click.option("--disproportionate-effort", is_flag=True,
              help="Informing each person would take disproportionate effort: public communication "
                   "(art. 34(3)(c)).")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_assess(app: App, incident_id: str, dpc: int | None, dpc_reason: str, ei: str, confidentiality: str,
                    integrity: str, availability: str, malicious: bool, unintelligible: bool, risk_removed: bool,
                    disproportionate_effort: bool, by: str | None, force: bool, force_reason: str | None,
                    fmt: str) -> None:
    """Score the breach with the ENISA method and recommend whether to notify.

    Severity SE = DPC × EI + CB (ENISA 2013): low < 2 <= medium < 3 <= high < 4 <= very high. Low: register
    only; medium: notify the authority; high and very high: also inform the people concerned, unless an
    exception of art. 34(3) is given. Unintelligible data without lasting loss of availability: notify
    neither. The recommendation is advice; record your decision with `compliance incident decide`.
    """
    from compliance.incidents.export import assessment_json, local_iso

    found = _register(app).assess(
        incident_id, dpc=dpc, dpc_reason=dpc_reason, ei=ei, confidentiality=confidentiality, integrity=integrity,
        availability=availability, malicious=malicious, unintelligible=unintelligible, risk_removed=risk_removed,
        disproportionate_effort=disproportionate_effort, by=who(by), force_reason=_forced(force, force_reason))
    a = found.assessment
    if fmt == "json":
        emit_json({"id": found.id, "status": found.status, "deadline": local_iso(found.deadline, app.settings.zone),
                   **assessment_json(a, app.settings.zone)})
        return
    yes = {True: "yes", False: "no"}
    click.echo(f"{found.id}: severity {a.score:.2f} ({a.band}) = {a.formula}")
    click.echo(f"recommendation: notify the authority: {yes[a.notify_authority]}; inform the people concerned: "
               f"{yes[a.notify_subjects]}" + ("; public communication: yes" if a.public_communication else ""))
    for reason in a.reasons:
        click.echo(f"  - {reason}")
    click.echo(f"next: compliance incident decide {found.id} --notify-authority {yes[a.notify_authority]} "
               f"--notify-subjects {yes[a.notify_subjects]} --reason \"...\"")


@incident.command("decide")
@click.argument("incident_id", metavar="ID")
@click.option("--notify-authority", required=True, type=_YES_NO, help="Notify the authority (AP), art. 33.")
@click.option("--notify-subjects", required=True, type=_YES_NO, help="Inform the people concerned, art. 34.")
@click.option("--reason", required=True, help="The justification, also when it follows the recommendation.")
@click.option("--subjects-exception", type=click.Choice(_EXCEPTIONS),
              help="Why the people are not informed despite a high risk (art. 34(3) a, b, c); "
                   "disproportionate-effort means a public communication instead.")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_decide(app: App, incident_id: str, notify_authority: str, notify_subjects: str, reason: str,
                    subjects_exception: str | None, by: str | None, force: bool, force_reason: str | None,
                    fmt: str) -> None:
    """Record the decision on notifying the authority and informing the people concerned.

    The decision may differ from the recommendation of `assess`; it needs a reason either way.
    """
    found = _register(app).decide(
        incident_id, notify_authority=notify_authority == "yes", notify_subjects=notify_subjects == "yes",
        reason=reason, subjects_exception=subjects_exception or "", by=who(by),
        force_reason=_forced(force, force_reason))
    d = found.decision
    _incident_out(app, fmt, found,
                  f"{found.id}: decided: notify the authority {notify_authority}, inform the people concerned "
                  f"{notify_subjects}" + (" (public communication)" if d.public_communication else "")
                  + ("; follows the recommendation" if d.follows_recommendation
                     else "; differs from the recommendation, with the reason recorded"))


@incident.command("notify")
@click.argument("incident_id", metavar="ID")
@click.option("--authority", "to_authority", is_flag=True, help="A notification to the authority (AP).")
@click.option("--subjects", "to_subjects", is_flag=True, help="A communication to the people concerned.")
@click.option("--reference", default="", help="The AP meldnummer (required for the first notification).")
@click.option("--at", "at", metavar="ISO8601", help="When it was made [default: now].")
@click.option("--follow-up", is_flag=True, help="A follow-up notification (vervolgmelding, art. 33(4)).")
@click.option("--withdraw", is_flag=True, help="The notification to the authority is withdrawn (needs --note).")
@click.option("--channel", type=click.Choice(["letter", "e-mail", "public"]),
              help="How the people concerned were informed (with --subjects).")
@click.option("--delay-reason", default="", help="Why the authority was notified after 72 hours (art. 33(1)).")
@click.option("--note", default="", help="What was added, why it is withdrawn, or other remarks.")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_notify(app: App, incident_id: str, to_authority: bool, to_subjects: bool, reference: str,
                    at: str | None, follow_up: bool, withdraw: bool, channel: str | None, delay_reason: str,
                    note: str, by: str | None, force: bool, force_reason: str | None, fmt: str) -> None:
    """Record a notification to the authority or the communication to the people concerned.

    \b
    compliance incident notify DL-2026-0007 --authority --reference M2026-1234 --at "2026-11-30 20:10" \\
      --delay-reason "..."
    compliance incident notify DL-2026-0007 --authority --follow-up --note "number of letters confirmed"
    compliance incident notify DL-2026-0007 --subjects --channel letter --at "2026-12-01 10:00"
    """
    if to_authority == to_subjects:
        error("say who was notified: --authority or --subjects (one of them)")
    if follow_up and withdraw:
        error("--follow-up and --withdraw exclude each other")
    kind = "follow-up" if follow_up else "withdrawal" if withdraw else "initial"
    found = _register(app).notify(
        incident_id, recipient="authority" if to_authority else "subjects", kind=kind,
        at=_time(app, at, "--at"), reference=reference, channel=channel or "", delay_reason=delay_reason, note=note,
        by=who(by), force_reason=_forced(force, force_reason))
    n = found.notifications[-1]
    whom = "the authority" if to_authority else f"the people concerned ({n.channel})"
    late = ""
    if to_authority and kind == "initial":
        late = "; in time" if n.at <= found.deadline else (
            f"; {(n.at - found.deadline).total_seconds() / 3600:.1f} h after the deadline, reason recorded")
    _incident_out(app, fmt, found, f"{found.id}: {kind} notification to {whom} recorded, {_when(app, n.at)}"
                  + (f", reference {n.reference}" if n.reference else "") + late + f"; status {found.status}")


@incident.command("close")
@click.argument("incident_id", metavar="ID")
@click.option("--note", default="", help="A closing remark, e.g. what was learned.")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_close(app: App, incident_id: str, note: str, by: str | None, force: bool, force_reason: str | None,
                   fmt: str) -> None:
    """Close an incident: needs the assessment, the decision and the notifications decided on."""
    found = _register(app).close(incident_id, note=note, by=who(by), force_reason=_forced(force, force_reason))
    _incident_out(app, fmt, found, f"{found.id}: closed")


@incident.command("link")
@click.argument("incident_id", metavar="ID")
@click.option("--control", "control_id", help="A control id (as stored by `compliance scan`).")
@click.option("--finding", "finding_id", type=int, help="A finding id (see `compliance findings --format json`).")
@_by_option
@format_option("text", "json", default="text")
@pass_app
def incident_link(app: App, incident_id: str, control_id: str | None, finding_id: int | None, by: str | None,
                  fmt: str) -> None:
    """Link an incident to a related control or finding of the monitor."""
    if (control_id is None) == (finding_id is None):
        error("give one of --control ID or --finding ID")
    kind, ref = ("control", control_id) if control_id is not None else ("finding", str(finding_id))
    found = _register(app).link(incident_id, kind=kind, ref=ref or "", by=who(by))
    _incident_out(app, fmt, found, f"{found.id}: linked to {kind} {ref}")


@incident.command("list")
@click.option("--status", "status", type=click.Choice([*_INCIDENT_STATUSES, "all"]), default="all",
              show_default=True)
@click.option("--year", type=int, help="Only incidents registered in this year.")
@format_option("table", "json", "csv")
@pass_app
def incident_list(app: App, status: str, year: int | None, fmt: str) -> None:
    """List incidents: those not closed first (overdue, then the nearest deadline), with the time left."""
    from compliance.incidents.export import CSV_COLUMNS, LIST_COLUMNS, as_json, csv_row, list_row

    found = _register(app).incidents(status=None if status == "all" else status, year=year)
    zone = app.settings.zone
    if fmt == "json":
        emit_json([as_json(i, zone) for i in found])
    elif fmt == "csv":
        emit_csv(CSV_COLUMNS, [csv_row(i, zone) for i in found])
    else:
        emit_table(LIST_COLUMNS, [list_row(i, zone) for i in found])
        if not found:
            click.echo("no incidents" + (f" with status {status}" if status != "all" else "")
                       + (f" in {year}" if year else ""))


@incident.command("show")
@click.argument("incident_id", metavar="ID")
@click.option("--history", is_flag=True, help="With --format json: add the audit trail as `events`.")
@format_option("text", "json", default="text")
@pass_app
def incident_show(app: App, incident_id: str, history: bool, fmt: str) -> None:
    """Show one incident: facts, clock, assessment, decision, notifications and its audit trail."""
    from compliance.incidents.export import as_json, local_iso, show_text

    register = _register(app)
    found = register.get(incident_id)
    events = register.events(found.id)
    zone = app.settings.zone
    if fmt == "json":
        data = as_json(found, zone)
        if history:
            data["events"] = [{"seq": e.seq, "at": local_iso(e.at, zone), "by": e.by, "action": e.action,
                               "field": e.field, "old": e.old, "new": e.new, "hash": e.hash} for e in events]
        emit_json(data)
    else:
        click.echo(show_text(found, zone, events=events), nl=False)


@incident.command("export")
@click.argument("incident_id", metavar="[ID]", required=False)
@click.option("--all", "export_all", is_flag=True, help="Every incident (for the annual audit).")
@click.option("--year", type=int, help="With --all: only incidents registered in this year.")
@click.option("--format", "fmt", type=click.Choice(["ap", "json", "csv"]),
              help="ap: the answers for the AP notification form (one incident) [default for ID]; "
                   "csv [default for --all]; json.")
@pass_app
def incident_export(app: App, incident_id: str | None, export_all: bool, year: int | None, fmt: str | None) -> None:
    """Export one incident (ID) or the whole register (--all).

    `--format ap` prints the answers to the Autoriteit Persoonsgegevens' notification form
    (Meldformulier datalekken) in Dutch, in the form's order, ready to copy into the portal.
    """
    from compliance.incidents.export import CSV_COLUMNS, ap_form, as_json, csv_row

    if export_all == (incident_id is not None):
        error("give an incident ID or --all")
    if year is not None and not export_all:
        error("--year goes with --all")
    register = _register(app)
    zone = app.settings.zone
    found = register.incidents(year=year) if export_all else [register.get(incident_id or "")]
    fmt = fmt or ("csv" if export_all else "ap")
    if fmt == "ap":
        if export_all:
            error("--format ap is for one incident: give its ID")
        s = app.settings.incidents
        click.echo(ap_form(found[0], zone=zone, organisation=s.organisation, reporter=s.reporter,
                           contact=s.contact), nl=False)
    elif fmt == "csv":
        emit_csv(CSV_COLUMNS, [csv_row(i, zone) for i in found])
    else:
        emit_json([as_json(i, zone) for i in found] if export_all else as_json(found[0], zone))


@incident.command("verify")
@format_option("text", "json", default="text")
@pass_app
def incident_verify(app: App, fmt: str) -> None:
    """Check the audit trail: recompute the hash chain and compare every incident with its events.

    Exit 0 when intact; 1 when an event or an incident was altered, removed or added outside the tool
    (the first broken event is named). Keep the event count and head hash of each run: deleting the
    newest events is only visible against an earlier count.
    """
    from compliance.incidents.register import verify

    result = verify(app.database())
    if fmt == "json":
        emit_json({"intact": result.intact, "events": result.events, "incidents": result.incidents,
                   "head_hash": result.head_hash, "first_broken_event": result.first_broken_event,
                   "problems": list(result.problems)})
    elif result.intact:
        click.echo(f"audit trail intact: {result.events} event{'s' if result.events != 1 else ''}, "
                   f"{result.incidents} incident{'s' if result.incidents != 1 else ''}; head hash {result.head_hash}")
    else:
        if result.first_broken_event is not None:
            click.echo(f"audit trail BROKEN at event {result.first_broken_event}")
        else:
            click.echo("register differs from its audit trail")
        for problem in result.problems:
            click.echo(f"  {problem}")
    if not result.intact:
        sys.exit(EXIT_FAILING)


# -- risk overview (report) ---------------------------------------------------------------------------


@cli.command(short_help="The risk overview for management.")
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
                              default_schedule=app.settings.schedule.default_cron)
    content = render(overview, fmt, lang, organisation=app.settings.incidents.organisation)
    if output:
        Path(output).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(content, nl=False)  # bytes (PDF) go to the binary stream as they are



# -- scheduler and digest ----------------------------------------------------------------------------


@cli.group(short_help="The scheduler daemon: scans, alerts and the digest.")
def schedule() -> None:
    """The scheduler daemon: scans on schedule, breach deadline alerts and the weekly digest."""


@schedule.command("run")
@pass_app
def schedule_run(app: App) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT (Ctrl-C); it logs to stderr.

    Scans each control on its `schedule` (the others on schedule.default), checks the breach
    register's 72-hour deadlines every schedule.alert_interval and sends the digest on digest.cron.
    Jobs live in the database; a run missed while the daemon was down runs once on start, within
    schedule.misfire_grace. A second daemon on the same database waits as a standby and takes over
    when the first is gone. Exits 1 when it lost the leadership (let systemd restart it).
    """
    from compliance.scheduler import serve

    sys.exit(serve(app.settings, app.catalog(), app.database()))


@schedule.command("list")
@format_option("table", "json")
@pass_app
def schedule_list(app: App, fmt: str) -> None:
    """Every job with its schedule, next run time and last run, and which daemon leads.

    The digest and the breach deadline alerts are listed as off, with why, when they have no channel.
    """
    from compliance.scheduler import current_leader, job_statuses

    database = app.database()
    statuses = job_statuses(app.settings, app.catalog(), database)
    leader = current_leader(database)
    if fmt == "json":
        emit_json({
            "leader": None if leader is None else {"holder": leader.holder, "since": leader.since,
                                                   "heartbeat": leader.heartbeat, "alive": leader.alive()},
            "jobs": [{"id": s.id, "kind": s.kind, "name": s.name, "schedule": s.schedule,
                      "controls": list(s.controls), "next_run": s.next_run, "stored": s.stored,
                      "planned": s.planned, "enabled": s.enabled, "reason": s.why_off,
                      "last_run": s.last_run, "last_status": s.last_status}
                     for s in statuses],
        })
        return
    rows = [(s.id, s.schedule or "", _next_run(app, s),
             " ".join(filter(None, [local_time(app, s.last_run), s.last_status or ""])),
             _job_what(s)) for s in statuses]
    emit_table(["Job", "Schedule", "Next run", "Last run", "What"], rows, styles={"off": "yellow"})
    if leader is None:
        click.echo("no daemon has run on this database yet: start one with `compliance schedule run`")
    else:
        state = "leads" if leader.alive() else "led (gone)"
        click.echo(f"{leader.holder} {state} since {local_time(app, leader.since)}, "
                   f"last heartbeat {local_time(app, leader.heartbeat)}")


def _next_run(app: App, status: Any) -> str:
    if not status.enabled:
        return "off"
    return local_time(app, status.next_run) + ("" if status.stored else " (not started)")


def _job_what(status: Any) -> str:
    if not status.planned:
        return "removed at the next start"
    return status.name if status.enabled else f"{status.name}; off: {status.why_off}"


@cli.group(short_help="Send the weekly digest for management.")
def digest() -> None:
    """The weekly digest for management, by e-mail and Slack."""


@digest.command("send")
@click.option("--channel", type=click.Choice(["email", "slack", "all"]), default="all", show_default=True,
              help="Where to send it; all: every configured channel.")
@click.option("--dry-run", is_flag=True, help="Print the digest (Slack: its blocks as JSON); send and record nothing.")
@click.option("--lang", type=click.Choice(["nl", "en"]), help="Language [default: digest.lang].")
@format_option("text", "json", default="text")
@pass_app
def digest_send(app: App, channel: str, dry_run: bool, lang: str | None, fmt: str) -> None:
    """Send the digest of the last complete week now, on each channel it has not gone out on yet.

    The daemon's weekly job calls the same code. Every attempt is recorded; a digest that went out on
    a channel for a week is never sent there again, and one that failed is retried by the daemon with
    back-off (exit code 1). With --format json: the week and the result per channel (with --dry-run:
    what would be sent).
    """
    from compliance.digest import build_digest, chosen_channels, render_text, send_digest, slack_message

    if fmt == "json":
        _digest_send_json(app, channel, dry_run, lang)
        return
    if dry_run:
        built = build_digest(app.database(), app.settings, lang=lang)
        if channel == "slack":
            text, blocks = slack_message(built)
            emit_json({"text": text, "blocks": blocks})
        else:
            click.echo(render_text(built), nl=False)
        return
    outcomes = send_digest(app.database(), app.settings, channels=chosen_channels(app.settings, channel), lang=lang)
    for outcome in outcomes:
        click.echo(outcome.describe(), err=outcome.result == "failed")
    if any(o.result == "failed" for o in outcomes):
        sys.exit(EXIT_FAILING)


def _digest_send_json(app: App, channel: str, dry_run: bool, lang: str | None) -> None:
    from datetime import UTC, datetime

    from compliance.digest import chosen_channels, digest_week, preview_digest, send_digest
    from compliance.notify import CHANNELS

    now = datetime.now(UTC)
    week = digest_week(now, app.settings.zone)
    if dry_run:
        outcomes = preview_digest(app.database(), app.settings, CHANNELS if channel == "all" else [channel],
                                  week=week, now=now)
    else:
        outcomes = send_digest(app.database(), app.settings, channels=chosen_channels(app.settings, channel),
                               lang=lang, week=week, now=now)
    emit_json({"period": {"key": week.label, "start": week.start, "end": week.end}, "dry_run": dry_run,
               "lang": lang or app.settings.digest.lang,
               "channels": [{"channel": o.channel, "result": o.result, "attempt": o.attempt,
                             "recipients": o.recipients, "error": o.error, "retry_at": o.retry_at}
                            for o in outcomes]})
    if any(o.result == "failed" for o in outcomes):
        sys.exit(EXIT_FAILING)


if __name__ == "__main__":
    main()
