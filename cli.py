"""The root of the `compliance` command line: the group, global options, output helpers, exit codes.

Each domain keeps its commands in a `commands` module beside its code (`compliance.incidents.commands`,
...), which parses, calls the domain and prints with the helpers here. The root mounts those modules
by name on first use, so it imports none of them: `--help` lists the commands from COMMANDS without
loading them, and import-linter sees no import from the root into the domains. Only click is
imported at start-up; each command imports what it needs.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import click

if TYPE_CHECKING:
    from datetime import datetime

    from compliance.catalog import Catalog
    from compliance.db import Database
    from compliance.orgs import Org
    from compliance.settings import Settings
    from compliance.store import Store

EXIT_OK = 0
EXIT_FAILING = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `cmd | head`
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C

EXIT_CODES_HELP = """\b
Exit codes:
  0  all good
  1  a control failed at or above --fail-on (scan), or a check such as
     `incident verify` found a problem
  2  bad usage, configuration or control file, or the database cannot be used
  3  internal error (run again with --debug for the traceback)
  130  interrupted (Ctrl-C); `scan` keeps what it stored and marks the scan interrupted
  141  the reader of the output went away (`| head`); nothing is printed"""


class Mount(NamedTuple):
    """Where a command of the root lives ("module:attribute"), and its summary for `compliance --help`."""

    where: str
    short_help: str


# The root's commands, each in its domain. The summaries repeat the commands' own short help, so that
# `--help` imports none of the modules; tests/test_cli.py checks that the two are the same.
COMMANDS: dict[str, Mount] = {
    "attest": Mount("compliance.evidence.commands:attest", "Record evidence for controls and see what expires."),
    "checks": Mount("compliance.catalog.commands:checks", "List and show the installed check plugins."),
    "controls": Mount("compliance.catalog.commands:controls", "List and validate control definitions (YAML)."),
    "db": Mount("compliance.db.commands:db", "Create and migrate the database schema."),
    "demo": Mount("compliance.project.commands:demo", "Try everything against demo targets on this machine."),
    "digest": Mount("compliance.scheduler.commands:digest", "Send the weekly digest for management."),
    "ensia": Mount("compliance.ensia.commands:ensia", "The ENSIA BIO self-evaluation: an answer per BIO2 measure."),
    "exceptions": Mount("compliance.store.commands:exceptions", "Accept the risk of a failing control until a date."),
    "findings": Mount("compliance.engine.commands:findings", "Show what fails, since when, and what was resolved."),
    "incident": Mount("compliance.incidents.commands:incident",
                      "The personal-data breach register (GDPR articles 33, 34)."),
    "init": Mount("compliance.project.commands:init", "Set up a monitor in the current folder."),
    "org": Mount("compliance.orgs.commands:org", "The organisations (municipalities) this monitor serves."),
    "report": Mount("compliance.report.commands:report", "The risk overview for management."),
    "scan": Mount("compliance.engine.commands:scan", "Run the checks and store results and findings."),
    "schedule": Mount("compliance.scheduler.commands:schedule", "The scheduler daemon: scans, alerts and the digest."),
    "worker": Mount("compliance.zones.commands:worker", "Run the checks of one network zone (a Celery worker)."),
    "workers": Mount("compliance.zones.commands:workers", "The network zones, their live workers and waiting checks."),
}


# -- plumbing ----------------------------------------------------------------------------------------


class App:
    """What the commands share: the configuration, the database and the loaded controls."""

    def __init__(self, config: str | None, debug: bool, org: str | None = None) -> None:
        self.config_option = config
        self.debug = debug
        self.org_option = org
        self._home: Database | None = None
        self._db: Database | None = None

    @cached_property
    def shared_settings(self) -> Settings:
        """The configuration as the file and the environment give it, before any organisation's own section."""
        from compliance.configuration import load_settings

        return load_settings(self.config_option, require=True)

    @cached_property
    def settings(self) -> Settings:
        """The configuration of the organisation the command acts for (the shared one with one organisation)."""
        shared = self.shared_settings
        if self.org_option is None and shared.org is None and not shared.organisations and shared.orgs is None:
            return shared  # one organisation and nothing per organisation: the register need not be read
        from compliance.db import DatabaseError

        try:
            org = self.org
        except DatabaseError:
            # no register to read (no database yet): a command that needs no data (`controls validate`)
            # goes on with the named organisation's settings; the others stop at database() with this error
            named = self.org_option or shared.org
            return shared.for_org(named) if named else shared
        return shared.for_org(org.code, name=org.name, first=org.first)

    def home_database(self) -> Database:
        """The first database: the first organisation's data and the register of all organisations."""
        from compliance.db import Database

        if self._home is None:
            self._home = Database(self.shared_settings.database_url)
            gc.freeze()  # SQLAlchemy is imported now: its objects live as long as the process (see main)
        return self._home

    @cached_property
    def org(self) -> Org:
        """The organisation the command acts for: --org, COMPLIANCE_ORG, `org:` in the config, or the only one."""
        from compliance import orgs

        source = "--org or COMPLIANCE_ORG" if self.org_option else "org: in compliance.yaml"
        user, allowed = self.access()
        return orgs.choose(orgs.registry(self.home_database()), self.org_option or self.shared_settings.org, source,
                           allowed, user)

    def access(self) -> tuple[str, set[str] | None]:
        """The operating-system user and the codes it may act for under `orgs:` (None: every organisation)."""
        from compliance import orgs

        user, groups = orgs.current_user()
        return user, orgs.allowed_codes(self.shared_settings.orgs, user, groups)

    def visible_orgs(self) -> list[Org]:
        """Every organisation the user may act for (`orgs:` in the config), by code."""
        from compliance import orgs

        _, allowed = self.access()
        return [o for o in orgs.registry(self.home_database()) if allowed is None or o.code in allowed]

    def for_org(self, code: str) -> App:
        """The same command acting for organisation CODE (`--all-orgs`); it shares the first database."""
        other = App(self.config_option, self.debug, code)
        other.__dict__["shared_settings"] = self.shared_settings
        other._home = self.home_database()
        return other

    def database(self) -> Database:
        """The database of the organisation the command acts for."""
        from compliance.orgs import open_org

        if self._db is None:
            self._db = open_org(self.home_database(), self.org)
        return self._db

    def database_url(self) -> str | None:
        """The URL of the database in use, for messages (None before the configuration was read)."""
        for db in (self._db, self._home):
            if db is not None:
                return db.url
        return self.__dict__["shared_settings"].database_url if "shared_settings" in self.__dict__ else None

    def store(self) -> Store:
        from compliance.store import Store

        return Store(self.database(), self.settings.zone)

    def catalog(self, paths: Sequence[str] = ()) -> Catalog:
        from compliance.catalog import load_catalog

        chosen = [Path(p) for p in paths] if paths else self.settings.control_paths
        return load_catalog(chosen, self.settings.targets, bundled=self.settings.controls.bundled)

    def close(self, *, keep_home: bool = False) -> None:
        for db in {id(d): d for d in (self._db, self._home) if d is not None}.values():
            if not (keep_home and db is self._home):
                db.close()


