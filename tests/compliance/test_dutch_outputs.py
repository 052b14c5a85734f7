"""Dutch outputs carry no English: control titles, owners and check messages are shown in Dutch.

A database is seeded through the real engine with controls written like the bundled catalog (title
and owner in English and Dutch) and checked by real plugins that fail or cannot run. Every English
control title, owner and check message is collected from that data and searched for in each output:
none may appear in the Dutch output, all must appear in the English one.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from compliance.api import MESSAGE_KEY, Context, Message, Result
from compliance.catalog import Catalog, Control
from compliance.settings import Settings

CONTROLS: list[dict[str, Any]] = [
    {"id": "T-BACKUP", "theme": "technological", "severity": "high",
     "title": {"en": "Backups are made every night", "nl": "Er wordt elke nacht een back-up gemaakt"},
     "owner": {"en": "Head of IT operations", "nl": "Hoofd ICT-beheer"},
     "references": {"bio2": ["8.13.01"], "iso27002": "8.13"},
     "checks": [{"plugin": "file_age", "params": {"path": "{missing}/backup-*.tar", "max_age": "26h"}}]},
    {"id": "T-PORT", "theme": "technological", "severity": "critical",
     "title": {"en": "The management port is reachable only where intended",
               "nl": "De beheerpoort is alleen bereikbaar waar dat de bedoeling is"},
     "owner": {"en": "Network administrator", "nl": "Netwerkbeheerder"},
     "checks": [{"plugin": "tcp_port", "params": {"host": "127.0.0.1", "port": 0, "expect": "open"}}]},
    {"id": "T-SCRIPT", "theme": "organizational", "severity": "medium",
     "title": {"en": "The licence audit script reports no deviations",
               "nl": "Het licentie-auditscript meldt geen afwijkingen"},
     "owner": {"en": "Licence manager", "nl": "Licentiebeheerder"},
     "checks": [{"plugin": "command", "params": {"run": [sys.executable, "-c", "raise SystemExit(3)"]}}]},
    {"id": "T-PERMS", "theme": "technological", "severity": "medium",
     "title": {"en": "Key material is readable by its owner only",
               "nl": "Sleutelmateriaal is alleen leesbaar voor de eigenaar"},
     "owner": {"en": "Security officer", "nl": "Beveiligingsfunctionaris"},
     "checks": [{"plugin": "file_permissions", "params": {"path": "{missing}/keys", "max_mode": "0600"}}]},
]


def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def seeded(database: Any, store: Any, tmp_path: Path) -> tuple[Catalog, set[str]]:
    """Scan the controls with the real plugins; return the catalog and the English texts to look for."""
    from sqlalchemy import select

    from compliance.db.models import CheckResultRow
    from compliance.engine import run_scan

    text = json.dumps(CONTROLS).replace("{missing}", str(tmp_path / "missing"))
    specs = json.loads(text)
    specs[1]["checks"][0]["params"]["port"] = closed_port()
    controls = [Control.model_validate(spec) for spec in specs]
    settings = Settings.model_validate({"database": {"url": database.url}, "schedule": {"default": None}})
    run_scan(controls, settings, store)
    english = {spec[key]["en"] for spec in specs for key in ("title", "owner")}
    with database.sessions() as session:
        results = session.execute(
            select(CheckResultRow.status, CheckResultRow.message, CheckResultRow.evidence)).all()
    assert {status for status, _, _ in results} == {"fail", "error"}
    untemplated = [message for _, message, evidence in results if MESSAGE_KEY not in evidence]
    assert untemplated == [], "every built-in message has a template"
    english |= {message for _, message, _ in results}
    return Catalog(tuple(controls)), english


def outputs(database: Any, catalog: Catalog, lang: str) -> dict[str, str]:
    """Each management output in lang, as text."""
    from zoneinfo import ZoneInfo

    from compliance.digest import build_digest, render_html, render_text, slack_message
    from compliance.report import build_overview, render
    from compliance.report.soa import render_soa
    from compliance.soa import statement

    zone = ZoneInfo("Europe/Amsterdam")
    now = datetime.now(UTC)
    overview = build_overview(database, "week", now.astimezone(zone).date(), zone, now=now)
    settings = Settings.model_validate({"database": {"url": database.url}, "schedule": {"default": None}})
    from compliance.report.periods import period_containing

    digest = build_digest(database, settings, week=period_containing("week", now.astimezone(zone).date()),
                          now=now, lang=lang)
    rows = statement(catalog, database, lang)
    text, blocks = slack_message(digest)
    return {
        "report.html": str(render(overview, "html", lang)), "report.md": str(render(overview, "md", lang)),
        "soa.html": render_soa(rows, "html", lang, zone), "soa.md": render_soa(rows, "md", lang, zone),
        "digest.txt": render_text(digest), "digest.html": render_html(digest, "trend"),
        "slack": text + "\n" + json.dumps(blocks, ensure_ascii=False),
    }


def shown(needle: str, output: str) -> bool:
    """Whether a text occurs in an output, also when HTML- or Markdown-escaped or JSON-encoded."""
    from markupsafe import escape

    from compliance.report.rendering import markdown_text

    forms = {needle, str(escape(needle)), markdown_text(needle), json.dumps(needle, ensure_ascii=False)[1:-1]}
    flat = re.sub(r"\s+", " ", output)
    return any(form in flat for form in forms)


def test_the_dutch_outputs_show_no_english_title_owner_or_message(database: Any, seeded: Any) -> None:
    catalog, english = seeded
    for name, output in outputs(database, catalog, "nl").items():
        assert [text for text in english if shown(text, output)] == [], name


@pytest.mark.parametrize("name", ["report.html", "report.md"])
def test_the_english_report_shows_every_title_owner_and_message(database: Any, seeded: Any, name: str) -> None:
    catalog, english = seeded
    output = outputs(database, catalog, "en")[name]
    assert [text for text in english if not shown(text, output)] == []


def test_the_dutch_report_shows_the_dutch_texts(database: Any, seeded: Any) -> None:
    catalog, _ = seeded
    report = outputs(database, catalog, "nl")["report.md"]
    for spec in CONTROLS:
        assert shown(spec["title"]["nl"], report) and shown(spec["owner"]["nl"], report)
    assert "eindigde met 3; verwacht was 0." in report
    assert "Poort 127.0.0.1:" in report and "is gesloten (geweigerd); die moet open zijn." in report


def test_the_digest_names_its_risks_in_its_language(database: Any, seeded: Any) -> None:
    catalog, _ = seeded
    dutch_title = "De beheerpoort is alleen bereikbaar waar dat de bedoeling is"
    assert shown(dutch_title, outputs(database, catalog, "nl")["slack"])
    assert shown("The management port is reachable only where intended", outputs(database, catalog, "en")["slack"])


# -- the plugin API ---------------------------------------------------------------------------------


def test_a_message_keeps_its_template_and_reads_as_english() -> None:
    message = Message("Port %(target)s is closed (%(reason)s); it must be open.", target="h:22",
                      reason=Message("refused"))
    result = Result.failed("h:22", message, open=False)
    assert result.message == "Port h:22 is closed (refused); it must be open."
    assert result.evidence == {"open": False, MESSAGE_KEY: {
        "template": "Port %(target)s is closed (%(reason)s); it must be open.",
        "params": {"target": "h:22", "reason": {"template": "refused", "params": {}}}}}
    assert result.template == result.evidence[MESSAGE_KEY]


def test_a_plain_message_has_no_template_and_is_shown_as_written() -> None:
    from compliance.report.language import check_message, localized

    result = Result.failed("x", "Something third-party went wrong.")
    assert result.template is None and result.evidence == {}
    assert localized(check_message(result.message, result.evidence), "nl") == "Something third-party went wrong."


@pytest.mark.parametrize(("lang", "expected"), [
    ("nl", "Poort h:22 is gesloten (geweigerd); die moet open zijn."),
    ("en", "Port h:22 is closed (refused); it must be open."),
])
def test_a_message_with_a_template_reads_in_the_reader_s_language(lang: str, expected: str) -> None:
    from compliance.report.language import check_message, localized

    result = Result.failed("h:22", Message("Port %(target)s is closed (%(reason)s); it must be open.",
                                           target="h:22", reason=Message("refused")))
    assert localized(check_message(result.message, result.evidence), lang) == expected


def test_a_template_that_does_not_fit_its_parameters_fails_in_the_plugin() -> None:
    with pytest.raises(KeyError):
        Message("Port %(target)s is open.", host="h")


def test_the_checks_catalog_is_complete_and_compiled() -> None:
    """Every template in checks/ and the engine has a Dutch translation, and checks.mo is compiled from checks.po."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[2]
    folder = root / "compliance" / "report" / "locale" / "nl" / "LC_MESSAGES"
    with (folder / "checks.po").open("rb") as po, (folder / "checks.mo").open("rb") as mo:
        source, compiled = read_po(po), read_mo(mo)
    templates = {message for folder in (root / "checks", root / "compliance" / "engine", root / "compliance" / "zones")
                 for _, _, message, _, _ in extract_from_dir(folder, method_map=[("*.py", "python")],
                                                             keywords={"Message": None})}
    translated = {m.id: m.string for m in source if m.id and m.string}
    assert sorted(templates - translated.keys()) == [], "run the commands in compliance/report/checks-babel.cfg"
    assert {m.id: m.string for m in compiled if m.id} == translated, "checks.mo is stale: run pybabel compile"


