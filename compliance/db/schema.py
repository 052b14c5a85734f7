"""The schema of the monitor as SQLAlchemy Core tables. Times are stored in UTC.

This module imports SQLAlchemy Core only, never `sqlalchemy.orm`, so that commands that only read
(the incident list, the findings, the register of organisations) start without the ORM; the ORM
classes in `compliance.db.models` are mapped onto these tables.

Change a table only together with a migration (`alembic revision --autogenerate`); a test fails when
the tables and the migrations differ.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "NAMING_CONVENTION",
    "BigId",
    "UTCDateTime",
    "alerts",
    "applicability",
    "attestations",
    "check_results",
    "controls",
    "deliveries",
    "exceptions",
    "finding_changes",
    "findings",
    "history_days",
    "incident_events",
    "incident_links",
    "incident_notifications",
    "incidents",
    "job_runs",
    "metadata",
    "organisations",
    "scans",
    "scheduler_lock",
]

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

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """One call a value instead of two or three (a report reads some tens of thousands; issue 18).

        On SQLite from the stored ISO text to the aware datetime: the same result as the driver's
        `fromisoformat` followed by `process_result_value`. Elsewhere a value that is already in UTC
        is returned as it is: on PostgreSQL every one, as `create_engine` sets the session's time zone
        to UTC and the driver then builds each value with `datetime.timezone.utc` (which is `UTC`).
        """
        if dialect.name != "sqlite":
            if self.impl_instance.result_processor(dialect, coltype) is not None:
                return super().result_processor(dialect, coltype)
            convert = self.process_result_value

            def as_utc(value: datetime | None) -> datetime | None:
                if value is None or value.tzinfo is UTC:
                    return value
                return convert(value, dialect)

            return as_utc
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            moment = parse(value)
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

        return process


metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: A control as last synced from YAML; `active` is false once it is gone from the catalog or disabled.
controls = Table(
    "controls",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("theme", String(40), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("owner", String(200), nullable=True),
    Column("references", JSON, nullable=False, default=dict),
    Column("tags", JSON, nullable=False, default=list),
    Column("schedule", String(100), nullable=True),
    # the texts per language beside title, description and owner: {"nl": {"title": ..., ...}}
    Column("translations", JSON, nullable=False, default=dict, server_default=text("'{}'")),
    Column("content_hash", String(64), nullable=False),
    Column("source", String(1000), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("synced_at", UTCDateTime(), nullable=False),
    Column("last_status", String(10), nullable=True),
    Column("last_evaluated_at", UTCDateTime(), nullable=True),
)

#: One run of the engine over a set of controls.
scans = Table(
    "scans",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False, index=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("trigger", String(20), nullable=False),  # manual | schedule
    Column("status", String(20), nullable=False),  # running | completed | interrupted | failed
    Column("controls_total", Integer, nullable=False, default=0),
    Column("controls_passed", Integer, nullable=False, default=0),
    Column("controls_failed", Integer, nullable=False, default=0),
    Column("controls_error", Integer, nullable=False, default=0),
    Column("controls_skipped", Integer, nullable=False, default=0),
    Column("results_total", Integer, nullable=False, default=0),
    # the process that runs the scan, so a scan left `running` by a process that died can be closed
    Column("host", String(255), nullable=True),
    Column("pid", Integer, nullable=True),
)

#: One plugin result, append-only.
check_results = Table(
    "check_results",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("scan_id", BigId, ForeignKey("scans.id"), nullable=False, index=True),
    Column("control_id", String(100), ForeignKey("controls.id"), nullable=False),
    Column("check_index", Integer, nullable=False),
    Column("plugin", String(100), nullable=False),
    Column("target", String(500), nullable=False),
    Column("status", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("evidence", JSON, nullable=False, default=dict),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_check_results_control_target_at", "control_id", "target", "started_at"),
    # a control's last evaluation before a moment in one seek, read from the index alone (the risk
    # overview's trend and blind spots; migration 0014)
    Index("ix_check_results_control_at_status", "control_id", "started_at", "status", "scan_id"),
)

#: The current state of one control on one target, from its first failure on: open or resolved.
findings = Table(
    "findings",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("control_id", String(100), ForeignKey("controls.id"), nullable=False),
    Column("target", String(500), nullable=False),
    Column("state", String(10), nullable=False, index=True),  # open | resolved
    Column("last_status", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("times_reopened", Integer, nullable=False, default=0),
    UniqueConstraint("control_id", "target", name="uq_findings_control_target"),
)

#: A state change of a finding, so reports compute trends and time-to-fix without rescanning.
finding_changes = Table(
    "finding_changes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("finding_id", BigId, ForeignKey("findings.id"), nullable=False, index=True),
    Column("from_state", String(10), nullable=True),
    Column("to_state", String(10), nullable=False),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("scan_id", BigId, ForeignKey("scans.id"), nullable=True),
    # a finding's last change before a moment in one seek (the risk overview's state at a moment)
    Index("ix_finding_changes_finding_at", "finding_id", "at"),
)

#: An accepted risk: a failing control (or some of its targets) accepted until a date.
exceptions = Table(
    "exceptions",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("control_id", String(100), nullable=False, index=True),
    Column("target_pattern", String(500), nullable=False, default="*"),
    Column("reason", Text, nullable=False),
    Column("approved_by", String(200), nullable=False),
    Column("until", Date, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("revoked_by", String(200), nullable=True),
    Column("revoke_reason", Text, nullable=True),
    # the reference of the risk analysis behind accepting the risk (the ENSIA annex of deviations)
    Column("risk_analysis", String(500), nullable=True),
)

# -- breach register (incidents) -------------------------------------------------------------------
# The personal-data breach register of GDPR art. 33(5); the rules live in the `incidents` package.
# It holds counts and categories, never personal data of the people concerned. Every change to these
# tables is also an event in `incident_events`, a hash chain that `compliance incident verify` checks.

#: One personal-data breach: the facts, the assessment, the decision and the closure.
incidents = Table(
    "incidents",
    metadata,
    Column("id", String(20), primary_key=True),  # DL-2026-0007
    Column("year", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("status", String(10), nullable=False, index=True),  # open | assessed | notified | closed
    Column("description", Text, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("discovered_at", UTCDateTime(), nullable=False),
    Column("aware_at", UTCDateTime(), nullable=False),
    Column("deadline", UTCDateTime(), nullable=False, index=True),  # aware_at + 72 h (art. 33(1))
    Column("how_discovered", Text, nullable=False, default=""),
    Column("cause", Text, nullable=False, default=""),
    Column("nature", JSON, nullable=False),
    Column("data_categories", JSON, nullable=False),
    Column("subjects", Integer, nullable=False),
    Column("subjects_max", Integer, nullable=True),
    Column("records", Integer, nullable=True),
    Column("people", JSON, nullable=False),
    Column("processor", String(200), nullable=False, default=""),
    Column("consequences", Text, nullable=False, default=""),
    Column("measures_taken", Text, nullable=False, default=""),
    Column("measures_planned", Text, nullable=False, default=""),
    Column("protection", Text, nullable=False, default=""),
    Column("cross_border", Boolean, nullable=False, default=False),
    Column("assessment", JSON, nullable=True),
    Column("score", String(4), nullable=True),  # "3.25": exact quarters, copied from assessment
    Column("band", String(10), nullable=True, index=True),
    Column("decision", JSON, nullable=True),
    Column("closure", JSON, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # a significant incident under the Cbw (NIS2 art. 23): reported to the CSIRT in three stages
    Column("significant", Boolean, nullable=False, default=False, server_default=false()),
    # who found it and, for a processor, when it discovered it and told the municipality (art. 33(2))
    Column("found_by", String(20), nullable=False, default="", server_default=""),
    Column("processor_discovered_at", UTCDateTime(), nullable=True),
    Column("processor_told_at", UTCDateTime(), nullable=True),
    # what the authority required about informing the people concerned (art. 34(4))
    Column("ap_instruction", Text, nullable=False, default="", server_default=""),
    UniqueConstraint("year", "number", name="uq_incidents_year_number"),
)

#: A notification to the authority (initial, follow-up, withdrawal) or a communication to the people.
incident_notifications = Table(
    "incident_notifications",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("incident_id", String(20), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("recipient", String(10), nullable=False),  # authority | subjects
    Column("kind", String(12), nullable=False),  # initial | follow-up | withdrawal
    Column("at", UTCDateTime(), nullable=False),
    Column("reference", String(100), nullable=False, default=""),
    Column("channel", String(10), nullable=False, default=""),  # letter | e-mail | public (subjects)
    Column("delay_reason", Text, nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(200), nullable=False),
    # art. 33(4): what was still open at this notification to the authority, and when the follow-up is due
    Column("open_items", Text, nullable=False, default="", server_default=""),
    Column("follow_up_due", UTCDateTime(), nullable=True),
    # art. 34(2): what the people concerned were told (nature, contact, consequences, measures, lang)
    Column("message", JSON, nullable=True),
)

#: A link from a breach to a related control or finding of the monitor.
incident_links = Table(
    "incident_links",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("incident_id", String(20), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # control | finding
    Column("ref", String(100), nullable=False),
    Column("linked_at", UTCDateTime(), nullable=False),
    Column("linked_by", String(200), nullable=False),
    UniqueConstraint("incident_id", "kind", "ref", name="uq_incident_links_incident_kind_ref"),
)

#: One change to the register, append-only; `hash` covers the event and the previous event's hash (an
#: HMAC under the audit key when `alg` is set).
incident_events = Table(
    "incident_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # place in the chain
    Column("incident_id", String(20), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("by", String(200), nullable=False),
    Column("action", String(20), nullable=False),
    Column("field", String(40), nullable=True),
    Column("old", Text, nullable=True),  # canonical JSON of the value before
    Column("new", Text, nullable=True),  # canonical JSON of the value after
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
    # "hmac-sha256" for an event keyed with the audit key (kept outside the database), None for plain SHA-256
    Column("alg", String(20), nullable=True),
    Column("key_id", String(16), nullable=True),  # which audit key; never the key itself
)

# -- evidence and the statement of applicability ------------------------------------------------------

#: Evidence that a control is met, recorded by a person, valid until a date (append-only).
attestations = Table(
    "attestations",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("control_id", String(100), nullable=False, index=True),
    Column("attested_by", String(200), nullable=False),
    Column("evidence", String(2000), nullable=False),  # a path or a URL
    Column("sha256", String(64), nullable=True),
    Column("copy_path", String(2000), nullable=True),
    Column("valid_until", Date, nullable=False),
    Column("note", Text, nullable=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(200), nullable=False),
)

#: Whether a BIO2 / ISO 27002 control, a BIO2 measure or a catalog control applies (append-only: the
#: newest decision per subject counts; the older ones are the history).
applicability = Table(
    "applicability",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("subject", String(100), nullable=False, index=True),  # "7.4", "7.04.01" or a control id
    Column("applies", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=False),
    # the reference of the risk analysis behind not applying it (the ENSIA annex of deviations)
    Column("risk_analysis", String(500), nullable=True),
)

# -- scheduler daemon, breach deadline alerts and deliveries ------------------------------------------
# What the scheduler daemon ran and what the monitor sent, so that nothing runs or is sent twice, also
# across restarts and with a standby daemon. APScheduler keeps its own table, `apscheduler_jobs`.

#: The leader among the scheduler daemons on this database, and until when its lease runs (SQLite).
scheduler_lock = Table(
    "scheduler_lock",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("holder", String(200), nullable=False),  # host, pid and a random part
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # raised by one each time a daemon becomes the leader; runs carry it, so a former leader's writes are fenced
    Column("epoch", BigInteger, nullable=False, default=0, server_default=text("0")),
)

#: One run of a scheduled scan job for one scheduled time; the pair is unique, so nothing runs twice.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("job_id", String(200), nullable=False),
    Column("scheduled_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("status", String(12), nullable=False, index=True),  # running | completed | failed | interrupted
    Column("scan_id", BigId, ForeignKey("scans.id"), nullable=True),
    Column("holder", String(200), nullable=False),
    Column("error", Text, nullable=True),
    Column("epoch", BigInteger, nullable=True),  # the leader epoch that started it: finishes only in it
    UniqueConstraint("job_id", "scheduled_at", name="uq_job_runs_job_id_scheduled_at"),
)

#: A breach deadline alert, raised once per stage: 24 h and 6 h before the deadline, and when it passed.
alerts = Table(
    "alerts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("incident_id", String(20), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("stage", String(10), nullable=False),  # 24h | 6h | passed
    Column("deadline", UTCDateTime(), nullable=False),
    Column("raised_at", UTCDateTime(), nullable=False),
    UniqueConstraint("incident_id", "stage", name="uq_alerts_incident_id_stage"),
)

#: One attempt to send a digest or an alert on one channel: when, to how many, and the result.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("kind", String(10), nullable=False),  # digest | alert
    Column("key", String(60), nullable=False),  # the digest's week (2026-W09) or the alert (DL-2026-0007/24h)
    Column("channel", String(10), nullable=False),  # email | slack
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("result", String(12), nullable=False),  # sending | sent | partial | failed | interrupted
    Column("recipients", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),  # never a secret: passwords and tokens are scrubbed
    Column("retry_at", UTCDateTime(), nullable=True),
    # partial: the addresses the mail server refused, each with its answer ({"a@b.nl": "550 5.1.1 unknown"})
    Column("refused", JSON, nullable=True),
    # two senders cannot both claim the same attempt: the loser sees the row and leaves it
    UniqueConstraint("kind", "key", "channel", "attempt", name="uq_deliveries_kind_key_channel_attempt"),
)

# -- organisations (issue 20) -----------------------------------------------------------------------
# Each organisation (municipality) keeps its data in a database of its own: another SQLite file beside
# the first, or another schema on the same PostgreSQL server. The first database (database.url) holds
# the register of all of them; every database holds its own row (location ''), so a database opened
# for the wrong organisation is noticed before anything is read or written.

#: A municipality served by this monitor, and where its data is.
organisations = Table(
    "organisations",
    metadata,
    Column("code", String(40), primary_key=True),  # utrecht
    Column("name", String(200), nullable=False, default=""),  # Gemeente Utrecht
    # '' for the data in this database; else the SQLite file beside it or the PostgreSQL schema
    Column("location", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(200), nullable=False),
)

# -- history: daily rollups of pruned results (`compliance db prune`, issue 18) ------------------------

#: One day (in the configured time zone) of one check of a control on one target, rolled up by
#: `compliance db prune` before that day's raw results are deleted (see models.HistoryDay).
history_days = Table(
    "history_days",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("day", Date, nullable=False),
    # the end of the day in UTC (exclusive): raw results before the newest day_end were rolled up
    Column("day_end", UTCDateTime(), nullable=False, index=True),
    Column("control_id", String(100), nullable=False),
    Column("check_index", Integer, nullable=False),
    Column("target", String(500), nullable=False),
    Column("worst_status", String(10), nullable=False),  # fail | error | pass | skipped, in that order
    Column("passed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("errored", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    Column("last_scan_id", BigInteger, nullable=False),
    Column("last_status", String(10), nullable=False),
    Column("last_message", Text, nullable=False),
    Column("last_evidence", JSON, nullable=False, default=dict),  # the message template only
    Column("fail_at", UTCDateTime(), nullable=True),
    Column("fail_message", Text, nullable=True),
    Column("fail_evidence", JSON, nullable=True),
    UniqueConstraint("day", "control_id", "check_index", "target", name="uq_history_days_day_control_id"),
    # a control's last evaluation before a moment in one seek, as on check_results
    Index("ix_history_days_control_last_at", "control_id", "last_at"),
    Index("ix_history_days_control_target_fail_at", "control_id", "target", "fail_at"),
)
