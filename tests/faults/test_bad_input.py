"""A corpus of bad input and a broken environment: each case exits 2 with what is wrong and how to fix it
(no SQL, no traceback) and leaves the database as it was, on SQLite and on PostgreSQL.

The database is dumped before and after each case: SQLite with `iterdump`, PostgreSQL as the rows of
every table. A read-only database and a full disk are real: a tmpfs mounted read-only, or small and filled up
(the tests mount one, so they need root; elsewhere they are skipped).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRESQL_ONLY, SQLITE_ONLY, local_today

pytestmark = pytest.mark.faults

PROBE = """\
- id: {cid}
  title: Control {cid}
  theme: technological
  severity: high
  checks:
    - plugin: probe
      params: {{name: {name}, outcome: pass}}
"""


def dump(db_url: str) -> list[Any]:
    """Everything in the database: SQLite's `iterdump`, or the sorted rows of every PostgreSQL table."""
    from sqlalchemy.engine import make_url

    from tests.conftest import _pg_connect

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
        try:
            return list(connection.iterdump())
        finally:
            connection.close()
    with _pg_connect(url.database) as connection:
        tables = [
            t
            for (t,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
            )
        ]
        return [
            (table, sorted(map(repr, connection.execute(f'SELECT * FROM "{table}"').fetchall()))) for table in tables
        ]


def assert_refused(result: Any, expected: str) -> None:
    """Exit 2 with exactly the expected message, and nothing of SQL or Python in it."""
    for leak in ("Traceback", "[SQL:", "sqlalche.me", "internal error", "sqlite3.", "psycopg."):
        assert leak not in result.output, result.output
    assert (result.exit_code, result.output) == (2, expected)


def _pg_database(project: Any) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(project.db_url).database)


def _is_sqlite(project: Any) -> bool:
    return project.db_url.startswith("sqlite")


# -- the cases ------------------------------------------------------------------------------------------
# Each prepares the project (the database already holds one scan) and returns the command line, the
# environment and the exact output expected.


@dataclass(frozen=True)
class Case:
    id: str
    prepare: Callable[[Any], tuple[list[str], dict[str, str], str]]
    sqlite_only: bool = False


def yaml_nested_deep(project: Any) -> tuple[list[str], dict[str, str], str]:
    project.control("deep.yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n")
    return (
        ["scan"],
        {},
        "controls/deep.yaml:1:103: YAML syntax error: nested deeper than 100 levels "
        "(flatten the structure)\n1 problem found\n",
    )


def config_nested_deep(project: Any) -> tuple[list[str], dict[str, str], str]:
    project.write_config("scan: {x: " + "{a: " * 5000 + "1" + "}" * 5001 + "\n")
    return (
        ["scan"],
        {},
        "compliance.yaml:5:400: YAML syntax error: nested deeper than 100 levels "
        "(flatten the structure)\n1 problem found\n",
    )


def symlink_loop_as_path(project: Any) -> tuple[list[str], dict[str, str], str]:
    (project.root / "loop.yaml").symlink_to("loop.yaml")
    return (
        ["scan", "--controls", "loop.yaml"],
        {},
        "loop.yaml:1:1: cannot read the file: Too many levels of symbolic links (it is a symbolic link that "
        "points back at itself; fix or remove the link)\n1 problem found\n",
    )


def symlink_loop_in_controls(project: Any) -> tuple[list[str], dict[str, str], str]:
    (project.controls / "loop.yaml").symlink_to("loop.yaml")
    return (
        ["scan"],
        {},
        "controls/loop.yaml:1:1: cannot read the file: Too many levels of symbolic links (it is "
        "a symbolic link that points back at itself; fix or remove the link)\n1 problem found\n",
    )


def dangling_symlink_in_controls(project: Any) -> tuple[list[str], dict[str, str], str]:
    """The file of a stored control becomes a dangling link: its control must stay active."""
    (project.controls / "first.yaml").unlink()
    (project.controls / "first.yaml").symlink_to("/srv/gone/first.yaml")
    return (
        ["scan"],
        {},
        "controls/first.yaml:1:1: symbolic link to '/srv/gone/first.yaml', which does not exist "
        "(fix or remove the link; its controls stay in the database until then)\n1 problem found\n",
    )