# -- results with problem lists -------------------------------------------------------------------
# A failing check names what is wrong in parts (each header missing, each TLS version offered); each
# part is a message of its own, so a Dutch output shows every part in Dutch.


@pytest.fixture(scope="module")
def tls_ca() -> Any:
    import trustme

    return trustme.CA()


@pytest.fixture(scope="module")
def tls_ca_file(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


def english_parts(stored: Any) -> tuple[list[str], list[str]]:
    """The English text of each message in a stored template that reads differently in Dutch, and the
    templates the checks catalog does not translate."""
    from babel.messages.pofile import read_po

    from compliance.api import render_message
    from compliance.report.language import check_translations

    folder = Path(__file__).resolve().parents[2] / "compliance" / "report" / "locale" / "nl" / "LC_MESSAGES"
    with (folder / "checks.po").open("rb") as po:
        translated = {m.id for m in read_po(po) if m.id and m.string}
    dutch = check_translations("nl").gettext
    parts: list[str] = []
    missing: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict) and "template" in value:
            if value["template"] not in translated:
                missing.append(value["template"])
            english = render_message(value, lambda template: template)
            if render_message(value, dutch, "nl") != english:
                parts.append(english)
            for param in value["params"].values():
                walk(param)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(stored)
    return parts, missing


