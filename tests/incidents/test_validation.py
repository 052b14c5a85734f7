"""Bad input and skipped steps: exit 2, a message that says what is wrong and how to fix it, nothing stored."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project
from tests.incidents.conftest import LETTER, new_letter, ok, stored


def with_option(option: str, value: str) -> list[str]:
    """LETTER with one option's value replaced (or added)."""
    args = list(LETTER)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    return args


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--discovered-at", "2025-03-05 12:00", "--discovered-at 2025-03-05 12:00 Europe/Amsterdam lies before "
                                            "--occurred-at 2025-03-06 09:00 Europe/Amsterdam: a breach cannot be "
                                            "discovered before it happened"),
    ("--aware-at", "2999-01-01 10:00", "--aware-at 2999-01-01 10:00 Europe/Amsterdam lies in the future"),
    ("--occurred-at", "2999-01-01T10:00:00Z", "--occurred-at 2999-01-01 11:00 Europe/Amsterdam lies in the future"),
    ("--subjects", "-3", "--subjects cannot be negative (-3); give the approximate number"),
    ("--records", "-1", "--records cannot be negative (-1)"),
    ("--subjects-max", "0", "--subjects-max 0 is below --subjects 1"),
    ("--data-category", "helth", "unknown --data-category 'helth'; did you mean 'health'? (choose from: contact, "),
    ("--nature", "confidentialty", "unknown --nature 'confidentialty'; did you mean 'confidentiality'?"),
    ("--people", "resident", "unknown --people 'resident'; did you mean 'residents'?"),
    ("--ended-at", "2025-03-01 10:00", "--ended-at 2025-03-01 10:00 Europe/Amsterdam lies before --occurred-at"),
    ("--aware-at", "2025-03-07 16:00", "--aware-at 2025-03-07 16:00 Europe/Amsterdam lies before --discovered-at "
                                       "2025-03-07 16:30 Europe/Amsterdam"),
    ("--aware-at", "7 March 16:40", "--aware-at '7 March 16:40' is not a date and time; write e.g. 2026-11-27T16:40"),
    ("--aware-at", "2025-03-07", "--aware-at '2025-03-07' has no time of day"),
    ("--occurred-at", "2025-03-30 02:30", "--occurred-at '2025-03-30 02:30' does not exist in time zone "
                                          "Europe/Amsterdam (the clocks skip that hour)"),
    ("--title", "  ", "--title must not be empty"),
])
def test_bad_facts_are_refused(project: Project, option: str, value: str, message: str) -> None:
    result = project.run("incident", "new", *with_option(option, value))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert stored(project.db_url) == (0, 0, 0)


def test_several_problems_are_reported_at_once(project: Project) -> None:
    result = project.run("incident", "new", *with_option("--subjects", "-1"), "--records", "-5")
    assert result.exit_code == 2
    assert "--subjects cannot be negative (-1)" in result.stderr
    assert "--records cannot be negative (-5)" in result.stderr


def test_missing_fields_without_a_terminal_are_listed(project: Project) -> None:
    result = project.run("incident", "new", "--title", "Lost folder", "--subjects", "12")
    assert result.exit_code == 2
    assert result.stderr == ("error: missing required fields: --aware-at, --occurred-at, --nature, --data-category, "
                             "--description (give them as options; on a terminal `compliance incident new` asks for "
                             "them)\n")
    assert stored(project.db_url) == (0, 0, 0)


def assess(project: Project, incident: str, *extra: str) -> object:
    return project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                       "--integrity", "none", "--availability", "none", *extra)


def test_a_decision_needs_an_assessment(project: Project) -> None:
    incident = new_letter(project)
    result = project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "no",
                         "--reason", "r")
    assert result.exit_code == 2
    assert f"{incident} has no assessment yet: run `compliance incident assess {incident}" in result.stderr
    assert stored(project.db_url) == (1, 1, 0)


def test_notifying_the_authority_needs_a_decision(project: Project) -> None:
    incident = new_letter(project)
    assess(project, incident)
    result = project.run("incident", "notify", incident, "--authority", "--reference", "M1", "--at",
                         "2025-03-08 10:00")
    assert result.exit_code == 2
    assert f"{incident} has no decision to notify yet: decide first" in result.stderr
    assert stored(project.db_url) == (1, 3, 0)


def test_notifying_the_authority_against_the_decision_is_refused(project: Project) -> None:
    incident = new_letter(project)
    assess(project, incident)
    ok(project.run("incident", "decide", incident, "--notify-authority", "no", "--notify-subjects", "no",
                   "--reason", "The neighbour returned the letter unopened.", "--format", "json"))
    result = project.run("incident", "notify", incident, "--authority", "--reference", "M1", "--at",
                         "2025-03-08 10:00")
    assert result.exit_code == 2
    assert f"the decision for {incident} is not to notify the authority; record a new decision first" in result.stderr
    assert stored(project.db_url) == (1, 4, 0)


