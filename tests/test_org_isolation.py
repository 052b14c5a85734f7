"""Two organisations in one install: nothing of one appears in any output of the other (issue 20).

Organisations `alpha` and `beta` get the same kind of data through the CLI, each with strings of its own:
every string of alpha's carries the marker ALFAQX (beta's: BETAQX) in its target host names, control ids,
titles and owners (its own controls path), breach ids (its own `incidents.id_prefix`), titles and
descriptions, exception reasons, risk analyses, attestation notes, applicability reasons, digest
recipients and Slack channel. Then every output of one organisation is read for the other's marker,
name and code, and for its own marker (an output that shows nothing would prove nothing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.compliance.notify_servers import PASSWORD, SLACK_TOKEN, MailServer, SlackServer
from tests.conftest import Project

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
CODES = ("alpha", "beta")
NAMES = {"alpha": "Gemeente Alpha", "beta": "Gemeente Beta"}
MARKS = {"alpha": "ALFAQX", "beta": "BETAQX"}
SECRETS = {"COMPLIANCE_SMTP_PASSWORD": PASSWORD, "COMPLIANCE_SLACK_TOKEN": SLACK_TOKEN}

#: The control both organisations scan, each on the targets of its own `servers` group.
SHARED_CONTROLS = """\
- id: SRV-01
  title: Servers are hardened
  theme: technological
  severity: high
  references: {bio2: ["8.08.01"]}
  checks:
    - plugin: probe
      targets: servers
"""


def own_controls(mark: str) -> str:
    """An organisation's own controls: a failing one on a host of its own and one met by evidence."""
    low = mark.lower()
    return f"""\
- id: {mark}-VAULT
  title: Kluis {mark} wordt bewaakt
  owner: Teamleider {mark}
  theme: technological
  severity: critical
  schedule: "0 4 * * *"
  references: {{bio2: ["8.15.01"]}}
  checks:
    - plugin: probe
      targets: [{{name: kluis.{low}.example, outcome: fail}}]
- id: {mark}-POLICY
  title: Beleid {mark} vastgesteld
  owner: Directeur {mark}
  theme: organizational
  severity: medium
  references: {{bio2: ["5.01.01"]}}
  checks:
    - plugin: evidence
      params: {{requirement: Informatiebeveiligingsbeleid {mark} vastgesteld}}
"""


def org_section(code: str) -> str:
    mark, low = MARKS[code], MARKS[code].lower()
    return f"""\
  {code}:
    targets:
      servers:
        - {{name: web.{low}.example, outcome: fail}}
        - {{name: db.{low}.example, outcome: pass}}
    controls:
      paths: [controls-{code}]
    incidents:
      id_prefix: {mark}
      organisation: {NAMES[code]}
      reporter: {{name: Privacy officer {mark}, function: Privacy officer, phone: "+31 20 123 4567"}}
    digest:
      to: [ciso@{low}.example, directie@{low}.example]
    slack:
      channel: "#{low}-management"
    alerts:
      email: [fg@{low}.example]
"""


def config(mail: MailServer, slack: SlackServer) -> str:
    """The shared settings (mail server, Slack, no default schedule) and a section per organisation."""
    return (f"smtp:\n  host: 127.0.0.1\n  port: {mail.port}\n  starttls: true\n  user: monitor@gemeente.example\n"
            f"  ca_file: {mail.ca_file}\n  timeout: 10s\n"
            "digest:\n  from: compliance@ssc.example\n  lang: nl\n"
            f"slack:\n  mode: token\n  api_url: {slack.api_url}\n"
            "schedule:\n  default: null\n"
            "organisations:\n" + "".join(org_section(code) for code in CODES))


@dataclass
class World:
    """Two organisations with look-alike data, the servers their digests go to, and their breach ids."""

    project: Project
    mail: MailServer
    slack: SlackServer
    breaches: dict[str, list[str]] = field(default_factory=dict)

    def run(self, code: str, *args: str) -> Any:
        return self.project.run("--org", code, *args, env=SECRETS)

    def ok(self, code: str, *args: str) -> Any:
        result = self.run(code, *args)
        assert result.exit_code == 0, (args, result.output)
        return result


def last_week(day: int, hour: int) -> datetime:
    """A moment in the last complete week (day 0: its Monday), in Amsterdam: the week the digest is about."""
    today = datetime.now(AMSTERDAM).date()
    monday = today - timedelta(days=today.weekday() + 7)
    return datetime.combine(monday + timedelta(days=day), datetime.min.time(), AMSTERDAM).replace(hour=hour)


