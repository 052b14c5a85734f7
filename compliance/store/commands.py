"""`compliance exceptions`: accept the risk of a failing control until a date."""

from __future__ import annotations

from typing import Any

import click

from compliance.cli import (
    App,
    controls_option,
    emit_csv,
    emit_json,
    emit_table,
    error,
    format_option,
    pass_app,
    who,
)


@click.group(short_help="Accept the risk of a failing control until a date.")
def exceptions() -> None:
    """Accepted risks: a failing control accepted until a date, with reason and approver."""


@exceptions.command("add")
@click.argument("control")
@click.option("--reason", required=True, help="Why the risk is accepted for now.")
@click.option("--approved-by", required=True, help="Who accepted the risk (name and role).")
@click.option("--until", required=True, type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Last day the risk is accepted; from the day after, the finding counts as failing again.")
@click.option("--target", "target_pattern", default="*", show_default=True,
              help="Only targets matching this pattern (shell-style, e.g. 'https://*.gemeente.nl').")
@click.option("--by", "by", help="Who records this [default: the operating-system user].")
@click.option("--risk-analysis", "risk_analysis", metavar="REF",
              help="Reference of the risk analysis behind accepting the risk (shown in the ENSIA annex of deviations).")
@format_option("text", "json", default="text")
@controls_option()
@pass_app
def exceptions_add(app: App, control: str, reason: str, approved_by: str, until: Any, target_pattern: str,
                   by: str | None, risk_analysis: str | None, fmt: str, control_paths: tuple[str, ...]) -> None:
    """Accept the risk of a failing CONTROL until a date."""
    from compliance.errors import did_you_mean

    catalog = app.catalog(control_paths)
    if catalog.get(control) is None:
        hint = did_you_mean(control, catalog.ids())
        error(f"no control with id '{control}'" + (f"; {hint}" if hint else "") + " (see `compliance controls list`)")
    view = app.store().add_exception(control, reason=reason, approved_by=approved_by, until=until.date(),
                                     created_by=who(by), target_pattern=target_pattern,
                                     risk_analysis=risk_analysis)
    if fmt == "json":
        emit_json(_exception_json(view, app))
    else:
        click.echo(f"exception {view.id}: {control} ({target_pattern}) accepted until {view.until} "
                   f"by {view.approved_by}")


@exceptions.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also expired and revoked exceptions.")
@format_option("table", "json", "csv")
@pass_app
def exceptions_list(app: App, show_all: bool, fmt: str) -> None:
    """List exceptions in force (or all of them with --all)."""
    store = app.store()
    views = store.exceptions(include_inactive=show_all)
    data = [_exception_json(v, app) for v in views]
    if fmt == "json":
        emit_json(data)
    elif fmt == "csv":
        emit_csv(list(data[0]) if data else ["id"], [list(d.values()) for d in data])
    else:
        emit_table(["Id", "Control", "Target", "Until", "State", "Approved by", "Reason"],
                   [(d["id"], d["control"], d["target"], d["until"], d["state"], d["approved_by"], d["reason"])
                    for d in data])


def _exception_json(v: Any, app: App) -> dict[str, Any]:
    today = app.store().today()
    state = v.state if v.state == "revoked" else ("active" if v.in_force(today) else "expired")
    return {"id": v.id, "control": v.control_id, "target": v.target_pattern, "until": v.until, "state": state,
            "reason": v.reason, "approved_by": v.approved_by, "created_at": v.created_at,
            "created_by": v.created_by, "revoked_at": v.revoked_at, "revoked_by": v.revoked_by,
            "revoke_reason": v.revoke_reason, "risk_analysis": v.risk_analysis}


@exceptions.command("revoke")
@click.argument("exception_id", type=int)
@click.option("--reason", default="", help="Why the exception ends early.")
@click.option("--by", "by", help="Who revokes it [default: the operating-system user].")
@pass_app
def exceptions_revoke(app: App, exception_id: int, reason: str, by: str | None) -> None:
    """End an exception now: its findings count as failing again."""
    view = app.store().revoke_exception(exception_id, by=who(by), reason=reason)
    click.echo(f"exception {view.id} for {view.control_id} revoked")