def in_dutch(result: Result) -> str:
    """The result's message as a Dutch output shows it, after it has no English part left (asserted)."""
    from compliance.report.language import check_message, localized

    parts, missing = english_parts(result.template)
    assert missing == [], "every part of the message has a Dutch translation"
    dutch = localized(check_message(result.message, result.evidence), "nl")
    assert len(parts) > 1, "the message has parts of its own"
    assert [part for part in parts if part in dutch] == []
    return str(dutch)


def test_an_https_site_without_security_headers_is_described_in_dutch(tls_ca: Any, tls_ca_file: str) -> None:
    from tests.checks.test_https import Site
    from tests.checks.test_https import run as run_https

    with Site(tls_ca, {}) as site:
        result = run_https(site, tls_ca_file)
    assert in_dutch(result) == (
        f"{site.https.url} schiet tekort: geen HSTS (Strict-Transport-Security-header); geen "
        "X-Content-Type-Options: nosniff; geen X-Frame-Options (DENY of SAMEORIGIN) en geen CSP frame-ancestors; "
        "geen Referrer-Policy; geen Content-Security-Policy.")


def test_an_http_site_that_does_not_redirect_is_described_in_dutch(tls_ca: Any, tls_ca_file: str) -> None:
    from tests.checks.test_https import GOOD_HEADERS, Site
    from tests.checks.test_https import run as run_https

    with Site(tls_ca, {**GOOD_HEADERS, "Strict-Transport-Security": "max-age=300"}, http="plain") as site:
        result = run_https(site, tls_ca_file)
    assert in_dutch(result) == (f"{site.https.url} schiet tekort: HTTP antwoordt 200 zonder door te sturen naar "
                                "HTTPS; HSTS max-age is 300 s (minimaal 31536000 s, één jaar).")


