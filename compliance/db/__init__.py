"""Database access: engines, sessions and migrations for SQLite and PostgreSQL.

SQLite is the embedded default (`sqlite:///compliance.db`); PostgreSQL is used through psycopg 3
(`postgresql+psycopg://user@host/db`). The schema is created and changed only by Alembic migrations,
shipped inside this package: `compliance db upgrade`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

#: The newest migration. A test checks it is the head of the migration scripts.
SCHEMA_HEAD = "0006"


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
    """Migrate the database to revision (default: the newest); return the revision reached."""
    import sqlalchemy
    from alembic import command

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
    """The revision the database is at, or None when it was never migrated."""
    import sqlalchemy

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
    """An open database at the current schema: the engine and a session factory."""

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        import sqlalchemy
        from sqlalchemy.orm import sessionmaker

        self.url = normalize_url(url)
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
