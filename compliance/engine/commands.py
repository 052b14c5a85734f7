"""`compliance scan` and `compliance findings`: run the checks, and show what fails."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from compliance.cli import (
    EXIT_FAILING,
    EXIT_INTERRUPTED,
    App,
    console,
    controls_option,
    emit_csv,
    emit_json,
    emit_table,
    error,
    format_option,
    local_time,
    org_typed,
    pass_app,
)
from compliance.severity import Severity

if TYPE_CHECKING:
    from compliance.catalog import Catalog, Control
    from compliance.engine import Executor, ScanReport
    from compliance.store import ControlOutcome

SEVERITIES = tuple(s.value for s in Severity)  # lowest first: "low", "medium", "high", "critical"


@click.command(short_help="Run the checks and store results and findings.")
@click.option("--control", "control_ids", multiple=True, metavar="ID", help="Only this control (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only controls with this tag (repeatable: any of them).")
@format_option("table", "json")
@click.option("--fail-on", type=click.Choice([*SEVERITIES, "none"]), default="low", show_default=True,
              help="Exit 1 when a control of this severity or higher fails (accepted risks excepted); "
                   "`none` never exits 1.")
@controls_option()
@click.option("--all-orgs", is_flag=True,
              help="Scan every organisation you may act for, one after the other; a check they share (same "
                   "plugin and parameters: a shared mail gateway) runs once and counts for each.")
@pass_app
def scan(app: App, control_ids: tuple[str, ...], tags: tuple[str, ...], fmt: str, fail_on: str,
         control_paths: tuple[str, ...], all_orgs: bool) -> None:
    """Run the checks of the controls and store results and findings.

    Shows progress on a terminal, then a table of results (or one JSON object with `scan_id` and
    `results`). Each control is stored as soon as its checks are done; a check that crashes or hangs
    becomes an `error` result and the scan goes on.

    \b
    With --all-orgs each organisation gets its own scan, results and findings (JSON: one object
    with `organisations`, each holding `org`, `name` and its scan, and `shared_checks`); an
    exception on a shared finding stays each organisation's own.
    """
    from compliance.zones import ZoneExecutor

    if not all_orgs:
        catalog, selected = _select(app, control_ids, tags, control_paths)
        report = _run_scan(app, catalog, selected, control_paths=control_paths, executor=ZoneExecutor(app.settings))
        if fmt == "json":
            emit_json(_scan_json(report, selected))
        else:
            _print_scan(report, selected)
        if _fails(report, fail_on):
            sys.exit(EXIT_FAILING)
        return
    from compliance.engine import SharedChecks

    if org_typed():
        error("--all-orgs scans every organisation you may act for; leave out --org")
    orgs = app.visible_orgs()
    if not orgs:
        error(f"user '{app.access()[0]}' may act for none of this monitor's organisations; the `orgs:` section "
              "of compliance.yaml names who may act for which organisation")
    # every organisation's selection is checked before the first scan starts: bad input changes nothing
    apps = [app.for_org(org.code) for org in orgs]
    try:
        selections = [_select(one, control_ids, tags, control_paths, org=org.code) for org, one in zip(orgs, apps,
                                                                                                   strict=True)]
        shared = SharedChecks(ZoneExecutor(app.shared_settings))
        scans, failing = [], False
        for org, one, (org_catalog, org_selected) in zip(orgs, apps, selections, strict=True):
            org_report = _run_scan(one, org_catalog, org_selected, control_paths=control_paths, executor=shared)
            failing = failing or _fails(org_report, fail_on)
            if fmt == "json":
                scans.append({"org": org.code, "name": org.name, **_scan_json(org_report, org_selected)})
            else:
                click.echo(f"{org.code} ({org.name})" if org.name else org.code)
                _print_scan(org_report, org_selected)
    finally:
        for one in apps:
            one.close(keep_home=True)
    if fmt == "json":
        emit_json({"organisations": scans, "shared_checks": shared.shared})
    else:
        click.echo(f"{shared.shared} check(s) shared by more than one organisation ran once")
    if failing:
        sys.exit(EXIT_FAILING)


def _select(app: App, control_ids: Sequence[str], tags: Sequence[str], control_paths: Sequence[str], *,
            org: str | None = None) -> tuple[Catalog, dict[str, Control]]:
    """The app's organisation's catalog and the controls selected by --control and --tag, by id."""
    from compliance.errors import did_you_mean

    where = f" of organisation {org}" if org else ""
    catalog = app.catalog(control_paths)
    for cid in control_ids:
        if catalog.get(cid) is None:
            hint = did_you_mean(cid, catalog.ids())
            error(f"no control with id '{cid}'{where}" + (f"; {hint}" if hint else "") +
                  " (see `compliance controls list`)")
    selected = [c for c in catalog if (not control_ids or c.id in control_ids)
                and (not tags or set(tags) & set(c.tags))]
    if not selected:
        error(f"no controls selected{where}: check --control/--tag, or add controls to " +
              ", ".join(str(p) for p in (control_paths or app.settings.controls.paths)))
    return catalog, {c.id: c for c in selected}


def _run_scan(app: App, catalog: Catalog, selected: dict[str, Control], *, control_paths: Sequence[str],
              executor: Executor) -> ScanReport:
    """Scan the SELECTED controls of the app's organisation and store them."""
    from compliance.engine import run_scan
    from compliance.incidents.facts import FACT_SOURCES

    store = app.store()
    if not control_paths:  # the full configured catalog: controls gone from it become inactive
        store.sync_controls(catalog, deactivate_missing=True)
    try:
        with _progress(enabled=sys.stderr.isatty()) as progress:
            return run_scan(list(selected.values()), app.settings, store, progress=progress,
                            fact_sources=FACT_SOURCES, executor=executor)
    except KeyboardInterrupt:  # Ctrl-C: run_scan has marked the scan interrupted, stored controls stay
        click.echo("interrupted: the controls checked so far are stored and the scan is marked interrupted",
                   err=True)
        sys.exit(EXIT_INTERRUPTED)


