"""Storing scans, results and findings; reading findings; keeping risk exceptions.

How results become findings. A control's results are grouped by target (with `combine: any`, all
results form one group, target `*`); each group gets one status:

- `combine: all`: fail if any result fails, else error if any errored, else skipped if all were
  skipped, else pass;
- `combine: any`: pass if any result passes, else fail if any failed, else error if any errored,
  else skipped.

A group that fails opens a finding for (control, target), or reopens a resolved one; a group that
passes resolves an open finding; error and skipped leave the state as it is. The control's own status
is the worst of its groups: fail, error, pass, skipped (skipped only when every group was skipped).
An open finding counts as *accepted* while an unrevoked exception whose target pattern matches covers
it and its end date has not passed (in the configured time zone); after that it is failing again.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar, overload

from compliance.errors import ComplianceError
from compliance.status import Status

if TYPE_CHECKING:
    from sqlalchemy import Table

    from compliance.catalog import Catalog, Control
    from compliance.db import Database
    from compliance.engine import TaskOutcome
    from compliance.store.ingest import GroupWriter

_T = TypeVar("_T")

_ALL_ORDER = (Status.FAIL, Status.ERROR, Status.PASS)


def combine(statuses: Iterable[Status], mode: str = "all") -> Status:
    """One status for a group of results, by the rules in this module's docstring."""
    seen = set(statuses)
    if not seen or seen == {Status.SKIPPED}:
        return Status.SKIPPED
    order = (Status.PASS, Status.FAIL, Status.ERROR) if mode == "any" else _ALL_ORDER
    return next(s for s in order if s in seen)


def control_status(group_statuses: Iterable[Status]) -> Status:
    """A control's status: the worst of its target groups."""
    return combine(group_statuses, "all")


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    target: str
    status: Status
    message: str
    accepted: bool = False


class _Lazy(Sequence[_T]):
    """A sequence made from compact rows when read: compared, hashed and shown as the tuple of its items.

    One object per control rather than one object per result or target: a scan keeps every control's
    outcome until it ends, and each object kept is one more for the garbage collector to go through,
    again and again (in a scan of 100,000 results those objects cost more than storing the results).
    Subclasses give `__iter__` and `__len__`; callers iterate, indexing builds the tuple.
    """

    __slots__ = ()

    @overload
    def __getitem__(self, index: int) -> _T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[_T]: ...

    def __getitem__(self, index: int | slice) -> _T | Sequence[_T]:
        return tuple(self)[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


class ScanTargets(_Lazy[TargetOutcome]):
    """A control's target outcomes, kept as plain tuples of text (target, status, message, accepted)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Sequence[tuple[str, str, str, bool]]) -> None:
        self._rows = tuple(rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[TargetOutcome]:
        for target, status, message, accepted in self._rows:
            yield TargetOutcome(target, Status(status), message, accepted)


class ScanResults(_Lazy[tuple[str, int, Any]]):
    """A control's results as (plugin, check_index, Result), read from its task outcomes when asked."""

    __slots__ = ("_count", "_outcomes")

    def __init__(self, outcomes: Sequence[TaskOutcome]) -> None:
        self._outcomes = tuple(outcomes)
        self._count = sum(len(o.results) for o in self._outcomes)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[str, int, Any]]:
        for outcome in self._outcomes:
            plugin, check_index = outcome.task.plugin, outcome.task.check_index
            for result in outcome.results:
                yield plugin, check_index, result


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    """A control's verdict in one scan, per target and overall, and the results behind it."""

    control_id: str
    severity: str
    status: Status
    targets: Sequence[TargetOutcome]
    results: Sequence[tuple[str, int, Any]]  # (plugin, check_index, Result)

    @property
    def accepted(self) -> bool:
        """Failing, but every failing target is covered by an exception in force."""
        failing = [t for t in self.targets if t.status == Status.FAIL]
        return self.status == Status.FAIL and bool(failing) and all(t.accepted for t in failing)


@dataclass
class ScanState:
    """What a scan reads once instead of once per control: exceptions in force, and which controls
    have findings at all (a passing control without findings needs no finding look-up)."""

    exceptions: list[ExceptionView]
    controls_with_findings: set[str]


