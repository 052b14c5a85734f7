"""The keyed audit chain against someone who writes the database directly (issue 15).

Each attack is a real SQL write to the database (SQLite and PostgreSQL) after the register was used
through the CLI: an event rewritten and the chain recomputed with plain SHA-256 or another key, the
newest events deleted with what they recorded, the whole register emptied, bookkeeping columns changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from compliance.incidents import chain
from tests.conftest import Project
from tests.incidents.conftest import LETTER, new_letter, ok, stored

pytestmark = pytest.mark.faults

KEY = "3f9a1c0e7b5d2a4c6e8f0a1b3c5d7e9f1a2b3c4d5e6f708192a3b4c5d6e7f809"
OTHER_KEY = "another-key-that-someone-guessed-0123456789abcdef"
KEYED_CONFIG = "incidents:\n  audit_key_file: audit.key\n"


def keyed(project: Project, mode: int = 0o600) -> Project:
    key_file = project.root / "audit.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    os.chmod(key_file, mode)
    project.write_config(KEYED_CONFIG)
    return project


def walk(project: Project) -> str:
    """create (1), assess (2), status (3), decide (4)."""
    incident = new_letter(project)
    ok(project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "high risk", "--format", "json", "--by", "anna"))
    return incident


def sql(db_url: str, *statements: str) -> None:
    from compliance.db import Database

    db = Database(db_url)
    try:
        with db.transaction() as session:
            for statement in statements:
                session.execute(text(statement))
    finally:
        db.close()


def rewrite(db_url: str, seq: int, by: str, key: chain.AuditKey | None, key_id: str | None = None) -> None:
    """Change who did event `seq` and recompute the chain from there: with plain SHA-256 (key None) or
    another key, storing `key_id` (default: that key's id) as the event's key id."""
    from sqlalchemy import select

    from compliance.db import Database
    from compliance.db.models import IncidentEvent

    db = Database(db_url)
    try:
        with db.transaction() as session:
            events = list(session.scalars(select(IncidentEvent).where(IncidentEvent.seq >= seq)
                                          .order_by(IncidentEvent.seq)))
            prev = events[0].prev_hash
            fresh = []
            for event in events:
                fields: dict[str, Any] = dict(seq=event.seq, incident_id=event.incident_id, at=event.at,
                                              by=by if event.seq == seq else event.by, action=event.action,
                                              field=event.field, old=event.old, new=event.new, prev_hash=prev)
                digest = chain.keyed_hash(key, **fields) if key else chain.event_hash(**fields)
                fresh.append(IncidentEvent(**fields, hash=digest, alg=chain.HMAC_SHA256 if key else None,
                                           key_id=(key_id or key.id) if key else None))
                prev = digest
            for event in events:
                session.delete(event)
            session.flush()
            session.add_all(fresh)
    finally:
        db.close()


def verify(project: Project, *args: str, env: dict[str, str] | None = None) -> Any:
    return project.run("incident", "verify", *args, env=env)


def save_checkpoint(project: Project) -> Path:
    path = project.root / "checkpoint.json"
    assert verify(project, "--save-checkpoint", str(path)).exit_code == 0
    assert path.stat().st_mode & 0o777 == 0o600
    return path


def key_id(secret: str = KEY) -> str:
    return chain.AuditKey(secret.encode(), "test").id


# -- the keyed chain ------------------------------------------------------------------------------------


def test_events_are_keyed_with_the_key_id_and_the_key_is_stored_nowhere(project: Project) -> None:
    keyed(project)
    incident = walk(project)
    from compliance.db import Database

    db = Database(project.db_url)
    try:
        with db.sessions() as session:
            rows = session.execute(text("SELECT alg, key_id FROM incident_events ORDER BY seq")).all()
            dump = repr(session.execute(text("SELECT * FROM incident_events")).all()) + repr(
                session.execute(text("SELECT * FROM incidents")).all())
    finally:
        db.close()
    assert rows == [("hmac-sha256", key_id())] * 4
    assert KEY not in dump
    result = verify(project)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("audit trail intact: 4 events, 1 incident; head hash ")
    assert lines[1] == f"keyed with audit key {key_id()} (HMAC-SHA256)"
    assert KEY not in result.stdout + result.stderr
    assert ok(project.run("incident", "show", incident, "--format", "json"))["id"] == incident


@pytest.mark.parametrize(("key", "stored_id", "problem"), [
    (None, None, "event 2 ({incident}): it is unkeyed although the chain is keyed since event 1: it was written "
                 "or rewritten without the audit key"),
    (OTHER_KEY, None, "event 2 ({incident}): it names algorithm 'hmac-sha256' and key id '{other}', not "
                      "'hmac-sha256' with the configured key ({mine}): the wrong audit key is configured, or the "
                      "event was forged"),
    (OTHER_KEY, "mine", "event 2 ({incident}): its content was altered after it was written (assess assessment "
                        "by mallory, "),
])
def test_an_event_rewritten_and_the_chain_recomputed_without_the_key_is_found(
        project: Project, key: str | None, stored_id: str | None, problem: str) -> None:
    keyed(project)
    incident = walk(project)
    forger = chain.AuditKey(key.encode(), "forger") if key else None
    rewrite(project.db_url, 2, "mallory", forger, key_id() if stored_id == "mine" else None)
    result = verify(project)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "audit trail BROKEN at event 2"
    assert "  " + problem.format(incident=incident, other=key_id(OTHER_KEY), mine=key_id()) in result.stdout


def test_an_unkeyed_chain_rewritten_and_recomputed_passes_alone_but_not_against_a_checkpoint(
        project: Project) -> None:
    walk(project)  # no key: the old SHA-256 chain
    checkpoint = save_checkpoint(project)
    rewrite(project.db_url, 2, "mallory", None)
    alone = verify(project)
    assert alone.exit_code == 0  # the limit of an unkeyed chain, stated in docs/security.md
    assert "not keyed: no audit key is configured" in alone.stdout
    result = verify(project, "--checkpoint", str(checkpoint))
    assert result.exit_code == 1
    assert "  checkpoint of " in result.stdout
    assert ": event 4 is not the one recorded then (head " in result.stdout
    assert result.stdout.rstrip().endswith("...): events up to it were rewritten")


# -- truncation and an emptied register ------------------------------------------------------------------


def _undo_to_create(db_url: str) -> None:
    sql(db_url, "DELETE FROM incident_events WHERE seq > 1",
        "UPDATE incidents SET assessment = NULL, score = NULL, band = NULL, decision = NULL, status = 'open', "
        "updated_at = created_at")


@pytest.mark.parametrize("attack", ["newest events", "whole register"])
def test_removing_the_newest_events_or_everything_is_found_against_the_checkpoint(project: Project,
                                                                                   attack: str) -> None:
    keyed(project)
    walk(project)
    checkpoint = save_checkpoint(project)
    if attack == "newest events":
        _undo_to_create(project.db_url)
        removed, now_held = "events 2-4 were", 1
    else:
        sql(project.db_url, "DELETE FROM incident_events", "DELETE FROM incidents")
        removed, now_held = "all of them were", 0
    alone = verify(project)
    assert alone.exit_code == 0  # nothing inside the database shows it
    result = verify(project, "--checkpoint", str(checkpoint))
    assert result.exit_code == 1
    recorded = json.loads(checkpoint.read_text(encoding="utf-8"))["at"]
    assert result.stdout == ("register differs from its audit trail\n"
                             f"  checkpoint of {recorded}: the trail held 4 events then and holds {now_held} now: "
                             f"{removed} removed\n")


def test_a_checkpoint_still_matches_after_later_changes(project: Project) -> None:
    keyed(project)
    incident = walk(project)
    checkpoint = save_checkpoint(project)
    ok(project.run("incident", "update", incident, "--measures-planned", "Two-person check", "--format", "json"))
    result = verify(project, "--checkpoint", str(checkpoint))
    assert result.exit_code == 0
    assert "(4 events): nothing before it was removed or changed" in result.stdout


def test_a_checkpoint_edited_to_fit_the_truncated_trail_fails_its_signature(project: Project) -> None:
    keyed(project)
    walk(project)
    checkpoint = save_checkpoint(project)
    _undo_to_create(project.db_url)
    data = json.loads(checkpoint.read_text(encoding="utf-8"))
    from compliance.db import Database
    from compliance.db.models import IncidentEvent

    db = Database(project.db_url)
    try:
        with db.sessions() as session:
            head = session.get_one(IncidentEvent, 1).hash
    finally:
        db.close()
    checkpoint.write_text(json.dumps({**data, "events": 1, "head": head}), encoding="utf-8")
    result = verify(project, "--checkpoint", str(checkpoint))
    assert result.exit_code == 1
    assert "its signature does not match: the checkpoint file was altered" in result.stdout


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "checkpoint.json:1: not a checkpoint of the audit trail (not JSON). Give the file"),
    ('{"events": 1}', "checkpoint.json:1: not a checkpoint of the audit trail (format "
                      "compliance-audit-checkpoint/1 with events, head, at, key_id and hmac)."),
])
def test_a_file_that_is_not_a_checkpoint_is_refused(project: Project, content: str, message: str) -> None:
    keyed(project)
    walk(project)
    (project.root / "checkpoint.json").write_text(content, encoding="utf-8")
    result = verify(project, "--checkpoint", "checkpoint.json")
    assert result.exit_code == 2
    assert message in result.stderr


# -- every stored field ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("statement", "problem"), [
    ("UPDATE incidents SET created_by = 'mallory'", "created_at/created_by (2"),
    ("UPDATE incidents SET created_at = aware_at", "created_at/created_by (2025-03-07T15:40:00.000000Z, anna) differ "
                                                   "from its first event ("),
    ("UPDATE incidents SET updated_at = aware_at", "updated_at 2025-03-07T15:40:00.000000Z is not the time of its "
                                                   "last event ("),
    ("UPDATE incidents SET number = 7", "year/number (2"),
])
def test_bookkeeping_columns_changed_outside_the_tool_are_found(project: Project, statement: str,
                                                                problem: str) -> None:
    keyed(project)
    incident = walk(project)
    sql(project.db_url, statement)
    result = verify(project)
    assert result.exit_code == 1
    assert result.stdout.startswith("register differs from its audit trail\n")
    assert f"  incident {incident}: {problem}" in result.stdout


# -- the key ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_a_key_file_others_may_read_is_refused_and_nothing_is_stored(project: Project, mode: int) -> None:
    keyed(project, mode)
    result = project.run("incident", "new", *LETTER, "--format", "json")
    assert result.exit_code == 2
    assert result.stderr == (f"error: audit.key: the audit key file has mode {mode:04o}: others than its owner may "
                             "read it. Make it private: `chmod 600 audit.key`\n")
    assert stored(project.db_url) == (0, 0, 0)
    assert verify(project).exit_code == 2


def test_the_key_from_the_environment_wins_and_a_short_key_is_refused(project: Project) -> None:
    walk(keyed(project))
    env = {chain.KEY_VARIABLE: OTHER_KEY}
    result = verify(project, env=env)
    assert result.exit_code == 1
    assert f"not 'hmac-sha256' with the configured key ({key_id(OTHER_KEY)})" in result.stdout
    short = verify(project, env={chain.KEY_VARIABLE: "short"})
    assert short.exit_code == 2
    assert short.stderr.startswith(f"error: {chain.KEY_VARIABLE}: the audit key is 5 characters long; it needs at "
                                   "least 32.")
    assert "short" not in short.stdout


def test_a_keyed_trail_refuses_writes_and_checks_without_its_key(project: Project) -> None:
    keyed(project)
    incident = walk(project)
    before = stored(project.db_url)
    project.write_config()  # the key is no longer configured
    result = project.run("incident", "update", incident, "--cause", "an old address file")
    assert result.exit_code == 2
    assert result.stderr == (f"error: the audit trail is keyed with the audit key {key_id()} but no audit key is "
                             "configured; nothing was stored. Set COMPLIANCE_AUDIT_KEY or incidents.audit_key_file "
                             "to that key (see docs/security.md)\n")
    assert stored(project.db_url) == before
    checked = verify(project)
    assert checked.exit_code == 2
    assert checked.stderr.startswith(f"error: the audit trail is keyed with the audit key {key_id()} from event 1: "
                                     "checking it needs that key.")


# -- introducing a key into an existing register -----------------------------------------------------------


def test_events_from_before_the_key_are_unkeyed_until_anchored(project: Project) -> None:
    incident = walk(project)  # without a key
    keyed(project)
    unanchored = verify(project)
    assert unanchored.exit_code == 1
    assert unanchored.stdout.startswith("audit trail NOT ANCHORED\n  events 1-4 were written without the audit key "
                                        "and no keyed event follows them")
    anchored = verify(project, "--anchor")
    assert anchored.exit_code == 0
    lines = anchored.stdout.splitlines()
    assert lines[0] == "anchored events 1-4 (written before the audit key) with keyed event 5"
    assert lines[2:4] == [f"keyed with audit key {key_id()} (HMAC-SHA256)",
                          "events 1-4 are unkeyed (written before the key was introduced); event 5, the first keyed "
                          "one, anchors them"]
    again = verify(project, "--anchor")
    assert again.exit_code == 2
    assert "there is nothing to anchor" in again.stderr
    # rewriting an anchored unkeyed event breaks the link of the keyed anchor
    rewrite(project.db_url, 2, "mallory", None)
    sql(project.db_url, "DELETE FROM incident_events WHERE seq = 5")  # and the anchor with it
    result = verify(project)
    assert result.exit_code == 1
    assert result.stdout.startswith("audit trail NOT ANCHORED\n")
    assert ok(project.run("incident", "show", incident, "--format", "json"))["id"] == incident


# -- compliance init --------------------------------------------------------------------------------------


def test_init_writes_a_private_key_file_names_it_and_never_replaces_it(tmp_path: Path, run_cli: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(chain.KEY_VARIABLE, raising=False)
    result = run_cli("init", "--no-catalog")
    assert result.exit_code == 0, result.output
    assert "wrote audit.key\n" in result.stdout
    key_file = tmp_path / "audit.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    secret = key_file.read_text(encoding="utf-8")
    assert len(secret.strip()) == 64
    assert "\n  audit_key_file: audit.key\n" in (tmp_path / "compliance.yaml").read_text(encoding="utf-8")
    assert run_cli("init", "--force", "--no-catalog").exit_code == 0
    assert key_file.read_text(encoding="utf-8") == secret
    checked = run_cli("incident", "verify")
    assert checked.exit_code == 0
    assert f"keyed with audit key {chain.AuditKey(secret.strip().encode(), 'x').id}" in checked.stdout
    assert secret.strip() not in checked.stdout


def test_verify_json_carries_the_key_id_the_checkpoint_and_what_was_anchored(project: Project) -> None:
    walk(project)
    keyed(project)
    data = json.loads(verify(project, "--anchor", "--format", "json").stdout)
    assert (data["intact"], data["events"], data["unkeyed_events"], data["anchored_events"]) == (True, 5, 4, 4)
    assert data["key_id"] == key_id()
    checkpoint = data["checkpoint"]
    assert (checkpoint["events"], checkpoint["head"], checkpoint["key_id"]) == (5, data["head_hash"], key_id())
    assert checkpoint["format"] == "compliance-audit-checkpoint/1" and len(checkpoint["hmac"]) == 64
    (project.root / "cp.json").write_text(json.dumps(checkpoint), encoding="utf-8")
    again = json.loads(verify(project, "--checkpoint", "cp.json", "--format", "json").stdout)
    assert (again["intact"], again["compared_with"], again["anchored_events"]) == (True, checkpoint, None)
