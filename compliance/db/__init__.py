"""Database access: engines, sessions and migrations for SQLite and PostgreSQL.

SQLite is the embedded default (`sqlite:///compliance.db`); PostgreSQL is used through psycopg 3
(`postgresql+psycopg://user@host/db`). The schema is created and changed only by Alembic migrations,
shipped inside this package: `compliance db upgrade`. Only `upgrade` creates an SQLite file (readable by
its owner only); opening one that does not exist is an error, so that a command run in the wrong folder
does not leave an empty database behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError, display_path

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

#: The newest migration. A test checks it is the head of the migration scripts.
SCHEMA_HEAD = "0015"


class DatabaseError(ComplianceError):
    """The database cannot be reached or is not at the schema this version needs."""


def normalize_url(url: str) -> str:
    """Pick psycopg 3 for a bare postgresql:// URL (SQLAlchemy 2.0 would pick psycopg2)."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare):]
    return url


def safe_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite database URL; None for other databases, in-memory ones and `file:` URIs."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return None  # create_engine reports the bad URL
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri") in ("true", "1"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _missing_error(file: Path) -> DatabaseError:
    return DatabaseError(
        f"the database does not exist at {display_path(file)}; create it with `compliance db upgrade` "
        "(or set up a new monitor with `compliance init`)"
    )


def _create_private_file(file: Path) -> None:
    """Create an empty SQLite file readable by its owner only, unless it exists: the database holds the
    breach register."""
    try:
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise DatabaseError(f"cannot create the database at {display_path(file)}: {exc.strerror}") from None


#: The database systems the monitor supports, by SQLAlchemy's backend name.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
_URL_EXAMPLES = "use e.g. sqlite:///compliance.db or postgresql+psycopg://user@host:5432/dbname"


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for url; on SQLite with WAL, a busy timeout and foreign keys switched on."""
    import sqlalchemy
    from sqlalchemy import event
    from sqlalchemy.engine import make_url

    url = normalize_url(url)
    try:
        backend = make_url(url).get_backend_name()
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise DatabaseError(f"invalid database URL {safe_url(url)}: {exc}; {_URL_EXAMPLES}") from None
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseError(
            f"unsupported database '{backend}' in the URL {safe_url(url)}: the monitor works with SQLite and "
            f"PostgreSQL; {_URL_EXAMPLES} (database.url in compliance.yaml or COMPLIANCE_DATABASE_URL)"
        )
    try:
        engine = sqlalchemy.create_engine(url, **kwargs)
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise DatabaseError(
            f"invalid database URL {safe_url(url)}: {exc}; {_URL_EXAMPLES}"
        ) from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    else:

        @event.listens_for(engine, "connect", insert=True)
        def _utc_session(dbapi_connection: Any, _record: Any) -> None:
            # Timestamps come back in UTC, as they are stored: the driver builds each one with
            # datetime.timezone.utc instead of converting it into the server's zone and `UTCDateTime`
            # back again (a report reads tens of thousands of them; issue 18). The monitor does its
            # day boundaries in Python, so no SQL depends on the session's zone. SET in autocommit:
            # inside a transaction that is later rolled back it would be undone.
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            cursor = dbapi_connection.cursor()
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.close()
            dbapi_connection.autocommit = autocommit

    return engine


def alembic_config(url: str) -> Config:
    """An Alembic configuration built in code, pointing at the migrations in this package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("compliance.db") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


# What the database said, by SQLite's message or PostgreSQL's SQLSTATE, and how the user fixes it.
_SQLITE_CAUSES = {
    "readonly database": "read-only",
    "read-only database": "read-only",
    "database or disk is full": "full",
    "file is not a database": "not-a-database",
    "database disk image is malformed": "damaged",
    "unable to open database file": "unopenable",
    "database is locked": "locked",
    "disk i/o error": "io",
}
_PG_CAUSES = {"53100": "full", "25006": "read-only", "42501": "read-only", "53300": "busy"}


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cause(exc: BaseException) -> str | None:
    """What kind of database trouble exc is (read-only, full, ...), or None when it is none we know."""
    import sqlalchemy

    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _PG_CAUSES:
        return _PG_CAUSES[sqlstate]
    if isinstance(sqlstate, str) and sqlstate.startswith("08"):
        return "unreachable"
    reason = _reason(exc).lower()
    return next((cause for text, cause in _SQLITE_CAUSES.items() if text in reason), None)


