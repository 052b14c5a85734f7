"""`compliance attest`: record evidence for controls that people show, and see what expires."""

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


class _AttestGroup(click.Group):
    """`compliance attest CONTROL ...` is short for `compliance attest add CONTROL ...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["add", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_AttestGroup, short_help="Record evidence for controls and see what expires.")
def attest() -> None:
    """Record evidence for controls that people show, and see what expires.

    \b
    compliance attest POLICY-01 --by "J. de Vries, CISO" --evidence policy-2026.pdf --valid-until 2027-12-31
    compliance attest list --expiring-within 30d
    """


@attest.command("add")
@click.argument("control")
@click.option("--by", "attested_by", required=True, help="Who vouches for the evidence (name and role).")
@click.option("--evidence", required=True, metavar="PATH_OR_URL",
              help="The document (its SHA-256 is stored) or a URL.")
@click.option("--valid-until", required=True, type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Last day the evidence counts; after it the control fails until renewed.")
@click.option("--note", help="A remark for the auditor.")
@click.option("--copy", "copy", is_flag=True, help="Also copy the file into the evidence store (evidence.store).")
@format_option("text", "json", default="text")
@controls_option()
@pass_app
def attest_add(app: App, control: str, attested_by: str, evidence: str, valid_until: Any, note: str | None,
               copy: bool, fmt: str, control_paths: tuple[str, ...]) -> None:
    """Record evidence that CONTROL is met, valid until a date."""
    from compliance import evidence as evidence_store
    from compliance.errors import did_you_mean

    catalog = app.catalog(control_paths)
    found = catalog.get(control)
    if found is None:
        hint = did_you_mean(control, catalog.ids())
        error(f"no control with id '{control}'" + (f"; {hint}" if hint else "") + " (see `compliance controls list`)")
    store = app.store()
    view = evidence_store.record(
        app.database(), control, by=attested_by, evidence=evidence, valid_until=valid_until.date(),
        recorded_by=who(None), note=note, today=store.today(),
        copy_to=app.settings.resolve(app.settings.evidence.store) if copy else None)
    if fmt == "json":
        emit_json(_attestation_json(view, store.today()))
        return
    click.echo(f"attestation {view.id}: {control} valid until {view.valid_until} ({view.attested_by})"
               + (f", sha256 {view.sha256[:12]}…" if view.sha256 else ""))
    if not any(spec.plugin == "evidence" for spec in found.checks):
        click.echo(f"note: {control} has no `evidence` check, so this attestation does not change its status",
                   err=True)


@attest.command("list")
@click.option("--expiring-within", default="30d", show_default=True, metavar="DURATION",
              help="Mark evidence that expires within this time (e.g. 30d, 8w).")
@click.option("--all", "show_all", is_flag=True, help="Every attestation ever recorded, not only the newest.")
@format_option("table", "json", "csv")
@pass_app
def attest_list(app: App, expiring_within: str, show_all: bool, fmt: str) -> None:
    """Show the evidence per control, what expires soon first."""
    from compliance import evidence as evidence_store
    from compliance.durations import parse_duration

    try:
        window = parse_duration(expiring_within).days
    except ValueError as exc:
        error(f"--expiring-within: {exc}")
    db = app.database()
    views = evidence_store.history(db) if show_all else list(evidence_store.latest(db).values())
    today = app.store().today()
    data = sorted((_attestation_json(v, today, window) for v in views), key=lambda d: (d["valid_until"], d["id"]))
    if fmt == "json":
        emit_json(data)
    elif fmt == "csv":
        emit_csv(list(data[0]) if data else ["id"], [list(d.values()) for d in data])
    else:
        emit_table(["Control", "Valid until", "Days left", "State", "By", "Evidence"], [
            (d["control"], d["valid_until"], d["days_left"], d["state"], d["by"], d["evidence"]) for d in data],
            styles={"expired": "red", "expiring": "yellow", "valid": "green"})


def _attestation_json(view: Any, today: Any, window: int = 30) -> dict[str, Any]:
    days = view.days_left(today)
    state = "expired" if days < 0 else "expiring" if days <= window else "valid"
    return {"id": view.id, "control": view.control_id, "by": view.attested_by, "evidence": view.evidence,
            "sha256": view.sha256, "copy": view.copy_path, "valid_until": view.valid_until, "days_left": days,
            "state": state, "note": view.note, "recorded_at": view.recorded_at, "recorded_by": view.recorded_by}