class ComplianceGroup(click.Group):
    """The root group: mounts each command of COMMANDS on use; our errors exit with a message, no traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_org(args) if ctx.parent is None else args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(mounted(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            found = super().resolve_command(ctx, args)
        except click.UsageError as exc:
            # click (8.4 on) suggests a close name from the commands loaded so far: offer all of them
            no_such_command = getattr(click.exceptions, "NoSuchCommand", None)
            if no_such_command is None or not isinstance(exc, no_such_command):
                raise
            raise no_such_command(exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None
        # the command's module is imported: what start-up made stays for good, the command's own work is collected
        gc.freeze()
        gc.enable()
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands as click does, with the summaries of COMMANDS instead of importing them."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            if name in COMMANDS:
                rows.append((name, COMMANDS[name].short_help))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:  # Ctrl-C: the shell's code for SIGINT, not click's "Aborted!" and 1
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
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
            url = ctx.obj.database_url() if isinstance(ctx.obj, App) else None
            if url is not None:
                from compliance.db import explain

                explained = explain(exc, url)
                if explained is not None:
                    error(str(explained))
            if "--debug" in sys.argv or (isinstance(ctx.obj, App) and ctx.obj.debug):
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} "
                       "(run again with --debug for the traceback)", err=True)
            sys.exit(EXIT_INTERNAL)


def hoist_org(args: list[str]) -> list[str]:
    """ARGS with `--org CODE` moved before the command, so that it may follow the command too
    (`compliance findings --org utrecht`); nothing after `--` is touched."""
    end = args.index("--") if "--" in args else len(args)
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < end:
        if args[i] == "--org" and i + 1 < end:
            front += args[i:i + 2]
            i += 2
            continue
        (front if args[i].startswith("--org=") else rest).append(args[i])
        i += 1
    return [*front, *rest, *args[end:]]


def mounted(name: str) -> click.Command:
    """The command NAME of the root, imported from its domain's commands module."""
    module, _, attribute = COMMANDS[name].where.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name].where} is a {type(command).__name__}, not a click command")
    return command


