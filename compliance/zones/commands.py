"""`compliance worker` and `compliance workers`: checks in other network zones (docs/scale-out.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from compliance.cli import EXIT_FAILING, App, emit_json, emit_table, error, format_option, pass_app

ZONE = click.STRING


def _zone(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", value):
        raise click.BadParameter(f"'{value}' is not a zone name: use lower-case letters, digits, '-' and '_' "
                                 "(at most 40), e.g. dmz or server-vlan")
    if value == "local":
        raise click.BadParameter("zone 'local' is the scan's own process and has no workers; name the zone "
                                 "this machine is in, e.g. dmz")
    return value


@click.command(short_help="Run the checks of one network zone (a Celery worker).")
@click.option("--zone", required=True, callback=_zone, help="The zone whose checks this worker runs, e.g. dmz.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Checks run at the same time.")
@click.option("--pool", type=click.Choice(["threads", "prefork"]), default="threads", show_default=True,
              help="threads: one process, for checks that wait on the network; prefork: a process per check "
                   "(Celery's hard time limit then ends a check that hangs).")
@click.option("--redelivery-after", type=click.FloatRange(5), default=300.0, show_default=True,
              help="Redis only: seconds after which a check a dead worker took is given to another worker; "
                   "more than 4 times the longest check timeout (RabbitMQ redelivers at once).")
@click.option("--base-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=".",
              show_default=True, help="The folder relative paths in checks (file_age, ...) count from.")
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="WARNING",
              show_default=True)
@click.option("--allow-command", is_flag=True,
              help="Also run the `command` plugin (it runs programs). Off by default: whoever can write to the "
                   "broker could otherwise run programs on this machine.")
def worker(zone: str, concurrency: int, pool: str, redelivery_after: float, base_dir: Path, loglevel: str,
           allow_command: bool) -> None:
    """Run the checks that scans send to ZONE, until SIGTERM or Ctrl-C.

    Start one (or more, for more capacity and for failover) on a machine that can reach the zone's
    targets. It needs the message broker's URL in COMPLIANCE_BROKER_URL (redis://... or amqp://...)
    and the check plugins the zone's controls use; it needs no database and no compliance.yaml.
    Credentials a plugin needs (LDAP, Graph) come from this worker's own environment.

    \b
    Example:
      COMPLIANCE_BROKER_URL=redis://broker.gemeente.local:6379/0 compliance worker --zone dmz
    """
    import logging

    from compliance.zones import broker_url, celery_app, connect
    from compliance.zones.worker import run_worker

    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = broker_url()
    connect(celery_app(url), url).release()  # a clear exit 2 when the broker cannot be reached
    click.echo(f"worker for zone {zone}: consuming compliance.zone.{zone} with {concurrency} {pool}", err=True)
    sys.exit(run_worker(url, zone, concurrency=concurrency, pool=pool, base_dir=base_dir.resolve(),
                        redelivery_after=redelivery_after, loglevel=loglevel, allow_command=allow_command))


@click.command(short_help="The network zones, their live workers and waiting checks.")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=1.0, show_default=True,
              help="Seconds to wait for workers to answer.")
@format_option("table", "json")
@pass_app
def workers(app: App, timeout: float, fmt: str) -> None:
    """The zones (configured and live), the workers that answer, and the checks waiting per zone.

    Exits 1 when a zone the configuration or the controls use has no live worker (its checks would be
    `error` results in a scan), 2 when the broker cannot be reached.
    """
    from compliance.zones import broker_url, celery_app, connect, live_workers, masked, queue_length

    configured = _configured_zones(app)
    url = broker_url()
    celery = celery_app(url)
    conn = connect(celery, url)
    try:
        found = live_workers(celery, conn, timeout)
        zones = sorted(set(configured) | {z for w in found for z in w.zones})
        rows: list[dict[str, Any]] = []
        for zone in zones:
            members = [w for w in found if zone in w.zones]
            rows.append({"zone": zone, "configured": zone in configured, "queued": queue_length(conn, zone),
                         "workers": [{"name": w.name, "concurrency": w.concurrency} for w in members]})
    finally:
        conn.release()
        celery.close()  # the connections of the broadcast to the workers
    missing = [r["zone"] for r in rows if r["configured"] and not r["workers"]]
    if fmt == "json":
        emit_json({"broker": masked(url), "zones": rows, "zones_without_workers": missing})
    else:
        emit_table(["Zone", "Used by config", "Workers", "Concurrency", "Waiting checks"],
                   [(r["zone"], "yes" if r["configured"] else "no",
                     "\n".join(w["name"] for w in r["workers"]) or "none",
                     str(sum(w["concurrency"] or 0 for w in r["workers"])), str(r["queued"])) for r in rows])
        if missing:
            click.echo(f"no live worker for zone {', '.join(missing)}: start one with `compliance worker --zone "
                       f"{missing[0]}`", err=True)
    if missing:
        sys.exit(EXIT_FAILING)


def _configured_zones(app: App) -> list[str]:
    """The zones compliance.yaml and the controls name, when there is a configuration."""
    from compliance.catalog import check_zone
    from compliance.errors import ComplianceError
    from compliance.settings import find_config

    if find_config(app.config_option) is None:
        return []
    try:
        settings = app.settings
        zones = set(settings.zones.groups.values())
        for control in app.catalog():
            if control.enabled:
                zones.update(check_zone(control, spec, settings.zones.groups) for spec in control.checks)
    except ComplianceError as exc:
        error(str(exc))
    zones.discard("local")
    return sorted(zones)
