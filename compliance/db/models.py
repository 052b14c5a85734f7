"""SQLAlchemy 2 models: the schema of the monitor. Times are stored in UTC.

Change a model only together with a migration (`alembic revision --autogenerate`); a test fails when
models and migrations differ.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: An auto-incrementing 64-bit key on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC (timestamptz on PostgreSQL, ISO text on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class ControlRow(Base):
    """A control as last synced from YAML; `active` is false once it is gone from the catalog or disabled."""

    __tablename__ = "controls"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    theme: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str | None] = mapped_column(String(200))
    references: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    schedule: Mapped[str | None] = mapped_column(String(100))
    #: The texts per language beside title, description and owner: {"nl": {"title": ..., ...}}.
    translations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1000), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    synced_at: Mapped[datetime]
    last_status: Mapped[str | None] = mapped_column(String(10))
    last_evaluated_at: Mapped[datetime | None]


class Scan(Base):
    """One run of the engine over a set of controls."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    trigger: Mapped[str] = mapped_column(String(20))  # manual | schedule
    status: Mapped[str] = mapped_column(String(20))  # running | completed | interrupted | failed
    controls_total: Mapped[int] = mapped_column(Integer, default=0)
    controls_passed: Mapped[int] = mapped_column(Integer, default=0)
    controls_failed: Mapped[int] = mapped_column(Integer, default=0)
    controls_error: Mapped[int] = mapped_column(Integer, default=0)
    controls_skipped: Mapped[int] = mapped_column(Integer, default=0)
    results_total: Mapped[int] = mapped_column(Integer, default=0)
    # the process that runs the scan, so a scan left `running` by a process that died can be closed
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)


class CheckResultRow(Base):
    """One plugin result, append-only."""

    __tablename__ = "check_results"
    __table_args__ = (
        Index("ix_check_results_control_target_at", "control_id", "target", "started_at"),
        # a control's last evaluation before a moment in one seek, read from the index alone (the risk
        # overview's trend and blind spots; migration 0014)
        Index("ix_check_results_control_at_status", "control_id", "started_at", "status", "scan_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"), index=True)
    control_id: Mapped[str] = mapped_column(ForeignKey("controls.id"))
    check_index: Mapped[int] = mapped_column(Integer)
    plugin: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)


class Finding(Base):
    """The current state of one control on one target, from its first failure on.

    `state` is open or resolved; whether an open finding is accepted follows from the exceptions in
    force at the moment of reading, so an expired exception makes it count as failing again at once.
    """

    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("control_id", "target", name="uq_findings_control_target"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    control_id: Mapped[str] = mapped_column(ForeignKey("controls.id"))
    target: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(10), index=True)  # open | resolved
    last_status: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    times_reopened: Mapped[int] = mapped_column(Integer, default=0)


class FindingChange(Base):
    """A state change of a finding, so reports compute trends and time-to-fix without rescanning."""

    __tablename__ = "finding_changes"
    # a finding's last change before a moment in one seek (the risk overview's state at a moment)
    __table_args__ = (Index("ix_finding_changes_finding_at", "finding_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(10))
    to_state: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(index=True)
    scan_id: Mapped[int | None] = mapped_column(ForeignKey("scans.id"))


class RiskException(Base):
    """An accepted risk: a failing control (or some of its targets) accepted until a date."""

    __tablename__ = "exceptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    control_id: Mapped[str] = mapped_column(String(100), index=True)
    target_pattern: Mapped[str] = mapped_column(String(500), default="*")
    reason: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str] = mapped_column(String(200))
    until: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    #: The reference of the risk analysis behind accepting the risk (the ENSIA annex of deviations).
    risk_analysis: Mapped[str | None] = mapped_column(String(500))


# -- breach register (incidents) -------------------------------------------------------------------
# The personal-data breach register of GDPR art. 33(5); the rules live in the `incidents` package.
# It holds counts and categories, never personal data of the people concerned. Every change to these
# tables is also an event in `incident_events`, a hash chain that `compliance incident verify` checks.


class IncidentRow(Base):
    """One personal-data breach: the facts, the assessment, the decision and the closure."""

    __tablename__ = "incidents"
    __table_args__ = (UniqueConstraint("year", "number", name="uq_incidents_year_number"),)

    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # DL-2026-0007
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), index=True)  # open | assessed | notified | closed
    description: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    discovered_at: Mapped[datetime]
    aware_at: Mapped[datetime]
    deadline: Mapped[datetime] = mapped_column(index=True)  # aware_at + 72 h (art. 33(1))
    how_discovered: Mapped[str] = mapped_column(Text, default="")
    cause: Mapped[str] = mapped_column(Text, default="")
    nature: Mapped[list[Any]] = mapped_column(JSON)
    data_categories: Mapped[list[Any]] = mapped_column(JSON)
    subjects: Mapped[int] = mapped_column(Integer)
    subjects_max: Mapped[int | None] = mapped_column(Integer)
    records: Mapped[int | None] = mapped_column(Integer)
    people: Mapped[list[Any]] = mapped_column(JSON)
    processor: Mapped[str] = mapped_column(String(200), default="")
    consequences: Mapped[str] = mapped_column(Text, default="")
    measures_taken: Mapped[str] = mapped_column(Text, default="")
    measures_planned: Mapped[str] = mapped_column(Text, default="")
    protection: Mapped[str] = mapped_column(Text, default="")
    cross_border: Mapped[bool] = mapped_column(Boolean, default=False)
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    score: Mapped[str | None] = mapped_column(String(4))  # "3.25": exact quarters, copied from assessment
    band: Mapped[str | None] = mapped_column(String(10), index=True)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    closure: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]
    # a significant incident under the Cbw (NIS2 art. 23): reported to the CSIRT in three stages
    significant: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # who found it and, for a processor, when it discovered it and told the municipality (art. 33(2))
    found_by: Mapped[str] = mapped_column(String(20), default="", server_default="")
    processor_discovered_at: Mapped[datetime | None]
    processor_told_at: Mapped[datetime | None]
    # what the authority required about informing the people concerned (art. 34(4))
    ap_instruction: Mapped[str] = mapped_column(Text, default="", server_default="")