def fifo_in_controls(project: Any) -> tuple[list[str], dict[str, str], str]:
    (project.controls / "first.yaml").unlink()
    os.mkfifo(project.controls / "first.yaml")
    return (
        ["scan"],
        {},
        "controls/first.yaml:1:1: is a FIFO (named pipe), not a file (control files must be "
        "regular files; remove it or give it another name)\n1 problem found\n",
    )


def unreadable_file_and_others_validated(project: Any) -> tuple[list[str], dict[str, str], str]:
    """A file whose reading fails (here with an I/O error, which stops root too) is reported, and the other
    files are still validated."""
    (project.controls / "broken.yaml").symlink_to("/proc/self/mem")
    project.control("second.yaml", "- id: SECOND-01\n")
    return (
        ["scan"],
        {},
        "controls/broken.yaml:1:1: cannot read the file: Input/output error (check the file and "
        "the disk, or remove the file)\ncontrols/second.yaml:1:3: missing required key 'title' (add `title:` "
        "with a one-line title)\n2 problems found\n",
    )


def config_symlink_loop(project: Any) -> tuple[list[str], dict[str, str], str]:
    (project.root / "loop.yaml").symlink_to("loop.yaml")
    return (
        ["--config", "loop.yaml", "scan"],
        {},
        "error: config file loop.yaml (from --config) is a symbolic link to nothing readable (dangling, or a "
        "loop); create one with `compliance init` or point to an existing file\n",
    )


def config_fifo(project: Any) -> tuple[list[str], dict[str, str], str]:
    os.mkfifo(project.root / "fifo.yaml")
    return (
        ["--config", "fifo.yaml", "scan"],
        {},
        "error: config file fifo.yaml (from --config) is not a regular file; create one with `compliance init` "
        "or point to an existing file\n",
    )


def report_year_0001(project: Any) -> tuple[list[str], dict[str, str], str]:
    return (
        ["report", "--as-of", "0001-01-01", "--format", "json"],
        {},
        "error: --as-of 0001-01-01 lies before 1970-01-01, before anything the monitor stored; give a day from "
        "1970-01-01 on (YYYY-MM-DD, four digits for the year)\n",
    )


def report_year_9999(project: Any) -> tuple[list[str], dict[str, str], str]:
    today = local_today().isoformat()
    return (
        ["report", "--as-of", "9999-12-31", "--format", "json"],
        {},
        f"error: --as-of 9999-12-31 lies in the future; give today ({today}) or an earlier day\n",
    )


def exception_until_year_0001(project: Any) -> tuple[list[str], dict[str, str], str]:
    return (
        ["exceptions", "add", "FIRST-01", "--reason", "r", "--approved-by", "a", "--until", "0001-01-01"],
        {},
        "error: --until 0001-01-01 lies in the past; give the last day the risk is accepted, today or later\n",
    )


def exception_approver_too_long(project: Any) -> tuple[list[str], dict[str, str], str]:
    return (
        ["exceptions", "add", "FIRST-01", "--reason", "r", "--approved-by", "A" * 201, "--until", "2999-01-01"],
        {},
        "error: --approved-by is 201 characters long; at most 200 fit: shorten it\n",
    )


def exception_target_too_long(project: Any) -> tuple[list[str], dict[str, str], str]:
    return (
        [
            "exceptions",
            "add",
            "FIRST-01",
            "--reason",
            "r",
            "--approved-by",
            "a",
            "--until",
            "2999-01-01",
            "--target",
            "t" * 501,
        ],
        {},
        "error: --target is 501 characters long; at most 500 fit: shorten it\n",
    )


def unsupported_url(project: Any) -> tuple[list[str], dict[str, str], str]:
    return (
        ["findings"],
        {"COMPLIANCE_DATABASE_URL": "mysql://monitor@db.gemeente.local/compliance"},
        "error: unsupported database 'mysql' in the URL mysql://monitor@db.gemeente.local/compliance: the "
        "monitor works with SQLite and PostgreSQL; use e.g. sqlite:///compliance.db or "
        "postgresql+psycopg://user@host:5432/dbname (database.url in compliance.yaml or "
        "COMPLIANCE_DATABASE_URL)\n",
    )


