"""vulnerabilities: no high or critical scanner finding stays open past its deadline, per host.

The exports are written by the tests in the formats the scanners write: Greenbone's XML report format
(get_reports with the XML report format), Greenbone's "CSV Results" columns, and Nessus' CSV export,
with dates relative to now.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pydantic
import pytest

from compliance.api import Context, Result, Status
from compliance.checks.vulnerabilities import Vulnerabilities, classify
from tests.checks.unprivileged import run_as_nobody

NOW = datetime.now(UTC)
LOG4SHELL = ("1.3.6.1.4.1.25623.1.0.117838", "Apache Log4j RCE (Log4Shell)", 10.0, "High", ["CVE-2021-44228",
                                                                                            "CVE-2021-45046"])
OPENSSH = ("1.3.6.1.4.1.25623.1.0.150711", "OpenSSH Multiple Vulnerabilities", 7.5, "High", ["CVE-2023-38408"])
WEAK_CIPHER = ("1.3.6.1.4.1.25623.1.0.108440", "SSL/TLS: Report Weak Cipher Suites", 5.0, "Medium", [])


def iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def greenbone_xml(days_ago: float, results: list[tuple[str, str, tuple[Any, ...]]],
                  hosts: tuple[str, ...] = ()) -> str:
    """A Greenbone report as get_reports returns it with the XML report format."""
    items = []
    for number, (host, port, (oid, name, score, threat, cves)) in enumerate(results):
        refs = "".join(f'<ref type="cve" id="{c}"/>' for c in cves) + '<ref type="url" id="https://example.org"/>'
        items.append(f"""
      <result id="r-{number}">
        <name>{escape(name)}</name>
        <owner><name>admin</name></owner>
        <modification_time>{iso(days_ago)}</modification_time>
        <creation_time>{iso(days_ago)}</creation_time>
        <host>{host}<asset asset_id="a-{host}"/><hostname>srv-{host.rsplit('.', 1)[-1]}.gemeente.local</hostname></host>
        <port>{port}</port>
        <nvt oid={quoteattr(oid)}>
          <type>nvt</type>
          <name>{escape(name)}</name>
          <family>General</family>
          <cvss_base>{score}</cvss_base>
          <severities score="{score}"><severity type="cvss_base_v3"><origin/><date>2021-12-10T00:00:00Z</date>
            <score>{score}</score><value>CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H</value></severity></severities>
          <tags>cvss_base_vector=AV:N/AC:L|summary=A flaw.|solution_type=VendorFix</tags>
          <solution type="VendorFix">Update.</solution>
          <refs>{refs}</refs>
        </nvt>
        <scan_nvt_version>2024-01-01T00:00:00Z</scan_nvt_version>
        <threat>{threat}</threat>
        <severity>{score}</severity>
        <qod><value>97</value><type>remote_banner</type></qod>
        <description>Installed version: 1.0</description>
        <original_threat>{threat}</original_threat>
        <original_severity>{score}</original_severity>
      </result>""")
    host_elements = "".join(f"""
    <host><ip>{h}</ip><asset asset_id="a-{h}"/><start>{iso(days_ago)}</start><end>{iso(days_ago)}</end>
      <detail><name>hostname</name><value>srv-{h.rsplit('.', 1)[-1]}.gemeente.local</value></detail></host>"""
                            for h in hosts)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<report id="f0fdf522-276d-4893-9274-fb8699dc2270" format_id="5057e5cc-b825-11e4-9d0e-28d24461215b"
        extension="xml" content_type="text/xml">
  <owner><name>admin</name></owner>
  <name>{iso(days_ago)}</name>
  <creation_time>{iso(days_ago)}</creation_time>
  <report id="f0fdf522-276d-4893-9274-fb8699dc2270">
    <gmp><version>22.4</version></gmp>
    <scan_run_status>Done</scan_run_status>
    <task id="7a8c1d3e-0000-4000-8000-000000000001"><name>Weekly internal scan</name></task>
    <timestamp>{iso(days_ago)}</timestamp>
    <scan_start>{iso(days_ago)}</scan_start>
    <results start="1" max="1000">{"".join(items)}
    </results>{host_elements}
    <scan_end>{iso(days_ago)}</scan_end>
  </report>
</report>
"""


