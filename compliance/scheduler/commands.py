"""`compliance schedule` and `compliance digest`: the scheduler daemon and the weekly digest."""

from __future__ import annotations

import sys
from typing import Any

import click

from compliance.cli import EXIT_FAILING, App, emit_json, emit_table, format_option, local_time, pass_app


@click.group(short_help="The scheduler daemon: scans, alerts and the digest.")
def schedule() -> None:
    """The scheduler daemon: scans on schedule, breach deadline alerts and the weekly digest."""


@schedule.command("run")
@pass_app
def schedule_run(app: App) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT (Ctrl-C); it logs to stderr.

    Scans each control on its `schedule` (the others on schedule.default), checks the breach
    register's 72-hour deadlines every schedule.alert_interval and sends the digest on digest.cron.
    Jobs live in the database; a run missed while the daemon was down runs once on start, within
    schedule.misfire_grace. A second daemon on the same database waits as a standby and takes over
    when the first is gone. Exits 1 when it lost the leadership (let systemd restart it).

    \b
    With several organisations run one daemon per organisation, each with --org CODE (a systemd
    template unit compliance-scheduler@.service with --org %i does it): each scans, alerts and
    sends the digest of its own organisation, on its own database.
    """
    from compliance.scheduler import serve

    sys.exit(serve(app.settings, app.catalog(), app.database()))


@schedule.command("list")
@format_option("table", "json")
@pass_app
def schedule_list(app: App, fmt: str) -> None:
    """Every job with its schedule, next run time and last run, and which daemon leads.

    The digest and the breach deadline alerts are listed as off, with why, when they have no channel.
    """
    from compliance.scheduler import current_leader, job_statuses

    database = app.database()
    statuses = job_statuses(app.settings, app.catalog(), database)
    leader = current_leader(database)
    if fmt == "json":
        emit_json({
            "leader": None if leader is None else {"holder": leader.holder, "since": leader.since,
                                                   "heartbeat": leader.heartbeat, "alive": leader.alive()},
            "jobs": [{"id": s.id, "kind": s.kind, "name": s.name, "schedule": s.schedule,
                      "controls": list(s.controls), "next_run": s.next_run, "stored": s.stored,
                      "planned": s.planned, "enabled": s.enabled, "reason": s.why_off,
                      "last_run": s.last_run, "last_status": s.last_status}
                     for s in statuses],
        })
        return
    rows = [(s.id, s.schedule or "", _next_run(app, s),
             " ".join(filter(None, [local_time(app, s.last_run), s.last_status or ""])),
             _job_what(s)) for s in statuses]
    emit_table(["Job", "Schedule", "Next run", "Last run", "What"], rows, styles={"off": "yellow"})
    if leader is None:
        click.echo("no daemon has run on this database yet: start one with `compliance schedule run`")
    else:
        state = "leads" if leader.alive() else "led (gone)"
        click.echo(f"{leader.holder} {state} since {local_time(app, leader.since)}, "
                   f"last heartbeat {local_time(app, leader.heartbeat)}")


def _next_run(app: App, status: Any) -> str:
    if not status.enabled:
        return "off"
    return local_time(app, status.next_run) + ("" if status.stored else " (not started)")


def _job_what(status: Any) -> str:
    if not status.planned:
        return "removed at the next start"
    return status.name if status.enabled else f"{status.name}; off: {status.why_off}"


@click.group(short_help="Send the weekly digest for management.")
def digest() -> None:
    """The weekly digest for management, by e-mail and Slack."""


@digest.command("send")
@click.option("--channel", type=click.Choice(["email", "slack", "all"]), default="all", show_default=True,
              help="Where to send it; all: every configured channel.")
@click.option("--dry-run", is_flag=True, help="Print the digest (Slack: its blocks as JSON); send and record nothing.")
@click.option("--lang", type=click.Choice(["nl", "en"]), help="Language [default: digest.lang].")
@format_option("text", "json", default="text")
@pass_app
def digest_send(app: App, channel: str, dry_run: bool, lang: str | None, fmt: str) -> None:
    """Send the digest of the last complete week now, on each channel it has not gone out on yet.

    The daemon's weekly job calls the same code. Every attempt is recorded; a digest that went out on
    a channel for a week is never sent there again, and one that failed is retried by the daemon with
    back-off (exit code 1). Recipients the mail server refused while it took the others are listed
    (exit code 1) and not sent to again; `compliance digest status` shows them. With --format json:
    the week and the result per channel (with --dry-run: what would be sent).
    """
    from compliance.digest import build_digest, chosen_channels, render_text, send_digest, slack_message

    if fmt == "json":
        _digest_send_json(app, channel, dry_run, lang)
        return
    if dry_run:
        built = build_digest(app.database(), app.settings, lang=lang)
        if channel == "slack":
            text, blocks = slack_message(built)
            emit_json({"text": text, "blocks": blocks})
        else:
            click.echo(render_text(built), nl=False)
        return
    outcomes = send_digest(app.database(), app.settings, channels=chosen_channels(app.settings, channel), lang=lang)
    for outcome in outcomes:
        click.echo(outcome.describe(), err=outcome.result in ("failed", "partial"))
    if any(o.result in ("failed", "partial") for o in outcomes):
        sys.exit(EXIT_FAILING)


def _digest_send_json(app: App, channel: str, dry_run: bool, lang: str | None) -> None:
    from datetime import UTC, datetime

    from compliance.digest import chosen_channels, digest_week, preview_digest, send_digest
    from compliance.notify import CHANNELS

    now = datetime.now(UTC)
    week = digest_week(now, app.settings.zone)
    if dry_run:
        outcomes = preview_digest(app.database(), app.settings, CHANNELS if channel == "all" else [channel],
                                  week=week, now=now)
    else:
        outcomes = send_digest(app.database(), app.settings, channels=chosen_channels(app.settings, channel),
                               lang=lang, week=week, now=now)
    emit_json({"period": {"key": week.label, "start": week.start, "end": week.end}, "dry_run": dry_run,
               "lang": lang or app.settings.digest.lang,
               "channels": [{"channel": o.channel, "result": o.result, "attempt": o.attempt,
                             "recipients": o.recipients, "error": o.error, "retry_at": o.retry_at,
                             "refused": [{"address": a, "answer": r} for a, r in sorted(o.refused.items())]}
                            for o in outcomes]})
    if any(o.result in ("failed", "partial") for o in outcomes):
        sys.exit(EXIT_FAILING)


@digest.command("status")
@click.option("--week", help="Only this week, as 2026-W09 [default: the last 10 weeks with a digest].")
@format_option("table", "json")
@pass_app
def digest_status(app: App, week: str | None, fmt: str) -> None:
    """How each week's digest went on each channel: its last attempt and how many there were.

    `sent`; `partial`: the mail server took it for some recipients and refused others (listed with
    the server's answer; they are not sent to again: correct the address); `failed` (with when it is
    retried); `sending` (in progress). With --format json: one object per week and channel.
    """
    from compliance.digest import digest_deliveries

    found = digest_deliveries(app.database(), week=week)
    if fmt == "json":
        emit_json({"digests": [{"week": d.week, "channel": d.channel, "result": d.result, "attempts": d.attempts,
                                "at": d.at, "finished_at": d.finished_at, "recipients": d.recipients,
                                "refused": [{"address": a, "answer": r} for a, r in sorted(d.refused.items())],
                                "error": d.error, "retry_at": d.retry_at} for d in found]})
        return
    if not found:
        click.echo(f"no digest was sent for {week}" if week else "no digest was sent yet: `compliance digest send`")
        return
    rows = [(d.week, d.channel, d.result, str(d.attempts), str(d.recipients), local_time(app, d.at), _detail(app, d))
            for d in found]
    emit_table(["Week", "Channel", "Result", "Attempts", "Recipients", "Last attempt", "Detail"], rows)


def _detail(app: App, delivery: Any) -> str:
    if delivery.result == "partial":
        refused = "; ".join(f"{a} ({r})" for a, r in sorted(delivery.refused.items()))
        return f"refused {len(delivery.refused)}: {refused}; not sent to them again"
    if delivery.result == "failed":
        retry = f"retry at {local_time(app, delivery.retry_at)}" if delivery.retry_at else "no more retries"
        return f"{delivery.error}; {retry}"
    return delivery.error or ""