def _newer_message(project: Any) -> str:
    from compliance.db import SCHEMA_HEAD, safe_url

    return (
        f"error: the database {safe_url(project.db_url)} is at schema revision 9999, which this version of the "
        f"monitor does not know (it knows up to {SCHEMA_HEAD}): a newer version of the monitor created or "
        "migrated it. Install that newer version (pip install --upgrade compliance-monitor) or point "
        "database.url at a database of this version; do not downgrade the database\n"
    )


def _set_revision(project: Any, revision: str) -> None:
    from sqlalchemy import text

    from compliance.db import create_engine

    engine = create_engine(project.db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def newer_schema_scan(project: Any) -> tuple[list[str], dict[str, str], str]:
    _set_revision(project, "9999")
    return ["scan"], {}, _newer_message(project)


def newer_schema_db_upgrade(project: Any) -> tuple[list[str], dict[str, str], str]:
    _set_revision(project, "9999")
    return ["db", "upgrade"], {}, _newer_message(project)


def not_a_database(project: Any) -> tuple[list[str], dict[str, str], str]:
    (project.root / "notes.db").write_text("meeting notes, not a database\n" * 200, encoding="utf-8")
    return (
        ["findings"],
        {"COMPLIANCE_DATABASE_URL": "sqlite:///notes.db"},
        "error: notes.db is not an SQLite database (file is not a database); check that database.url in "
        "compliance.yaml (or COMPLIANCE_DATABASE_URL) names the monitor's database, or move the file away and "
        "create a new database with `compliance db upgrade`\n",
    )


CASES = [
    Case("yaml-nested-5000-deep", yaml_nested_deep),
    Case("config-nested-5000-deep", config_nested_deep),
    Case("symlink-loop-as-path", symlink_loop_as_path),
    Case("symlink-loop-in-controls", symlink_loop_in_controls),
    Case("dangling-symlink-in-controls", dangling_symlink_in_controls),
    Case("fifo-in-controls", fifo_in_controls),
    Case("unreadable-file-others-validated", unreadable_file_and_others_validated),
    Case("config-symlink-loop", config_symlink_loop),
    Case("config-fifo", config_fifo),
    Case("report-as-of-year-0001", report_year_0001),
    Case("report-as-of-year-9999", report_year_9999),
    Case("exception-until-year-0001", exception_until_year_0001),
    Case("exception-approver-over-200", exception_approver_too_long),
    Case("exception-target-over-500", exception_target_too_long),
    Case("unsupported-url-mysql", unsupported_url),
    Case("newer-schema-scan", newer_schema_scan),
    Case("newer-schema-db-upgrade", newer_schema_db_upgrade),
    Case("file-not-a-database", not_a_database, sqlite_only=True),
]


@pytest.fixture
def scanned(project: Any, probe_plugin: type) -> Any:
    """A project whose database holds one scan of one control (FIRST-01 in controls/first.yaml)."""
    project.write_config("  bundled: []\n")
    project.control("first.yaml", PROBE.format(cid="FIRST-01", name="first"))
    assert project.run("scan").exit_code == 0
    return project


# each case on both databases, but a case about a database file on SQLite only (PostgreSQL has none)
PAIRS = [pytest.param(kind, case, id=f"{case.id}-{kind}",
                      marks=[pytest.mark.postgresql] if kind == "postgresql" else [])
         for case in CASES for kind in (["sqlite"] if case.sqlite_only else ["sqlite", "postgresql"])]


@pytest.mark.parametrize(("db_url", "case"), PAIRS, indirect=["db_url"])
def test_bad_input_exits_2_and_changes_nothing(scanned: Any, case: Case) -> None:
    args, env, expected = case.prepare(scanned)
    before = dump(scanned.db_url)

    result = scanned.run(*args, env=env)

    assert_refused(result, expected)
    assert dump(scanned.db_url) == before


def test_controls_of_an_unreadable_file_stay_active(scanned: Any) -> None:
    """A file that could not be read does not make its controls look removed."""
    (scanned.controls / "first.yaml").unlink()
    (scanned.controls / "first.yaml").symlink_to("missing.yaml")
    assert scanned.run("scan").exit_code == 2

    (scanned.controls / "first.yaml").unlink()
    scanned.control("first.yaml", PROBE.format(cid="FIRST-01", name="first"))
    assert scanned.run("findings", "--status", "all").exit_code == 0
    from sqlalchemy import text

    from compliance.db import Database

    database = Database(scanned.db_url)
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT id, active FROM controls")).all() == [("FIRST-01", True)]
    database.close()


# -- a read-only database and a full disk ----------------------------------------------------------------


@contextmanager
def tmpfs(folder: Path, size_kib: int) -> Iterator[Path]:
    """A small tmpfs mounted at folder (skips the test where this process may not mount)."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _move_database_to(project: Any, folder: Path) -> str:
    from sqlalchemy.engine import make_url

    source = Path(str(make_url(project.db_url).database))
    shutil.copy(source, folder / "compliance.db")
    url = f"sqlite:///{folder.name}/compliance.db"
    project.db_url = url
    project.write_config("  bundled: []\n")
    return url


READ_ONLY = (
    "error: the database {path} cannot be written by this user (attempt to write a readonly database); "
    "give the account that runs the monitor write access to it and to its folder (SQLite writes -wal "
    "and -shm files beside it), or run the command as that account\n"
)


@SQLITE_ONLY
def test_read_only_database_file(scanned: Any) -> None:
    """A database on a file system mounted read-only: file modes would not stop root, who runs CI."""
    with tmpfs(scanned.root / "ro", 4096) as folder:
        _move_database_to(scanned, folder)
        before = dump(scanned.db_url)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

        result = scanned.run("scan")

        assert_refused(result, READ_ONLY.format(path="ro/compliance.db"))
        subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        assert dump(scanned.db_url) == before


@POSTGRESQL_ONLY
def test_read_only_postgresql_database(scanned: Any) -> None:
    from compliance.db import safe_url
    from tests.conftest import _pg_connect

    name = _pg_database(scanned)
    with _pg_connect() as connection:
        connection.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    before = dump(scanned.db_url)

    result = scanned.run("scan")

    assert_refused(
        result,
        f"error: the database {safe_url(scanned.db_url)} cannot be written by this user "
        "(cannot execute INSERT in a read-only transaction); give the account that runs the "
        "monitor write access to it, or run the command as that account\n",
    )
    assert dump(scanned.db_url) == before


@SQLITE_ONLY
def test_disk_full_during_a_scan(scanned: Any) -> None:
    """The disk fills up while results are stored: exit 2 with the fix; once there is room again the next
    scan works, closes the one that failed (failed, or interrupted when even that could not be stored) and
    the controls stored before the disk filled up are kept."""
    import sys

    many = "".join(
        PROBE.format(cid=f"BIG-{i:03d}", name=f"big{i}").replace("outcome: pass", "outcome: huge") for i in range(600)
    )
    with tmpfs(scanned.root / "disk", 3072) as folder:
        _move_database_to(scanned, folder)
        scanned.control("many.yaml", many)
        filler = folder / "filler"
        with filler.open("wb") as out:
            out.write(b"\0" * (3072 * 1024 - 3 * (folder / "compliance.db").stat().st_size - 64 * 1024))
        # its own process, which is gone when the next scan looks for scans left running
        code = (
            "import sys; from compliance import plugins; from tests.plugins_for_tests import Probe; "
            "plugins.register(Probe); from compliance.cli import main; "
            "sys.argv = ['compliance', '--config', 'compliance.yaml', 'scan']; main()"
        )
        repo = str(Path(__file__).resolve().parents[2])
        scan = subprocess.run(
            [sys.executable, "-c", code],
            cwd=scanned.root,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": repo},
            timeout=120,
            check=False,
        )

        assert (scan.returncode, scan.stdout, scan.stderr) == (
            2,
            "",
            (
                "error: the disk of the database disk/compliance.db is full (database or disk is full); free some "
                "space (or raise the database's size limit) and run the command again. A scan keeps the controls it "
                "stored before the disk filled up\n"
            ),
        )
        filler.unlink()
        assert scanned.run("scan").exit_code == 0
        from sqlalchemy import text

        from compliance.db import Database

        database = Database(scanned.db_url)
        with database.engine.connect() as connection:
            statuses = connection.execute(text("SELECT status FROM scans ORDER BY id")).scalars().all()
            kept = connection.execute(
                text("SELECT count(DISTINCT control_id) FROM check_results WHERE scan_id = 2")
            ).scalar()
        database.close()
        assert statuses[0::2] == ["completed", "completed"]
        assert statuses[1] in ("failed", "interrupted")
        assert kept and kept > 0


@contextmanager
def small_tablespace(project: Any, size_kib: int) -> Iterator[str]:
    """A PostgreSQL tablespace on a small tmpfs that the server may write (skips where this process may
    not mount one, or the server runs elsewhere)."""
    import pwd
    import tempfile
    import uuid

    from tests.conftest import _pg_connect

    try:
        server = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("the PostgreSQL server does not run on this machine as user postgres")
    folder = Path(tempfile.mkdtemp(prefix="cm-tablespace-"))
    folder.chmod(0o755)
    options = f"size={size_kib}k,uid={server.pw_uid},gid={server.pw_gid},mode=0700"
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True, check=False
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    name = f"cm_small_{uuid.uuid4().hex[:8]}"
    try:
        with _pg_connect() as connection:
            connection.execute(f"CREATE TABLESPACE {name} LOCATION '{folder}'")
        try:
            yield name
        finally:
            with _pg_connect(_pg_database(project)) as connection:
                for (table,) in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE tablespace = %s", (name,)
                ).fetchall():
                    connection.execute(f'ALTER TABLE "{table}" SET TABLESPACE pg_default')
            with _pg_connect() as connection:
                connection.execute(f"DROP TABLESPACE {name}")
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
        folder.rmdir()


@POSTGRESQL_ONLY
def test_disk_full_during_a_scan_on_postgresql(scanned: Any) -> None:
    """check_results lives on a full tablespace: the scan stops with exit 2 and the fix, is closed as
    failed, and the next scan, once there is room again, works."""
    import re

    from compliance.db import safe_url
    from tests.conftest import _pg_connect

    with small_tablespace(scanned, 512) as tablespace, _pg_connect(_pg_database(scanned)) as connection:
        connection.execute(f"ALTER TABLE check_results SET TABLESPACE {tablespace}")
        connection.execute(f"CREATE TABLE filler (data bytea) TABLESPACE {tablespace}")
        with pytest.raises(Exception, match="No space left on device"):
            for _ in range(1000):  # incompressible rows until the tablespace is full
                connection.execute(
                    "INSERT INTO filler SELECT decode(string_agg(md5(random()::text), ''), 'hex') "
                    "FROM generate_series(1, 500)"
                )

        scanned.control(
            "many.yaml",
            "".join(
                PROBE.format(cid=f"BIG-{i:03d}", name=f"big{i}").replace("outcome: pass", "outcome: huge")
                for i in range(60)
            ),
        )

        result = scanned.run("scan")

        assert result.exit_code == 2
        pattern = (
            r"error: the disk of the database "
            + re.escape(safe_url(scanned.db_url))
            + r' is full \(could not extend file "pg_tblspc/[^"]+": No space left on device\); free '
            r"some space \(or raise the database's size limit\) and run the command again\. A scan keeps "
            r"the controls it stored before the disk filled up\n"
        )
        assert re.fullmatch(pattern, result.output), result.output
        connection.execute("DROP TABLE filler")
        assert scanned.run("scan").exit_code == 0
        statuses = [s for (s,) in connection.execute("SELECT status FROM scans ORDER BY id").fetchall()]
        assert statuses == ["completed", "failed", "completed"]
