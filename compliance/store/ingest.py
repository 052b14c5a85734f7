"""Writing the controls of a scan: their results, their status and their findings, in group commits.

The hot path of every scan. `Store.record_control` turns one control's outcome into a `ControlWrite`
(result rows already encoded) and hands it to the store's `GroupWriter`, which writes the controls
recorded within the last `COMMIT_INTERVAL` together, in one transaction of plain SQL through the driver,
whatever their number of targets: all their results in one executemany, their status in one, one
SELECT of their findings, then (only those that apply) multi-row INSERTs of the findings opened, one
executemany each for the findings still failing or reopened, resolved, or with only a new last status,
and one executemany of their changes. No ORM unit of work (it cost about 0.2 ms per finding, more than
the results it came with), no SQLAlchemy statement layer (the raw driver connection is taken once per
group), and one commit per group instead of one per control: on PostgreSQL a commit waits for a disk
flush, which cost more than the store's own work.

The outcome is the one the ORM version wrote (see `compliance.store` for the rules): a failing target
opens a finding or reopens a resolved one (`times_reopened` + 1) and refreshes its status, message and
last seen; a passing target resolves an open finding (with the passing message); an errored or skipped
target only records its last status; each opening, reopening and resolving is one `finding_changes`
row of this scan.

Durability: a crash of the monitor (kill -9, power loss) loses at most the controls in flight: those
whose checks still run, and those recorded within the last `COMMIT_INTERVAL` (0.1 s) whose group was
not committed yet. A group is committed when its first control is `COMMIT_INTERVAL` old, by the next
`record_control` or by a timer thread when no control follows; `Store.flush()` and `Store.finish_scan`
commit it at once, so a finished (or interrupted, or failed) scan has every control it recorded stored.
A control is always stored whole, and once: its writes are never split over two transactions, and a
group is only forgotten once its commit succeeded. When a group cannot be written (a value the
database refuses, a deadlock with another scan, a lost connection) its controls are written again one
per transaction, so one bad control never takes the others with it; the error of a control that still
fails is raised (by the next `record_control` or `flush` when the timer met it).
On SQLite no lock is held between groups: the write transaction lasts as long as the group's writes.
PostgreSQL commits synchronously, as the server is configured: asynchronous commit (`synchronous_commit
= off`) would save a disk flush per group, but a failing server would then lose controls the monitor
was told were stored, which the monitor promises never to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.db import Database

log = logging.getLogger(__name__)

#: The longest a recorded control waits for its group's commit, in seconds: what a crash may lose.
COMMIT_INTERVAL = 0.1
#: A group holding this many results is committed at once, whatever its age (memory, lock time).
GROUP_RESULTS = 20_000

_RESULT_COLUMNS = ("scan_id", "control_id", "check_index", "plugin", "target", "status", "message", "evidence",
                   "started_at", "duration_ms")
_FINDING_COLUMNS = ("control_id", "target", "state", "last_status", "message", "first_seen", "last_seen",
                    "times_reopened")
#: findings opened per INSERT statement, and controls per SELECT of findings: far below SQLite's and
#: PostgreSQL's limits on parameters
_OPEN_CHUNK = 200
_CONTROLS_CHUNK = 200


@dataclass(frozen=True, slots=True)
class FindingsWork:
    """What the findings of one control need: its target groups as (target, status, message)."""

    control_id: str
    scan_id: int
    targets: Sequence[tuple[str, str, str]]


@dataclass(frozen=True, slots=True)
class ControlWrite:
    """One control's part of a scan, ready for the driver: result rows, status, time and findings' work."""

    scan_id: int
    control_id: str
    rows: list[tuple[Any, ...]]
    status: str
    at: Any  # when it was evaluated, as the driver takes it (naive UTC ISO text on SQLite)
    findings: FindingsWork | None


class _Sql:
    """The statements, in the driver's parameter style (qmark for sqlite3, format for psycopg)."""

    def __init__(self, dialect: str) -> None:
        p = "?" if dialect == "sqlite" else "%s"
        self.mark = p
        self.insert_results = (f"INSERT INTO check_results ({', '.join(_RESULT_COLUMNS)}) "
                               f"VALUES ({', '.join([p] * len(_RESULT_COLUMNS))})")
        self.control_status = f"UPDATE controls SET last_status = {p}, last_evaluated_at = {p} WHERE id = {p}"
        self.findings_head = "SELECT id, control_id, target, state, last_status FROM findings WHERE control_id IN "
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