def error(message: str) -> NoReturn:
    """Stop with a user error (exit 2). Control characters in it (from a user's value) are shown escaped."""
    from compliance.safe_output import printable

    click.echo(f"error: {printable(message, multiline=True)}", err=True)
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
    """DATA as JSON, readable on a terminal: json escapes the C0 controls (ESC, BEL); the other characters
    a terminal acts on (DEL, C1 such as CSI, bidirectional overrides) are written as \\u escapes too, the
    same string to a JSON reader."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=json_default)
    click.echo(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


# outside strings JSON is ASCII, so these can only be inside strings, where a \u escape means the same
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def json_default(value: Any) -> Any:
    """A value that JSON has no type for, as JSON and CSV show it: dates in ISO 8601, the rest as text."""
    from datetime import date, datetime

    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def emit_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A CSV table on standard output; text that a spreadsheet would run as a formula gets a leading `'`."""
    from compliance.safe_output import SafeCsvWriter

    writer = SafeCsvWriter(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else json_default(v) if not isinstance(v, str | int | float) else v
                         for v in row])


def emit_text(text: str, *, nl: bool = True) -> None:
    """Text for people on standard output; control characters from stored values (an incident's title, a
    plugin's message) are shown escaped (`\\x1b`), new lines and tabs kept."""
    from compliance.safe_output import printable

    click.echo(printable(text, multiline=True), nl=nl)


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output is not cut to 80 columns: a table goes to a file or a pager whole
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


#: A column is not folded narrower than this (or its widest cell, when that is narrower).
_FOLD_MIN = 8


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
               styles: dict[str, str] | None = None) -> None:
    """A table for people on standard output.

    Cells keep their new lines, and control characters in stored values are shown escaped. A table wider
    than the terminal (or than COLUMNS, 200 when output is piped) folds its widest columns. Colours (the
    status cells, a bold header) only on a terminal, and not with NO_COLOR set. Drawn by tabulate: rich
    took about 5 ms a row to lay a table out, most of `findings` and `controls list` (issue 18).
    """
    import shutil

    from compliance.safe_output import printable

    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if tty else int(os.environ.get("COLUMNS", "0") or 0) or 200
    color = tty and not os.environ.get("NO_COLOR")
    # tabs expanded: a table measures a tab as one character wide
    cells = [["" if v is None else printable(str(v), multiline=True).expandtabs(4) for v in row] for row in rows]
    headers = [printable(name) for name in columns]
    tabulate = _tabulate(wide=not all(text.isascii() for text in (*headers, *(t for row in cells for t in row))))
    caps = _fold_widths(headers, cells, width)
    if color:
        palette = styles or STATUS_STYLE
        cells = [[_styled(text, palette.get(text, "")) for text in row] for row in cells]
        headers = [click.style(h, bold=True) for h in headers]
    tabulate.MIN_PADDING = 0  # rich's layout: a header is as wide as its column, no wider
    drawn = tabulate.tabulate(cells, headers=headers, tablefmt="simple_outline", disable_numparse=True,
                              maxcolwidths=caps)
    if title:
        click.echo(printable(title), color=color)
    click.echo(drawn, color=color)