def test_an_invalid_security_txt_is_described_in_dutch(tls_ca: Any, tls_ca_file: str) -> None:
    from tests.checks.test_security_txt import check, expires, serve

    text = f"Contact: http://gemeente.test/melden\nExpires: {expires(400)}\nnot a field\n"
    url, result = check(tls_ca, tls_ca_file, serve(text, {"Content-Type": "text/html"}))
    assert in_dutch(result) == (
        f"security.txt van {url} is niet geldig: Content-Type is 'text/html', niet text/plain; 1 regel(s) zijn niet "
        "in de vorm 'Veld: waarde' (regel 3: 'not a field'); Contact 'http://gemeente.test/melden' is een webadres "
        f"zonder https; Expires {expires(400)[:10]} ligt 400 dagen in de toekomst (maximaal een jaar).")


def test_a_server_with_old_tls_versions_is_described_in_dutch(tls_ca: Any, tls_ca_file: str) -> None:
    import ssl

    from tests.checks.test_tls import issue
    from tests.checks.test_tls import run as run_tls
    from tests.servers import TlsServer, server_context

    versions = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1]
    with TlsServer(server_context(issue(tls_ca), versions, legacy=True)) as server:
        failing = run_tls(server, ca_file=tls_ca_file)
        lenient = run_tls(server, ca_file=tls_ca_file, tls_profile="ncsc-2021")
    assert in_dutch(failing).startswith(f"TLS van 127.0.0.1:{server.port} voldoet niet aan NCSC "
                                        "ICT-beveiligingsrichtlijnen voor TLS 2025-05: biedt TLS 1.1 aan "
                                        "(onvoldoende); biedt TLS 1.0 aan (onvoldoende); accepteert ")
    assert ": TLS 1.1 (uit te faseren), TLS 1.0 (uit te faseren); certificaat nog " in in_dutch(lenient)


def test_a_tls_server_that_cannot_be_reached_is_described_in_dutch() -> None:
    from compliance.checks.tls import Tls
    from compliance.report.language import check_message, localized

    port = closed_port()
    [result] = Tls().run(Tls.Params(host="127.0.0.1", port=port), Context("C", 5, net_timeout=2))
    assert result.message == f"Could not check TLS of 127.0.0.1:{port}: connection refused."
    dutch = localized(check_message(result.message, result.evidence), "nl")
    assert "connection refused" not in dutch and "no answer within" not in dutch
    assert "verbinding geweigerd" in dutch and f"127.0.0.1:{port}" in dutch


@pytest.mark.parametrize(("outcome", "expected"), [
    ("crash", "controle 'probe' is vastgelopen: RuntimeError: probe web1 exploded"),
    ("nothing", "controle 'probe' gaf geen resultaat"),
])
def test_the_engine_s_own_messages_read_in_dutch(probe_plugin: type, outcome: str, expected: str) -> None:
    from compliance.engine import CheckTask, run_task
    from compliance.report.language import check_message, localized

    [result] = run_task(CheckTask("C", 0, "probe", {"name": "web1", "outcome": outcome, "sleep": 0.0}, 5.0))
    assert result.template is not None
    assert localized(check_message(result.message, result.evidence), "nl") == expected


@pytest.mark.parametrize(("lang", "expected"), [
    ("nl", "Geen bewijs vastgelegd voor: Informatiebeveiligingsbeleid vastgesteld; leg het vast met `compliance "
           "attest POLICY-01 --by NAAM --evidence PAD_OF_URL --valid-until JJJJ-MM-DD`."),
    ("en", "No evidence recorded for: Information security policy approved; record it with `compliance attest "
           "POLICY-01 --by NAME --evidence PATH_OR_URL --valid-until YYYY-MM-DD`."),
])
def test_the_evidence_check_quotes_the_requirement_in_the_reader_s_language(lang: str, expected: str) -> None:
    from compliance.checks.evidence import Evidence
    from compliance.report.language import check_message, localized

    params = Evidence.Params.model_validate({"requirement": {"en": "Information security policy approved",
                                                             "nl": "Informatiebeveiligingsbeleid vastgesteld"}})
    [result] = Evidence().run(params, Context("POLICY-01", 5, facts={"attestation": {"latest": None}}))
    assert localized(check_message(result.message, result.evidence), lang) == expected
