"""The register refuses personal data in free text: BSN (eleven-test), e-mail addresses, IBAN (mod-97)."""

from __future__ import annotations

import json

import pytest

from compliance.incidents import pii
from tests.conftest import Project
from tests.incidents.conftest import LETTER, ok, stored


@pytest.mark.parametrize(("number", "valid"), [
    ("111222333", True),  # 9·1 + 8·1 + 7·1 + 6·2 + 5·2 + 4·2 + 3·3 + 2·3 − 1·3 = 69 − 3 = 66 = 6 × 11
    ("123456782", True),  # 9+16+21+24+25+24+21+16 − 2 = 154 = 14 × 11
    ("123456789", False),  # 156 − 9 = 147, not a multiple of 11
    ("000000000", False),  # passes the arithmetic, but is no number
    ("12345678", False),
])
def test_the_eleven_test(number: str, valid: bool) -> None:
    assert pii.passes_eleven_test(number) is valid


@pytest.mark.parametrize(("iban", "valid"), [
    ("NL91ABNA0417164300", True),
    ("NL91 ABNA 0417 1643 00", True),
    ("nl91abna0417164300", True),
    ("NL91ABNA0417164301", False),  # check digits do not match
    ("DE89370400440532013000", True),
    ("NL91ABNA041716430", False),  # one character short for NL
])
def test_iban_mod_97(iban: str, valid: bool) -> None:
    assert pii.valid_iban(iban) is valid


@pytest.mark.parametrize(("text", "found"), [
    ("BSN 111222333 on the letter", [("BSN", "*******33")]),
    ("number 1112.22.333 in the subject", [("BSN", "*******33")]),
    ("case 123456789 was opened", []),  # nine digits, fails the eleven-test
    ("phone 0612345678", [("phone number", "********78")]),  # ten digits: no BSN, a mobile number
    ("sent to jan.jansen@example.nl by mistake", [("e-mail address", "j***@example.nl")]),
    ("refund to NL91 ABNA 0417 1643 00 twice", [("IBAN", "NL91************00")]),
    ("account NL91ABNA0417164301", []),  # not a valid IBAN
    ("1 resident, 1 account number, 2 letters", []),
])
def test_scan_finds_and_masks(text: str, found: list[tuple[str, str]]) -> None:
    assert [(f.kind, f.masked) for f in pii.scan("description", text)] == found


@pytest.mark.parametrize(("option", "text", "message"), [
    ("--description", "Letter about BSN 111222333 sent to a neighbour.",
     "description contains what looks like a BSN (*******33)"),
    ("--title", "Mail to j.devries@example.org", "title contains what looks like an e-mail address (j***@example.org)"),
    ("--consequences", "Payments to NL91ABNA0417164300 may be redirected",
     "consequences contains what looks like an IBAN (NL91************00)"),
])
def test_personal_data_is_refused_and_nothing_stored(project: Project, option: str, text: str,
                                                     message: str) -> None:
    result = project.run("incident", "new", *LETTER, option, text)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "The register holds no personal data of the people concerned" in result.stderr
    assert "--force --force-reason" in result.stderr
    assert stored(project.db_url) == (0, 0, 0)


def test_a_nine_digit_number_that_fails_the_eleven_test_is_accepted(project: Project) -> None:
    data = ok(project.run("incident", "new", *LETTER, "--cause", "mailing batch 123456789 used an old address file",
                          "--format", "json"))
    assert data["cause"] == "mailing batch 123456789 used an old address file"


def test_force_with_a_reason_stores_the_text_and_records_the_override(project: Project) -> None:
    data = ok(project.run("incident", "new", *LETTER, "--how-discovered", "reported via privacy@gemeente.example",
                          "--force", "--force-reason", "the functional mailbox of the municipality, not a resident",
                          "--format", "json"))
    shown = ok(project.run("incident", "show", data["id"], "--history", "--format", "json"))
    override = [e for e in shown["events"] if e["action"] == "override"]
    assert override == [{**override[0], "field": "how-discovered", "old": None, "new": {
        "found": ["e-mail address p***@gemeente.example"],
        "reason": "the functional mailbox of the municipality, not a resident"}}]
    assert project.run("incident", "verify").exit_code == 0


def test_force_needs_a_reason(project: Project) -> None:
    result = project.run("incident", "new", *LETTER, "--description", "BSN 111222333", "--force")
    assert result.exit_code == 2
    assert "--force needs --force-reason" in result.stderr
    assert stored(project.db_url) == (0, 0, 0)


