"""Several organisations (municipalities) in one install, each with a database of its own (issue 20).

A shared service centre runs one monitor for several municipalities, each its own controller under the
GDPR with its own findings, exceptions, evidence and breach register. Each organisation's data lives in
a database of its own: the first one in `database.url` (an existing database becomes the data of the
first organisation, `default`), every later one in an SQLite file beside it (`compliance-utrecht.db`)
or a schema on the same PostgreSQL server (`org_utrecht`). Every query of the store, the report, the
register and the scheduler therefore sees one organisation's rows only, without a filter that a query
could forget; a report of one organisation reads no more than it would alone.

The first database holds the register of organisations (`organisations`); every database also holds its
own row (location ''), which is compared with the register's whenever it is opened, so a database
that belongs to another organisation is never read or written by mistake.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from compliance.db import Database, DatabaseError, current_revision, normalize_url, sqlite_file, upgrade
from compliance.errors import ComplianceError
from compliance.settings_view import ORG_CODE_PATTERN

if TYPE_CHECKING:
    from sqlalchemy import Table

    from compliance.settings import AccessSettings

__all__ = ["Org", "OrgError", "add", "allowed_codes", "choose", "missing_error", "open_org", "org_url", "registry",
           "rename"]


class OrgError(ComplianceError):
    """An organisation that does not exist, may not be used by this user, or cannot be added."""


@dataclass(frozen=True)
class Org:
    """A municipality served by this monitor and where its data is ('' : in the first database)."""

    code: str
    name: str
    location: str
    created_at: datetime
    created_by: str

    @property
    def first(self) -> bool:
        return self.location == ""


def _table() -> Table:
    """The register of organisations, a Core table: every command reads it, without importing the ORM."""
    from compliance.db.schema import organisations

    return organisations


def registry(home: Database) -> list[Org]:
    """The organisations of this install, by code, read from the first database."""
    import sqlalchemy

    table = _table()
    with home.engine.connect() as connection:
        rows = connection.execute(sqlalchemy.select(table).order_by(table.c.code)).all()
    return [Org(row.code, row.name, row.location, row.created_at, row.created_by) for row in rows]


def org_url(home_url: str, location: str) -> str:
    """The database URL of the organisation stored at LOCATION, given the first database's URL."""
    from sqlalchemy.engine import make_url

    home_url = normalize_url(home_url)
    if not location:
        return home_url
    file = sqlite_file(home_url)
    url = make_url(home_url)
    if file is not None:
        return url.set(database=str(file.parent / location)).render_as_string(hide_password=False)
    if url.get_backend_name() == "postgresql":
        options = url.query.get("options")
        search_path = f"-csearch_path={location}"
        combined = (
            search_path
            if not options
            else f"{options if isinstance(options, str) else ' '.join(options)} {search_path}"
        )
        return url.update_query_dict({"options": combined}).render_as_string(hide_password=False)
    raise OrgError(f"several organisations need SQLite or PostgreSQL, not {url.get_backend_name()}")


def _location_for(home_url: str, code: str) -> str:
    file = sqlite_file(normalize_url(home_url))
    if file is not None:
        return f"{file.stem}-{code}{file.suffix or '.db'}"
    return "org_" + code.replace("-", "_")


def open_org(home: Database, org: Org) -> Database:
    """The database of ORG, checked to be that organisation's (its own row names it)."""
    if org.first:
        return home
    url = org_url(home.url, org.location)
    try:
        db = Database(url)
    except DatabaseError:
        if current_revision(url) is None:  # not "run db upgrade": that would put an empty database in its place
            raise missing_error(org) from None
        raise
    try:
        own = _own_code(db)
    except Exception:
        db.close()
        raise
    if own != org.code:
        db.close()
        raise DatabaseError(
            f"the database of organisation '{org.code}' ({org.location}) holds organisation '{own}': if a rename "
            f"was interrupted, run `compliance org rename {org.code} {own}` or the other way round again; "
            "otherwise restore that database from the backup"
        )
    return db


def missing_error(org: Org) -> DatabaseError:
    """ORG's database is gone (its SQLite file deleted, its schema dropped) or was never filled."""
    return DatabaseError(
        f"the database of organisation '{org.code}' ({org.location}) is missing or empty: restore it from the "
        "backup; `compliance db upgrade` does not create it again, so that an empty database does not take "
        "the place of the organisation's data"
    )


def _own_code(db: Database) -> str | None:
    import sqlalchemy

    table = _table()
    with db.engine.connect() as connection:
        return connection.execute(sqlalchemy.select(table.c.code).where(table.c.location == "")).scalar()


