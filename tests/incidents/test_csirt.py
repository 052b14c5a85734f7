"""Cbw (NIS2 art. 23): significant incidents to the CSIRT, incidents without personal data, the state of
each duty, and closing only a complete record (art. 33(5)), all through the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Project
from tests.incidents.conftest import LETTER

#: A ransomware attack on a file server without personal data, aware 2025-03-07 16:40 (CET, UTC+1).
OUTAGE = ("--title", "File server encrypted by ransomware", "--aware-at", "2025-03-07 16:40",
          "--occurred-at", "2025-03-07 03:00", "--nature", "availability", "--no-personal-data",
          "--description", "The permit archive file server was encrypted; no personal data on it.")


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_a_significant_incident_without_personal_data_gets_three_csirt_deadlines(project: Project) -> None:
    found = ok(project.run("incident", "new", *OUTAGE, "--significant", "--format", "json"))
    aware = datetime(2025, 3, 7, 15, 40, tzinfo=UTC)
    expected = {"early_warning_due": aware + timedelta(hours=24), "notification_due": aware + timedelta(hours=72),
                "final_report_due": datetime(2025, 4, 7, 15, 40, tzinfo=UTC)}
    assert {k: datetime.fromisoformat(found["csirt"][k]) for k in expected} == expected
    assert found["personal_data"] is False and found["data_categories"] == [] and found["subjects"] == 0
    assert found["duties"]["authority"]["state"] == "not-applicable"
    assert found["clock"]["state"] == "not-applicable"
    # aware in 2025: every stage is overdue now
    assert [found["csirt"][s]["state"] for s in ("early_warning", "notification", "final_report")] == ["overdue"] * 3


def test_an_incident_without_personal_data_has_no_gdpr_assessment(project: Project) -> None:
    incident = ok(project.run("incident", "new", *OUTAGE, "--format", "json"))["id"]
    result = project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "none",
                         "--integrity", "none", "--availability", "full")
    assert result.exit_code == 2
    assert f"{incident} involves no personal data" in result.stderr


def test_no_personal_data_refuses_data_categories(project: Project) -> None:
    result = project.run("incident", "new", *OUTAGE, "--data-category", "health")
    assert result.exit_code == 2
    assert "--data-category goes with personal data; leave it out with --no-personal-data" in result.stderr


def test_csirt_reports_in_order_and_in_the_audit_trail(project: Project) -> None:
    incident = ok(project.run("incident", "new", *LETTER, "--format", "json"))["id"]
    refused = project.run("incident", "notify", incident, "--csirt", "--stage", "early-warning", "--reference", "C-1")
    assert refused.exit_code == 2 and "--significant" in refused.stderr
    marked = ok(project.run("incident", "update", incident, "--significant", "--format", "json"))
    assert marked["csirt"]["early_warning_due"] == "2025-03-08T16:40:00+01:00"
    skipped = project.run("incident", "notify", incident, "--csirt", "--stage", "notification", "--reference", "C-1")
    assert skipped.exit_code == 2 and "no early-warning of" in skipped.stderr
    warned = ok(project.run("incident", "notify", incident, "--csirt", "--stage", "early-warning", "--reference",
                            "C-1", "--at", "2025-03-08 10:00", "--format", "json"))
    assert warned["csirt"]["early_warning"] == {"state": "done", "deadline": "2025-03-08T16:40:00+01:00",
                                                "done_at": "2025-03-08T10:00:00+01:00", "reference": "C-1",
                                                "within_deadline": True}
    assert warned["csirt"]["notification"]["state"] == "overdue"
    assert warned["status"] == "open"  # a report to the CSIRT is not the GDPR notification
    verified = project.run("incident", "verify", "--format", "json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["events"] == 3


def test_notified_people_do_not_make_the_authority_duty_done(project: Project) -> None:
    incident = ok(project.run("incident", "new", *LETTER, "--format", "json"))["id"]
    ok(project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "r", "--format", "json"))
    informed = ok(project.run("incident", "notify", incident, "--subjects", "--channel", "letter", "--at",
                              "2025-03-08 10:00", "--format", "json"))
    assert informed["status"] == "assessed"
    assert (informed["duties"]["authority"]["state"], informed["duties"]["people"]["state"]) == ("overdue", "done")
    listed = project.run("incident", "list")
    assert "AP overdue; people done" in listed.stdout


def test_closing_names_what_art_33_5_still_needs(project: Project) -> None:
    incident = ok(project.run("incident", "new", *OUTAGE, "--format", "json"))["id"]
    result = project.run("incident", "close", incident)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {incident} cannot be closed yet; it still needs the consequences (art. 33(5): `compliance incident "
        f"update {incident} --consequences TEXT`); the remedial action taken (art. 33(5): `compliance incident "
        f"update {incident} --measures-taken TEXT`); when it ended (`compliance incident update {incident} "
        "--ended-at TIME`), or say it goes on with --ongoing\n")
    ok(project.run("incident", "update", incident, "--consequences", "Permits delayed a week.", "--measures-taken",
                   "Restored from the offline backup.", "--format", "json"))
    closed = ok(project.run("incident", "close", incident, "--ongoing", "--format", "json"))
    assert (closed["status"], closed["closure"]["ongoing"]) == ("closed", True)


def test_a_significant_incident_closes_after_the_final_report(project: Project) -> None:
    incident = ok(project.run("incident", "new", *OUTAGE, "--significant", "--ended-at", "2025-03-08 12:00",
                              "--consequences", "Permits delayed.", "--measures-taken", "Restored.",
                              "--format", "json"))["id"]
    result = project.run("incident", "close", incident)
    assert result.exit_code == 2 and "the final report to the CSIRT" in result.stderr
    for stage, at in (("early-warning", "2025-03-08 09:00"), ("notification", "2025-03-09 09:00"),
                      ("final", "2025-04-01 09:00")):
        ok(project.run("incident", "notify", incident, "--csirt", "--stage", stage, "--reference", "C-7", "--at", at,
                       "--format", "json"))
    assert ok(project.run("incident", "close", incident, "--format", "json"))["status"] == "closed"
    assert project.run("incident", "verify").exit_code == 0


def test_an_incident_without_personal_data_has_no_ap_form(project: Project) -> None:
    incident = ok(project.run("incident", "new", *OUTAGE, "--format", "json"))["id"]
    result = project.run("incident", "export", incident, "--format", "ap")
    assert result.exit_code == 2
    assert f"{incident} involves no personal data" in result.stderr


def test_the_report_counts_significant_and_csirt_overdue(project: Project) -> None:
    from compliance.db import Database
    from compliance.report.breaches import incident_figures

    ok(project.run("incident", "new", *OUTAGE, "--significant", "--format", "json"))
    ok(project.run("incident", "new", *LETTER, "--format", "json"))
    database = Database(project.db_url)
    try:
        figures = incident_figures(database, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 9, tzinfo=UTC))
    finally:
        database.close()
    # at 9 March 00:00 UTC the significant one's early warning (8 March 15:40 UTC) is past due
    assert (figures.new, figures.significant, figures.csirt_overdue) == (2, 1, 1)