def move_scans_back(url: str, when: datetime) -> None:
    """Move every time the scans of one database wrote back to WHEN, so that the digest of the last complete
    week sees the findings (the engine stamps the present)."""
    from sqlalchemy import select

    from compliance.db import Database
    from compliance.db.models import CheckResultRow, ControlRow, Finding, FindingChange, Scan

    database = Database(url)
    moment = when.astimezone(UTC)
    try:
        with database.transaction() as session:
            for scan in session.scalars(select(Scan)):
                scan.started_at = moment
                scan.finished_at = moment if scan.finished_at is not None else None
            for row in session.scalars(select(CheckResultRow)):
                row.started_at = moment
            for change in session.scalars(select(FindingChange)):
                change.at = moment
            for finding in session.scalars(select(Finding)):
                finding.first_seen, finding.last_seen = moment, moment
            for control in session.scalars(select(ControlRow)):
                if control.last_evaluated_at is not None:
                    control.last_evaluated_at = moment
                control.synced_at = moment
    finally:
        database.close()


def home_url(project: Project) -> str:
    return str(project.settings().database_url)


def org_database(project: Project, code: str) -> Any:
    """The database of organisation CODE, opened as the commands open it (checked to be that organisation's)."""
    from compliance import orgs
    from compliance.db import Database

    home = Database(home_url(project))
    try:
        found = next(org for org in orgs.registry(home) if org.code == code)
        database = orgs.open_org(home, found)
    except BaseException:
        home.close()
        raise
    if database is not home:
        home.close()
    return database


#: The breaches each organisation registers: alpha two, beta one, so that the counts of `incident verify` and
#: `incident list` tell whose register was read.
BREACHES = {"alpha": ("kluis", "post"), "beta": ("kluis",)}


def populate(world: World, code: str) -> None:
    """Give organisation CODE its controls, a scan, an exception, evidence, a decision and breaches (CLI)."""
    project, mark = world.project, MARKS[code]
    low = mark.lower()
    own = project.root / f"controls-{code}"
    own.mkdir()
    (own / "own.yaml").write_text(own_controls(mark), encoding="utf-8")
    scanned = world.run(code, "scan", "--format", "json")
    assert scanned.exit_code == 1, scanned.output  # its failing hosts
    assert {r["target"] for r in json.loads(scanned.stdout)["results"]} == {
        f"web.{low}.example", f"db.{low}.example", f"kluis.{low}.example", "attestation"}
    database = org_database(project, code)
    try:
        move_scans_back(database.url, last_week(2, 3))
    finally:
        database.close()
    year = datetime.now(AMSTERDAM).year
    world.ok(code, "exceptions", "add", "SRV-01", "--target", f"web.{low}.example",
             "--reason", f"Vervanging van de webserver van {mark} besteld", "--approved-by", f"CISO {mark}",
             "--until", f"{year + 1}-06-30", "--risk-analysis", f"RA-{mark}-7", "--by", f"beheerder-{low}")
    evidence = project.root / f"beleid-{low}.txt"
    evidence.write_text(f"Informatiebeveiligingsbeleid {mark}", encoding="utf-8")
    world.ok(code, "attest", "add", f"{mark}-POLICY", "--by", f"Directeur {mark}", "--evidence", str(evidence),
             "--valid-until", f"{year + 1}-12-31", "--note", f"Vastgesteld door het college van {mark}", "--copy")
    world.ok(code, "controls", "applicability", "8.15.05", "--not-applicable", "--reason",
             f"Geen eigen tijdbronnen bij {mark}", "--risk-analysis", f"RA-{mark}-2", "--by", f"beheerder-{low}")
    aware = last_week(1, 10)
    ids = []
    for subject in BREACHES[code]:
        made = world.ok(code, "incident", "new", "--title", f"Datalek {subject} {mark}",
                        "--aware-at", aware.isoformat(), "--occurred-at", (aware - timedelta(hours=5)).isoformat(),
                        "--nature", "confidentiality", "--data-category", "contact", "--subjects", "3",
                        "--people", "residents", "--description", f"Een map van {mark} lag in de trein.",
                        "--cause", f"Oorzaak bij {mark}", "--by", f"privacy-{low}", "--format", "json")
        ids.append(str(json.loads(made.stdout)["id"]))
    assert ids[0] == f"{mark}-{year}-0001"  # numbered in its own register
    world.ok(code, "incident", "assess", ids[0], "--ei", "limited", "--confidentiality", "exposed", "--integrity",
             "none", "--availability", "none", "--by", f"privacy-{low}")
    world.breaches[code] = ids


