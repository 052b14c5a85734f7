"""The ORM classes of the monitor, mapped onto the Core tables of `compliance.db.schema`.

The tables (columns, types, defaults, indexes, constraints) are defined in `schema`, which commands that
only read use without importing the ORM; the annotations here type the mapped attributes and must name
the same columns. Change a table in `schema` only together with a migration (`alembic revision
--autogenerate`); a test fails when the tables and the migrations differ.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped

from compliance.db import schema
from compliance.db.schema import NAMING_CONVENTION, BigId, UTCDateTime

# re-exported: the migrations name compliance.db.models.UTCDateTime
__all__ = [
    "NAMING_CONVENTION",
    "Alert",
    "ApplicabilityDecision",
    "Attestation",
    "Base",
    "BigId",
    "CheckResultRow",
    "ControlRow",
    "Delivery",
    "Finding",
    "FindingChange",
    "HistoryDay",
    "IncidentEvent",
    "IncidentLink",
    "IncidentNotification",
    "IncidentRow",
    "JobRun",
    "Organisation",
    "RiskException",
    "Scan",
    "SchedulerLock",
    "UTCDateTime",
]


class Base(DeclarativeBase):
    metadata = schema.metadata


class ControlRow(Base):
    """A control as last synced from YAML; `active` is false once it is gone from the catalog or disabled."""

    __table__ = schema.controls

    id: Mapped[str]
    title: Mapped[str]
    description: Mapped[str]
    theme: Mapped[str]
    severity: Mapped[str]
    owner: Mapped[str | None]
    references: Mapped[dict[str, Any]]
    tags: Mapped[list[Any]]
    schedule: Mapped[str | None]
    translations: Mapped[dict[str, Any]]
    content_hash: Mapped[str]
    source: Mapped[str]
    active: Mapped[bool]
    synced_at: Mapped[datetime]
    last_status: Mapped[str | None]
    last_evaluated_at: Mapped[datetime | None]


class Scan(Base):
    """One run of the engine over a set of controls."""

    __table__ = schema.scans

    id: Mapped[int]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    trigger: Mapped[str]
    status: Mapped[str]
    controls_total: Mapped[int]
    controls_passed: Mapped[int]
    controls_failed: Mapped[int]
    controls_error: Mapped[int]
    controls_skipped: Mapped[int]
    results_total: Mapped[int]
    host: Mapped[str | None]
    pid: Mapped[int | None]


class CheckResultRow(Base):
    """One plugin result, append-only."""

    __table__ = schema.check_results

    id: Mapped[int]
    scan_id: Mapped[int]
    control_id: Mapped[str]
    check_index: Mapped[int]
    plugin: Mapped[str]
    target: Mapped[str]
    status: Mapped[str]
    message: Mapped[str]
    evidence: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    duration_ms: Mapped[int]


class Finding(Base):
    """The current state of one control on one target, from its first failure on.

    `state` is open or resolved; whether an open finding is accepted follows from the exceptions in
    force at the moment of reading, so an expired exception makes it count as failing again at once.
    """

    __table__ = schema.findings

    id: Mapped[int]
    control_id: Mapped[str]
    target: Mapped[str]
    state: Mapped[str]
    last_status: Mapped[str]
    message: Mapped[str]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    times_reopened: Mapped[int]


class FindingChange(Base):
    """A state change of a finding, so reports compute trends and time-to-fix without rescanning."""

    __table__ = schema.finding_changes

    id: Mapped[int]
    finding_id: Mapped[int]
    from_state: Mapped[str | None]
    to_state: Mapped[str]
    at: Mapped[datetime]
    scan_id: Mapped[int | None]


class RiskException(Base):
    """An accepted risk: a failing control (or some of its targets) accepted until a date."""

    __table__ = schema.exceptions

    id: Mapped[int]
    control_id: Mapped[str]
    target_pattern: Mapped[str]
    reason: Mapped[str]
    approved_by: Mapped[str]
    until: Mapped[date]
    created_at: Mapped[datetime]
    created_by: Mapped[str]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None]
    revoke_reason: Mapped[str | None]
    risk_analysis: Mapped[str | None]


# -- breach register (incidents) -------------------------------------------------------------------


class IncidentRow(Base):
    """One personal-data breach: the facts, the assessment, the decision and the closure."""

    __table__ = schema.incidents

    id: Mapped[str]
    year: Mapped[int]
    number: Mapped[int]
    title: Mapped[str]
    status: Mapped[str]
    description: Mapped[str]
    occurred_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    discovered_at: Mapped[datetime]
    aware_at: Mapped[datetime]
    deadline: Mapped[datetime]
    how_discovered: Mapped[str]
    cause: Mapped[str]
    nature: Mapped[list[Any]]
    data_categories: Mapped[list[Any]]
    subjects: Mapped[int]
    subjects_max: Mapped[int | None]
    records: Mapped[int | None]
    people: Mapped[list[Any]]
    processor: Mapped[str]
    consequences: Mapped[str]
    measures_taken: Mapped[str]
    measures_planned: Mapped[str]
    protection: Mapped[str]
    cross_border: Mapped[bool]
    assessment: Mapped[dict[str, Any] | None]
    score: Mapped[str | None]
    band: Mapped[str | None]
    decision: Mapped[dict[str, Any] | None]
    closure: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str]
    updated_at: Mapped[datetime]
    significant: Mapped[bool]
    found_by: Mapped[str]
    processor_discovered_at: Mapped[datetime | None]
    processor_told_at: Mapped[datetime | None]
    ap_instruction: Mapped[str]


class IncidentNotification(Base):
    """A notification to the authority (initial, follow-up, withdrawal) or a communication to the people."""

    __table__ = schema.incident_notifications

    id: Mapped[int]
    incident_id: Mapped[str]
    recipient: Mapped[str]
    kind: Mapped[str]
    at: Mapped[datetime]
    reference: Mapped[str]
    channel: Mapped[str]
    delay_reason: Mapped[str]
    note: Mapped[str]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str]
    open_items: Mapped[str]
    follow_up_due: Mapped[datetime | None]
    message: Mapped[dict[str, Any] | None]


class IncidentLink(Base):
    """A link from a breach to a related control or finding of the monitor."""

    __table__ = schema.incident_links

    id: Mapped[int]
    incident_id: Mapped[str]
    kind: Mapped[str]
    ref: Mapped[str]
    linked_at: Mapped[datetime]
    linked_by: Mapped[str]


class IncidentEvent(Base):
    """One change to the register, append-only; `hash` covers the event and the previous event's hash
    (an HMAC under the audit key when `alg` is set)."""

    __table__ = schema.incident_events

    seq: Mapped[int]
    incident_id: Mapped[str]
    at: Mapped[datetime]
    by: Mapped[str]
    action: Mapped[str]
    field: Mapped[str | None]
    old: Mapped[str | None]
    new: Mapped[str | None]
    prev_hash: Mapped[str]
    hash: Mapped[str]
    alg: Mapped[str | None]
    key_id: Mapped[str | None]


# -- evidence and the statement of applicability ------------------------------------------------------


class Attestation(Base):
    """Evidence that a control is met, recorded by a person, valid until a date (append-only).

    For a file the SHA-256 of its content is kept, so a later change of the file shows; the file itself
    is only copied into the evidence store when asked (`copy_path`).
    """

    __table__ = schema.attestations

    id: Mapped[int]
    control_id: Mapped[str]
    attested_by: Mapped[str]
    evidence: Mapped[str]
    sha256: Mapped[str | None]
    copy_path: Mapped[str | None]
    valid_until: Mapped[date]
    note: Mapped[str | None]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str]


class ApplicabilityDecision(Base):
    """Whether a BIO2 / ISO 27002 control, a BIO2 measure or a catalog control applies (append-only:
    the newest decision per subject counts; the older ones are the history)."""

    __table__ = schema.applicability

    id: Mapped[int]
    subject: Mapped[str]
    applies: Mapped[bool]
    reason: Mapped[str]
    decided_by: Mapped[str]
    decided_at: Mapped[datetime]
    risk_analysis: Mapped[str | None]


# -- scheduler daemon, breach deadline alerts and deliveries ------------------------------------------


class SchedulerLock(Base):
    """The leader among the scheduler daemons on this database, and until when its lease runs (SQLite)."""

    __table__ = schema.scheduler_lock

    name: Mapped[str]
    holder: Mapped[str]
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    epoch: Mapped[int]


class JobRun(Base):
    """One run of a scheduled scan job for one scheduled time; the pair is unique, so nothing runs twice."""

    __table__ = schema.job_runs

    id: Mapped[int]
    job_id: Mapped[str]
    scheduled_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str]
    scan_id: Mapped[int | None]
    holder: Mapped[str]
    error: Mapped[str | None]
    epoch: Mapped[int | None]


class Alert(Base):
    """A breach deadline alert, raised once per stage: 24 h and 6 h before the deadline, and when it passed."""

    __table__ = schema.alerts

    id: Mapped[int]
    incident_id: Mapped[str]
    stage: Mapped[str]
    deadline: Mapped[datetime]
    raised_at: Mapped[datetime]


class Delivery(Base):
    """One attempt to send a digest or an alert on one channel: when, to how many, and the result."""

    __table__ = schema.deliveries

    id: Mapped[int]
    kind: Mapped[str]
    key: Mapped[str]
    channel: Mapped[str]
    attempt: Mapped[int]
    at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    result: Mapped[str]
    recipients: Mapped[int]
    error: Mapped[str | None]
    retry_at: Mapped[datetime | None]
    refused: Mapped[dict[str, Any] | None]


# -- organisations (issue 20) -----------------------------------------------------------------------


class Organisation(Base):
    """A municipality served by this monitor, and where its data is."""

    __table__ = schema.organisations

    code: Mapped[str]
    name: Mapped[str]
    location: Mapped[str]
    created_at: Mapped[datetime]
    created_by: Mapped[str]


# -- history: daily rollups of pruned results (`compliance db prune`, issue 18) ------------------------


class HistoryDay(Base):
    """One day (in the configured time zone) of one check of a control on one target, rolled up.

    Written by `compliance db prune` in one transaction per day before that day's raw results are
    deleted, so the report and the ENSIA export read the same facts from it as from the raw results:
    the counts per status, the newest result and the newest failing result of the day (their message
    and the message template from their evidence), and the scan of the newest result.
    """

    __table__ = schema.history_days

    id: Mapped[int]
    day: Mapped[date]
    day_end: Mapped[datetime]
    control_id: Mapped[str]
    check_index: Mapped[int]
    target: Mapped[str]
    worst_status: Mapped[str]
    passed: Mapped[int]
    failed: Mapped[int]
    errored: Mapped[int]
    skipped: Mapped[int]
    last_at: Mapped[datetime]
    last_scan_id: Mapped[int]
    last_status: Mapped[str]
    last_message: Mapped[str]
    last_evidence: Mapped[dict[str, Any]]
    fail_at: Mapped[datetime | None]
    fail_message: Mapped[str | None]
    fail_evidence: Mapped[dict[str, Any] | None]