def test_the_first_notification_needs_the_authoritys_reference(project: Project) -> None:
    incident = new_letter(project)
    assess(project, incident)
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "r", "--format", "json"))
    result = project.run("incident", "notify", incident, "--authority", "--at", "2025-03-08 10:00")
    assert result.exit_code == 2
    assert "give the authority's reference for the notification (the AP meldnummer) with --reference" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--authority", "--follow-up", "--note", "more"], "no notification of {id} to the authority is recorded yet"),
    (["--subjects", "--channel", "letter", "--at", "2025-03-07 16:00"], "--at 2025-03-07 16:00 Europe/Amsterdam "
                                                                        "lies before the moment of becoming aware"),
    (["--subjects"], "give how the people concerned were informed with --channel (letter, e-mail, public)"),
    (["--subjects", "--channel", "letter", "--at", "2999-01-01 10:00"], "lies in the future"),
])
def test_notifications_out_of_order_are_refused(project: Project, args: list[str], message: str) -> None:
    incident = new_letter(project)
    assess(project, incident)
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "r", "--format", "json"))
    before = stored(project.db_url)
    result = project.run("incident", "notify", incident, *args)
    assert result.exit_code == 2
    assert message.format(id=incident) in result.stderr
    assert stored(project.db_url) == before


def test_closing_needs_assessment_and_decision(project: Project) -> None:
    incident = new_letter(project)
    ok(project.run("incident", "update", incident, "--consequences", "c", "--measures-taken", "m", "--format",
                   "json"))
    result = project.run("incident", "close", incident, "--ongoing")
    assert result.exit_code == 2
    assert result.stderr == (f"error: {incident} cannot be closed yet; it still needs an assessment (`compliance "
                             f"incident assess {incident} ...`); a decision (`compliance incident decide "
                             f"{incident} ...`)\n")
    assert json.loads(project.run("incident", "show", incident, "--format", "json").stdout)["status"] == "open"


def test_closing_needs_the_notifications_that_were_decided(project: Project) -> None:
    incident = new_letter(project)
    assess(project, incident)
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "r", "--format", "json"))
    result = project.run("incident", "close", incident)
    assert result.exit_code == 2
    assert "the notification to the authority, which was decided" in result.stderr
    assert "the communication to the people concerned, which was decided" in result.stderr


def test_a_closed_incident_cannot_change(project: Project) -> None:
    incident = new_letter(project)
    assess(project, incident, "--dpc", "1", "--dpc-reason", "the letter only said an appointment was moved")
    ok(project.run("incident", "decide", incident, "--notify-authority", "no", "--notify-subjects", "no",
                   "--reason", "low", "--format", "json"))
    ok(project.run("incident", "update", incident, "--consequences", "c", "--measures-taken", "m", "--format",
                   "json"))
    ok(project.run("incident", "close", incident, "--ongoing", "--format", "json"))
    before = stored(project.db_url)
    for args in (["assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients", "--integrity",
                  "none", "--availability", "none"], ["update", incident, "--subjects", "3"], ["close", incident]):
        result = project.run("incident", *args)
        assert result.exit_code == 2, args
        assert f"{incident} is" in result.stderr and "closed" in result.stderr
    assert stored(project.db_url) == before


def test_a_dpc_other_than_the_basic_score_needs_a_reason(project: Project) -> None:
    incident = new_letter(project)
    result = assess(project, incident, "--dpc", "4")
    assert result.exit_code == 2
    assert (f"--dpc 4 differs from 3, the highest basic score of the data categories of {incident} "
            "(social-welfare 3, contact 1); give the reason for the adjustment with --dpc-reason") in result.stderr
    assert stored(project.db_url) == (1, 1, 0)


def test_circumstances_must_agree_with_the_nature(project: Project) -> None:
    incident = new_letter(project)
    result = project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                         "--integrity", "altered", "--availability", "none")
    assert result.exit_code == 2
    assert (f"--integrity is 'altered' but the nature of {incident} (confidentiality) does not include integrity; "
            f"use --integrity none, or first add it: `compliance incident update {incident} --nature "
            "confidentiality --nature integrity`") in result.stderr


def test_an_unknown_incident_suggests_the_nearest_id(project: Project) -> None:
    incident = new_letter(project)
    wrong = incident[:-4] + "001"
    result = project.run("incident", "show", wrong)
    assert result.exit_code == 2
    assert result.stderr == (f"error: no incident '{wrong}'; did you mean '{incident}'? "
                             "(see `compliance incident list`)\n")


def test_a_decision_against_the_recommendation_is_recorded_as_such(project: Project) -> None:
    incident = new_letter(project)
    assess(project, incident)
    decided = ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "no",
                             "--subjects-exception", "risk-removed", "--reason", "The letter was returned unopened "
                             "the same evening.", "--format", "json"))
    assert decided["decision"] == {**decided["decision"], "notify_subjects": False,
                                   "subjects_exception": "risk-removed", "follows_recommendation": False}
    shown = project.run("incident", "show", incident)
    assert ("Decision:         AP yes, people no (art. 34(3): risk-removed), differs from the recommendation"
            in shown.stdout)
