"""`compliance controls diff` and `controls upgrade`: moving a municipality's own controls from BIO2 1.2 to 1.3."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from tests.conftest import Project

#: A municipality's own controls, written for BIO2 1.2: 5.04.02 moved to 5.10.02, 5.25.01 to 5.26.02 and
#: 5.21.01 lapsed in 1.3. Block and flow style, double, single and no quotes, comments everywhere.
OLD = """\
# Gemeente Voorbeeld: our own controls, written for BIO2 1.2.
- id: WEB-01  # the public web server
  title: Public web server answers
  theme: technological
  references:
    # the management measure, and one that lapsed which we still have to sort out
    bio2:
      - "5.04.02"  # management responsibilities
      - '5.21.01'  # threat intelligence (lapsed in 1.3)
    iso27002: "8.20"
  severity: high
  checks:
    - plugin: probe
      targets: [{name: www, outcome: fail}]

# events are assessed by the SOC
- id: LOG-01
  title: Events are assessed
  theme: organizational
  references: {bio2: [5.25.01], iso27002: "5.25"}  # flow style stays flow style
  severity: medium
  checks:
    - plugin: probe
      params: {name: siem, outcome: pass}
"""

#: The same controls as scanned before their measures were named: today's validation refuses the 1.2
#: numbers, so the history recorded "before the upgrade" comes from these.
SCANNED_BEFORE = """\
- id: WEB-01
  title: Public web server answers
  theme: technological
  references: {iso27002: "8.20"}
  severity: high
  checks:
    - plugin: probe
      targets: [{name: www, outcome: fail}]
- id: LOG-01
  title: Events are assessed
  theme: organizational
  references: {iso27002: "5.25"}
  severity: medium
  checks:
    - plugin: probe
      params: {name: siem, outcome: pass}