class _PipelineAborted(logging.Filter):
    """Drops psycopg's warning that the pipeline of an executemany was aborted: it comes with the error
    that aborted it, which the scan raises (and explains: a full disk, ...), so it only repeats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("error ignored terminating") and "pipeline aborted" in message)


_PIPELINE_FILTER = _PipelineAborted()


def _threads_may_share(db: Database) -> bool:
    """Whether a connection of db's pool reaches the same database from every thread (not so for an
    in-memory SQLite database: each thread has its own)."""
    from compliance.db import sqlite_file

    return db.dialect != "sqlite" or sqlite_file(db.url) is not None


class GroupWriter:
    """Writes the controls recorded within `interval` seconds in one transaction (see the module docstring).

    Thread-safe: a timer thread commits a group that no further control follows. With `interval` 0 each
    control is committed as it is added.
    """

    def __init__(self, db: Database, interval: float = COMMIT_INTERVAL) -> None:
        self.db = db
        self.interval = interval if _threads_may_share(db) else 0.0
        #: (scan id, control id) of the controls that could not be stored (their error was raised)
        self.lost: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self._group: list[ControlWrite] = []
        self._results = 0
        self._opened = 0.0
        self._generation = 0  # of the open group, so that a late timer leaves the next group alone
        self._timer: threading.Timer | None = None
        self._error: Exception | None = None

    def add(self, write: ControlWrite) -> None:
        """Add a control to the open group; commit the group when it is due."""
        with self._lock:
            self._raise_error()
            self._group.append(write)
            self._results += len(write.rows)
            now = time.monotonic()
            if len(self._group) == 1:
                self._opened = now
                self._start_timer()
            if now - self._opened >= self.interval or self._results >= GROUP_RESULTS:
                self._commit()

    def flush(self) -> None:
        """Commit the open group now: every control added so far is stored when this returns.

        Raises the error of a control that could not be stored (also one the timer met).
        """
        with self._lock:
            self._raise_error()
            self._commit()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _start_timer(self) -> None:
        if self.interval <= 0:
            return
        timer = threading.Timer(self.interval, self._due, (self._generation,))
        timer.name = "compliance-group-commit"
        timer.start()  # not a daemon: a group open when the program ends is committed before it exits
        self._timer = timer

    def _due(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or not self._group:
                return
            try:
                self._commit()
            except Exception as exc:
                log.debug("storing a group of controls failed: %s", exc)  # raised by the next add or flush
                self._error = exc

    def _commit(self) -> None:
        group = self._group
        if not group:
            return
        timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        try:
            _write(self.db, group)
        except _CommitUnknown as unknown:
            self._close_group()  # perhaps stored: never written twice
            self.lost.update((write.scan_id, write.control_id) for write in group)
            raise unknown.error from None
        except Exception as exc:
            self._close_group()
            if len(group) == 1:
                self.lost.add((group[0].scan_id, group[0].control_id))
                raise
            log.debug("a group of %d controls could not be written (%s); writing them one by one", len(group), exc)
            self._one_by_one(group)
        except BaseException:
            self._start_timer()  # interrupted (Ctrl-C): the group stays open, for flush or the timer
            raise
        else:
            self._close_group()

    def _close_group(self) -> None:
        self._group, self._results = [], 0
        self._generation += 1

    def _one_by_one(self, group: list[ControlWrite]) -> None:
        """Write each control of a group that failed in its own transaction; raise the first error left."""
        first: Exception | None = None
        for write in group:
            try:
                _write(self.db, [write])
            except _CommitUnknown as unknown:
                self.lost.add((write.scan_id, write.control_id))
                first = first or unknown.error
            except Exception as exc:
                self.lost.add((write.scan_id, write.control_id))
                first = first or exc
        if first is not None:
            raise first


class _CommitUnknown(Exception):
    """The commit failed with the connection: whether the server committed is unknown, so the group must
    not be written again (it might be stored twice)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _write(db: Database, group: list[ControlWrite]) -> None:
    """Write a group of controls in one transaction, committed at the end (rolled back on any error).

    Driver errors are raised as SQLAlchemy's (`sqlalchemy.exc.OperationalError`, ...), as the rest of the
    monitor sees them, so that `compliance.db.explain` finds a full disk or a read-only database.
    """
    sql = _sql(db.dialect)
    if db.dialect == "postgresql":
        logging.getLogger("psycopg").addFilter(_PIPELINE_FILTER)  # once: a logger keeps a filter only once
    connection = db.engine.raw_connection()
    statement: str | None = None
    try:
        cursor = connection.cursor()
        rows = [row for write in group for row in write.rows]
        if rows:
            # rows are encoded once by the caller and go to the driver's executemany
            statement = sql.insert_results
            cursor.executemany(statement, rows)
        # rows of other transactions are locked in the order of their keys, so that two scans storing the
        # same controls at once cannot wait on each other in a circle
        ordered = sorted(group, key=lambda write: write.control_id)
        statement = sql.control_status
        cursor.executemany(statement, [(w.status, w.at, w.control_id) for w in ordered])
        work = [w for w in ordered if w.findings is not None]
        if work:
            statement = "(the findings' statements)"
            _write_findings(cursor, sql, work)
        statement = "COMMIT"
        connection.commit()
    except BaseException as exc:
        with suppress(Exception):
            connection.rollback()
        error = _wrapped(db, exc, statement)
        driver = getattr(connection, "dbapi_connection", None)
        lost_with_connection = bool(getattr(driver, "broken", False) or getattr(driver, "closed", False))
        if statement == "COMMIT" and db.dialect != "sqlite" and lost_with_connection and isinstance(error, Exception):
            raise _CommitUnknown(error) from error
        if error is exc:
            raise
        raise error from exc
    finally:
        connection.close()  # back to the pool