def _tabulate(*, wide: bool) -> Any:
    """The tabulate module; measuring wide characters (CJK, emoji) with wcwidth only when a table has text
    that is not ASCII: importing wcwidth took a tenth of a short command's start-up (issue 18)."""
    if "tabulate" not in sys.modules and not wide and "wcwidth" not in sys.modules:
        sys.modules["wcwidth"] = None  # type: ignore[assignment]  # tabulate's optional import then fails
        try:
            import tabulate
        finally:
            del sys.modules["wcwidth"]
    import tabulate

    if wide and tabulate.wcwidth is None:  # type: ignore[attr-defined]
        try:
            import wcwidth
        except ImportError:
            return tabulate
        tabulate.wcwidth, tabulate.WIDE_CHARS_MODE = wcwidth, True  # type: ignore[attr-defined]
    return tabulate


def _fold_widths(headers: Sequence[str], cells: Sequence[Sequence[str]], width: int) -> list[int | None]:
    """Per column the width to fold it at (None: as wide as its widest line), so that the table fits."""
    natural = [max([len(line) for text in (header, *(row[i] for row in cells)) for line in text.split("\n")])
               for i, header in enumerate(headers)]
    room = width - (3 * len(headers) + 1)  # "│ " before each column, " │" after the last, " │ " between
    # a column is not folded narrower than its header, nor than _FOLD_MIN
    floor = [min(n, max(_FOLD_MIN, len(header))) for n, header in zip(natural, headers, strict=True)]
    if sum(natural) <= room:
        return [None] * len(headers)
    if sum(floor) >= room:  # even folded it is wider than the terminal: as narrow as it goes
        return [f if n > f else None for n, f in zip(natural, floor, strict=True)]
    cap = max(natural)
    while cap > _FOLD_MIN and sum(max(min(n, cap), f) for n, f in zip(natural, floor, strict=True)) > room:
        cap -= 1
    return [max(cap, f) if n > max(cap, f) else None for n, f in zip(natural, floor, strict=True)]


def _styled(text: str, style: str) -> str:
    """A cell in a STATUS_STYLE style ("bold red", "dim", a colour name), line by line so a fold keeps it."""
    if not style or not text:
        return text
    words = style.split()
    fg = next((w for w in words if w not in ("bold", "dim")), None)
    return "\n".join(click.style(line, fg=fg, bold=("bold" in words) or None, dim=("dim" in words) or None)
                      for line in text.split("\n"))


STATUS_STYLE = {"pass": "green", "fail": "red", "error": "yellow", "skipped": "dim", "open": "red",
                "accepted": "yellow", "resolved": "green", "critical": "bold red", "high": "red"}


def local_time(app: App, value: datetime | None, *, date_only: bool = False) -> str:
    """A stored time in the configured time zone, to the minute (or the day)."""
    if value is None:
        return ""
    local = value.astimezone(app.shared_settings.zone)  # one time zone for every organisation
    return local.strftime("%Y-%m-%d") if date_only else local.strftime("%Y-%m-%d %H:%M")


def org_typed() -> bool:
    """Whether --org was typed on the command line (not COMPLIANCE_ORG or `org:`): `--all-orgs` refuses it."""
    from click.core import ParameterSource

    return click.get_current_context().find_root().get_parameter_source("org") is ParameterSource.COMMANDLINE


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
@click.option("--org", "org", envvar="COMPLIANCE_ORG", metavar="CODE",
              help="The organisation (municipality) to act for, when the monitor serves several; may also follow "
                   "the command [default: org: in compliance.yaml, or the only one; env: COMPLIANCE_ORG].")
@click.version_option(package_name="compliance-monitor", prog_name="compliance")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool, log_level: str, log_format: str,
        org: str | None) -> None:
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
    app = App(config, debug, org)
    ctx.obj = app
    ctx.call_on_close(app.close)


def main() -> None:
    # No cyclic garbage collection while the command starts: imports create some hundred thousand objects
    # that live as long as the process, and collecting while they are made only scans them again and again
    # (about 4 % of `compliance report`'s instructions; issue 18). Collection is back on, with those
    # objects frozen out of it, once the command is found (`Group.resolve_command`) and again frozen when
    # the database is first opened (`App.home_database`). Tests call `cli` and keep the default.
    gc.disable()
    try:
        try:
            cli(prog_name="compliance")
        finally:
            sys.stdout.flush()  # now, where a closed pipe can still be handled, not at the interpreter's exit
    except BrokenPipeError:
        reader_gone()


if __name__ == "__main__":
    main()
