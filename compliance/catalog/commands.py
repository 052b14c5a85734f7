"""`compliance controls` and `compliance checks`: the control definitions and the check plugins."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from compliance.cli import (
    EXIT_USAGE,
    App,
    controls_option,
    emit_json,
    emit_table,
    error,
    format_option,
    json_default,
    local_time,
    pass_app,
    who,
)

if TYPE_CHECKING:
    from compliance.catalog import Control


@click.group(short_help="List and validate control definitions (YAML).")
def controls() -> None:
    """List and validate control definitions (YAML)."""


@controls.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@controls_option()
@format_option("text", "json", default="text")
@pass_app
def controls_validate(app: App, paths: tuple[str, ...], control_paths: tuple[str, ...], fmt: str) -> None:
    """Check control files and report every mistake at once.

    PATHS are files or folders (default: the config's controls.paths). Each problem is printed as
    `path:line:col: what is wrong (how to fix)`; with --format json as one object with `valid`,
    `controls` and `problems` (path, line, col, message, hint), e.g. for a CI job or an editor.
    Exits 0 when all is valid, 2 otherwise.
    """
    from compliance.catalog import discover
    from compliance.errors import ValidationFailed, display_path

    chosen = paths + control_paths
    try:
        catalog = app.catalog(chosen)
    except ValidationFailed as exc:
        if fmt == "json":
            emit_json({"valid": False, "controls": None, "problems": [
                {"path": display_path(p.path), "line": p.line, "col": p.col, "message": p.message, "hint": p.hint}
                for p in exc.problems]})
            sys.exit(EXIT_USAGE)
        raise  # printed by the root group: one line per problem and a count
    if fmt == "json":
        emit_json({"valid": True, "controls": len(catalog), "problems": []})
        return
    files, _ = discover([Path(p) for p in chosen] if chosen else app.settings.control_paths)
    shipped = sum(c.bundled for c in catalog)
    own = len(catalog) - shipped
    where = f"{own} control{'s' if own != 1 else ''} in {len(files)} file{'s' if len(files) != 1 else ''}"
    click.echo((f"{where} and {shipped} from the shipped catalog" if shipped else where) + ": valid")


FRAMEWORK_CHOICE = click.Choice(["bio2", "avg", "forum-standaardisatie"])


@controls.command("list")
@controls_option()
@click.option("--tag", "tags", multiple=True, help="Only controls with this tag (repeatable: any of them).")
@click.option("--framework", type=FRAMEWORK_CHOICE, help="Only controls that refer to this framework.")
@format_option("table", "json")
@pass_app
def controls_list(app: App, control_paths: tuple[str, ...], tags: tuple[str, ...], framework: str | None,
                  fmt: str) -> None:
    """List the controls with their theme, severity, checks and schedule.

    Bundled controls (from the catalog shipped with the product, see controls.bundled in
    compliance.yaml) are listed with your own; `--framework` keeps those of one framework.
    """
    # Kind (`control_kind` with the configured target groups): automated when a check other than evidence
    # runs, evidence when only evidence checks run, unconfigured when none runs; a check on a target group
    # runs only when the group has targets. `unconfigured_groups` (JSON) names the groups without targets.
    from compliance.catalog.listing import listed
    from compliance.errors import display_path
    from compliance.soa import control_kind, unconfigured_groups

    settings = app.settings
    groups = settings.targets
    # the validated controls from the cache when their files, the settings and the plugins are unchanged
    shown = listed([Path(p) for p in control_paths] if control_paths else settings.control_paths, groups,
                   bundled=settings.controls.bundled)
    selected = [c for c in shown if (not tags or set(tags) & set(c.tags))
                and (framework is None or framework in c.frameworks)]
    # a view has the attributes of a Control that control_kind and unconfigured_groups read
    kinds = {c.id: control_kind(cast("Control", c), groups) for c in selected}
    waiting_on = {c.id: unconfigured_groups(cast("Control", c), groups) for c in selected}
    if fmt == "json":
        emit_json([{**c.model_dump(mode="json"), "source": "bundled" if c.bundled else display_path(c.source),
                    "line": c.line, "frameworks": c.frameworks, "kind": kinds[c.id],
                    "overridden_in": display_path(c.override_source) if c.override_source else None,
                    "unconfigured_groups": waiting_on[c.id]}
                   for c in selected])
        return
    waiting = sorted({g for c in selected for g in waiting_on[c.id]})
    emit_table(["Id", "Title", "Theme", "Severity", "Kind", "Checks", "Source"], [
        (c.id, c.title + ("" if c.enabled else " (disabled)"), c.theme, c.severity.value, kinds[c.id],
         ", ".join(s.plugin for s in c.checks),
         ("bundled" if c.bundled else display_path(c.source)) + (" + override" if c.override_source else ""))
        for c in selected
    ], title=(f"Checks on target group{'s' if len(waiting) > 1 else ''} without targets do not run (add them "
              f"under `targets:` in compliance.yaml): {', '.join(waiting)}") if waiting else None)


@controls.command("coverage")
@click.option("--framework", type=FRAMEWORK_CHOICE, default="bio2", show_default=True)
@click.option("--by", "by", type=click.Choice(["theme", "control", "measure"]), default="theme", show_default=True,
              help="Count per theme, or list each ISO control or each BIO2 government measure (bio2 only).")
@click.option("--lang", type=click.Choice(["en", "nl"]), default="en", show_default=True,
              help="Language of the titles with --by control or measure.")
@controls_option()
@format_option("table", "json")
@pass_app
def controls_coverage(app: App, framework: str, by: str, lang: str, control_paths: tuple[str, ...],
                      fmt: str) -> None:
    """How much of a framework the controls cover: automated, by evidence, or not at all.

    Per theme (BIO2: the ISO/IEC 27002:2022 controls of clauses 5-8; AVG: the articles followed up;
    Forum Standaardisatie: the internet standards), counted over the enabled controls.

    \b
    --by measure: each BIO2 government measure with its ISO control, hygiene categories, the controls
    that name it in their references, its coverage (automated when one of them has a check other than
    evidence, evidence when they only have evidence checks, none), whether it applies (see
    `controls applicability`) and its status: the worst of its controls' latest results.
    --by control: each ISO control with its own coverage and its measures counted by coverage.
    """
    from compliance import soa

    # a check on a target group without targets in compliance.yaml does not run: it makes nothing automated
    if by != "theme" and framework != "bio2":
        error(f"--by {by} lists BIO2 controls and measures; leave out --framework {framework} or use --by theme")
    catalog = app.catalog(control_paths)
    targets = app.settings.targets
    found = soa.decisions(app.database())
    if by == "measure":
        _coverage_by_measure(soa.measure_coverage(catalog, found, soa.control_states(app.database()), lang,
                                                  targets), fmt)
        return
    if by == "control":
        _coverage_by_control(soa.statement(catalog, app.database(), lang, targets), fmt)
        return
    groups = soa.coverage(catalog, framework, found, targets)
    totals = {k: sum(g.as_dict()[k] for g in groups)
              for k in ("requirements", "automated", "evidence", "missing", "not_applicable")}
    if fmt == "json":
        emit_json({"framework": framework, "groups": [g.as_dict() for g in groups], "totals": totals})
        return
    rows: list[Sequence[Any]] = [(g.group, g.requirements, len(g.automated), len(g.evidence), len(g.missing),
                                  len(g.not_applicable)) for g in groups]
    rows.append(("total", *totals.values()))
    emit_table(["Theme", "Requirements", "Automated", "Evidence", "Missing", "Not applicable"], rows,
               title=f"Coverage of {framework}")


def _coverage_by_measure(measures: list[Any], fmt: str) -> None:
    from compliance.soa import measure_summary

    summary = measure_summary(measures)
    if fmt == "json":
        keys = ("number", "control", "title", "hygiene", "cbw", "coverage", "controls", "applicable", "reason",
                "status")
        emit_json({"framework": "bio2", "measures": [{k: m.as_dict()[k] for k in keys} for m in measures],
                   "summary": summary})
        return
    emit_table(["Measure", "Control", "Title", "Hygiene", "Coverage", "Covered by", "Applicable", "Status"], [
        (m.number, m.control, m.title, ", ".join(m.hygiene), m.coverage, ", ".join(m.controls) or "-",
         "yes" if m.applies else "no", m.status) for m in measures],
        title=(f"{summary['measures']} BIO2 measures: {summary['automated']} automated, {summary['evidence']} "
               f"by evidence, {summary['none']} not covered, {summary['not_applicable']} not applicable"))


def _coverage_by_control(rows: list[Any], fmt: str) -> None:
    def counts(row: Any) -> dict[str, int]:
        applicable = [m for m in row.measure_rows if m.applies]
        return {"measures": len(row.measure_rows), "automated": sum(m.coverage == "automated" for m in applicable),
                "evidence": sum(m.coverage == "evidence" for m in applicable),
                "none": sum(m.coverage == "none" for m in applicable),
                "not_applicable": len(row.measure_rows) - len(applicable)}

    if fmt == "json":
        emit_json({"framework": "bio2", "controls": [
            {"number": r.number, "theme": r.theme, "title": r.title, "coverage": r.coverage, "controls": r.controls,
             "applicable": r.applies, "status": r.status, "measures": counts(r)} for r in rows]})
        return
    emit_table(["Control", "Title", "Coverage", "Measures", "Automated", "Evidence", "None", "Not applicable",
                "Applicable", "Status"], [
        (r.number, r.title, r.coverage, *counts(r).values(), "yes" if r.applies else "no", r.status) for r in rows],
        title="Coverage of bio2 per ISO/IEC 27002:2022 control")


@controls.command("applicability")
@click.argument("subject", required=False)
@click.option("--not-applicable", "not_applicable", is_flag=True, help="Record that SUBJECT does not apply.")
@click.option("--applicable", is_flag=True, help="Record that SUBJECT applies (again).")
@click.option("--reason", default="", help="Why; required with --not-applicable.")
@click.option("--by", "by", help="Who decides [default: the operating-system user].")
@click.option("--risk-analysis", "risk_analysis", metavar="REF",
              help="Reference of the risk analysis behind the decision (shown in the ENSIA annex of deviations).")
@controls_option()
@format_option("table", "json")
@pass_app
def controls_applicability(app: App, subject: str | None, not_applicable: bool, applicable: bool, reason: str,
                           by: str | None, risk_analysis: str | None, control_paths: tuple[str, ...],
                           fmt: str) -> None:
    """Record or show which controls apply, for the statement of applicability (VvT).

    SUBJECT is an ISO/IEC 27002:2022 control (7.4), a BIO2 measure (7.04.01) or a control id. A decision
    on an ISO control holds for each of its measures that has no decision of its own. Controls that do
    not apply, or all of whose BIO2 controls and measures do not, drop out of the compliance score and
    cover no measure. Without SUBJECT, list the decisions.

    \b
    compliance controls applicability 7.4 --not-applicable --reason "no own data centre; hosted at the SSC"
    """
    from compliance import soa

    if subject is None:
        if not_applicable or applicable:
            error("name the SUBJECT to decide on, e.g. `compliance controls applicability 7.4 --not-applicable`")
        found = soa.decisions(app.database())
        data: list[dict[str, Any]] = [
            {"subject": d.subject, "applicable": d.applies, "reason": d.reason, "decided_by": d.decided_by,
             "decided_at": d.decided_at, "risk_analysis": d.risk_analysis} for d in found.values()]
        if fmt == "json":
            emit_json(data)
        else:
            emit_table(["Subject", "Applicable", "Reason", "Decided by", "At"], [
                (d["subject"], "yes" if d["applicable"] else "no", d["reason"], d["decided_by"],
                 local_time(app, d["decided_at"])) for d in data])
        return
    if not_applicable == applicable:
        error("say --not-applicable (with --reason) or --applicable")
    canonical = soa.normalize_subject(subject, app.catalog(control_paths).ids())
    decision = soa.decide(app.database(), canonical, applies=applicable, reason=reason, by=who(by),
                          risk_analysis=risk_analysis)
    if fmt == "json":
        emit_json({"subject": decision.subject, "applicable": decision.applies, "reason": decision.reason,
                   "decided_by": decision.decided_by, "decided_at": decision.decided_at,
                   "risk_analysis": decision.risk_analysis})
    else:
        click.echo(f"{decision.subject}: {'applies' if decision.applies else 'does not apply'}"
                   + (f" ({decision.reason})" if decision.reason else ""))


@controls.command("soa")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "csv", "json"]), default="md",
              show_default=True)
@click.option("--lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file.")
@controls_option()
@pass_app
def controls_soa(app: App, fmt: str, lang: str, output: str | None, control_paths: tuple[str, ...]) -> None:
    """The statement of applicability (Verklaring van Toepasselijkheid, VvT).

    Every ISO/IEC 27002:2022 control with its BIO2 measures: applicable or not and why, how it is
    covered (automated check, evidence, none), the controls that cover it and their current status.
    """
    from compliance import soa
    from compliance.report.soa import render_soa

    rows = soa.statement(app.catalog(control_paths), app.database(), lang, app.settings.targets)
    text = render_soa(rows, fmt, lang, zone=app.settings.zone)
    if output:
        from compliance.safe_output import write_private

        write_private(Path(output), text.encode("utf-8"))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


VERSION_FRAMEWORK = click.Choice(["bio2"])


@controls.command("diff")
@click.option("--framework", type=VERSION_FRAMEWORK, default="bio2", show_default=True)
@click.option("--from", "from_version", required=True, help="The version your controls were written for, e.g. 1.2.")
@click.option("--to", "to_version", required=True, help="The version to move to, e.g. 1.3.")
@controls_option()
@format_option("table", "json")
@pass_app
def controls_diff(app: App, framework: str, from_version: str, to_version: str, control_paths: tuple[str, ...],
                  fmt: str) -> None:
    """What moved, lapsed and is new between two BIO2 versions, and what of yours each change touches.

    Per measure: your own controls that name it (in the files under controls.paths, overrides of
    shipped controls included), their attestations and live exceptions, and the applicability
    decisions on the measure or on those controls. The files are read without validation, so this
    works while they still name old numbers. Exits 0, or 2 for an unknown version or an unreadable file.

    \b
    compliance controls diff --framework bio2 --from 1.2 --to 1.3
    """
    from compliance.catalog.versions import survey

    found = survey(framework, from_version, to_version, _own_paths(app, control_paths), app.database())
    if fmt == "json":
        emit_json({k: v for k, v in found.as_dict().items() if k in ("framework", "from", "to", "measures")})
        return
    emit_table(["Measure", "Change", "Now", "Controls", "Attestations", "Exceptions", "Decisions"], [
        (m.number, m.change, m.new_number or "-",
         ", ".join(f"{s.control_id} ({s.where}{', override' if s.override else ''})" for s in m.sites) or "-",
         ", ".join(f"#{t.id} {t.subject}" for t in m.of("attestation")) or "-",
         ", ".join(f"#{t.id} {t.subject} {t.detail['target']}" for t in m.of("exception")) or "-",
         ", ".join(f"{t.subject}: {'applies' if t.detail['applicable'] else 'not applicable'}"
                   for t in m.of("decision")) or "-")
        for m in found.measures],
        title=f"{framework} {found.from_version} -> {found.to_version}: {len(found.measures)} measures changed, "
              f"{sum(bool(m.sites or m.touches) for m in found.measures)} touch your controls or decisions")


@controls.command("upgrade")
@click.option("--framework", type=VERSION_FRAMEWORK, default="bio2", show_default=True)
@click.option("--to", "to_version", required=True, help="The version to move to, e.g. 1.3.")
@click.option("--from", "from_version", help="The version to move from [default: the one earlier version known].")
@click.option("--apply", "apply_changes", is_flag=True, help="Write the changes (without it: a dry run).")
@click.option("--by", "by", help="Who records the carried-over decisions [default: the operating-system user].")
@controls_option()
@format_option("table", "json")
@pass_app
def controls_upgrade(app: App, framework: str, to_version: str, from_version: str | None, apply_changes: bool,
                     by: str | None, control_paths: tuple[str, ...], fmt: str) -> None:
    """Move your controls and decisions to a new BIO2 version; a dry run unless --apply.

    Rewrites each reference to a moved measure in your own control files (only the number changes:
    comments, order, style and quotes stay) and records each applicability decision on a moved
    measure again under its new number (the old one stays in the history). Attestations, exceptions
    and finding history belong to control ids, which do not change; the stored controls take the new
    references at the next scan. Lapsed and new measures, and anything else that needs a judgement,
    are listed as needing a human decision and never changed.

    \b
    Exit codes: 0 done, or nothing to do (also for a dry run, and when human decisions remain);
    2 bad input (an unknown version, a file that cannot be read or written, with its file:line),
    in which case nothing was changed.

    \b
    compliance controls upgrade --framework bio2 --to 1.3            # what it would change
    compliance controls upgrade --framework bio2 --to 1.3 --apply    # change it
    """
    from compliance.catalog.versions import apply, survey

    found = survey(framework, from_version, to_version, _own_paths(app, control_paths), app.database())
    if apply_changes:
        apply(found, app.database(), by=who(by))
    if fmt == "json":
        emit_json({**{k: v for k, v in found.as_dict().items() if k != "measures"}, "applied": apply_changes})
        return
    rewrites, moves = found.rewrites, found.decision_moves
    verb = "Rewrote" if apply_changes else "Would rewrite"
    files = len({s.path for s, _ in rewrites})
    click.echo(f"{framework} {found.from_version} -> {found.to_version}"
               + ("" if apply_changes else " (dry run; add --apply to write)"))
    if not rewrites and not moves:
        click.echo("No reference or decision to move.")
    if rewrites:
        emit_table(["Where", "Control", "From", "To"], [(s.where, s.control_id, s.written, new) for s, new in rewrites],
                   title=f"{verb} {len(rewrites)} reference{'s' if len(rewrites) != 1 else ''} in {files} "
                         f"file{'s' if files != 1 else ''}")
    if moves:
        emit_table(["From", "To", "Applicable", "Reason"],
                   [(d.from_subject, d.to_subject, "yes" if d.applies else "no", d.reason) for d in moves],
                   title=f"{'Moved' if apply_changes else 'Would move'} {len(moves)} applicability "
                         f"decision{'s' if len(moves) != 1 else ''} (recorded by {who(by)})")
    if found.human:
        emit_table(["Measure", "Where", "What", "Decide"],
                   [(h.measure, h.where, h.what, h.decide) for h in found.human],
                   title=f"Needs a human decision ({len(found.human)}): not changed")


def _own_paths(app: App, control_paths: tuple[str, ...]) -> list[Path]:
    """The municipality's own control files: --controls, else controls.paths (never the shipped catalog)."""
    return [Path(p) for p in control_paths] if control_paths else list(app.settings.control_paths)


@click.group(short_help="List and show the installed check plugins.")
def checks() -> None:
    """Check plugins: the built-in ones and those installed from other packages."""


@checks.command("list")
@format_option("table", "json")
def checks_list(fmt: str) -> None:
    """List the installed check plugins, where they come from and their parameters."""
    from compliance import plugins

    rows: list[dict[str, Any]] = []
    for name in plugins.names():
        try:
            cls = plugins.load(name)
        except plugins.PluginError as exc:
            rows.append({"name": name, "origin": plugins.origin(name), "summary": f"BROKEN: {exc}",
                         "parameters": [], "target_param": None})
            continue
        doc = (cls.__doc__ or "").strip().splitlines()
        rows.append({"name": name, "origin": plugins.origin(name), "summary": doc[0] if doc else "",
                     "parameters": list(cls.Params.model_fields), "target_param": cls.target_param})
    if fmt == "json":
        emit_json(rows)
        return
    emit_table(["Plugin", "Parameters", "Origin", "What it checks"],
               [(r["name"], ", ".join(r["parameters"]), r["origin"], r["summary"]) for r in rows])


@checks.command("show")
@click.argument("name")
@format_option("text", "json", default="text")
def checks_show(name: str, fmt: str) -> None:
    """Show one plugin's documentation: the secure state, the guideline each verdict follows, its
    parameters with their defaults, and an example control."""
    import inspect
    from datetime import timedelta

    from compliance import plugins
    from compliance.durations import format_duration

    cls = plugins.load(name)
    module = inspect.getmodule(cls)
    doc = inspect.cleandoc((module.__doc__ if module is not None else None) or cls.__doc__ or "")
    parameters = []
    documented = _attribute_docs(cls.Params)
    for field, info in cls.Params.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(default, timedelta):
            default = format_duration(default).replace(" ", "")  # as written in YAML: 3d, 1h30m
        elif not isinstance(default, str | int | float | bool | list | None):
            default = json_default(default)
        parameters.append({"name": field, "required": info.is_required(), "default": default,
                           "description": " ".join((info.description or documented.get(field, "")).split())})
    if fmt == "json":
        emit_json({"name": name, "origin": plugins.origin(name), "target_param": cls.target_param,
                   "facts": list(cls.facts), "parameters": parameters, "doc": doc})
        return
    click.echo(f"{name} ({plugins.origin(name)})\n")
    click.echo(doc + "\n")
    click.echo("Parameters" + (f" (a plain string in `targets:` fills `{cls.target_param}`)" if cls.target_param
                               else "") + ":")
    for p in parameters:
        click.echo(f"  {p['name']}: " + ("required" if p["required"] else f"default {p['default']!r}")
                   + (f" — {p['description']}" if p["description"] else ""))


def _attribute_docs(params: type) -> dict[str, str]:
    """The string literal under each field of a plugin's Params class and its bases, by field name.

    Read from the source when `checks show` asks, not by pydantic's `use_attribute_docstrings` when every
    plugin is imported: that reads each class's source at import (a third of the plugins' API's start-up).
    """
    import ast
    import inspect

    docs: dict[str, str] = {}
    for cls in reversed(params.__mro__):
        try:
            tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            continue  # no source (a built-in base, a frozen plugin): its fields stay undocumented
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for field, doc in itertools.pairwise(body):
            if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and isinstance(doc, ast.Expr)
                    and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)):
                docs[field.target.id] = inspect.cleandoc(doc.value.value)
    return docs