def test_the_guard_covers_the_later_steps_too(project: Project) -> None:
    incident = ok(project.run("incident", "new", *LETTER, "--format", "json"))["id"]
    result = project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                         "--integrity", "none", "--availability", "none", "--dpc", "4",
                         "--dpc-reason", "the family of BSN 111222333 is known to the press")
    assert result.exit_code == 2
    assert "dpc-reason contains what looks like a BSN (*******33)" in result.stderr
    assert json.loads(project.run("incident", "show", incident, "--format", "json").stdout)["assessment"] is None


# -- separators, non-ASCII domains, phone numbers and the short fields (issue 15) ---------------------------


@pytest.mark.parametrize(("text", "found"), [
    ("BSN 123.456.782 on the letter", [("BSN", "*******82")]),
    ("BSN 123 456 782", [("BSN", "*******82")]),
    ("BSN 123-456-782", [("BSN", "*******82")]),
    ("BSN 123\u00a0456\u00a0782", [("BSN", "*******82")]),  # non-breaking spaces, as pasted from a letter
    ("BSN 123\u2013456\u2013782", [("BSN", "*******82")]),  # en dashes
    ("BSN 12-34-56-782", [("BSN", "*******82")]),
    ("amount 123.456.789,00", []),  # fails the eleven-test
    ("on 2025-03-07 1 letter", []),  # a date and a count, not a grouped BSN
    ("refund to NL91-ABNA-0417-1643-00", [("IBAN", "NL91************00")]),
    ("refund to NL 91 ABNA 0417 1643 00", [("IBAN", "NL91************00")]),
    ("refund to NL91.ABNA.0417.1643.00", [("IBAN", "NL91************00")]),
    ("refund to NL91\u00a0ABNA\u00a00417\u00a01643\u00a000", [("IBAN", "NL91************00")]),
    ("sent to jan@gemeënte.nl", [("e-mail address", "j***@gemeënte.nl")]),
    ("sent to ana@例え.jp", [("e-mail address", "a***@例え.jp")]),
    ("sent to jörg@bücher.de", [("e-mail address", "j***@bücher.de")]),
    ("call 06-12345678", [("phone number", "********78")]),
    ("call 06 1234 5678", [("phone number", "********78")]),
    ("call +31 6 12345678", [("phone number", "********78")]),
    ("call +31 (0)6-12345678", [("phone number", "********78")]),
    ("call 0031 20 123 4567", [("phone number", "********67")]),
    ("call 020-1234567", [("phone number", "********67")]),
    ("call (020) 123 4567", [("phone number", "********67")]),
    ("the helpdesk 0800-1234567", []),  # a free service number, not a person's
    ("letter of 06-03-2025 09:00", []),  # a date and a time
    ("ticket DL-2025-0001, 2025-03-07 16:40", []),
])
def test_scan_normalises_separators_and_finds_more_kinds(text: str, found: list[tuple[str, str]]) -> None:
    assert [(f.kind, f.masked) for f in pii.scan("description", text)] == found


@pytest.mark.parametrize(("args", "message"), [
    (("--by", "123 456 782"), "by contains what looks like a BSN (*******82). --by names who in the municipality "
                              "did it and is kept in the audit trail for good: give a user name or a role"),
    (("--by", "jan@example.nl"), "by contains what looks like an e-mail address (j***@example.nl)."),
    (("--processor", "Print BV, 06-12345678"), "processor contains what looks like a phone number (********78)"),
    (("--cause", "refund to NL 91 ABNA 0417 1643 00"), "cause contains what looks like an IBAN (NL91************00)"),
])
def test_personal_data_in_short_fields_is_refused(project: Project, args: tuple[str, str], message: str) -> None:
    result = project.run("incident", "new", *LETTER, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert stored(project.db_url) == (0, 0, 0)


def test_personal_data_in_a_notification_reference_is_refused(project: Project) -> None:
    incident = ok(project.run("incident", "new", *LETTER, "--format", "json"))["id"]
    ok(project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "no",
                   "--reason", "high risk", "--format", "json"))
    before = stored(project.db_url)
    result = project.run("incident", "notify", incident, "--authority", "--reference", "BSN 123.456.782",
                         "--delay-reason", "found late")
    assert result.exit_code == 2
    assert "reference contains what looks like a BSN (*******82)" in result.stderr
    assert stored(project.db_url) == before