def _wrapped(db: Database, exc: BaseException, statement: str | None) -> BaseException:
    """A driver error as SQLAlchemy raises it from its own statements; any other exception as it is."""
    import sqlalchemy

    dialect = db.engine.dialect
    base = getattr(dialect.loaded_dbapi, "Error", None)
    if base is None or not isinstance(exc, base):
        return exc
    wrapped: BaseException = sqlalchemy.exc.DBAPIError.instance(statement, None, exc, base, hide_parameters=True,
                                                                 dialect=dialect)
    return wrapped


def _write_findings(cursor: Any, sql: _Sql, group: list[ControlWrite]) -> None:
    existing: dict[tuple[str, str], tuple[Any, ...]] = {}
    ids = [write.control_id for write in group]
    for start in range(0, len(ids), _CONTROLS_CHUNK):
        some = ids[start:start + _CONTROLS_CHUNK]
        cursor.execute(sql.findings_head + "(" + ", ".join([sql.mark] * len(some)) + ")", some)
        for row in cursor.fetchall():
            existing[(row[1], row[2])] = row
    opened: list[tuple[Any, ...]] = []
    failing: list[tuple[Any, ...]] = []
    resolved: list[tuple[Any, ...]] = []
    status_only: list[tuple[Any, ...]] = []
    changes: list[list[Any]] = []  # in the order of the targets; an opened finding's id is known after its INSERT
    new_ids: dict[tuple[str, str], list[Any]] = {}
    for write in group:
        work = write.findings
        assert work is not None
        control_id, scan_id, at = work.control_id, work.scan_id, write.at
        for target, status, message in work.targets:
            found = existing.get((control_id, target))
            if status == "fail":
                if found is None:
                    opened.append((control_id, target, "open", status, message, at, at, 0))
                    change = [None, None, "open", at, scan_id]
                    new_ids[(control_id, target)] = change
                    changes.append(change)
                else:
                    finding_id, _, _, state, _ = found
                    if state == "resolved":
                        changes.append([finding_id, "resolved", "open", at, scan_id])
                    failing.append((status, message, at, finding_id))
            elif found is not None:
                finding_id, _, _, state, last_status = found
                if status == "pass" and state == "open":
                    changes.append([finding_id, "open", "resolved", at, scan_id])
                    resolved.append((at, status, message, finding_id))
                elif status != last_status:
                    status_only.append((status, finding_id))
    for start in range(0, len(opened), _OPEN_CHUNK):
        chunk = opened[start:start + _OPEN_CHUNK]
        statement = sql.open_head + ", ".join([sql.open_row] * len(chunk)) + " RETURNING id, control_id, target"
        cursor.execute(statement, tuple(value for row in chunk for value in row))
        for finding_id, control_id, target in cursor.fetchall():
            new_ids[(control_id, target)][0] = finding_id
    if failing:
        cursor.executemany(sql.failing, failing)
    if resolved:
        cursor.executemany(sql.resolve, resolved)
    if status_only:
        cursor.executemany(sql.status, status_only)
    if changes:
        cursor.executemany(sql.changes, [tuple(change) for change in changes])
