"""Writing one control's scan outcome: its results, its status and its findings, in one transaction.

The hot path of every scan. Per control it runs a fixed handful of plain SQL statements through the
driver, whatever the number of targets: the results in one executemany, the control's status, one
SELECT of the control's findings, then (only those that apply) one multi-row INSERT of the findings
opened, one executemany each for the findings still failing or reopened, resolved, or with only a new
last status, and one executemany of their changes. No ORM unit of work: that cost about 0.2 ms per
finding, more than the results it came with.

The outcome is the one the ORM version wrote (see `compliance.store` for the rules): a failing target
opens a finding or reopens a resolved one (`times_reopened` + 1) and refreshes its status, message and
last seen; a passing target resolves an open finding (with the passing message); an errored or skipped
target only records its last status; each opening, reopening and resolving is one `finding_changes`
row of this scan.

Durability: one commit per control, so a crash of the monitor loses at most the controls in flight.
PostgreSQL commits synchronously, as the server is configured: asynchronous commit (`synchronous_commit
= off`) would save a disk flush per control, but a failing server would then lose controls the monitor
was told were stored, which the monitor promises never to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.db import Database

_RESULT_COLUMNS = ("scan_id", "control_id", "check_index", "plugin", "target", "status", "message", "evidence",
                   "started_at", "duration_ms")
_FINDING_COLUMNS = ("control_id", "target", "state", "last_status", "message", "first_seen", "last_seen",
                    "times_reopened")
#: findings opened per INSERT statement: 8 parameters a row stays far below SQLite's and PostgreSQL's limits
_OPEN_CHUNK = 200


@dataclass(frozen=True, slots=True)
class FindingsWork:
    """What the findings of one control need: its target groups as (target, status, message)."""

    control_id: str
    scan_id: int
    targets: Sequence[tuple[str, str, str]]


class _Sql:
    """The statements, in the driver's parameter style (qmark for sqlite3, format for psycopg)."""

    def __init__(self, dialect: str) -> None:
        p = "?" if dialect == "sqlite" else "%s"
        self.mark = p
        self.insert_results = (f"INSERT INTO check_results ({', '.join(_RESULT_COLUMNS)}) "
                               f"VALUES ({', '.join([p] * len(_RESULT_COLUMNS))})")
        self.control_status = f"UPDATE controls SET last_status = {p}, last_evaluated_at = {p} WHERE id = {p}"
        self.findings = f"SELECT id, target, state, last_status FROM findings WHERE control_id = {p}"
        self.open_row = f"({', '.join([p] * len(_FINDING_COLUMNS))})"
        self.open_head = f"INSERT INTO findings ({', '.join(_FINDING_COLUMNS)}) VALUES "
        # still failing, or failing again: a resolved finding is reopened (SET reads the row's old values)
        self.failing = (f"UPDATE findings SET times_reopened = times_reopened + "
                        f"CASE WHEN state = 'resolved' THEN 1 ELSE 0 END, state = 'open', resolved_at = NULL, "
                        f"last_status = {p}, message = {p}, last_seen = {p} WHERE id = {p}")
        self.resolve = (f"UPDATE findings SET state = 'resolved', resolved_at = {p}, last_status = {p}, "
                        f"message = {p} WHERE id = {p}")
        self.status = f"UPDATE findings SET last_status = {p} WHERE id = {p}"
        self.changes = (f"INSERT INTO finding_changes (finding_id, from_state, to_state, at, scan_id) "
                        f"VALUES ({p}, {p}, {p}, {p}, {p})")


_STATEMENTS: dict[str, _Sql] = {}


def _sql(dialect: str) -> _Sql:
    sql = _STATEMENTS.get(dialect)
    if sql is None:
        sql = _STATEMENTS[dialect] = _Sql(dialect)
    return sql


def _time(value: datetime, dialect: str) -> Any:
    """A UTC time as the models store it: naive ISO text with microseconds on SQLite, timestamptz on PostgreSQL."""
    if dialect == "sqlite":
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


def write_control(db: Database, control_id: str, rows: list[tuple[Any, ...]], status: str, now: datetime,
                  findings: FindingsWork | None) -> None:
    """Store a control's result rows (already encoded), its status, and (when given) its findings' work,
    in one transaction committed at the end."""
    dialect = db.dialect
    sql = _sql(dialect)
    at = _time(now, dialect)
    with db.engine.begin() as connection:
        run = connection.exec_driver_sql
        if rows:
            # rows are encoded once by the caller and go to the driver's executemany: SQLAlchemy's
            # per-row parameter processing cost more than the insert
            run(sql.insert_results, rows)
        run(sql.control_status, (status, at, control_id))
        if findings is not None:
            _write_findings(run, sql, findings, at)


def _write_findings(run: Any, sql: _Sql, work: FindingsWork, at: Any) -> None:
    existing = {row[1]: row for row in run(sql.findings, (work.control_id,))}
    opened: list[tuple[Any, ...]] = []
    failing: list[tuple[Any, ...]] = []
    resolved: list[tuple[Any, ...]] = []
    status_only: list[tuple[Any, ...]] = []
    changes: list[list[Any]] = []  # in the order of the targets; an opened finding's id is known after its INSERT
    new_ids: dict[str, list[Any]] = {}
    for target, status, message in work.targets:
        found = existing.get(target)
        if status == "fail":
            if found is None:
                opened.append((work.control_id, target, "open", status, message, at, at, 0))
                change = [None, None, "open", at, work.scan_id]
                new_ids[target] = change
                changes.append(change)
            else:
                finding_id, _, state, _ = found
                if state == "resolved":
                    changes.append([finding_id, "resolved", "open", at, work.scan_id])
                failing.append((status, message, at, finding_id))
        elif found is not None:
            finding_id, _, state, last_status = found
            if status == "pass" and state == "open":
                changes.append([finding_id, "open", "resolved", at, work.scan_id])
                resolved.append((at, status, message, finding_id))
            elif status != last_status:
                status_only.append((status, finding_id))
    for start in range(0, len(opened), _OPEN_CHUNK):
        chunk = opened[start:start + _OPEN_CHUNK]
        statement = sql.open_head + ", ".join([sql.open_row] * len(chunk)) + " RETURNING id, target"
        for finding_id, target in run(statement, tuple(value for row in chunk for value in row)):
            new_ids[target][0] = finding_id
    if failing:
        run(sql.failing, failing)
    if resolved:
        run(sql.resolve, resolved)
    if status_only:
        run(sql.status, status_only)
    if changes:
        run(sql.changes, [tuple(change) for change in changes])