class IncidentNotification(Base):
    """A notification to the authority (initial, follow-up, withdrawal) or a communication to the people."""

    __tablename__ = "incident_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(10))  # authority | subjects
    kind: Mapped[str] = mapped_column(String(12))  # initial | follow-up | withdrawal
    at: Mapped[datetime]
    reference: Mapped[str] = mapped_column(String(100), default="")
    channel: Mapped[str] = mapped_column(String(10), default="")  # letter | e-mail | public (subjects)
    delay_reason: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(200))
    # art. 33(4): what was still open at this notification to the authority, and when the follow-up is due
    open_items: Mapped[str] = mapped_column(Text, default="", server_default="")
    follow_up_due: Mapped[datetime | None]
    # art. 34(2): what the people concerned were told (nature, contact, consequences, measures, lang)
    message: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IncidentLink(Base):
    """A link from a breach to a related control or finding of the monitor."""

    __tablename__ = "incident_links"
    __table_args__ = (UniqueConstraint("incident_id", "kind", "ref", name="uq_incident_links_incident_kind_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # control | finding
    ref: Mapped[str] = mapped_column(String(100))
    linked_at: Mapped[datetime]
    linked_by: Mapped[str] = mapped_column(String(200))


class IncidentEvent(Base):
    """One change to the register, append-only; `hash` covers the event and the previous event's hash
    (an HMAC under the audit key when `alg` is set)."""

    __tablename__ = "incident_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # place in the chain
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(20))
    field: Mapped[str | None] = mapped_column(String(40))
    old: Mapped[str | None] = mapped_column(Text)  # canonical JSON of the value before
    new: Mapped[str | None] = mapped_column(Text)  # canonical JSON of the value after
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: "hmac-sha256" for an event keyed with the audit key (kept outside the database), None for plain SHA-256
    alg: Mapped[str | None] = mapped_column(String(20))
    key_id: Mapped[str | None] = mapped_column(String(16))  # which audit key; never the key itself


# -- evidence and the statement of applicability ------------------------------------------------------


class Attestation(Base):
    """Evidence that a control is met, recorded by a person, valid until a date (append-only).

    For a file the SHA-256 of its content is kept, so a later change of the file shows; the file itself
    is only copied into the evidence store when asked (`copy_path`).
    """

    __tablename__ = "attestations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    control_id: Mapped[str] = mapped_column(String(100), index=True)
    attested_by: Mapped[str] = mapped_column(String(200))
    evidence: Mapped[str] = mapped_column(String(2000))  # a path or a URL
    sha256: Mapped[str | None] = mapped_column(String(64))
    copy_path: Mapped[str | None] = mapped_column(String(2000))
    valid_until: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(200))


class ApplicabilityDecision(Base):
    """Whether a BIO2 / ISO 27002 control, a BIO2 measure or a catalog control applies (append-only:
    the newest decision per subject counts; the older ones are the history)."""

    __tablename__ = "applicability"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(100), index=True)  # "7.4", "7.04.01" or a control id
    applies: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime]
    #: The reference of the risk analysis behind not applying it (the ENSIA annex of deviations).
    risk_analysis: Mapped[str | None] = mapped_column(String(500))