@pytest.fixture
def world(project: Project, probe_plugin: type, tmp_path: Path) -> Iterator[World]:
    """alpha (the first database, renamed from `default`) and beta (added), each populated through the CLI."""
    with MailServer(tmp_path) as mail, SlackServer() as slack:
        project.write_config(config(mail, slack))
        project.control("shared.yaml", SHARED_CONTROLS)
        state = World(project, mail, slack)
        renamed = project.run("org", "rename", "default", "alpha", "--name", NAMES["alpha"])
        assert (renamed.exit_code, renamed.output) == (0, f"organisation default is now alpha ({NAMES['alpha']})\n")
        added = project.run("org", "add", "beta", "--name", NAMES["beta"])
        assert added.exit_code == 0, added.output
        for code in CODES:
            populate(state, code)
        yield state


# -- reading an output for the other organisation ---------------------------------------------------------


def other(code: str) -> str:
    return CODES[1 - CODES.index(code)]


def traces(text: str, code: str) -> list[str]:
    """What of organisation CODE is in TEXT: its marker (in any case), name or code (as a word), with context."""
    found = []
    for pattern in (re.escape(MARKS[code]), re.escape(NAMES[code]), rf"\b{code}\b"):
        for match in re.finditer(pattern, text, flags=re.IGNORECASE):
            found.append(text[max(0, match.start() - 40):match.end() + 40].replace("\n", " "))
    return found


def pdf_text(data: bytes) -> str:
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def xlsx_text(path: Path) -> str:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        return "\n".join(" | ".join("" if v is None else str(v) for v in row)
                         for sheet in book.worksheets for row in sheet.iter_rows(values_only=True))
    finally:
        book.close()


def commands(world: World, code: str) -> dict[str, tuple[str, ...]]:
    """Every output of organisation CODE on standard output, by a name for messages."""
    year = str(datetime.now(AMSTERDAM).year)
    breach = world.breaches[code][0]
    found: dict[str, tuple[str, ...]] = {}
    for fmt in ("table", "json", "csv"):
        found[f"findings {fmt}"] = ("findings", "--status", "all", "--format", fmt)
        found[f"exceptions list {fmt}"] = ("exceptions", "list", "--all", "--format", fmt)
        found[f"attest list {fmt}"] = ("attest", "list", "--all", "--format", fmt)
        found[f"incident list {fmt}"] = ("incident", "list", "--format", fmt)
    for fmt in ("html", "md", "json"):
        for lang in ("nl", "en"):
            found[f"report {fmt} {lang}"] = ("report", "--format", fmt, "--lang", lang)
    for fmt in ("html", "csv", "json"):
        found[f"ensia export {fmt}"] = ("ensia", "export", "--year", year, "--format", fmt)
    for fmt in ("md", "html", "csv", "json"):
        found[f"controls soa {fmt}"] = ("controls", "soa", "--format", fmt)
    for fmt in ("table", "json"):
        found[f"controls applicability {fmt}"] = ("controls", "applicability", "--format", fmt)
        found[f"controls list {fmt}"] = ("controls", "list", "--format", fmt)
    for fmt in ("csv", "json"):
        found[f"incident export --all {fmt}"] = ("incident", "export", "--all", "--format", fmt)
    for fmt in ("ap", "json"):
        found[f"incident export {fmt}"] = ("incident", "export", breach, "--format", fmt)
    found["incident show"] = ("incident", "show", breach)
    for lang in ("nl", "en"):
        found[f"incident message {lang}"] = ("incident", "message", breach, "--template", "--lang", lang)
    found["controls coverage"] = ("controls", "coverage", "--by", "measure", "--format", "json")
    found["schedule list"] = ("schedule", "list", "--format", "json")
    for lang in ("nl", "en"):
        found[f"digest e-mail {lang}"] = ("digest", "send", "--dry-run", "--channel", "email", "--lang", lang)
    found["digest slack"] = ("digest", "send", "--dry-run", "--channel", "slack")
    return found


#: Outputs that show no data of the organisation's own to look for: their counts are checked instead.
VERIFY = ("incident", "verify", "--format", "json")


def outputs(world: World, code: str) -> dict[str, str]:
    """The text of every output of organisation CODE: standard output and files (PDF, xlsx)."""
    texts = {}
    for name, args in commands(world, code).items():
        result = world.run(code, *args)
        assert result.exit_code == 0, (name, result.output)
        texts[name] = result.output
    folder = world.project.root / f"out-{code}"
    folder.mkdir(exist_ok=True)
    pdf = folder / "report.pdf"
    world.ok(code, "report", "--format", "pdf", "--output", str(pdf))
    texts["report pdf"] = pdf_text(pdf.read_bytes())
    xlsx = folder / "ensia.xlsx"
    world.ok(code, "ensia", "export", "--year", str(datetime.now(AMSTERDAM).year), "--format", "xlsx",
             "--output", str(xlsx))
    texts["ensia export xlsx"] = xlsx_text(xlsx)
    return texts