@dataclass(frozen=True, slots=True)
class FindingView:
    id: int
    control_id: str
    title: str
    severity: str
    target: str
    state: str  # open | accepted | resolved
    last_status: str
    message: str
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    exception_id: int | None
    exception_until: date | None


@dataclass(frozen=True, slots=True)
class ExceptionView:
    id: int
    control_id: str
    target_pattern: str
    reason: str
    approved_by: str
    until: date
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    risk_analysis: str | None = None  # the reference of the risk analysis behind accepting the risk

    def in_force(self, today: date) -> bool:
        return self.revoked_at is None and today <= self.until

    def covers(self, control_id: str, target: str) -> bool:
        return self.control_id == control_id and fnmatch.fnmatchcase(target, self.target_pattern)

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_at is not None else "active"


def _now() -> datetime:
    return datetime.now(UTC)


_OWNER_MARK = "#"  # between host name and process start time in `scans.host`; no host name contains it
_HOST_KEPT = 255 - 21  # `scans.host` is 255 characters: room for the mark and a start time


def _owner() -> tuple[str, int]:
    """This process as a scan's owner: the `scans.host` value and the PID.

    The host value is the host name followed by the process's start time ("web1#81522", clock ticks since
    boot, on Linux), so that another process that got the same PID later (PID 1 in every container) is
    not taken for the owner of a scan that died. Elsewhere it is the host name alone.
    """
    import os
    import socket

    host, pid = socket.gethostname()[:_HOST_KEPT], os.getpid()
    started = process_start(pid)
    return (f"{host}{_OWNER_MARK}{started}" if started is not None else host), pid


def process_start(pid: int) -> int | None:
    """When process pid started, in clock ticks since boot (field 22 of /proc/PID/stat); None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # the command name (field 2) may hold spaces and parentheses: count fields after its last ')'
            fields = stat.read().rpartition(")")[2].split()
        return int(fields[22 - 3])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, started: int | None) -> bool:
    """Whether the process that owns a scan still runs: pid exists and, when known, started at `started`."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    if started is None:
        return True
    now_started = process_start(pid)
    return now_started is None or now_started == started


def _owner_start(host: str) -> int | None:
    """The process start time stored in a `scans.host` value, None for one stored without."""
    _, mark, started = host.partition(_OWNER_MARK)
    return int(started) if mark and started.isdigit() else None


@dataclass(frozen=True, slots=True)
class NewScan:
    """A scan just added: its id and when it started."""

    id: int
    started_at: datetime


def new_scan(connection: Any, trigger: str) -> NewScan:
    """Add a running scan, owned by this process, through connection (a Core connection or an ORM
    session, in its transaction); the scan's id is known when this returns."""
    from sqlalchemy import insert

    from compliance.db.schema import scans

    host, pid = _owner()
    started = _now()
    inserted = connection.execute(insert(scans).values(started_at=started, trigger=trigger, status="running",
                                                       host=host, pid=pid))
    return NewScan(inserted.inserted_primary_key[0], started)


def close_interrupted(connection: Any, scan: Any) -> None:
    """Mark a scan whose process is gone as interrupted: its stored controls stay, and it ends at its last
    stored result. `scan` is its row (id, started_at); connection a Core connection or an ORM session."""
    from sqlalchemy import func, select, update

    from compliance.db.schema import check_results, scans

    r = check_results.c
    stored = select(func.max(r.started_at), func.count(), func.count(r.control_id.distinct()))
    last, results, controls = connection.execute(stored.where(r.scan_id == scan.id)).one()
    connection.execute(update(scans).where(scans.c.id == scan.id).values(
        status="interrupted", finished_at=last or scan.started_at, results_total=results, controls_total=controls))


#: The length of the `target` columns of check results and findings.
TARGET_LENGTH = 500