def export(folder: Path, name: str, text: str, days_ago: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    t = time.time() - days_ago * 86400
    os.utime(path, (t, t))
    return path


def run(base: Path, **params: Any) -> dict[str, Result]:
    model = Vulnerabilities.Params.model_validate(params)
    return {r.target: r for r in Vulnerabilities().run(model, Context("VULN", 10, base_dir=str(base)))}


# -- Greenbone XML ----------------------------------------------------------------------------------------


def test_greenbone_xml_overdue_finding_fails_its_host_only(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    for days in (15, 8, 1):  # the same critical finding in three weekly scans
        export(scans, f"openvas-{days:02d}.xml", greenbone_xml(days, [
            ("10.0.0.5", "8080/tcp", LOG4SHELL), ("10.0.0.6", "443/tcp", WEAK_CIPHER)],
            hosts=("10.0.0.5", "10.0.0.6", "10.0.0.7")), days)
    results = run(tmp_path, path="scans/openvas-*.xml")
    assert set(results) == {"10.0.0.5", "10.0.0.6", "10.0.0.7"}
    web = results["10.0.0.5"]
    assert web.status == Status.FAIL, web.message
    assert web.message.startswith("10.0.0.5 has 1 findings open past their deadline: Apache Log4j RCE (Log4Shell) "
                                  "(critical, CVE-2021-44228, CVE-2021-45046) open 15d")
    [finding] = web.evidence["overdue"]
    assert finding["cves"] == ["CVE-2021-44228", "CVE-2021-45046"] and finding["severity"] == "critical"
    assert finding["detected_from"] == "earlier exports" and finding["port"] == "8080/tcp"
    assert web.evidence["hostname"] == "srv-5.gemeente.local"
    assert web.evidence["history_read"] == 2 and web.evidence["report_date_from"] == "scan_end"
    assert results["10.0.0.6"].status == Status.PASS  # a medium finding is not judged by default
    assert results["10.0.0.7"].status == Status.PASS  # scanned, nothing found
    assert results["10.0.0.7"].message == "10.0.0.7 has no open finding of the judged severities."


def test_new_finding_passes_with_its_due_date_in_evidence(tmp_path: Path) -> None:
    export(tmp_path, "old.xml", greenbone_xml(8, [("10.0.0.6", "443/tcp", WEAK_CIPHER)]), 8)
    export(tmp_path, "new.xml", greenbone_xml(2, [("10.0.0.5", "22/tcp", OPENSSH)]), 2)
    result = run(tmp_path, path="*.xml")["10.0.0.5"]
    assert result.status == Status.PASS, result.message
    [pending] = result.evidence["open_within_limit"]
    assert pending["severity"] == "high" and pending["detected_from"] == "report date"
    assert pending["due"][:10] == (NOW + timedelta(days=5)).strftime("%Y-%m-%d")
    assert "1 open within it, the first due" in result.message


def test_a_finding_fixed_in_between_counts_from_its_return(tmp_path: Path) -> None:
    export(tmp_path, "a.xml", greenbone_xml(20, [("10.0.0.5", "22/tcp", OPENSSH)]), 20)
    export(tmp_path, "b.xml", greenbone_xml(13, [("10.0.0.5", "443/tcp", WEAK_CIPHER)]), 13)
    export(tmp_path, "c.xml", greenbone_xml(6, [("10.0.0.5", "22/tcp", OPENSSH)]), 6)
    export(tmp_path, "d.xml", greenbone_xml(1, [("10.0.0.5", "22/tcp", OPENSSH)]), 1)
    result = run(tmp_path, path="*.xml")["10.0.0.5"]
    assert result.status == Status.PASS, result.message
    assert result.evidence["open_within_limit"][0]["detected"][:10] == iso(6)[:10]
    # with a longer memory of limits, e.g. a stricter one: 3 days
    assert run(tmp_path, path="*.xml", max_age={"high": "3d"})["10.0.0.5"].status == Status.FAIL
    # without history the finding is only as old as the newest scan
    assert run(tmp_path, path="*.xml", max_age={"high": "3d"}, history=0)["10.0.0.5"].status == Status.PASS


def test_false_positive_override_is_not_judged(tmp_path: Path) -> None:
    fp = (*OPENSSH[:2], -1.0, "False Positive", OPENSSH[4])
    export(tmp_path, "r.xml", greenbone_xml(1, [("10.0.0.5", "22/tcp", fp)]), 1)
    assert run(tmp_path, path="r.xml", max_age={"high": "0s"})["10.0.0.5"].status == Status.PASS


def test_stale_export_fails_once(tmp_path: Path) -> None:
    export(tmp_path, "r.xml", greenbone_xml(20, [("10.0.0.5", "22/tcp", OPENSSH)]), 0)  # copied today, scanned 20d ago
    results = run(tmp_path, path="r.xml")
    assert list(results) == ["r.xml"]
    stale = results["r.xml"]
    assert stale.status == Status.FAIL
    # the export's age counts from when this module was imported: seconds or minutes may follow the days
    assert re.search(r"20d[ 0-9hms]* ago \(maximum 8d\): the scan results are stale", stale.message), stale.message
    assert run(tmp_path, path="r.xml", max_report_age="30d")["10.0.0.5"].status == Status.FAIL  # and overdue


def test_entity_expansion_is_refused(tmp_path: Path) -> None:
    laughs = ('<?xml version="1.0"?>\n<!DOCTYPE report [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                        for i in range(1, 10))
              + ']>\n<report><report><results><result><host>&lol9;</host></result></results></report></report>\n')
    export(tmp_path, "bomb.xml", laughs, 0)
    result = run(tmp_path, path="bomb.xml")["bomb.xml"]
    assert result.status == Status.ERROR
    assert "entities or external references, which are refused" in result.message
    external = ('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                "<report><results><result><host>&x;</host></result></results></report>\n")
    export(tmp_path, "xxe.xml", external, 0)
    result = run(tmp_path, path="xxe.xml")["xxe.xml"]
    assert result.status == Status.ERROR and "root:" not in str(result.evidence)


def test_malformed_or_foreign_xml_is_an_error(tmp_path: Path) -> None:
    export(tmp_path, "cut.xml", greenbone_xml(1, [("10.0.0.5", "22/tcp", OPENSSH)])[:900], 0)
    result = run(tmp_path, path="cut.xml")["cut.xml"]
    assert result.status == Status.ERROR and "malformed XML" in result.message
    export(tmp_path, "nmap.xml", '<?xml version="1.0"?><nmaprun><host/></nmaprun>', 0)
    result = run(tmp_path, path="nmap.xml")["nmap.xml"]
    assert result.status == Status.ERROR and "not a Greenbone <report>" in result.message


def test_no_export_fails_and_unknown_content_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path, path="scans/*.xml")["scans/*.xml"]
    assert result.status == Status.FAIL and result.message == "No scanner export matches scans/*.xml."
    export(tmp_path, "notes.csv", "a,b\n1,2\n", 0)
    result = run(tmp_path, path="notes.csv")["notes.csv"]
    assert result.status == Status.ERROR and "neither a Greenbone" in result.message


# -- Greenbone CSV ----------------------------------------------------------------------------------------

GREENBONE_COLUMNS = ["IP", "Hostname", "Port", "Port Protocol", "CVSS", "Severity", "QoD", "Solution Type",
                     "NVT Name", "Summary", "Specific Result", "NVT OID", "CVEs", "Task ID", "Task Name", "Timestamp",
                     "Result ID", "Impact", "Solution", "Affected Software/OS", "Vulnerability Insight",
                     "Vulnerability Detection Method", "Product Detection Result", "BIDs", "CERTs",
                     "Other References"]


def greenbone_csv(days_ago: float, rows: list[tuple[str, str, tuple[Any, ...]]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(GREENBONE_COLUMNS)
    for n, (host, port, (oid, name, score, threat, cves)) in enumerate(rows):
        number, _, proto = port.partition("/")
        values = {"IP": host, "Hostname": f"srv-{host[-1]}", "Port": number, "Port Protocol": proto, "CVSS": score,
                  "Severity": threat, "QoD": 97, "Solution Type": "VendorFix", "NVT Name": name,
                  "Summary": 'A "flaw",\nover two lines.', "Specific Result": "Installed version: 1.0",
                  "NVT OID": oid, "CVEs": ",".join(cves), "Task ID": "t-1", "Task Name": "Weekly",
                  "Timestamp": iso(days_ago), "Result ID": f"r-{n}"}
        writer.writerow([values.get(c, "") for c in GREENBONE_COLUMNS])
    return out.getvalue()


def test_greenbone_csv(tmp_path: Path) -> None:
    export(tmp_path, "gb-1.csv", greenbone_csv(9, [("10.0.0.5", "8080/tcp", LOG4SHELL)]), 9)
    export(tmp_path, "gb-2.csv", greenbone_csv(1, [("10.0.0.5", "8080/tcp", LOG4SHELL),
                                                   ("10.0.0.6", "22/tcp", OPENSSH),
                                                   ("10.0.0.7", "", (*WEAK_CIPHER[:2], 0.0, "Log", []))]), 1)
    results = run(tmp_path, path="gb-*.csv")
    assert results["10.0.0.5"].status == Status.FAIL
    assert results["10.0.0.5"].evidence["overdue"][0]["severity"] == "critical"  # 10.0 labelled "High"
    assert results["10.0.0.5"].evidence["report_date_from"] == "Timestamp"
    assert results["10.0.0.6"].status == Status.PASS and results["10.0.0.6"].evidence["open_within_limit_count"] == 1
    assert results["10.0.0.7"].status == Status.PASS


def test_greenbone_csv_bad_date_or_columns_is_an_error(tmp_path: Path) -> None:
    export(tmp_path, "a.csv", greenbone_csv(1, [("10.0.0.5", "22/tcp", OPENSSH)]).replace(iso(1), "yesterday"), 0)
    result = run(tmp_path, path="a.csv")["a.csv"]
    assert result.status == Status.ERROR and "'yesterday' is not a date" in result.message
    export(tmp_path, "b.csv", "IP,NVT Name\n10.0.0.5,x\n", 0)
    result = run(tmp_path, path="b.csv")["b.csv"]
    assert result.status == Status.ERROR
    assert "not a Greenbone CSV export: the columns Port, Severity are missing" in result.message
    export(tmp_path, "c.csv", greenbone_csv(1, [("10.0.0.5", "22/tcp", OPENSSH)]).replace("7.5", "high!"), 0)
    assert run(tmp_path, path="c.csv")["c.csv"].status == Status.ERROR


# -- Nessus CSV -------------------------------------------------------------------------------------------

NESSUS_COLUMNS = ["Plugin ID", "CVE", "CVSS v2.0 Base Score", "CVSS v3.0 Base Score", "Risk", "Host", "Protocol",
                  "Port", "Name", "Synopsis", "Description", "Solution", "See Also", "Plugin Output"]


def nessus_csv(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=NESSUS_COLUMNS + list(extra), lineterminator="\r\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({"Synopsis": "The remote host is affected.", "Description": "Long text, with, commas.",
                         "Solution": "Upgrade.", "See Also": "https://example.org", "Plugin Output": "x" * 200_000,
                         **row})
    return out.getvalue()


def test_nessus_csv_with_first_seen(tmp_path: Path) -> None:
    common = {"Plugin ID": "156032", "CVSS v2.0 Base Score": "9.3", "CVSS v3.0 Base Score": "10.0",
              "Risk": "Critical", "Host": "10.0.0.5", "Protocol": "tcp", "Port": "8080",
              "Name": "Apache Log4j < 2.15.0 Remote Code Execution"}
    first_seen = (NOW - timedelta(days=10)).strftime("%b %d, %Y %H:%M:%S UTC")  # as Tenable writes it
    rows = [{**common, "CVE": "CVE-2021-44228", "First Seen": first_seen},
            {**common, "CVE": "CVE-2021-45046", "First Seen": first_seen},
            {"Plugin ID": "19506", "Risk": "None", "Host": "10.0.0.6", "Protocol": "tcp", "Port": "0",
             "Name": "Nessus Scan Information"},
            {"Plugin ID": "57582", "CVSS v3.0 Base Score": "6.5", "Risk": "Medium", "Host": "10.0.0.6",
             "Protocol": "tcp", "Port": "443", "Name": "SSL Self-Signed Certificate",
             "First Seen": (NOW - timedelta(days=300)).isoformat()}]
    export(tmp_path, "nessus.csv", nessus_csv(rows, extra=("First Seen",)), 1)
    results = run(tmp_path, path="nessus.csv")
    web = results["10.0.0.5"]
    assert web.status == Status.FAIL
    assert web.evidence["overdue_count"] == 1  # one finding, written as a row per CVE
    assert web.evidence["overdue"][0]["cves"] == ["CVE-2021-44228", "CVE-2021-45046"]
    assert web.evidence["overdue"][0]["detected_from"] == "first seen (export)"
    assert web.evidence["report_date_from"] == "file modification time"
    assert results["10.0.0.6"].status == Status.PASS
    medium = run(tmp_path, path="nessus.csv", max_age={"critical": "30d", "high": "30d", "medium": "90d"})
    assert medium["10.0.0.5"].status == Status.PASS and medium["10.0.0.6"].status == Status.FAIL


def test_nessus_csv_without_dates_uses_the_file_date(tmp_path: Path) -> None:
    row = {"Plugin ID": "142960", "CVE": "CVE-2023-38408", "CVSS v3.0 Base Score": "9.8", "Risk": "Critical",
           "Host": "10.0.0.5", "Protocol": "tcp", "Port": "22", "Name": "OpenSSH < 9.3p2"}
    export(tmp_path, "n.csv", nessus_csv([row]), 2)
    result = run(tmp_path, path="n.csv")["10.0.0.5"]
    assert result.status == Status.PASS
    assert result.evidence["open_within_limit"][0]["detected_from"] == "report date"
    os.utime(tmp_path / "n.csv", (time.time() - 9 * 86400,) * 2)
    assert run(tmp_path, path="n.csv")["n.csv"].status == Status.FAIL  # stale: 9d > 8d


def test_params_and_classification() -> None:
    with pytest.raises(pydantic.ValidationError, match="name at least one severity"):
        Vulnerabilities.Params.model_validate({"path": "x", "max_age": {}})
    with pytest.raises(pydantic.ValidationError):
        Vulnerabilities.Params.model_validate({"path": "x", "max_age": {"urgent": "1d"}})
    with pytest.raises(pydantic.ValidationError):
        Vulnerabilities.Params.model_validate({"path": "x", "format": "qualys"})
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        Vulnerabilities.Params.model_validate({"path": "x", "max_age_days": 7})
    assert Vulnerabilities.Params.model_validate({"path": "x"}).max_age == {
        "critical": timedelta(days=7), "high": timedelta(days=7)}
    assert [classify(s, "") for s in (9.0, 8.9, 7.0, 4.0, 0.1, 0.0, -1.0)] == [
        "critical", "high", "high", "medium", "low", None, None]
    assert classify(None, "High") == "high" and classify(None, "Log") is None


def test_an_export_cut_off_by_the_report_filter_is_an_error(tmp_path: Path) -> None:
    text = greenbone_xml(1, [("10.0.0.5", "22/tcp", OPENSSH)]).replace(
        "<results ", "<result_count>250<full>250</full><filtered>250</filtered></result_count>\n    <results ")
    export(tmp_path, "r.xml", text, 1)
    result = run(tmp_path, path="r.xml")["r.xml"]
    assert result.status == Status.ERROR
    assert "holds 1 of the report's 250 results; export it with the filter rows=-1" in result.message


def test_without_defusedxml_a_dtd_is_still_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "defusedxml", None)  # the import fails as if it were not installed
    monkeypatch.setitem(sys.modules, "defusedxml.ElementTree", None)
    export(tmp_path, "bomb.xml", '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaa">]>\n'
                                 "<report><results><result><host>&a;</host></result></results></report>\n", 0)
    result = run(tmp_path, path="bomb.xml")["bomb.xml"]
    assert result.status == Status.ERROR and "the XML has a DTD" in result.message
    export(tmp_path, "ok.xml", greenbone_xml(1, [("10.0.0.5", "22/tcp", OPENSSH)]), 1)
    assert run(tmp_path, path="ok.xml")["10.0.0.5"].status == Status.PASS


def test_unreadable_export_is_an_error(tmp_path: Path) -> None:
    # root reads every file: as root the check runs in a child process that became nobody
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="vulnerabilities-"))
    try:
        base.chmod(0o755)
        report = export(base, "r.xml", greenbone_xml(1, [("10.0.0.5", "22/tcp", OPENSSH)]), 1)
        report.chmod(0)
        params = Vulnerabilities.Params.model_validate({"path": str(report)})
        status, message = run_as_nobody(Vulnerabilities(), params, Context("VULN", 5))
        assert status == "error", message
        assert message == f"Cannot read the scanner export {report}: Permission denied."
    finally:
        shutil.rmtree(base)