def _outcomes(report: ScanReport, by_id: dict[str, Control]) -> list[ControlOutcome]:
    position = {cid: i for i, cid in enumerate(by_id)}
    return sorted(report.outcomes, key=lambda o: position[o.control_id])


def _scan_json(report: ScanReport, by_id: dict[str, Control]) -> dict[str, Any]:
    outcomes = _outcomes(report, by_id)
    return {
        "scan_id": report.scan_id, "status": report.status,
        "started_at": report.started_at, "finished_at": report.finished_at,
        "summary": _summary(outcomes),
        "controls": [{"control": o.control_id, "title": by_id[o.control_id].title, "severity": o.severity,
                      "status": o.status.value, "accepted": o.accepted} for o in outcomes],
        "results": [result for o in outcomes for result in _results_json(o)],
    }


def _print_scan(report: ScanReport, by_id: dict[str, Control]) -> None:
    outcomes = _outcomes(report, by_id)
    rows = []
    for o in outcomes:
        for t in sorted(o.targets, key=lambda t: t.target):
            status = "accepted" if t.accepted else t.status.value
            rows.append((o.control_id, o.severity, status, t.target, t.message))
        if not o.targets:
            groups = sorted({s.targets for s in by_id[o.control_id].checks if isinstance(s.targets, str)})
            rows.append((o.control_id, o.severity, o.status.value, "", "no targets: fill in " + ", ".join(
                f"targets.{g}" for g in groups) + " in compliance.yaml" if groups else "no targets to check"))
    emit_table(["Control", "Severity", "Status", "Target", "Message"], rows)
    s = _summary(outcomes)
    duration = (report.finished_at - report.started_at).total_seconds() if report.finished_at else 0
    click.echo(f"scan {report.scan_id}: {s['controls']} controls, {s['pass']} passed, {s['fail']} failed"
               f" ({s['accepted']} accepted), {s['error']} could not be checked, {s['skipped']} skipped"
               f" in {duration:.1f} s")