@pytest.mark.parametrize("reader", CODES)
def test_no_output_of_one_organisation_shows_anything_of_the_other(world: World, reader: str) -> None:
    texts = outputs(world, reader)
    assert len(texts) == 43
    leaks = {name: found for name, text in texts.items() if (found := traces(text, other(reader)))}
    assert leaks == {}
    # each output shows the reader's own data: an empty one would prove nothing
    # (the draft message to the people concerned has no free text from the register: the name is the sign)
    assert [name for name, text in texts.items()
            if (NAMES[reader] if name.startswith("incident message") else MARKS[reader]) not in text] == []
    # the breach register's check reads the reader's own register: its incidents and their events only
    verified = json.loads(world.ok(reader, *VERIFY).stdout)
    own = len(BREACHES[reader])
    # an event per registration, two for the assessment (its record and the status `assessed`)
    assert (verified["intact"], verified["incidents"], verified["events"]) == (True, own, own + 2)
    assert traces(world.ok(reader, "incident", "verify").output, other(reader)) == []


def message_text(message: Any) -> str:
    """The headers and every text part of an e-mail, decoded."""
    texts = [f"{name}: {value}" for name, value in message.items()]
    texts += [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join(texts)


@pytest.mark.parametrize("reader", CODES)
def test_each_digest_goes_to_its_own_recipients_and_channel_with_its_own_figures(world: World, reader: str) -> None:
    low = MARKS[reader].lower()
    sent = world.run(reader, "digest", "send", "--format", "json")
    assert sent.exit_code == 0, sent.output
    assert [(c["channel"], c["result"], c["recipients"]) for c in json.loads(sent.stdout)["channels"]] == [
        ("email", "sent", 2), ("slack", "sent", 1)]
    [message], [envelope] = world.mail.messages, world.mail.envelopes
    assert sorted(envelope.rcpt_tos) == [f"ciso@{low}.example", f"directie@{low}.example"]
    [post] = world.slack.posts()
    assert post.body["channel"] == f"#{low}-management"
    for name, text in (("e-mail", message_text(message)), ("slack", json.dumps(post.body, ensure_ascii=False))):
        assert traces(text, other(reader)) == [], name
        assert f"{MARKS[reader]}-VAULT" in text and world.breaches[reader][0] in text, name
    # the delivery is recorded in the reader's database only
    status = json.loads(world.ok(reader, "digest", "status", "--format", "json").stdout)["digests"]
    assert sorted((d["channel"], d["result"]) for d in status) == [("email", "sent"), ("slack", "sent")]
    assert json.loads(world.ok(other(reader), "digest", "status", "--format", "json").stdout) == {"digests": []}


# -- the organisation's name ---------------------------------------------------------------------------------

#: The configuration of an install that served one municipality before a second was added: the shared
#: incidents section names the first one.
UPGRADED = """\
incidents:
  organisation: Gemeente Alpha
schedule:
  default: null
"""

LETTER = ("--title", "Brief naar een verkeerd adres", "--aware-at", "2026-03-07 16:40", "--occurred-at",
          "2026-03-06 09:00", "--nature", "confidentiality", "--data-category", "contact", "--subjects", "1",
          "--description", "Een brief ging naar een verkeerd adres.")


def named(project: Project, code: str) -> dict[str, str]:
    """Where each output names the organisation: the report's heading, the digest's footer, the AP form's 1.1."""
    def run(*args: str) -> str:
        result = project.run("--org", code, *args)
        assert result.exit_code == 0, (args, result.output)
        return str(result.output)

    form = run("incident", "export", f"DL-{datetime.now(AMSTERDAM).year}-0001", "--format", "ap").splitlines()
    return {"report": run("report", "--format", "md", "--lang", "en").splitlines()[0],
            "digest": run("digest", "send", "--dry-run", "--lang", "en").splitlines()[-1].split(".")[0],
            "ap form": form[form.index("1.1 Over welke organisatie gaat het (verwerkingsverantwoordelijke)?") + 1]}


def test_each_organisation_is_named_by_its_registered_name_not_by_the_shared_incidents_section(
        project: Project) -> None:
    project.write_config(UPGRADED)
    assert project.run("org", "rename", "default", "alpha", "--name", NAMES["alpha"]).exit_code == 0
    assert project.run("org", "add", "beta", "--name", NAMES["beta"]).exit_code == 0
    for code in CODES:
        assert project.run("--org", code, "incident", "new", *LETTER, "--by", "anna").exit_code == 0
    assert named(project, "beta") == {"report": "# Risk overview – Gemeente Beta", "digest": "Gemeente Beta",
                                      "ap form": "    Gemeente Beta"}
    assert named(project, "alpha") == {"report": "# Risk overview – Gemeente Alpha", "digest": "Gemeente Alpha",
                                       "ap form": "    Gemeente Alpha"}
    # a name in the organisation's own incidents section wins over the registered one
    project.write_config(UPGRADED + "organisations:\n  beta:\n    incidents: {organisation: Gemeente Beta (SSC)}\n")
    assert named(project, "beta")["ap form"] == "    Gemeente Beta (SSC)"


# -- the databases ---------------------------------------------------------------------------------------------


def missing_tables(database: Any) -> list[str]:
    """The tables of the schema (compliance.db.models) that DATABASE lacks, where its connections look."""
    from sqlalchemy import inspect

    from compliance.db.models import Base

    with database.engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar() if database.dialect == (
            "postgresql") else None
        present = set(inspect(connection).get_table_names(schema=schema))
    return sorted(set(Base.metadata.tables) - present)


def register(database: Any) -> list[tuple[str, str, str]]:
    """The rows of the register table of DATABASE: (code, name, location)."""
    from sqlalchemy import select

    from compliance.db.models import Organisation

    with database.sessions() as session:
        return [(o.code, o.name, o.location) for o in session.scalars(select(Organisation).order_by(Organisation.code))]


def two_organisations(project: Project) -> None:
    assert project.run("org", "rename", "default", "alpha", "--name", NAMES["alpha"]).exit_code == 0
    assert project.run("org", "add", "beta", "--name", NAMES["beta"]).exit_code == 0


def test_every_table_is_in_each_organisations_database_and_the_register_only_in_the_first(project: Project) -> None:
    from compliance.db.models import Base

    two_organisations(project)
    location = "org_beta" if project.db_url.startswith("postgresql") else "compliance-beta.db"
    assert len(Base.metadata.tables) >= 18
    alpha, beta = org_database(project, "alpha"), org_database(project, "beta")
    try:
        assert (missing_tables(alpha), missing_tables(beta)) == ([], [])
        assert register(alpha) == [("alpha", NAMES["alpha"], ""), ("beta", NAMES["beta"], location)]
        assert register(beta) == [("beta", NAMES["beta"], "")]
        if beta.dialect == "postgresql":
            with beta.engine.connect() as connection:
                path = connection.exec_driver_sql("SHOW search_path").scalar()
                schemas = connection.exec_driver_sql("SELECT current_schemas(false)").scalar()
            assert (path, schemas) == ("org_beta", ["org_beta"])  # public is not on it
            with alpha.engine.connect() as connection:
                assert connection.exec_driver_sql("SELECT current_schema()").scalar() == "public"
        else:
            assert Path(beta.url.removeprefix("sqlite:///")) == project.root / "compliance-beta.db"
    finally:
        alpha.close()
        beta.close()


def test_a_table_missing_from_an_organisations_database_is_found_and_not_read_elsewhere(
        project: Project, tmp_path: Path) -> None:
    two_organisations(project)
    project.control("policy.yaml", "- id: POLICY\n  title: Beleid\n  theme: organizational\n  severity: medium\n"
                                   "  checks:\n    - plugin: evidence\n      params: {requirement: Beleid}\n")
    evidence = tmp_path / "beleid.txt"
    evidence.write_text("beleid", encoding="utf-8")
    attested = project.run("--org", "alpha", "attest", "add", "POLICY", "--by", "Directeur", "--evidence",
                           str(evidence), "--valid-until", "2099-12-31", "--note", f"Vastgesteld {MARKS['alpha']}")
    assert attested.exit_code == 0, attested.output
    beta = org_database(project, "beta")
    try:
        with beta.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE attestations")
        assert missing_tables(beta) == ["attestations"]
    finally:
        beta.close()
    # beta's commands do not fall back on another organisation's table (on PostgreSQL: public's)
    listed = project.run("--org", "beta", "attest", "list", "--format", "json")
    assert (listed.exit_code, listed.output.startswith("internal error: ")) == (3, True)
    assert "attestations" in listed.output and traces(listed.output, "alpha") == []
