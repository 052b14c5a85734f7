"""The record of everything sent: one row per attempt, so nothing is sent twice and failures are retried.

A sender first *claims* the next attempt of (kind, key, channel) in a transaction of its own; the
attempt number is unique, so of two processes claiming at once one wins and the other leaves it. Then
it sends, and records the result: `sent` (with the number of recipients), `partial` (the server took
the message for some recipients and refused others: `refused` keeps each refused address with the
server's answer) or `failed` (with the error, secrets scrubbed, and when to retry: `retry_backoff`
doubled per attempt, until `max_attempts`). Once an attempt of (kind, key, channel) was sent, also
partly, it is never sent again: the refused addresses are reported (the outcome, `digest status`, the
next digest's delivery problems), not retried, since a refusal names an address the server does not
take, which a later try does not change, and sending again would reach the others twice. A claim left `sending` by a
process that died is taken as `interrupted` after `STALE_AFTER` and tried again.

`kind` is `digest` (key: the week, 2026-W09) or `alert` (key: incident and stage, DL-2026-0007/24h).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from compliance.notify import DeliveryError, NotConfigured, Sent, scrub, secrets_of

if TYPE_CHECKING:
    from sqlalchemy import Select

    from compliance.db import Database
    from compliance.db.models import Delivery
    from compliance.settings import Settings

log = logging.getLogger("compliance.notify")

#: A claim still `sending` after this long belongs to a process that died; it counts as interrupted.
STALE_AFTER = timedelta(minutes=10)
#: Retries and the digest's report of problems look this far back.
LOOKBACK = timedelta(days=14)
ERROR_LIMIT = 500
#: The results that mean the message went out (to every recipient, or to some): never sent again.
DELIVERED = ("sent", "partial")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery: sent, failed, already sent earlier, or busy (another sender has it)."""

    kind: str
    key: str
    channel: str
    result: str  # sent | partial | failed | already-sent | busy; a preview: would-send | not-configured
    attempt: int | None = None
    recipients: int = 0
    error: str | None = None
    retry_at: datetime | None = None
    refused: dict[str, str] = field(default_factory=dict)  # partial: address -> the server's answer

    def describe(self) -> str:
        what = f"{self.kind} {self.key} by {self.channel}"
        if self.result == "sent":
            return f"{what}: sent to {self.recipients} recipient{'s' if self.recipients != 1 else ''}"
        if self.result == "partial":
            total = self.recipients + len(self.refused)
            return (f"{what}: sent to {self.recipients} of {total} recipients; refused: {refused_text(self.refused)}. "
                    "Not sent again to them: correct the address (digest.to, alerts.email) or the mailbox")
        if self.result == "already-sent":
            return f"{what}: already sent earlier, not sent again"
        if self.result == "busy":
            return f"{what}: another process is sending it right now"
        retry = f"; retry at {self.retry_at.isoformat(timespec='seconds')}" if self.retry_at else "; no more retries"
        return f"{what}: attempt {self.attempt} failed: {self.error}{retry}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One row of `deliveries`."""

    id: int
    kind: str
    key: str
    channel: str
    attempt: int
    at: datetime
    finished_at: datetime | None
    result: str
    recipients: int
    error: str | None
    retry_at: datetime | None
    refused: dict[str, str] | None


def refused_text(refused: dict[str, str]) -> str:
    """The refused addresses with the server's answers: `a@b.nl (550 5.1.1 unknown); c@d.nl (...)`."""
    return "; ".join(f"{address} ({answer})" for address, answer in sorted(refused.items()))


@dataclass(frozen=True, slots=True)
class DeliveryProblem:
    """A digest or alert that failed on a channel in a period: how often, the last error, and whether it
    got through in the end."""

    kind: str
    key: str
    channel: str
    failures: int
    last_error: str
    delivered: bool
    retrying: bool
    refused: str = ""  # partly delivered: the refused addresses with the server's answers (`refused_text`)