def explain(exc: BaseException, url: str) -> DatabaseError | None:
    """The user's error behind a database failure (a read-only file, a full disk, a file that is not a
    database, ...) as a message with the fix, or None for a failure that is not the user's to fix.

    The exceptions a failure led to (a scan that could not record that it failed) are searched too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cause = _cause(current)
        if cause is not None:
            return _explained(cause, url, _reason(current))
        current = current.__cause__ or current.__context__
    return None


def _explained(cause: str, url: str, reason: str) -> DatabaseError:
    where = safe_url(url)
    file = sqlite_file(url)
    if file is not None:
        where = display_path(file)
    fixes = {
        "read-only": f"the database {where} cannot be written by this user ({reason}); give the account that "
                     "runs the monitor write access to it"
                     + (" and to its folder (SQLite writes -wal and -shm files beside it)" if file else "")
                     + ", or run the command as that account",
        "full": f"the disk of the database {where} is full ({reason}); free some space (or raise the "
                "database's size limit) and run the command again. A scan keeps the controls it stored "
                "before the disk filled up",
        "not-a-database": f"{where} is not an SQLite database ({reason}); check that database.url in "
                          "compliance.yaml (or COMPLIANCE_DATABASE_URL) names the monitor's database, or move "
                          "the file away and create a new database with `compliance db upgrade`",
        "damaged": f"the database {where} is damaged ({reason}); restore it from your backup",
        "unopenable": f"cannot open the database {where} ({reason}); check that its folder exists and that "
                      "the account that runs the monitor may read and write it",
        "locked": f"the database {where} is locked by another process ({reason}); run the command again when "
                  "that process is done",
        "io": f"the database {where} could not be read or written ({reason}); check the disk and the file",
        "unreachable": f"cannot reach the database {where} ({reason}); check that the server is running and "
                       "database.url in compliance.yaml (or COMPLIANCE_DATABASE_URL)",
        "busy": f"the database server {where} refuses more connections ({reason}); try again later or raise "
                "its max_connections",
    }
    return DatabaseError(fixes[cause])


def _connect_error(url: str, exc: Exception) -> DatabaseError:
    explained = explain(exc, url)
    if explained is not None:
        return explained
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatabaseError(
        f"cannot open the database {safe_url(url)}: {reason}. Check database.url in compliance.yaml or "
        "COMPLIANCE_DATABASE_URL, and that the server is running"
    )


def upgrade(url: str, revision: str = "head") -> str:
    """Migrate the database to revision (default: the newest); return the revision reached.

    A missing SQLite file is created first, readable by its owner only (SQLite gives its -wal and -shm
    files the same mode).
    """
    import sqlalchemy
    from alembic import command

    file = sqlite_file(normalize_url(url))
    if file is not None:
        _create_private_file(file)
    at = current_revision(url)
    if at is not None and at not in known_revisions():
        raise _newer_schema(url, at)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    except sqlalchemy.exc.DBAPIError as exc:
        if not isinstance(exc, sqlalchemy.exc.OperationalError) and explain(exc, url) is None:
            raise
        raise _connect_error(url, exc) from None
    finally:
        engine.dispose()
    return current_revision(url) or ""


def known_revisions() -> set[str]:
    """The schema revisions this version's migrations know, oldest to SCHEMA_HEAD."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {s.revision for s in script.walk_revisions()}


def _newer_schema(url: str, revision: str) -> DatabaseError:
    return DatabaseError(
        f"the database {safe_url(url)} is at schema revision {revision}, which this version of the monitor does "
        f"not know (it knows up to {SCHEMA_HEAD}): a newer version of the monitor created or migrated it. "
        "Install that newer version (pip install --upgrade compliance-monitor) or point database.url at a "
        "database of this version; do not downgrade the database"
    )


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated (or, SQLite, does not exist)."""
    import sqlalchemy

    file = sqlite_file(normalize_url(url))
    if file is not None and not file.exists():
        return None  # connecting would create an empty file
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return _revision(connection)
    except sqlalchemy.exc.DBAPIError as exc:
        if not isinstance(exc, sqlalchemy.exc.OperationalError) and explain(exc, url) is None:
            raise
        raise _connect_error(url, exc) from None
    finally:
        engine.dispose()


#: Whether Alembic's table exists, asked of the catalog directly: the same answer as SQLAlchemy's
#: inspect(), without building an inspector on every command (part of every command's start-up).
_HAS_VERSION_TABLE = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
    "postgresql": "SELECT count(*) FROM (SELECT to_regclass('alembic_version') AS found) AS t WHERE found IS NOT NULL",
}


def _revision(connection: Any) -> str | None:
    """The schema revision recorded in the database, or None when it has no Alembic table (no schema yet)."""
    import sqlalchemy

    query = _HAS_VERSION_TABLE.get(connection.dialect.name)
    if query is not None:
        has_table = bool(connection.execute(sqlalchemy.text(query)).scalar())
    else:
        has_table = sqlalchemy.inspect(connection).has_table("alembic_version")
    if not has_table:
        return None
    revision: str | None = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    return revision


class Database:
    """An open database at the current schema: the engine and a session factory.

    An SQLite file that does not exist is an error, never created: only `upgrade` creates databases.
    Commands that read through the engine with Core (`compliance.db.schema`) never import the ORM: the
    session factory is made on first use.
    """

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        import sqlalchemy

        self.url = normalize_url(url)
        file = sqlite_file(self.url)
        if file is not None and not file.exists():
            raise _missing_error(file)
        self.engine = create_engine(self.url)
        if check_schema:
            try:
                with self.engine.connect() as connection:
                    revision = _revision(connection)
            except sqlalchemy.exc.DBAPIError as exc:
                self.engine.dispose()
                if not isinstance(exc, sqlalchemy.exc.OperationalError) and explain(exc, self.url) is None:
                    raise
                raise _connect_error(self.url, exc) from None
            if revision != SCHEMA_HEAD:
                self.engine.dispose()
                if revision is not None and revision not in known_revisions():
                    raise _newer_schema(self.url, revision)
                state = "has no tables yet" if revision is None else f"is at schema revision {revision}"
                raise DatabaseError(
                    f"the database {safe_url(self.url)} {state}, this version needs {SCHEMA_HEAD}; "
                    "run `compliance db upgrade` (or `compliance init` in a new folder)"
                )

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The factory of ORM sessions on this database (objects stay readable after a commit)."""
        from sqlalchemy.orm import sessionmaker

        return sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end, or rolled back entirely on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()