def storable(value: Any) -> Any:
    """value with every NUL character in its texts (keys and values, however deep) written as `\\0`.

    PostgreSQL stores no NUL in text or JSON, and a check may well report one (a path "/srv/a\\0b" in
    a control, a plugin's message quoting binary data): one such value would abort the whole scan.
    """
    if isinstance(value, str):
        return value.replace("\0", "\\0") if "\0" in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def storable_target(target: str) -> str:
    """A check's target as stored: NUL written as `\\0`, cut to the column's length with a mark, so
    that the same target always maps to the same finding."""
    text: str = storable(target)
    return text if len(text) <= TARGET_LENGTH else text[:TARGET_LENGTH - 1] + "…"


def _sqlite_time(value: datetime) -> str:
    """A UTC time as SQLAlchemy stores it in SQLite (naive, microseconds), so the ORM reads it back."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # str() is isoformat(sep=" ") and a little faster; it leaves out the microseconds when they are 0
    text = str(value.replace(tzinfo=None))
    return text if value.microsecond else text + ".000000"


def _as_is(value: datetime) -> datetime:
    return value


def _json_encoder() -> Callable[[Any], str]:
    """`json.dumps` with its default options, without its set-up on every call (two thirds of its time on
    a result's small evidence): the C encoder `json.dumps` itself uses, made once. Without the circular
    reference check: the engine encoded the evidence once already (`compliance.engine._bounded`). Plain
    `json.dumps` where the C encoder is missing or encodes otherwise."""
    import json.encoder

    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed: CPython's _json
    if c_make_encoder is None:
        return json.dumps
    try:
        iterencode = c_make_encoder(None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None,
                                    ": ", ", ", False, False, True)
    except TypeError:  # another Python's signature
        return json.dumps

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    sample = {"a": [1, 2.5, None, True, "\u00e9\0\n"], "b": {"c": float("nan"), "d": []}, "e": "x"}
    return encode if encode(sample) == json.dumps(sample) else json.dumps


_encode_json = _json_encoder()


class Store:
    """The monitor's storage operations, each in its own transaction."""

    def __init__(self, db: Database, zone: tzinfo = UTC, *, commit_interval: float | None = None) -> None:
        self.db = db
        self.zone = zone
        self.commit_interval = commit_interval  # None: `compliance.store.ingest.COMMIT_INTERVAL`
        self._writer: GroupWriter | None = None

    def today(self, now: datetime | None = None) -> date:
        return (now or _now()).astimezone(self.zone).date()

    # controls -------------------------------------------------------------------------------------

    def sync_controls(self, catalog: Catalog | Sequence[Control], *, deactivate_missing: bool = False) -> int:
        """Insert or update the controls from YAML; return how many changed. A disabled control is stored
        inactive; optionally controls no longer in the catalog are deactivated too (their history stays).

        Each control is written with an upsert, so that two processes syncing the same new controls at
        once (the daemon and a manual scan after the YAML changed) both succeed.
        """
        from sqlalchemy import select, update

        from compliance.db.schema import controls

        now = _now()
        changed = 0
        c = controls.c
        with self.db.engine.begin() as connection:
            stored = {cid: (digest, active) for cid, digest, active in
                      connection.execute(select(c.id, c.content_hash, c.active))}
            seen = set()
            for control in catalog:
                seen.add(control.id)
                digest = control.content_hash()
                if stored.get(control.id) == (digest, control.enabled):
                    continue
                changed += 1
                # a control switched off (enabled: false) is out of scans and reports, like a removed one
                values = storable({
                    "title": control.title, "description": control.description, "theme": control.theme,
                    "severity": control.severity.value, "owner": control.owner, "schedule": control.schedule,
                    "references": dict(control.references), "tags": list(control.tags),
                    "translations": {lang: dict(texts) for lang, texts in control.translations.items()},
                    "content_hash": digest, "source": control.source, "active": control.enabled,
                })
                connection.execute(self._upsert(controls, {"id": control.id, **values, "synced_at": now},
                                                {**values, "synced_at": now}))
            if deactivate_missing:
                gone = [cid for cid, (_, active) in stored.items() if cid not in seen and active]
                if gone:
                    connection.execute(update(controls).where(c.id.in_(gone)).values(active=False, synced_at=now))
                    changed += len(gone)
        return changed

    def _upsert(self, table: Table, row: dict[str, Any], changes: dict[str, Any]) -> Any:
        """INSERT row into table, or on a conflict of its primary key UPDATE it with changes (SQLite and
        PostgreSQL)."""
        if self.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).values(row).on_conflict_do_update(index_elements=["id"], set_=changes)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).values(row).on_conflict_do_update(index_elements=["id"], set_=changes)

    # scans ----------------------------------------------------------------------------------------

    def scan_state(self, now: datetime | None = None) -> ScanState:
        from sqlalchemy import select

        from compliance.db.schema import findings

        with self.db.engine.connect() as connection:
            with_findings = set(connection.scalars(select(findings.c.control_id).distinct()))
        return ScanState(self.exceptions(include_inactive=False, now=now), with_findings)

    def start_scan(self, trigger: str) -> tuple[int, datetime]:
        with self.db.engine.begin() as connection:
            scan = new_scan(connection, trigger)
        return scan.id, scan.started_at

    def close_abandoned_scans(self) -> list[int]:
        """Mark scans that a process on this machine left `running` when it died as interrupted.

        A scan's owner is its host, PID and the process's start time: a live process with the PID that
        started at another time (the PID was reused) is not the owner. Scans of other machines, and of
        processes still alive here, are left alone. Returns their ids.
        """
        from sqlalchemy import select

        from compliance.db.schema import scans

        host = _owner()[0].partition(_OWNER_MARK)[0]
        closed = []
        s = scans.c
        with self.db.engine.begin() as connection:
            running = select(s.id, s.started_at, s.host, s.pid).where(
                s.status == "running", s.host.startswith(host, autoescape=True)).order_by(s.id)
            for scan in connection.execute(running).all():
                owner = scan.host or ""
                if owner.partition(_OWNER_MARK)[0] != host or scan.pid is None:
                    continue
                if not _alive(scan.pid, _owner_start(owner)):
                    close_interrupted(connection, scan)
                    closed.append(scan.id)
        return closed

    def finish_scan(self, scan_id: int, status: str, outcomes: Sequence[ControlOutcome]) -> datetime:
        """Commit the controls recorded and not yet committed, then close the scan with its counts.

        When they cannot all be stored, the scan is closed as failed, without them, and the error raised.
        """
        try:
            self.flush()
        except Exception:
            self._finish_scan(scan_id, "failed", self._stored(scan_id, outcomes))
            raise
        return self._finish_scan(scan_id, status, self._stored(scan_id, outcomes))

    def flush(self) -> None:
        """Commit every control recorded so far (`record_control` commits in groups): when this returns
        they are stored. Raises the error of a control that could not be stored."""
        if self._writer is not None:
            self._writer.flush()

    def _stored(self, scan_id: int, outcomes: Sequence[ControlOutcome]) -> Sequence[ControlOutcome]:
        lost = self._writer.lost if self._writer is not None else set()
        return [o for o in outcomes if (scan_id, o.control_id) not in lost] if lost else outcomes

    def _finish_scan(self, scan_id: int, status: str, outcomes: Sequence[ControlOutcome]) -> datetime:
        from sqlalchemy import update
        from sqlalchemy.exc import NoResultFound

        from compliance.db.schema import scans

        finished = _now()
        counts = defaultdict(int, {s: 0 for s in Status})
        for outcome in outcomes:
            counts[outcome.status] += 1
        with self.db.engine.begin() as connection:
            updated = connection.execute(update(scans).where(scans.c.id == scan_id).values(
                finished_at=finished, status=status, controls_total=len(outcomes),
                controls_passed=counts[Status.PASS], controls_failed=counts[Status.FAIL],
                controls_error=counts[Status.ERROR], controls_skipped=counts[Status.SKIPPED],
                results_total=sum(len(o.results) for o in outcomes)))
            if updated.rowcount != 1:
                raise NoResultFound(f"no scan with id {scan_id}")
        return finished

    def record_control(
        self, scan_id: int, control: Control, outcomes: Sequence[TaskOutcome],
        state: ScanState | None = None,
    ) -> ControlOutcome:
        """Store one control's results and update its findings, in the transaction of its group.

        The control must have been synced. `state` is the scan's `scan_state()` (loaded when not given).

        This is the hot path of every scan (see `compliance.store.ingest`): the controls recorded within
        the last `COMMIT_INTERVAL` (0.1 s) are written together, with a fixed handful of plain SQL
        statements whatever their number of targets, and committed together, at most that long after
        this returns (by the next call, or by a timer), or at once by `flush()` and `finish_scan()`. So a
        crash loses at most the controls in flight, never part of a control; a control that could not
        be stored raises its error here or in `flush()`/`finish_scan()`.
        """
        from compliance.store.ingest import ControlWrite, FindingsWork, GroupWriter

        now = _now()
        time_param = _sqlite_time if self.db.dialect == "sqlite" else _as_is
        encode = _encode_json
        control_id = control.id
        rows: list[tuple[Any, ...]] = []
        groups: dict[str, list[Any]] = {}
        by_target = control.combine != "any"
        for outcome in outcomes:
            task = outcome.task
            plugin, check_index = task.plugin, task.check_index
            started_at, duration_ms = time_param(outcome.started_at), int(outcome.duration * 1000)
            for result in outcome.results:
                target, message = result.target, result.message
                if len(target) > TARGET_LENGTH or "\0" in target:
                    target = storable_target(target)
                if "\0" in message:
                    message = storable(message)
                evidence = encode(result.evidence)
                if "\\u0000" in evidence:  # a NUL somewhere in it (or a text holding "\u0000": no harm)
                    evidence = encode(storable(result.evidence))
                rows.append((scan_id, control_id, check_index, plugin, target, result.status._value_, message,
                             evidence, started_at, duration_ms))
                key = target if by_target else "*"
                members = groups.get(key)
                if members is None:
                    groups[key] = [result]
                else:
                    members.append(result)
        if state is None:
            state = self.scan_state(now)
        exceptions = [e for e in state.exceptions if e.control_id == control.id]
        targets: list[tuple[str, str, str, bool]] = []
        seen: set[Status] = set()
        for target, members in groups.items():
            if len(members) == 1:
                deciding = members[0]
                status = deciding.status
            else:
                status = combine((r.status for r in members), control.combine)
                deciding = next((r for r in members if r.status == status), members[0])
            accepted = status == Status.FAIL and bool(exceptions) and any(e.covers(control.id, target)
                                                                          for e in exceptions)
            message = deciding.message
            seen.add(status)
            targets.append((target, status._value_, storable(message) if "\0" in message else message, accepted))
        overall = control_status(seen)

        findings = None
        if control.id in state.controls_with_findings or overall == Status.FAIL:
            findings = FindingsWork(control.id, scan_id, [(t, s, m) for t, s, m, _ in targets])
        writer = self._writer
        if writer is None:
            writer = self._writer = (GroupWriter(self.db) if self.commit_interval is None
                                     else GroupWriter(self.db, self.commit_interval))
        writer.add(ControlWrite(scan_id, control.id, rows, overall.value, time_param(now), findings))
        if findings is not None:
            state.controls_with_findings.add(control.id)
        return ControlOutcome(control.id, control.severity.value, overall, ScanTargets(targets),
                              ScanResults(outcomes))

    # findings -------------------------------------------------------------------------------------

    def findings(self, state: str = "open", now: datetime | None = None) -> list[FindingView]:
        """Findings in a state: open (failing, not accepted), accepted, resolved, or all.

        Ordered by severity (critical first), then by how long they have been open. Read with Core
        (`compliance.db.schema`), so that `compliance findings` starts without the ORM.
        """
        from sqlalchemy import select

        from compliance.db.schema import controls, findings
        from compliance.severity import Severity

        if state not in ("open", "accepted", "resolved", "all"):
            raise ComplianceError(f"unknown finding status '{state}'; use open, accepted, resolved or all")
        now = now or _now()
        f = findings.c
        stmt = select(f.id, f.control_id, f.target, f.state, f.last_status, f.message, f.first_seen, f.last_seen,
                      f.resolved_at, controls.c.title, controls.c.severity).join_from(
            findings, controls, controls.c.id == f.control_id)
        if state in ("open", "accepted"):
            stmt = stmt.where(f.state == "open")
        elif state == "resolved":
            stmt = stmt.where(f.state == "resolved")
        exceptions = self.exceptions(include_inactive=False, now=now)
        views = []
        with self.db.engine.connect() as connection:
            for finding in connection.execute(stmt):
                cover = None
                if finding.state == "open":
                    cover = next((e for e in exceptions if e.covers(finding.control_id, finding.target)), None)
                effective = "accepted" if cover is not None else finding.state
                if state in ("open", "accepted") and effective != state:
                    continue
                views.append(FindingView(
                    finding.id, finding.control_id, finding.title, finding.severity, finding.target, effective,
                    finding.last_status, finding.message, finding.first_seen, finding.last_seen,
                    finding.resolved_at, cover.id if cover else None, cover.until if cover else None,
                ))
        rank = {s.value: s.rank for s in Severity}
        views.sort(key=lambda v: (v.state != "open", -rank.get(v.severity, 0), v.first_seen, v.control_id, v.target))
        return views

    # exceptions -----------------------------------------------------------------------------------

    def add_exception(
        self, control_id: str, *, reason: str, approved_by: str, until: date, created_by: str,
        target_pattern: str = "*", now: datetime | None = None, risk_analysis: str | None = None,
    ) -> ExceptionView:
        from compliance.db.models import RiskException

        now = now or _now()
        if not reason.strip():
            raise ComplianceError("an exception needs a reason (--reason)")
        if not approved_by.strip():
            raise ComplianceError("an exception needs the name of who approved it (--approved-by)")
        if until < self.today(now):
            raise ComplianceError(f"--until {until.isoformat()} lies in the past; give the last day the "
                                  "risk is accepted, today or later")
        _check_lengths({"--approved-by": (approved_by.strip(), 200), "--by": (created_by, 200),
                        "--target": (target_pattern, 500), "--risk-analysis": ((risk_analysis or "").strip(), 500)})
        with self.db.transaction() as session:
            row = RiskException(control_id=control_id, target_pattern=target_pattern or "*", reason=reason.strip(),
                                approved_by=approved_by.strip(), until=until, created_at=now,
                                created_by=created_by, risk_analysis=(risk_analysis or "").strip() or None)
            session.add(row)
            session.flush()
            return _exception_view(row)

    def exceptions(self, *, include_inactive: bool = True, now: datetime | None = None) -> list[ExceptionView]:
        """Every exception, or only those in force today, oldest first (read with Core: no ORM)."""
        from sqlalchemy import select

        from compliance.db.schema import exceptions

        today = self.today(now)
        with self.db.engine.connect() as connection:
            views = [_exception_view(r) for r in connection.execute(select(exceptions).order_by(exceptions.c.id))]
        return views if include_inactive else [v for v in views if v.in_force(today)]

    def revoke_exception(self, exception_id: int, *, by: str, reason: str = "",
                         now: datetime | None = None) -> ExceptionView:
        from compliance.db.models import RiskException

        _check_lengths({"--by": (by, 200)})
        with self.db.transaction() as session:
            row = session.get(RiskException, exception_id)
            if row is None:
                raise ComplianceError(f"no exception with id {exception_id} (see `compliance exceptions list`)")
            if row.revoked_at is not None:
                raise ComplianceError(f"exception {exception_id} was already revoked on "
                                      f"{row.revoked_at.date().isoformat()} by {row.revoked_by}")
            row.revoked_at, row.revoked_by, row.revoke_reason = now or _now(), by, reason or None
            return _exception_view(row)


def _check_lengths(values: dict[str, tuple[str, int]]) -> None:
    """Refuse an option's value longer than its column holds (PostgreSQL would refuse it mid-transaction)."""
    for option, (value, limit) in values.items():
        if len(value) > limit:
            raise ComplianceError(f"{option} is {len(value)} characters long; at most {limit} fit: shorten it")


def _exception_view(row: Any) -> ExceptionView:
    return ExceptionView(row.id, row.control_id, row.target_pattern, row.reason, row.approved_by, row.until,
                         row.created_at, row.created_by, row.revoked_at, row.revoked_by, row.revoke_reason,
                         row.risk_analysis)
