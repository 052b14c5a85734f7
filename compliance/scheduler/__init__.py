"""The scheduler daemon (`compliance schedule run`): scans on schedule, breach deadline alerts, the digest.

One APScheduler 3 `BackgroundScheduler` keeps its jobs in the monitor's own database (the
`apscheduler_jobs` table). APScheduler 3 does not allow two schedulers on one job store, so daemons
elect a leader first: on PostgreSQL with a session advisory lock (`pg_try_advisory_lock`), which the
server frees the moment the leader's connection ends; on SQLite with a lease row in `scheduler_lock`
that the leader renews every third of `schedule.lease`. Any other daemon waits as a standby and takes
over when the leader is gone. A leader that cannot renew stops its jobs and exits, so that two never
run at once.

Jobs (module-level functions, so the job store keeps a reference, not code):

- `control:<id>`: a control with a `schedule` of its own, on that cron expression;
- `controls:default`: every other enabled control, on `schedule.default`;
- `digest`: the weekly digest, on `digest.cron`, when a channel is configured;
- `notifications`: breach deadline alerts and retries of failed deliveries, every `schedule.alert_interval`,
  when the alerts or the digest have a channel;
- `history:prune`: `compliance db prune` (compliance.history), on `history.cron`, while `history.raw_days` is set.

A job without a channel is planned but off: `schedule list` shows it with why, and the daemon logs a
warning for it at start, so that no digest or breach alert is dropped without a word.

Each start syncs the jobs with the configuration: a new control gets a job, a changed schedule
reschedules its job, a removed control loses its job; an unchanged job keeps its next run time, so a
run missed while the daemon was down runs once (coalesced) on start, if it is no older than
`schedule.misfire_grace`. Besides cron expressions, a schedule may be `every <duration>` (`every 30s`),
for demos and tests.

Scan jobs are recorded in `job_runs`, one row per job and scheduled time (unique): a run can never
happen twice, not even when a leader and a new one overlap. A daemon that becomes leader marks the
runs and scheduled scans a previous leader left `running` as `interrupted` and runs those jobs again
at once. On SIGTERM or SIGINT the daemon stops taking new runs, lets a scan in flight finish within
`schedule.stop_grace`, then abandons it (the scan is marked interrupted: controls stored stay) and exits.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from compliance.cron import make_trigger
from compliance.store import Store

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from compliance.catalog import Catalog, Control
    from compliance.db import Database
    from compliance.engine import CheckTask, Executor, TaskOutcome
    from compliance.notify.deliveries import Outcome
    from compliance.settings import Settings
    from compliance.store import ControlOutcome

log = logging.getLogger("compliance.scheduler")

JOB_TABLE = "apscheduler_jobs"
LOCK_NAME = "scheduler"
#: The PostgreSQL advisory lock of the scheduler: this constant ("cmsc" in ASCII) and the hash of the schema the
#: connection works in, so that the daemons of organisations sharing one PostgreSQL database (a schema
#: each, issue 20) lead each their own organisation. Advisory locks hold across a whole database.
ADVISORY_KEY = int.from_bytes(b"cmsc", "big", signed=True)
_ADVISORY_LOCK = "SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"
_ADVISORY_UNLOCK = "SELECT pg_advisory_unlock(:key, hashtext(current_schema()))"
CONTROL_JOB = "control:"
DEFAULT_JOB = "controls:default"
DIGEST_JOB = "digest"
NOTIFICATIONS_JOB = "notifications"
#: The daily prune of the history (`compliance db prune`, see compliance.history).
HISTORY_JOB = "history:prune"
#: Jobs running at the same time at most (each scan runs its checks concurrently itself).
WORKERS = 4


# -- schedules ----------------------------------------------------------------------------------------


def _trigger_key(trigger: Any) -> tuple[Any, ...]:
    """What makes two triggers fire at the same times (an interval trigger's start aside)."""
    zone = str(getattr(trigger, "timezone", ""))
    interval = getattr(trigger, "interval", None)
    if isinstance(interval, timedelta):
        return ("interval", interval.total_seconds(), zone)
    return (type(trigger).__name__, str(trigger), zone)


# -- the jobs the configuration asks for ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """A job as the configuration and the catalog define it; off (with why) when it has nowhere to deliver."""

    id: str
    kind: str  # scan | digest | notifications | prune
    schedule: str
    func: str
    name: str
    controls: tuple[str, ...] = ()
    why_off: str | None = None

    @property
    def enabled(self) -> bool:
        return self.why_off is None


def planned_jobs(settings: Settings, catalog: Catalog) -> list[PlannedJob]:
    """Every job the daemon should have: scans, the digest, the alerts and retries; those without a channel off."""
    from compliance.digest import digest_off
    from compliance.notify.alerts import alerts_off

    enabled = [c for c in catalog if c.enabled]
    jobs = [PlannedJob(f"{CONTROL_JOB}{c.id}", "scan", c.schedule, f"{__name__}:run_scan_job", f"scan of {c.id}",
                       (c.id,)) for c in enabled if c.schedule]
    others = tuple(c.id for c in enabled if not c.schedule)
    if others and settings.schedule.default:
        jobs.append(PlannedJob(DEFAULT_JOB, "scan", settings.schedule.default, f"{__name__}:run_scan_job",
                               "scan of the controls on the default schedule", others))
    no_digest, no_alerts = digest_off(settings), alerts_off(settings)
    jobs.append(PlannedJob(DIGEST_JOB, "digest", settings.digest.cron, f"{__name__}:run_digest_job",
                           "weekly digest", why_off=no_digest))
    # the job also retries failed digests: it runs while the digest has a channel, even without alerts
    name = "breach deadline alerts and delivery retries"
    if no_alerts is not None and no_digest is None:
        name = f"delivery retries (breach deadline alerts are off: {no_alerts})"
    jobs.append(PlannedJob(NOTIFICATIONS_JOB, "notifications", f"every {settings.schedule.alert_interval:g}s",
                           f"{__name__}:run_notifications_job", name,
                           why_off=no_alerts if no_digest is not None else None))
    history = settings.history
    no_prune = ("history.raw_days is null (raw results are kept)" if history.raw_days is None
                else "history.cron is null (prune with `compliance db prune`)" if history.cron is None else None)
    jobs.append(PlannedJob(HISTORY_JOB, "prune", history.cron or "30 3 * * *", f"{__name__}:run_prune_job",
                           "roll up and prune the history", why_off=no_prune))
    return jobs


def warn_about_off_jobs(planned: Sequence[PlannedJob], settings: Settings) -> None:
    """Log a warning for each job that is off, and for breach deadline alerts that have no channel."""
    from compliance.notify.alerts import alerts_off

    for p in planned:
        if not p.enabled:
            log.warning("job %s (%s) is off: %s", p.id, p.name, p.why_off)
    no_alerts = alerts_off(settings)
    if no_alerts and any(p.id == NOTIFICATIONS_JOB and p.enabled for p in planned):  # on for digest retries only
        log.warning("breach deadline alerts are off: %s", no_alerts)


def sync_jobs(scheduler: Any, planned: Sequence[PlannedJob], settings: Settings) -> None:
    """Make the stored jobs those planned and on: add, reschedule, remove; keep unchanged ones as they are."""
    planned = [p for p in planned if p.enabled]
    wanted = {p.id: p for p in planned}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            scheduler.remove_job(job.id)
            log.info("job %s removed: it is no longer in the configuration", job.id)
    existing = {job.id: job for job in scheduler.get_jobs()}
    for p in planned:
        trigger = make_trigger(p.schedule, settings.zone)
        options = {"name": p.name, "args": [p.id] if p.kind == "scan" else [], "coalesce": True, "max_instances": 1,
                   "misfire_grace_time": int(settings.schedule.misfire_grace)}
        job = existing.get(p.id)
        if job is None:
            scheduler.add_job(p.func, trigger, id=p.id, **options)
            log.info("job %s added (%s)", p.id, p.schedule)
            continue
        scheduler.modify_job(p.id, func=p.func, **options)
        if _trigger_key(job.trigger) != _trigger_key(trigger):
            scheduler.reschedule_job(p.id, trigger=trigger)
            log.info("job %s rescheduled (%s)", p.id, p.schedule)


# -- leadership -----------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LeaseLock:
    """Leadership by a lease row in `scheduler_lock`: taken when free or expired, renewed by the leader.

    Safe on SQLite, where every write is serialized; a standby takes over once the lease ran out. Each
    time a daemon becomes the leader it raises the row's `epoch` by one and keeps the new value: its runs
    carry it, and a run finishes only while the epoch is still the leader's (`holds`).
    """

    def __init__(self, database: Database, holder: str, lease: float) -> None:
        self.database = database
        self.holder = holder
        self.lease = timedelta(seconds=lease)
        self.epoch: int | None = None
        self._expires: datetime | None = None

    def acquire(self) -> bool:
        """Become the leader if nobody else is; True when this process leads now."""
        import sqlalchemy

        now = _utcnow()
        try:
            with self.database.engine.begin() as connection:
                epoch = self._take(connection, now)
                if epoch is None:
                    return False
        except sqlalchemy.exc.IntegrityError:
            return False  # another daemon created the row a moment before
        self._expires, self.epoch = now + self.lease, epoch
        return True

    def _take(self, connection: Connection, now: datetime, *, force: bool = False) -> int | None:
        """Take the row (when free, expired, ours, or forced) with the next epoch; that epoch, or None."""
        from sqlalchemy import insert, or_, select, update

        from compliance.db.models import SchedulerLock

        values = {"holder": self.holder, "acquired_at": now, "heartbeat_at": now, "expires_at": now + self.lease}
        condition = SchedulerLock.name == LOCK_NAME
        if not force:
            condition = condition & or_(SchedulerLock.holder == self.holder, SchedulerLock.expires_at < now)
        if connection.execute(update(SchedulerLock).where(condition)
                              .values(epoch=SchedulerLock.epoch + 1, **values)).rowcount:
            return int(connection.execute(select(SchedulerLock.epoch).where(SchedulerLock.name == LOCK_NAME))
                       .scalar_one())
        if connection.execute(select(SchedulerLock.name).where(SchedulerLock.name == LOCK_NAME)).first() is not None:
            return None
        connection.execute(insert(SchedulerLock).values(name=LOCK_NAME, epoch=1, **values))
        return 1

    def _ours(self) -> Any:
        """The condition on `scheduler_lock` that this process still leads in its epoch."""
        from compliance.db.models import SchedulerLock

        return (SchedulerLock.name == LOCK_NAME) & (SchedulerLock.holder == self.holder) \
            & (SchedulerLock.epoch == self.epoch)

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (another daemon took over)."""
        import sqlalchemy
        from sqlalchemy import update

        from compliance.db.models import SchedulerLock

        now = _utcnow()
        try:
            with self.database.engine.begin() as connection:
                renewed = connection.execute(update(SchedulerLock).where(self._ours())
                                             .values(heartbeat_at=now, expires_at=now + self.lease)).rowcount == 1
        except sqlalchemy.exc.OperationalError as exc:  # busy for longer than the busy timeout: try again soon
            log.warning("could not renew the leader lease: %s", str(exc.orig).strip())
            return self._expires is not None and now < self._expires
        if renewed:
            self._expires = now + self.lease
        return renewed

    def holds(self, connection: Connection) -> bool:
        """Whether this process still leads in its epoch, read in the caller's transaction (the fence of
        every run: checked as a run starts, and in the statement that finishes it)."""
        from sqlalchemy import select

        from compliance.db.models import SchedulerLock

        if self.epoch is None:
            return False
        # a lease that ran out but that no standby took is still ours (the next renewal extends it); once a
        # standby takes it, holder and epoch change, and this process's runs are fenced
        return connection.execute(select(SchedulerLock.name).where(self._ours())).first() is not None

    def release(self) -> None:
        """Give up leadership at once, so a standby can take over without waiting for the lease."""
        from sqlalchemy import update

        from compliance.db.models import SchedulerLock

        if self.epoch is None:
            return
        try:
            with self.database.engine.begin() as connection:
                connection.execute(update(SchedulerLock).where(self._ours()).values(expires_at=_utcnow()))
        except Exception as exc:  # the lease runs out by itself
            log.warning("could not release the leader lease: %s", exc)
        self.epoch = None


class AdvisoryLock(LeaseLock):
    """Leadership by a PostgreSQL session advisory lock on a connection of its own.

    The server releases the lock when that connection ends, also when the process is killed. The row in
    `scheduler_lock` is kept up to date too, for `compliance schedule list`, and carries the epoch: a
    daemon whose lock connection broke (a restart of PostgreSQL, a network blip) may still be running
    while a standby takes over, so each run checks the lock connection and the epoch before it starts
    (`holds`), and finishes only in its epoch.
    """

    def __init__(self, database: Database, holder: str, lease: float) -> None:
        super().__init__(database, holder, lease)
        self._engine: Engine | None = None
        self._connection: Connection | None = None
        self._mutex = threading.Lock()  # the lock connection is used by the daemon's thread and by the jobs

    def acquire(self) -> bool:
        from sqlalchemy import text
        from sqlalchemy.pool import NullPool

        from compliance.db import create_engine

        with self._mutex:
            if self._connection is None:
                self._engine = create_engine(self.database.url, poolclass=NullPool)
                self._connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = self._connection.execute(text(_ADVISORY_LOCK),
                                               {"key": ADVISORY_KEY}).scalar()
            except Exception:
                self._close()  # a broken connection: the next attempt opens a new one
                raise
        if not got:
            return False
        try:
            with self.database.engine.begin() as connection:
                epoch = self._take(connection, _utcnow(), force=True)
        except Exception:
            self.release()  # without an epoch it cannot fence its runs: not the leader
            raise
        self.epoch = epoch
        return True

    def _alive(self) -> bool:
        """Whether the connection holding the advisory lock still works (and so still holds it)."""
        from sqlalchemy import text

        with self._mutex:
            if self._connection is None:
                return False
            try:
                self._connection.execute(text("SELECT 1"))
            except Exception as exc:
                log.error("the connection holding the leader lock broke: %s", str(getattr(exc, "orig", exc)).strip())
                self._close()
                return False
        return True

    def renew(self) -> bool:
        from sqlalchemy import update

        from compliance.db.models import SchedulerLock

        if not self._alive():
            return False
        now = _utcnow()
        try:
            with self.database.engine.begin() as connection:
                # only for display (leadership is the advisory lock); 0 rows: a newer leader has the row
                return connection.execute(update(SchedulerLock).where(self._ours())
                                          .values(heartbeat_at=now, expires_at=now + self.lease)).rowcount == 1
        except Exception as exc:
            log.warning("could not record the leader's heartbeat in scheduler_lock: %s", exc)
            return True

    def holds(self, connection: Connection) -> bool:
        from sqlalchemy import select

        from compliance.db.models import SchedulerLock

        if self.epoch is None or not self._alive():
            return False
        return connection.execute(select(SchedulerLock.name).where(self._ours())).first() is not None

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception as exc:  # the server frees the lock with the connection anyway
                log.warning("could not close the leader lock's connection: %s", exc)
            self._connection = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def release(self) -> None:
        from sqlalchemy import text

        with self._mutex:
            if self._connection is not None:
                try:
                    self._connection.execute(text(_ADVISORY_UNLOCK), {"key": ADVISORY_KEY})
                except Exception as exc:  # the server frees the lock with the connection anyway
                    log.warning("could not release the advisory lock: %s", exc)
            self._close()
        super().release()


def leader_lock(database: Database, holder: str, lease: float) -> LeaseLock:
    """The lock the daemons elect their leader with on this database."""
    if database.dialect == "postgresql":
        return AdvisoryLock(database, holder, lease)
    return LeaseLock(database, holder, lease)


@dataclass(frozen=True, slots=True)
class Leader:
    """Who leads the daemons on a database, as last recorded."""

    holder: str
    since: datetime
    heartbeat: datetime
    expires: datetime

    def alive(self, now: datetime | None = None) -> bool:
        return self.expires > (now or _utcnow())


def current_leader(database: Database) -> Leader | None:
    from sqlalchemy import select

    from compliance.db.models import SchedulerLock

    with database.sessions() as session:
        row = session.scalar(select(SchedulerLock).where(SchedulerLock.name == LOCK_NAME))
        return None if row is None else Leader(row.holder, row.acquired_at, row.heartbeat_at, row.expires_at)


# -- running jobs -----------------------------------------------------------------------------------------


@dataclass
class _Runtime:
    """What the job functions of this process use: set while the daemon leads."""

    settings: Settings
    catalog: Catalog
    database: Database
    holder: str
    stopping: threading.Event
    #: the leader lock; None only where a test runs a job without a daemon (nothing is fenced then)
    lock: LeaseLock | None = None
    #: set the moment a job finds the lock lost: no run starts after it, a scan in flight is abandoned
    lost: threading.Event = field(default_factory=threading.Event)

    @property
    def epoch(self) -> int | None:
        return None if self.lock is None else self.lock.epoch

    def leads(self, connection: Connection) -> bool:
        """Whether this daemon still leads (in the caller's transaction); when not, it stops starting work."""
        if self.lost.is_set():
            return False
        if self.lock is None or self.lock.holds(connection):
            return True
        log.error("lost the leader lock (another daemon took over, or the database went away); starting "
                  "no more runs")
        self.lost.set()
        return False

    def controls_for(self, job_id: str) -> list[Control]:
        enabled = [c for c in self.catalog if c.enabled]
        if job_id == DEFAULT_JOB:
            return [c for c in enabled if not c.schedule]
        return [c for c in enabled if f"{CONTROL_JOB}{c.id}" == job_id]


_runtime: _Runtime | None = None


def _current() -> _Runtime:
    if _runtime is None:
        raise RuntimeError("a scheduler job ran outside a leading daemon")
    return _runtime


class Stopping(SystemExit):
    """The daemon stops: the scan in flight is abandoned (the engine marks it interrupted)."""


class _Stoppable:
    """An executor that hands out another's outcomes until the daemon stops and the grace is over."""

    def __init__(self, inner: Executor, stopping: threading.Event, grace: float,
                 lost: threading.Event | None = None) -> None:
        self.inner = inner
        self.stopping = stopping
        self.grace = grace
        self.lost = lost or threading.Event()

    def prepare(self, tasks: Sequence[CheckTask]) -> None:
        prepare = getattr(self.inner, "prepare", None)
        if prepare is not None:
            prepare(tasks)

    def execute(self, tasks: Sequence[CheckTask]) -> Iterator[TaskOutcome]:
        done = object()
        outcomes: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def pump() -> None:
            try:
                for outcome in self.inner.execute(tasks):
                    outcomes.put(outcome)
            except BaseException as exc:
                outcomes.put(exc)
            outcomes.put(done)

        threading.Thread(target=pump, daemon=True, name="scan-outcomes").start()
        deadline: float | None = None
        while True:
            if self.lost.is_set():  # another daemon leads and runs this job again: no grace
                raise Stopping()
            if self.stopping.is_set():
                deadline = deadline if deadline is not None else time.monotonic() + self.grace
                if time.monotonic() >= deadline:
                    raise Stopping()
            try:
                item = outcomes.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class _RunStore(Store):
    """The store for one job run: the scan starts in the same transaction that notes it in the run's row,
    so a crash cannot leave a scan that no run knows of; and it finishes only while the run is still this
    leader's (a new leader closes the scan as interrupted and runs the job again)."""

    def __init__(self, rt: _Runtime, run_id: int) -> None:
        super().__init__(rt.database, rt.settings.zone)
        self.rt = rt
        self.run_id = run_id
        self.scan_id: int | None = None
        self.fenced = False

    def start_scan(self, trigger: str) -> tuple[int, datetime]:
        from compliance.db.models import JobRun
        from compliance.store import new_scan

        with self.db.transaction() as session:
            scan = new_scan(session, trigger)
            session.get_one(JobRun, self.run_id).scan_id = self.scan_id = scan.id
        return scan.id, scan.started_at

    def finish_scan(self, scan_id: int, status: str, outcomes: Sequence[ControlOutcome]) -> datetime:
        from sqlalchemy import select

        from compliance.db.models import JobRun

        with self.db.transaction() as session:
            run = session.scalar(select(JobRun).where(JobRun.id == self.run_id).with_for_update())
            mine = run is not None and run.status == "running" and self.rt.leads(session.connection())
        if not mine:
            self.fenced = True  # the scan is the new leader's to close (it marks it interrupted)
            return _utcnow()
        return super().finish_scan(scan_id, status, outcomes)


def _start_run(rt: _Runtime, job_id: str, scheduled_at: datetime, status: str = "running") -> int | None:
    """Record a run of job_id for scheduled_at in this leader's epoch; None when that run exists already
    (it ran elsewhere). A daemon that no longer leads records it as `interrupted` instead, so that the
    new leader runs it; `status` is then that."""
    import sqlalchemy

    from compliance.db.models import JobRun

    now = _utcnow()
    try:
        with rt.database.transaction() as session:
            if status == "running" and not rt.leads(session.connection()):
                status = "interrupted"
            run = JobRun(job_id=job_id, scheduled_at=scheduled_at, started_at=now, status=status, holder=rt.holder,
                         epoch=rt.epoch, finished_at=None if status == "running" else now,
                         error=None if status == "running" or not rt.lost.is_set()
                         else "not started: the daemon had lost the leader lock")
            session.add(run)
            session.flush()
            return run.id if status == "running" else None
    except sqlalchemy.exc.IntegrityError:
        return None


def _finish_run(rt: _Runtime, run_id: int, status: str, error: str | None = None) -> bool:
    """Record how a run ended, fenced: only a run still `running`, started in the epoch that leads now.
    False when the run is no longer this daemon's (a new leader marked it interrupted)."""
    from sqlalchemy import select, update

    from compliance.db.models import JobRun, SchedulerLock

    condition = (JobRun.id == run_id) & (JobRun.status == "running")
    if rt.lock is not None:
        current = select(SchedulerLock.epoch).where(SchedulerLock.name == LOCK_NAME).scalar_subquery()
        condition = condition & (JobRun.epoch == current)
    with rt.database.transaction() as session:
        done = session.connection().execute(update(JobRun).where(condition)
                                            .values(status=status, finished_at=_utcnow(), error=error)).rowcount == 1
    if not done:
        log.warning("run %d was taken over by another leader: its end (%s) is not recorded", run_id, status)
    return done


def run_scan_job(job_id: str, *, scheduled_at: datetime | None = None) -> None:
    """Scan the controls of a scan job, once for its scheduled time (the job function of scans)."""
    from compliance.engine import run_scan
    from compliance.errors import ComplianceError
    from compliance.incidents.facts import FACT_SOURCES
    from compliance.zones import ZoneExecutor

    rt = _current()
    scheduled_at = (scheduled_at or _utcnow()).astimezone(UTC)
    if rt.stopping.is_set():  # due just as the daemon stops: recorded, so the next start runs it
        _start_run(rt, job_id, scheduled_at, status="interrupted")
        return
    run_id = _start_run(rt, job_id, scheduled_at)
    if run_id is None:
        if rt.lost.is_set():
            log.warning("%s: the run scheduled at %s is not started: this daemon no longer leads", job_id,
                        scheduled_at)
        else:
            log.warning("%s: the run scheduled at %s ran already; not running it twice", job_id, scheduled_at)
        return
    controls = rt.controls_for(job_id)
    if not controls:
        _finish_run(rt, run_id, "completed", "no enabled controls")
        return
    store = _RunStore(rt, run_id)
    executor = _Stoppable(ZoneExecutor(rt.settings), rt.stopping,
                          rt.settings.schedule.stop_grace.total_seconds(), rt.lost)
    try:
        report = run_scan(controls, rt.settings, store, executor=executor, trigger="schedule",
                          fact_sources=FACT_SOURCES)
    except Stopping:
        if rt.lost.is_set():
            _finish_run(rt, run_id, "interrupted", "abandoned when the daemon lost the leader lock")
            log.warning("%s: scan %s abandoned because this daemon no longer leads; the new leader runs it again",
                        job_id, store.scan_id)
            return
        _finish_run(rt, run_id, "interrupted", "abandoned when the daemon stopped")
        log.warning("%s: scan %s abandoned because the daemon stops; it runs again at the next start", job_id,
                    store.scan_id)
        return
    except Exception as exc:
        _finish_run(rt, run_id, "failed", f"{type(exc).__name__}: {exc}"[:500])
        if isinstance(exc, ComplianceError) and store.scan_id is None:  # e.g. the zones' broker is down
            log.error("%s: the scan did not start: %s; it runs again at the next scheduled time", job_id, exc)
        else:
            log.exception("%s: scan %s failed", job_id, store.scan_id)
        return
    if store.fenced or not _finish_run(rt, run_id, "completed"):
        log.warning("%s: scan %d ended after this daemon lost the leader lock; the new leader runs it again",
                    job_id, report.scan_id)
        return
    statuses = [o.status.value for o in report.outcomes]
    log.info("%s: scan %d completed: %d controls, %d failed, %d could not be checked", job_id, report.scan_id,
             len(statuses), statuses.count("fail"), statuses.count("error"))


def run_digest_job(*, scheduled_at: datetime | None = None) -> None:
    """Send the weekly digest on every configured channel (the job function of the digest)."""
    from compliance.digest import send_digest

    rt = _current()
    if rt.stopping.is_set() or not _still_leads(rt):
        return
    try:
        for outcome in send_digest(rt.database, rt.settings):
            _log_outcome(outcome)
    except Exception as exc:
        log.error("the digest could not be sent: %s", exc)


def run_prune_job(*, scheduled_at: datetime | None = None) -> None:
    """Roll up and prune the history by `history.raw_days` and `history.keep` (the daily prune job)."""
    from compliance.history import prune

    rt = _current()
    if rt.stopping.is_set() or not _still_leads(rt):
        return
    history = rt.settings.history
    try:
        report = prune(rt.database, raw_days=history.raw_days, keep=history.keep, zone=rt.settings.zone)
    except Exception as exc:
        log.error("the history could not be pruned: %s", exc)
        return
    log.info("history pruned: %d raw result(s) removed, %d day(s) rolled up, %d rollup row(s) removed",
             report.results_removed, len(report.days_rolled_up), report.rollups_removed)


def run_notifications_job(*, scheduled_at: datetime | None = None) -> None:
    """Breach deadline alerts and retries of failed digests (the job function run every alert interval)."""
    from compliance.digest import retry_digests
    from compliance.notify.alerts import check_deadlines

    rt = _current()
    if rt.stopping.is_set() or not _still_leads(rt):
        return
    for step in (check_deadlines, retry_digests):
        try:
            for outcome in step(rt.database, rt.settings):
                _log_outcome(outcome)
        except Exception as exc:
            log.error("%s failed: %s", step.__name__.replace("_", " "), exc)


def _still_leads(rt: _Runtime) -> bool:
    with rt.database.engine.connect() as connection:
        return rt.leads(connection)


def _log_outcome(outcome: Outcome) -> None:
    log.log(logging.WARNING if outcome.result in ("failed", "partial") else logging.INFO, "%s", outcome.describe())


class _Scheduled:
    """A job as handed to its function: the same job, plus the time it was scheduled for."""

    def __init__(self, job: Any, scheduled_at: datetime) -> None:
        self._job = job
        self.kwargs = {**job.kwargs, "scheduled_at": scheduled_at}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


def make_scheduler(database: Database, settings: Settings) -> Any:
    """An APScheduler on the database's job store with the daemon's executor and job defaults, not started."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.base import STATE_RUNNING

    class ScheduledTimeExecutor(ThreadPoolExecutor):  # type: ignore[misc]
        """Passes each run its scheduled time, the key of `job_runs`."""

        def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
            super()._do_submit_job(_Scheduled(job, run_times[-1]), run_times)

    class Scheduler(BackgroundScheduler):  # type: ignore[misc]
        """Starts jobs only while running: APScheduler 3 looks for due jobs once more as it shuts down, hands
        them to the stopped executor and moves their next run on, so such a run would be lost."""

        def _process_jobs(self) -> float | None:
            return super()._process_jobs() if self.state == STATE_RUNNING else None

    return Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=database.engine, tablename=JOB_TABLE)},
        executors={"default": ScheduledTimeExecutor(WORKERS)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(settings.schedule.misfire_grace)},
        timezone=settings.zone,
    )


def recover(database: Database, holder: str, grace: float) -> list[str]:
    """Mark what a previous leader left running as interrupted; the scan jobs to run again at once.

    Only the leader runs scheduled scans, so a scheduled scan still `running` when a daemon becomes the
    leader belongs to one that stopped. Its controls stored so far stay; the scan gets `finished_at`
    of its last stored result.
    """
    from sqlalchemy import select

    from compliance.db.models import JobRun, Scan
    from compliance.store import close_interrupted

    now = _utcnow()
    with database.transaction() as session:
        for scan in session.scalars(select(Scan).where(Scan.status == "running", Scan.trigger == "schedule")):
            close_interrupted(session, scan)
            log.warning("scan %d was left running by a daemon that stopped: marked interrupted", scan.id)
        for run in session.scalars(select(JobRun).where(JobRun.status == "running")):
            run.status, run.finished_at = "interrupted", now
            run.error = f"the daemon running it stopped ({run.holder})"
        latest: dict[str, Any] = {}
        for run in session.scalars(select(JobRun).where(JobRun.scheduled_at >= now - timedelta(seconds=grace))
                                   .order_by(JobRun.scheduled_at, JobRun.id)):
            latest[run.job_id] = run
    return sorted(job_id for job_id, run in latest.items() if run.status == "interrupted")


# -- the daemon ---------------------------------------------------------------------------------------------


class Daemon:
    """One scheduler daemon: waits as a standby until it leads, then runs the jobs until stopped."""

    def __init__(self, settings: Settings, catalog: Catalog, database: Database, *,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.database = database
        self.stop = stop or threading.Event()
        self.holder = f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:6]}"
        lease = settings.schedule.lease
        self.lock = leader_lock(database, self.holder, lease)
        self.renew_every = lease / 3
        self.poll_every = max(0.5, min(lease / 3, 5.0))
        self.stopping = threading.Event()
        self.scheduler: Any = None

    def run(self) -> int:
        """Block until stopped: 0 after a clean stop, 1 when leadership was lost."""
        global _runtime
        if not self._wait_for_leadership():
            log.info("stopped (standby)")
            return 0
        lost = threading.Event()
        try:
            _runtime = _Runtime(self.settings, self.catalog, self.database, self.holder, self.stopping, self.lock, lost)
            self._start()
            renew_at = time.monotonic() + self.renew_every
            # a job that finds the lock lost sets `lost`: the loop wakes within a tick, not at the next renewal
            while not self.stop.wait(min(self.renew_every, 0.2)) and not lost.is_set():
                if time.monotonic() < renew_at:
                    continue
                renew_at = time.monotonic() + self.renew_every
                if not self.lock.renew():
                    lost.set()
            if lost.is_set():
                log.error("lost the leader lock (another daemon took over, or the database went away); "
                          "stopping so that no job runs twice")
        finally:
            self._wind_down()
        return 1 if lost.is_set() else 0

    def _wait_for_leadership(self) -> bool:
        import sqlalchemy

        told = False
        while not self.stop.is_set():
            try:
                if self.lock.acquire():
                    log.info("leader (%s)", self.holder)
                    return True
            except sqlalchemy.exc.OperationalError as exc:
                log.warning("cannot reach the database to elect a leader: %s", str(exc.orig).strip())
            if not told:
                leader = current_leader(self.database)
                log.info("standby: %s leads; taking over when it is gone",
                         leader.holder if leader else "another daemon")
                told = True
            self.stop.wait(self.poll_every)
        return False

    def _start(self) -> None:
        settings = self.settings
        Store(self.database, settings.zone).sync_controls(self.catalog, deactivate_missing=True)
        rerun = recover(self.database, self.holder, settings.schedule.misfire_grace)
        scheduler = make_scheduler(self.database, settings)
        scheduler.start(paused=True)
        self.scheduler = scheduler
        sync_jobs(scheduler, planned_jobs(settings, self.catalog), settings)
        now = datetime.now(settings.zone)
        for job_id in [*rerun, NOTIFICATIONS_JOB]:  # interrupted scans again, and the deadlines at once
            if scheduler.get_job(job_id) is not None:
                scheduler.modify_job(job_id, next_run_time=now)
                if job_id != NOTIFICATIONS_JOB:
                    log.info("job %s was interrupted: running it again now", job_id)
        scheduler.resume()
        for job in scheduler.get_jobs():
            log.info("job %s: next run %s", job.id, _local(job.next_run_time, settings.zone))

    def _wind_down(self) -> None:
        global _runtime
        if self.scheduler is not None:
            self.scheduler.pause()
            self.stopping.set()
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self.lock.release()
        _runtime = None
        log.info("stopped")


def _local(moment: datetime | None, zone: tzinfo) -> str:
    return "paused" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


# -- the command ------------------------------------------------------------------------------------------


def serve(settings: Settings, catalog: Catalog, database: Database) -> int:
    """Run the daemon in the foreground until SIGTERM or SIGINT; the exit code.

    Logs through the logging the caller set up (`compliance.logs`), with the secrets of settings scrubbed.
    """
    from compliance.db import safe_url
    from compliance.logs import hide_secrets
    from compliance.notify import secrets_of

    hide_secrets(secrets_of(settings))
    daemon = Daemon(settings, catalog, database)

    def stop(signum: int, _frame: Any) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        daemon.stop.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        planned = planned_jobs(settings, catalog)
        log.info("scheduler starting on %s: %d job(s) configured", safe_url(database.url),
                 sum(p.enabled for p in planned))
        warn_about_off_jobs(planned, settings)
        return daemon.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- `compliance schedule list` ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job as planned and as stored: its next run, and its last run (scan jobs)."""

    id: str
    kind: str
    name: str
    schedule: str | None
    controls: tuple[str, ...]
    next_run: datetime | None
    stored: bool  # in the job store: the daemon ran with it
    planned: bool  # in the configuration: False for a job the next start removes
    last_run: datetime | None
    last_status: str | None
    why_off: str | None = None  # a planned job that is off: why (no channel to deliver to)

    @property
    def enabled(self) -> bool:
        return self.why_off is None


def job_statuses(settings: Settings, catalog: Catalog, database: Database,
                 now: datetime | None = None) -> list[JobStatus]:
    """Every job: those the configuration plans (next run from the job store, else computed) and stored
    ones it no longer plans."""
    import sqlalchemy
    from sqlalchemy import func, select

    from compliance.db.models import JobRun

    now = now or _utcnow()
    stored: dict[str, datetime | None] = {}
    with database.engine.connect() as connection:
        if sqlalchemy.inspect(connection).has_table(JOB_TABLE):
            table = sqlalchemy.table(JOB_TABLE, sqlalchemy.column("id"), sqlalchemy.column("next_run_time"))
            for job_id, timestamp in connection.execute(select(table.c.id, table.c.next_run_time)):
                stored[job_id] = None if timestamp is None else datetime.fromtimestamp(float(timestamp), UTC)
    with database.sessions() as session:
        newest = select(JobRun.job_id, func.max(JobRun.id).label("id")).group_by(JobRun.job_id).subquery()
        last = {run.job_id: run for run in session.scalars(select(JobRun).join(newest, JobRun.id == newest.c.id))}
    statuses = []
    planned = planned_jobs(settings, catalog)
    for p in planned:
        if not p.enabled:
            next_run = None
        elif p.id in stored:
            next_run = stored[p.id]
        else:
            next_run = make_trigger(p.schedule, settings.zone).get_next_fire_time(None, now.astimezone(settings.zone))
        run = last.get(p.id)
        statuses.append(JobStatus(p.id, p.kind, p.name, p.schedule, p.controls, next_run, p.id in stored, True,
                                  run.scheduled_at if run else None, run.status if run else None, p.why_off))
    for job_id in sorted(stored.keys() - {p.id for p in planned}):
        run = last.get(job_id)
        statuses.append(JobStatus(job_id, "removed", "removed at the next start of the daemon", None, (),
                                  stored[job_id], True, False, run.scheduled_at if run else None,
                                  run.status if run else None))
    return statuses