class Deliveries:
    """Sending with a record: `deliver` claims, sends, and records the outcome."""

    def __init__(self, database: Database, *, retry_backoff: float = 300.0, max_attempts: int = 6,
                 secrets: Sequence[str] = ()) -> None:
        self.database = database
        self.retry_backoff = retry_backoff
        self.max_attempts = max_attempts
        self.secrets = tuple(secrets)

    @classmethod
    def for_settings(cls, database: Database, settings: Settings) -> Deliveries:
        return cls(database, retry_backoff=settings.schedule.retry_backoff,
                   max_attempts=settings.schedule.max_attempts, secrets=secrets_of(settings))

    def deliver(self, kind: str, key: str, channel: str, send: Callable[[], int | Sent], *,
                now: datetime | None = None) -> Outcome:
        """Send once: unless it was sent before, claim the next attempt, call `send` (which returns the
        number of recipients, or a `Sent` with the refused ones, or raises DeliveryError) and record the
        result."""
        import sqlalchemy

        from compliance.db.models import Delivery

        now = now or datetime.now(UTC)
        try:
            with self.database.transaction() as session:
                rows = list(session.scalars(self._attempts(kind, key, channel)))
                if any(r.result in DELIVERED for r in rows):
                    return Outcome(kind, key, channel, "already-sent")
                last = rows[-1] if rows else None
                if last is not None and last.result == "sending":
                    if now - last.at < STALE_AFTER:
                        return Outcome(kind, key, channel, "busy", last.attempt)
                    last.result, last.finished_at = "interrupted", now
                    last.error = "the sending process stopped before it recorded the result"
                number = (last.attempt if last else 0) + 1
                claim = Delivery(kind=kind, key=key, channel=channel, attempt=number, at=now, result="sending",
                                 recipients=0)
                session.add(claim)
                session.flush()
                claim_id = claim.id
        except sqlalchemy.exc.IntegrityError:
            return Outcome(kind, key, channel, "busy")
        started = time.monotonic()
        try:
            sent = send()
        except (DeliveryError, NotConfigured) as exc:
            # NotConfigured here: something only the server could tell (it takes no non-ASCII password)
            again = isinstance(exc, DeliveryError) and number < self.max_attempts
            finished = now + timedelta(seconds=time.monotonic() - started)
            error = scrub(str(exc), self.secrets)[:ERROR_LIMIT]
            retry_at = finished + timedelta(seconds=self.retry_backoff * 2 ** (number - 1)) if again else None
            self._finish(claim_id, "failed", 0, error, retry_at, finished)
            log.debug("%s %s by %s: attempt %d failed: %s", kind, key, channel, number, error)
            if isinstance(exc, NotConfigured):
                raise
            return Outcome(kind, key, channel, "failed", number, 0, error, retry_at)
        except BaseException as exc:
            finished = now + timedelta(seconds=time.monotonic() - started)
            self._finish(claim_id, "failed", 0, f"internal error: {type(exc).__name__}", None, finished)
            raise
        sent = sent if isinstance(sent, Sent) else Sent(sent)
        finished = now + timedelta(seconds=time.monotonic() - started)
        if sent.refused:
            error = scrub(f"refused: {refused_text(sent.refused)}", self.secrets)[:ERROR_LIMIT]
            self._finish(claim_id, "partial", sent.recipients, error, None, finished, dict(sent.refused))
            log.debug("%s %s by %s: sent to %d recipient(s), %s", kind, key, channel, sent.recipients, error)
            return Outcome(kind, key, channel, "partial", number, sent.recipients, error, refused=dict(sent.refused))
        self._finish(claim_id, "sent", sent.recipients, None, None, finished)
        # debug only: the caller reports each outcome (the daemon logs it, `digest send` prints it)
        log.debug("%s %s by %s: sent to %d recipient(s)", kind, key, channel, sent.recipients)
        return Outcome(kind, key, channel, "sent", number, sent.recipients)

    def _finish(self, claim_id: int, result: str, recipients: int, error: str | None, retry_at: datetime | None,
                finished: datetime, refused: dict[str, str] | None = None) -> None:
        from compliance.db.models import Delivery

        with self.database.transaction() as session:
            row = session.get_one(Delivery, claim_id)
            row.result, row.recipients, row.error, row.retry_at = result, recipients, error, retry_at
            row.finished_at, row.refused = finished, refused

    @staticmethod
    def _attempts(kind: str, key: str, channel: str) -> Select[Delivery]:
        from sqlalchemy import select

        from compliance.db.models import Delivery

        return (select(Delivery).where(Delivery.kind == kind, Delivery.key == key, Delivery.channel == channel)
                .order_by(Delivery.attempt))

    def sent(self, kind: str, key: str, channel: str) -> bool:
        """Whether (kind, key) was ever delivered on channel (also when some recipients refused it)."""
        return any(a.result in DELIVERED for a in self.attempts(kind, key, channel))

    def attempts(self, kind: str | None = None, key: str | None = None, channel: str | None = None) -> list[Attempt]:
        """Recorded attempts, oldest first, optionally only of one kind, key and channel."""
        from sqlalchemy import select

        from compliance.db.models import Delivery

        stmt = select(Delivery).order_by(Delivery.id)
        if kind is not None:
            stmt = stmt.where(Delivery.kind == kind)
        if key is not None:
            stmt = stmt.where(Delivery.key == key)
        if channel is not None:
            stmt = stmt.where(Delivery.channel == channel)
        with self.database.sessions() as session:
            return [_attempt(row) for row in session.scalars(stmt)]

    def may_try(self, kind: str, key: str, channel: str, now: datetime) -> bool:
        """Whether a (next) attempt is due: never tried, or failed with its retry time reached, or its
        claim went stale. False once sent or out of attempts."""
        return _due(self.attempts(kind, key, channel), now)

    def due(self, kind: str, now: datetime | None = None) -> list[tuple[str, str]]:
        """The (key, channel) pairs of `kind` tried before, not delivered, whose next attempt is due."""
        now = now or datetime.now(UTC)
        groups: dict[tuple[str, str], list[Attempt]] = {}
        for a in self._recent(now, kind):
            groups.setdefault((a.key, a.channel), []).append(a)
        return [pair for pair, attempts in groups.items() if _due(attempts, now)]

    def problems(self, since: datetime, until: datetime) -> list[DeliveryProblem]:
        """Digests and alerts that failed on a channel between since and until, for the next digest."""
        groups: dict[tuple[str, str, str], list[Attempt]] = {}
        for a in self._recent(until):
            groups.setdefault((a.kind, a.key, a.channel), []).append(a)
        problems = []
        for (kind, key, channel), attempts in sorted(groups.items()):
            failed = [a for a in attempts if a.result in ("failed", "interrupted") and since <= a.at < until]
            partial = [a for a in attempts if a.result == "partial" and since <= a.at < until]
            if not failed and not partial:
                continue
            delivered = any(a.result in DELIVERED for a in attempts)
            problems.append(DeliveryProblem(kind, key, channel, len(failed), failed[-1].error or "" if failed else "",
                                            delivered, not delivered and _may_retry(attempts),
                                            refused_text(partial[-1].refused or {}) if partial else ""))
        return problems

    def _recent(self, now: datetime, kind: str | None = None) -> list[Attempt]:
        from sqlalchemy import select

        from compliance.db.models import Delivery

        stmt = select(Delivery).where(Delivery.at >= now - LOOKBACK).order_by(Delivery.kind, Delivery.key,
                                                                              Delivery.channel, Delivery.attempt)
        if kind is not None:
            stmt = stmt.where(Delivery.kind == kind)
        with self.database.sessions() as session:
            return [_attempt(row) for row in session.scalars(stmt)]


def _may_retry(attempts: Sequence[Attempt]) -> bool:
    last = attempts[-1]
    return last.result in ("sending", "interrupted") or last.retry_at is not None


def _due(attempts: Sequence[Attempt], now: datetime) -> bool:
    if not attempts:
        return True
    if any(a.result in DELIVERED for a in attempts):
        return False
    last = attempts[-1]
    if last.result == "sending":
        return now - last.at >= STALE_AFTER
    if last.result == "interrupted":
        return True
    return last.retry_at is not None and last.retry_at <= now


def _attempt(row: object) -> Attempt:
    return Attempt(**{name: getattr(row, name) for name in Attempt.__slots__})