def check_code(code: str) -> None:
    if not re.fullmatch(ORG_CODE_PATTERN, code):
        raise OrgError(
            f"'{code}' is not a valid organisation code: use 2 to 40 lower-case letters, digits and "
            "hyphens, starting with a letter (e.g. utrecht, de-bilt)"
        )


def add(home: Database, code: str, name: str, by: str) -> Org:
    """Register organisation CODE and create its database (migrated to this version's schema).

    The database is made first and registered last, so an interrupted `org add` leaves nothing
    registered; running it again finishes the job.
    """
    import sqlalchemy

    check_code(code)
    known = registry(home)
    if any(org.code == code for org in known):
        raise OrgError(f"organisation '{code}' already exists; `compliance org list` shows them")
    location = _location_for(home.url, code)
    if any(org.location == location for org in known):
        raise OrgError(f"the location {location} is in use by another organisation; choose another code")
    if home.dialect == "postgresql":
        with home.engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{location}"'))
    url = org_url(home.url, location)
    upgrade(url)
    table = _table()
    own = Database(url)
    try:
        with own.engine.begin() as connection:
            connection.execute(table.delete().where(table.c.location == ""))
            connection.execute(
                table.insert().values(code=code, name=name, location="", created_at=datetime.now(UTC), created_by=by)
            )
    finally:
        own.close()
    org = Org(code, name, location, datetime.now(UTC), by)
    with home.engine.begin() as connection:
        connection.execute(
            table.insert().values(
                code=org.code,
                name=org.name,
                location=org.location,
                created_at=org.created_at,
                created_by=org.created_by,
            )
        )
    return org


def rename(home: Database, old: str, new: str | None, name: str | None) -> Org:
    """Give organisation OLD the code NEW and/or the name NAME; its data stays where it is."""
    known = {org.code: org for org in registry(home)}
    org = known.get(old)
    if org is None:
        raise _unknown(old, known)
    code = new or old
    check_code(code)
    if code != old and code in known:
        raise OrgError(f"organisation '{code}' already exists; choose another code")
    changes = {"code": code, **({"name": name} if name is not None else {})}
    table = _table()
    if not org.first:  # its own database first: an interrupted rename is finished by running it again
        own = Database(org_url(home.url, org.location))
        try:
            with own.engine.begin() as connection:
                connection.execute(table.update().where(table.c.location == "").values(**changes))
        finally:
            own.close()
    with home.engine.begin() as connection:
        connection.execute(table.update().where(table.c.code == old).values(**changes))
    return Org(code, org.name if name is None else name, org.location, org.created_at, org.created_by)


# -- who acts for which organisation -------------------------------------------------------------------


def current_user() -> tuple[str, list[str]]:
    """The operating-system user running the command and the names of its groups."""
    import getpass
    import grp

    user = getpass.getuser()
    groups = []
    for gid in sorted({os.getgid(), *os.getgroups()}):
        try:
            groups.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return user, groups


def allowed_codes(access: AccessSettings | None, user: str, groups: Iterable[str]) -> set[str] | None:
    """The codes USER (in GROUPS) may act for under `orgs:`; None: every organisation."""
    if access is None:
        return None
    grants = [*access.users.get(user, []), *(code for group in groups for code in access.groups.get(group, []))]
    return None if "*" in grants else set(grants)


def choose(orgs: Sequence[Org], named: str | None, source: str, allowed: set[str] | None, user: str) -> Org:
    """The organisation a command acts for: NAMED (from SOURCE), else the only one the user may see."""
    visible = [org for org in orgs if allowed is None or org.code in allowed]
    if named:
        found = next((org for org in orgs if org.code == named), None)
        if found is not None and found in visible:
            return found
        if found is not None:
            raise OrgError(
                f"user '{user}' may not act for organisation '{named}' ({source}); the `orgs:` section "
                "of compliance.yaml names who may act for which organisation"
            )
        raise _unknown(named, {org.code: org for org in visible}, source)
    if len(visible) == 1:
        return visible[0]
    if not visible:
        raise OrgError(
            f"user '{user}' may act for none of this monitor's organisations; the `orgs:` section "
            "of compliance.yaml names who may act for which organisation"
        )
    codes = ", ".join(org.code for org in visible)
    raise OrgError(
        f"this monitor serves several organisations ({codes}): name one with --org CODE, the "
        "environment variable COMPLIANCE_ORG, or `org: CODE` in compliance.yaml"
    )


def _unknown(code: str, known: dict[str, Org], source: str = "--org") -> OrgError:
    close = difflib.get_close_matches(code, list(known), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "; `compliance org list` shows them"
    return OrgError(f"there is no organisation '{code}' ({source}){hint}")