def _fails(report: ScanReport, fail_on: str) -> bool:
    """Whether a control at or above FAIL_ON failed (accepted risks do not count)."""
    if fail_on == "none":
        return False
    threshold = SEVERITIES.index(fail_on)
    return any(o.status.value == "fail" and not o.accepted and SEVERITIES.index(o.severity) >= threshold
               for o in report.outcomes)


def _results_json(outcome: ControlOutcome) -> list[dict[str, Any]]:
    """The results of one control for `scan --format json`, in time linear in its results and targets.

    A control can have tens of thousands of results (a check over every file of a share), so the
    accepted targets are looked up in a set, not searched per result.
    """
    accepted = {t.target for t in outcome.targets if t.accepted}
    every_target = "*" in accepted
    return [
        {"control": outcome.control_id, "plugin": plugin, "check_index": index, "target": r.target,
         "status": r.status.value, "message": r.message, "severity": outcome.severity,
         "accepted": every_target or r.target in accepted, "evidence": r.evidence}
        for plugin, index, r in outcome.results
    ]


def _summary(outcomes: Sequence[Any]) -> dict[str, int]:
    counts = {"controls": len(outcomes), "pass": 0, "fail": 0, "error": 0, "skipped": 0, "accepted": 0}
    for o in outcomes:
        counts[o.status.value] += 1
        counts["accepted"] += int(o.accepted)
    return counts


class _progress:
    """A progress bar on stderr while checks run, when stderr is a terminal; else nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int, int, str], None] | None:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TextColumn("{task.description}"), console=console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("", total=None)

        def update(done: int, total: int, control_id: str) -> None:
            self._bar.update(self._task, completed=done, total=total, description=control_id)

        return update

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- findings ----------------------------------------------------------------------------------------


@click.command(short_help="Show what fails, since when, and what was resolved.")
@click.option("--status", "state", type=click.Choice(["open", "accepted", "resolved", "all"]), default="open",
              show_default=True, help="open: failing and not accepted; accepted: covered by an exception.")
@format_option("table", "json", "csv")
@pass_app
def findings(app: App, state: str, fmt: str) -> None:
    """Show findings: what fails, since when, what is accepted, what was resolved.

    A finding is one control on one target, from its first failure on. Times are shown in the
    configured time zone; JSON and CSV give them in ISO 8601 with offset.
    """
    views = app.store().findings(state)
    if fmt == "json":
        emit_json([_finding_json(v) for v in views])
    elif fmt == "csv":
        header = list(_finding_json(views[0]).keys()) if views else list(_FINDING_FIELDS)
        emit_csv(header, [list(_finding_json(v).values()) for v in views])
    else:
        emit_table(["Control", "Severity", "Target", "State", "Since", "Last failed", "Resolved", "Message"], [
            (v.control_id, v.severity, v.target,
             v.state + (f" until {v.exception_until}" if v.exception_until else ""),
             local_time(app, v.first_seen, date_only=True), local_time(app, v.last_seen),
             local_time(app, v.resolved_at), v.message)
            for v in views
        ])
        if not views:
            click.echo(f"no {state if state != 'all' else ''} findings".replace("  ", " "))


_FINDING_FIELDS = ("id", "control", "title", "severity", "target", "state", "last_status", "message",
                   "first_seen", "last_seen", "resolved_at", "exception", "exception_until")


def _finding_json(v: Any) -> dict[str, Any]:
    return dict(zip(_FINDING_FIELDS, (
        v.id, v.control_id, v.title, v.severity, v.target, v.state, v.last_status, v.message, v.first_seen,
        v.last_seen, v.resolved_at, v.exception_id, v.exception_until), strict=True))