"""


def line_of(text: str, needle: str) -> int:
    [line] = [i for i, content in enumerate(text.splitlines(), 1) if needle in content]
    return line


def comments(text: str) -> list[str]:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def run_json(project: Project, *args: str) -> Any:
    result = project.run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def decide(project: Project, subject: str, reason: str) -> None:
    """A decision recorded while 1.2 was current (the command now refuses the old number)."""
    from compliance import soa
    from compliance.db import Database

    db = Database(project.db_url)
    try:
        soa.decide(db, subject, applies=False, reason=reason, by="ciso", risk_analysis="RA-2025-04")
    finally:
        db.close()


def test_diff_lists_each_changed_measure_with_the_controls_and_decisions_touching_it(project: Project) -> None:
    path = project.control("own.yaml", OLD)
    decide(project, "5.04.02", "centraal geregeld door de SSC")
    found = run_json(project, "controls", "diff", "--framework", "bio2", "--from", "1.2", "--to", "1.3")
    by_number = {m["number"]: m for m in found["measures"]}
    assert (found["from"], found["to"]) == ("1.2", "1.3")
    assert [(c["id"], c["path"], c["line"]) for c in by_number["5.04.02"]["controls"]] == [
        ("WEB-01", "controls/own.yaml", line_of(OLD, '"5.04.02"'))]
    assert (by_number["5.04.02"]["change"], by_number["5.04.02"]["to"]) == ("moved", "5.10.02")
    assert [(d["subject"], d["applicable"], d["reason"]) for d in by_number["5.04.02"]["decisions"]] == [
        ("5.04.02", False, "centraal geregeld door de SSC")]
    assert [(c["id"], c["line"]) for c in by_number["5.25.01"]["controls"]] == [
        ("LOG-01", line_of(OLD, "5.25.01"))]
    assert by_number["5.25.01"]["to"] == "5.26.02"
    assert (by_number["5.21.01"]["change"], [c["id"] for c in by_number["5.21.01"]["controls"]]) == (
        "lapsed", ["WEB-01"])
    assert (by_number["6.03.04"]["change"], by_number["6.03.04"]["controls"]) == ("new", [])
    table = project.run("controls", "diff", "--from", "1.2", "--to", "1.3")
    assert table.exit_code == 0
    assert f"WEB-01 (controls/own.yaml:{line_of(OLD, '5.04.02')})" in table.stdout
    assert path.read_text(encoding="utf-8") == OLD


def test_dry_run_changes_nothing(project: Project) -> None:
    path = project.control("own.yaml", OLD)
    decide(project, "5.04.02", "centraal geregeld")
    before = path.read_bytes()
    result = project.run("controls", "upgrade", "--framework", "bio2", "--to", "1.3")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.stdout and "Would rewrite 2 references in 1 file" in result.stdout
    assert path.read_bytes() == before
    assert [d["subject"] for d in run_json(project, "controls", "applicability")] == ["5.04.02"]
    planned = run_json(project, "controls", "upgrade", "--to", "1.3")
    assert planned["applied"] is False
    assert [(r["from"], r["to"]) for r in planned["rewrites"]] == [("5.04.02", "5.10.02"), ("5.25.01", "5.26.02")]
    assert planned["decision_moves"] == [{"from": "5.04.02", "to": "5.10.02", "applicable": False,
                                          "reason": "centraal geregeld", "risk_analysis": "RA-2025-04"}]
    assert path.read_bytes() == before


def test_apply_rewrites_moved_numbers_only_and_keeps_every_comment(project: Project) -> None:
    path = project.control("own.yaml", OLD)
    done = run_json(project, "controls", "upgrade", "--framework", "bio2", "--to", "1.3", "--apply")
    after = path.read_text(encoding="utf-8")
    assert after == OLD.replace('"5.04.02"', '"5.10.02"').replace("[5.25.01]", "[5.26.02]")
    assert comments(after) == comments(OLD) and len(comments(OLD)) == 7
    assert "'5.21.01'" in after
    human = {(h["measure"], h["where"]) for h in done["needs_decision"]}
    assert ("5.21.01", f"controls/own.yaml:{line_of(OLD, '5.21.01')} (WEB-01)") in human
    # LOG-01 also names ISO control 5.25, while its measure now sits under 5.26
    assert ("5.25.01", f"controls/own.yaml:{line_of(OLD, '5.25.01')} (LOG-01)") in human
    assert ("6.03.04", "-") in human
    # what is left for a person is the lapsed measure, which validation now names
    validated = project.run("controls", "validate")
    assert validated.exit_code == 2
    assert validated.stderr.count("references.bio2") == 1 and "5.21.01" in validated.stderr
    again = run_json(project, "controls", "upgrade", "--to", "1.3", "--apply")
    assert (again["rewrites"], again["decision_moves"]) == ([], [])
    assert path.read_text(encoding="utf-8") == after


def test_history_attestations_exceptions_and_decisions_stay_attached(project: Project, probe_plugin: type) -> None:
    from compliance.db import Database
    from compliance.db.models import ApplicabilityDecision, ControlRow, Finding, FindingChange

    path = project.control("own.yaml", SCANNED_BEFORE)
    assert project.run("scan").exit_code == 1  # WEB-01 fails on www: a finding opens
    attested = project.run("attest", "add", "WEB-01", "--by", "J. de Vries (CISO)", "--evidence",
                           "https://intranet.voorbeeld.nl/webbeleid", "--valid-until", "2099-12-31")
    assert attested.exit_code == 0, attested.output
    excepted = project.run("exceptions", "add", "WEB-01", "--reason", "nieuw portaal in Q1", "--approved-by",
                           "J. de Vries (CISO)", "--until", "2099-12-31", "--by", "tester", "--format", "json")
    assert excepted.exit_code == 0, excepted.output
    decide(project, "5.04.02", "centraal geregeld door de SSC")
    [finding] = run_json(project, "findings", "--status", "all")
    path.write_text(OLD, encoding="utf-8")  # the municipality's files as they stood under BIO2 1.2

    diff = run_json(project, "controls", "diff", "--from", "1.2", "--to", "1.3")
    touched = {m["number"]: m for m in diff["measures"]}
    assert [a["control"] for a in touched["5.04.02"]["attestations"]] == ["WEB-01"]
    assert [(e["control"], e["target"]) for e in touched["5.04.02"]["exceptions"]] == [("WEB-01", "*")]

    result = project.run("controls", "upgrade", "--to", "1.3", "--apply", "--by", "tester")
    assert result.exit_code == 0, result.output
    # the person's decision on the lapsed measure: drop it
    path.write_text("\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                              if "5.21.01" not in line) + "\n", encoding="utf-8")
    assert project.run("scan").exit_code == 0  # the exception still accepts the failure on www

    [after] = run_json(project, "findings", "--status", "all")
    assert (after["id"], after["control"], after["state"], after["exception"]) == (
        finding["id"], "WEB-01", "accepted", json.loads(excepted.stdout)["id"])
    assert after["first_seen"] == finding["first_seen"]
    [attestation] = run_json(project, "attest", "list")
    assert attestation["control"] == "WEB-01"
    decisions = run_json(project, "controls", "applicability")
    assert [(d["subject"], d["applicable"], d["reason"], d["decided_by"]) for d in decisions] == [
        ("5.04.02", False, "centraal geregeld door de SSC", "ciso"),
        ("5.10.02", False, "centraal geregeld door de SSC", "tester")]
    db = Database(project.db_url)
    try:
        with db.sessions() as session:
            references = session.scalar(select(ControlRow.references).where(ControlRow.id == "WEB-01"))
            carried = session.scalar(select(ApplicabilityDecision.risk_analysis)
                                     .where(ApplicabilityDecision.subject == "5.10.02"))
            changes = session.scalars(select(FindingChange.to_state)
                                      .join(Finding, Finding.id == FindingChange.finding_id)
                                      .where(Finding.control_id == "WEB-01").order_by(FindingChange.id)).all()
    finally:
        db.close()
    assert references == {"bio2": ["5.10.02"], "iso27002": "8.20"}
    assert carried == "RA-2025-04"
    assert changes[0] == "open"


def test_unknown_version_or_broken_file_exits_2_and_changes_nothing(project: Project) -> None:
    path = project.control("own.yaml", OLD)
    unknown = project.run("controls", "upgrade", "--to", "1.4", "--apply")
    assert unknown.exit_code == 2
    assert "bio2 has no measure changes from version '1.2' to '1.4'; known: 1.2 -> 1.3" in unknown.stderr
    broken = project.control("broken.yaml", "- id: X\n  references: {bio2: [5.04.02\n")
    result = project.run("controls", "upgrade", "--to", "1.3", "--apply")
    assert result.exit_code == 2
    assert "controls/broken.yaml:" in result.stderr and "YAML error" in result.stderr
    assert path.read_text(encoding="utf-8") == OLD
    assert broken.read_text(encoding="utf-8") == "- id: X\n  references: {bio2: [5.04.02\n"
