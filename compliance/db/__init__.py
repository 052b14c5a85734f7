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
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError, display_path

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

#: The newest migration. A test checks it is the head of the migration scripts.
SCHEMA_HEAD = "0012"


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


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for url; on SQLite with WAL, a busy timeout and foreign keys switched on."""
    import sqlalchemy
    from sqlalchemy import event

    url = normalize_url(url)
    try:
        engine = sqlalchemy.create_engine(url, **kwargs)
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ValueError) as exc:
        raise DatabaseError(
            f"invalid database URL {safe_url(url)}: {exc}; use e.g. sqlite:///compliance.db or "
            "postgresql+psycopg://user@host:5432/dbname"
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

    return engine


def alembic_config(url: str) -> Config:
    """An Alembic configuration built in code, pointing at the migrations in this package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("compliance.db") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def _connect_error(url: str, exc: Exception) -> DatabaseError:
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
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    except sqlalchemy.exc.OperationalError as exc:
        raise _connect_error(url, exc) from None
    finally:
        engine.dispose()
    return current_revision(url) or ""


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated (or, SQLite, does not exist)."""
    import sqlalchemy

    file = sqlite_file(normalize_url(url))
    if file is not None and not file.exists():
        return None  # connecting would create an empty file
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    except sqlalchemy.exc.OperationalError as exc:
        raise _connect_error(url, exc) from None
    finally:
        engine.dispose()


class Database:
    """An open database at the current schema: the engine and a session factory.

    An SQLite file that does not exist is an error, never created: only `upgrade` creates databases.
    """

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        import sqlalchemy
        from sqlalchemy.orm import sessionmaker

        self.url = normalize_url(url)
        file = sqlite_file(self.url)
        if file is not None and not file.exists():
            raise _missing_error(file)
        self.engine = create_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if check_schema:
            try:
                with self.engine.connect() as connection:
                    has_table = sqlalchemy.inspect(connection).has_table("alembic_version")
                    revision = connection.execute(
                        sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar() if has_table else None
            except sqlalchemy.exc.OperationalError as exc:
                self.engine.dispose()
                raise _connect_error(self.url, exc) from None
            if revision != SCHEMA_HEAD:
                self.engine.dispose()
                state = "has no tables yet" if revision is None else f"is at schema revision {revision}"
                raise DatabaseError(
                    f"the database {safe_url(self.url)} {state}, this version needs {SCHEMA_HEAD}; "
                    "run `compliance db upgrade` (or `compliance init` in a new folder)"
                )

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