# -- scheduler daemon, breach deadline alerts and deliveries ------------------------------------------
# What the scheduler daemon ran and what the monitor sent, so that nothing runs or is sent twice, also
# across restarts and with a standby daemon. APScheduler keeps its own table, `apscheduler_jobs`.


class SchedulerLock(Base):
    """The leader among the scheduler daemons on this database, and until when its lease runs (SQLite)."""

    __tablename__ = "scheduler_lock"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))  # host, pid and a random part
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # raised by one each time a daemon becomes the leader; runs carry it, so a former leader's writes are fenced
    epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class JobRun(Base):
    """One run of a scheduled scan job for one scheduled time; the pair is unique, so nothing runs twice."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job_id", "scheduled_at", name="uq_job_runs_job_id_scheduled_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(200))
    scheduled_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(12), index=True)  # running | completed | failed | interrupted
    scan_id: Mapped[int | None] = mapped_column(ForeignKey("scans.id"))
    holder: Mapped[str] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    epoch: Mapped[int | None] = mapped_column(BigInteger)  # the leader epoch that started it: finishes only in it


class Alert(Base):
    """A breach deadline alert, raised once per stage: 24 h and 6 h before the deadline, and when it passed."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("incident_id", "stage", name="uq_alerts_incident_id_stage"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    stage: Mapped[str] = mapped_column(String(10))  # 24h | 6h | passed
    deadline: Mapped[datetime]
    raised_at: Mapped[datetime]


class Delivery(Base):
    """One attempt to send a digest or an alert on one channel: when, to how many, and the result."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # two senders cannot both claim the same attempt: the loser sees the row and leaves it
        UniqueConstraint("kind", "key", "channel", "attempt", name="uq_deliveries_kind_key_channel_attempt"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # digest | alert
    key: Mapped[str] = mapped_column(String(60))  # the digest's week (2026-W09) or the alert (DL-2026-0007/24h)
    channel: Mapped[str] = mapped_column(String(10))  # email | slack
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    result: Mapped[str] = mapped_column(String(12))  # sending | sent | partial | failed | interrupted
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # never a secret: passwords and tokens are scrubbed
    retry_at: Mapped[datetime | None]
    # partial: the addresses the mail server refused, each with its answer ({"a@b.nl": "550 5.1.1 unknown"})
    refused: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# -- organisations (issue 20) -----------------------------------------------------------------------
# Each organisation (municipality) keeps its data in a database of its own: another SQLite file beside
# the first, or another schema on the same PostgreSQL server. The first database (database.url) holds
# the register of all of them; every database holds its own row (location ''), so a database opened
# for the wrong organisation is noticed before anything is read or written.


class Organisation(Base):
    """A municipality served by this monitor, and where its data is."""

    __tablename__ = "organisations"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)  # utrecht
    name: Mapped[str] = mapped_column(String(200), default="")  # Gemeente Utrecht
    #: '' for the data in this database; else the SQLite file beside it or the PostgreSQL schema
    location: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


# -- history: daily rollups of pruned results (`compliance db prune`, issue 18) ------------------------


class HistoryDay(Base):
    """One day (in the configured time zone) of one check of a control on one target, rolled up.

    Written by `compliance db prune` in one transaction per day before that day's raw results are
    deleted, so the report and the ENSIA export read the same facts from it as from the raw results:
    the counts per status, the newest result and the newest failing result of the day (their message
    and the message template from their evidence), and the scan of the newest result.
    """

    __tablename__ = "history_days"
    __table_args__ = (
        UniqueConstraint("day", "control_id", "check_index", "target", name="uq_history_days_day_control_id"),
        # a control's last evaluation before a moment in one seek, as on check_results
        Index("ix_history_days_control_last_at", "control_id", "last_at"),
        Index("ix_history_days_control_target_fail_at", "control_id", "target", "fail_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    #: the end of the day in UTC (exclusive): raw results before the newest day_end were rolled up
    day_end: Mapped[datetime] = mapped_column(index=True)
    control_id: Mapped[str] = mapped_column(String(100))
    check_index: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(500))
    worst_status: Mapped[str] = mapped_column(String(10))  # fail | error | pass | skipped, in that order
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    errored: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime]
    last_scan_id: Mapped[int] = mapped_column(BigInteger)
    last_status: Mapped[str] = mapped_column(String(10))
    last_message: Mapped[str] = mapped_column(Text)
    last_evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the message template only
    fail_at: Mapped[datetime | None]
    fail_message: Mapped[str | None] = mapped_column(Text)
    fail_evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
