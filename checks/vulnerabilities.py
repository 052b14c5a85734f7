"""`vulnerabilities`: no high or critical finding of the vulnerability scanner stays open past its deadline.

Secure state (BIO2 8.08.01, ISO 27002:2022 8.8 management of technical vulnerabilities): technical
vulnerabilities are found by regular scans and remedied in time - under BIO2 a vulnerability with a
high likelihood and a high impact within a week. The check reads the newest export of the
municipality's scanner that matches `path` (a glob) and gives one result per scanned host: it fails
when a finding of a severity named in `max_age` has been open longer than its limit there.

Formats (`format: auto` tells them apart by their content):

- `greenbone_xml` - a Greenbone / OpenVAS report in the XML report format (`<report>` with
  `<results><result>`: host, port, nvt with oid, name, severities and `<ref type="cve">`, threat,
  severity, creation_time). Parsed with defusedxml: DTDs with entities and external references are
  refused, so an export cannot expand itself into gigabytes ("billion laughs") or read local files.
- `greenbone_csv` - Greenbone's "CSV Results" export (IP, Hostname, Port, Port Protocol, CVSS,
  Severity, NVT Name, NVT OID, CVEs, Timestamp, ...).
- `nessus_csv` - a Tenable Nessus CSV export (Plugin ID, CVE, CVSS v3.0 Base Score, Risk, Host,
  Protocol, Port, Name, ...; one row per CVE, joined again per finding).

Severity: the CVSS score of the finding where the export has one (critical 9.0-10, high 7.0-8.9,
medium 4.0-6.9, low 0.1-3.9, as CVSS v3 names them; Greenbone labels 9+ as "High" in older versions),
else the scanner's label (Nessus `Risk`, Greenbone `threat`/`Severity`).

Age: from when the finding was first seen. A "First Seen" / "First Discovered" column (Tenable
exports) is used where present. Otherwise - and Greenbone's reports and Nessus' plain CSV have no
such field - the check looks back through up to `history` older exports matching `path`: a finding
counts from the oldest export of the unbroken series of exports that all contain it (same host,
scanner test and port), and else from the date of the report itself (Greenbone: the result's
creation time or the Timestamp column; Nessus CSV, which holds no date: the file's modification
time). Keep older exports next to the newest (e.g. `scans/openvas-2026-11-*.xml`) so that the age
is real; with a single export a finding is only as old as that scan. The Nessus "Plugin Publication
Date" is not the time a host was found vulnerable, so it is not used.

A stale export (its report date older than `max_report_age`) fails with one result for `path`, as
does no export at all: without a recent scan nothing is proven, and per-host results from old data
would mislead. An export that cannot be read or parsed (malformed XML or CSV, unknown columns, dates
that do not parse) is an error. The monitor needs read access to the export folder only; the export
itself is made by the scanner (e.g. a scheduled `gvm-cli` get_reports or a Nessus scheduled export).

Example::

    id: VULN-SCAN
    title: No high or critical vulnerability stays open longer than a week
    theme: technological
    references: {bio2: "8.08.01", iso27002: "8.8"}
    severity: high
    checks:
      - plugin: vulnerabilities
        params:
          path: /srv/scans/openvas-*.xml
          max_age: {critical: 7d, high: 7d}
          max_report_age: 8d
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from compliance.api import Check, Context, Duration, Message, Params, Result, format_duration

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
SEVERITY_NL = {"critical": "kritiek", "high": "hoog", "medium": "middel", "low": "laag"}
MAX_LISTED = 10
NO_CVE = {"en": "no CVE", "nl": "geen CVE"}
MAX_CVES = 5
CSV_FIELD_LIMIT = 64 * 1024 * 1024  # Nessus' "Plugin Output" column can be long
_CVE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_FIRST_SEEN_COLUMNS = ("First Seen", "First Discovered", "First Found", "first_found", "first_seen")


DEFAULT_LIMITS: dict[Severity, timedelta] = {"critical": timedelta(days=7), "high": timedelta(days=7)}


class FormatError(ValueError):
    """The export cannot be read as the format it claims to be."""


@dataclass
class Finding:
    host: str
    key: str  # the scanner's test (NVT OID / plugin id) and the port: the same finding in another export
    name: str
    port: str
    severity: Severity | None
    score: float | None
    cves: list[str]
    seen: datetime  # the time of the scan that reported it
    first_seen: datetime | None = None  # from the export itself, where it has such a field
    hostname: str = ""


@dataclass
class Report:
    path: str
    format: str
    date: datetime
    date_source: str
    findings: list[Finding] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)  # host -> hostname ("" when unknown)


class VulnerabilitiesParams(Params):
    path: str
    """The scanner's export: a file or a glob; the newest match is judged, older ones give first-seen dates."""
    format: Literal["auto", "greenbone_xml", "greenbone_csv", "nessus_csv"] = "auto"
    """The export's format; `auto` recognises it by its content."""
    max_age: dict[Severity, Duration] = Field(default_factory=lambda: dict(DEFAULT_LIMITS))
    """Per severity (critical, high, medium, low) the longest a finding may stay open; severities not
    named are not judged."""
    max_report_age: Duration = timedelta(days=8)
    """The oldest the newest export may be (its report date)."""
    history: int = Field(10, ge=0, le=100)
    """How many older exports matching `path` are read to learn when a finding was first seen."""

    @field_validator("max_age")
    @classmethod
    def _some(cls, value: dict[Severity, timedelta]) -> dict[Severity, timedelta]:
        if not value:
            raise ValueError("name at least one severity, e.g. {critical: 7d, high: 7d}")
        return value


def classify(score: float | None, label: str) -> Severity | None:
    """The severity of a CVSS score (CVSS v3 ranges), else of the scanner's label; None for log/info."""
    if score is not None:  # Greenbone marks false positives with -1 and errors with -2: no vulnerability
        if score >= 9.0:
            return "critical"
        if score >= 7.0:
            return "high"
        if score >= 4.0:
            return "medium"
        return "low" if score > 0 else None
    text = label.strip().lower()
    for severity in SEVERITIES:
        if text == severity:
            return severity
    return None


def parse_time(text: str | None, what: str) -> datetime | None:
    """A timestamp as exports write it (ISO 8601, or Tenable's 'Nov 3, 2026 10:20:11 UTC'), in UTC."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for pattern in ("%b %d, %Y %H:%M:%S %Z", "%b %d, %Y %H:%M:%S", "%b %d, %Y", "%Y/%m/%d %H:%M:%S",
                        "%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%a %b %d %H:%M:%S %Y"):
            try:
                moment = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        raise FormatError(f"{what} {value[:40]!r} is not a date")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _score(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text.strip())
    except ValueError:
        raise FormatError(f"{text.strip()[:20]!r} is not a CVSS score") from None
    if not -3 <= value <= 10:  # below 0: Greenbone's false positive (-1), error (-2) and debug (-3) results
        raise FormatError(f"{value} is not a CVSS score (0-10)")
    return value


# -- Greenbone / OpenVAS XML -----------------------------------------------------------------------------


def _parse_xml(path: str) -> Any:
    """The root element, parsed without entity expansion or external references."""
    import xml.etree.ElementTree as ElementTree

    try:
        import defusedxml.ElementTree as safe  # type: ignore[import-untyped,unused-ignore]
        from defusedxml import DefusedXmlException  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # defusedxml is a dependency; this keeps the guarantee without it
        with open(path, "rb") as handle:
            data = handle.read()
        if re.search(rb"<!(DOCTYPE|ENTITY)", data, re.IGNORECASE):
            raise FormatError("the XML has a DTD; exports have none, and entities are refused") from None
        try:
            return ElementTree.fromstring(data)
        except ElementTree.ParseError as exc:
            raise FormatError(f"malformed XML: {exc}") from None
    try:
        return safe.parse(path).getroot()
    except DefusedXmlException as exc:
        raise FormatError(f"the XML declares entities or external references, which are refused ({exc})") from None
    except ElementTree.ParseError as exc:
        raise FormatError(f"malformed XML: {exc}") from None


def _text(element: Any, path: str) -> str:
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


def read_greenbone_xml(path: str) -> Report:
    root = _parse_xml(path)
    if root.tag != "report":
        raise FormatError(f"the root element is <{root.tag}>, not a Greenbone <report>")
    inner = root.find("report")
    report = inner if inner is not None else root
    results = report.find("results")
    if results is None:
        raise FormatError("the <report> has no <results>")
    listed, filtered = len(results.findall("result")), _text(report, "result_count/filtered")
    if filtered.isdigit() and int(filtered) > listed:  # the report filter's default of 100 rows, for one
        raise FormatError(f"the export holds {listed} of the report's {filtered} results; export it with the "
                          "filter rows=-1 so that every result is in it")
    date, source = None, ""
    for element, where in ((report, "scan_end"), (report, "scan_start"), (report, "timestamp"),
                           (root, "creation_time")):
        date = parse_time(_text(element, where), where)
        if date is not None:
            source = where
            break
    if date is None:
        date, source = _mtime(path), "file modification time"
    parsed = Report(path, "greenbone_xml", date, source)
    for host in report.findall("host"):
        ip = _text(host, "ip")
        if ip:
            names = [(_text(d, "value")) for d in host.findall("detail") if _text(d, "name") == "hostname"]
            parsed.hosts[ip] = names[0] if names else ""
    for number, result in enumerate(results.findall("result"), 1):
        host_element = result.find("host")
        host = (host_element.text or "").strip() if host_element is not None else ""
        if not host:
            raise FormatError(f"result {number} has no host")
        hostname = _text(host_element, "hostname") if host_element is not None else ""
        nvt = result.find("nvt")
        oid = nvt.get("oid", "") if nvt is not None else ""
        name = _text(result, "name") or (_text(nvt, "name") if nvt is not None else "") or oid
        score = _score(_text(result, "severity"))
        if score is None and nvt is not None:
            severities = nvt.find("severities")
            score = _score(severities.get("score") if severities is not None else None) or _score(
                _text(nvt, "cvss_base"))
        cves: list[str] = []
        if nvt is not None:
            cves = [ref.get("id", "") for ref in nvt.iter("ref") if ref.get("type", "").lower() == "cve"]
            cves += [c for c in _CVE.findall(_text(nvt, "cve")) if c not in cves]  # older GMP versions
        port = _text(result, "port")
        seen = parse_time(_text(result, "creation_time"), "creation_time") or date
        parsed.findings.append(Finding(host, f"{oid or name}|{port}", name, port,
                                       classify(score, _text(result, "threat")), score, cves, seen,
                                       parse_time(_text(result, "first_seen"), "first_seen"), hostname))
        parsed.hosts.setdefault(host, hostname)
        if hostname and not parsed.hosts[host]:
            parsed.hosts[host] = hostname
    return parsed


# -- CSV exports -----------------------------------------------------------------------------------------


def _read_csv(path: str) -> tuple[list[str], list[dict[str, str]]]:
    import csv

    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle, strict=True)
        try:
            rows = [{k: (v or "") for k, v in row.items() if isinstance(k, str)} for row in reader]
        except csv.Error as exc:
            raise FormatError(f"malformed CSV near line {reader.line_num}: {exc}") from None
        return list(reader.fieldnames or []), rows


def _require(columns: list[str], needed: tuple[str, ...], what: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise FormatError(f"not a {what} export: the columns {', '.join(missing)} are missing")


def _first_seen(row: dict[str, str], line: int) -> datetime | None:
    for column in _FIRST_SEEN_COLUMNS:
        if row.get(column, "").strip():
            return parse_time(row[column], f"line {line}: {column}")
    return None


def read_greenbone_csv(path: str) -> Report:
    columns, rows = _read_csv(path)
    _require(columns, ("IP", "Port", "Severity", "NVT Name"), "Greenbone CSV")
    stamps = [parse_time(row.get("Timestamp"), f"line {n}: Timestamp") for n, row in enumerate(rows, 2)]
    known = [s for s in stamps if s is not None]
    date, source = (max(known), "Timestamp") if known else (_mtime(path), "file modification time")
    parsed = Report(path, "greenbone_csv", date, source)
    for line, (row, stamp) in enumerate(zip(rows, stamps, strict=True), 2):
        host = row["IP"].strip()
        if not host:
            raise FormatError(f"line {line} has no IP")
        port = "/".join(p for p in (row["Port"].strip(), row.get("Port Protocol", "").strip()) if p) or "general"
        score = _score(row.get("CVSS"))
        name = row["NVT Name"].strip()
        oid = row.get("NVT OID", "").strip()
        cves = _CVE.findall(row.get("CVEs", ""))
        hostname = row.get("Hostname", "").strip()
        parsed.findings.append(Finding(host, f"{oid or name}|{port}", name, port, classify(score, row["Severity"]),
                                       score, cves, stamp or date, _first_seen(row, line), hostname))
        if hostname or host not in parsed.hosts:
            parsed.hosts[host] = hostname
    return parsed


def read_nessus_csv(path: str) -> Report:
    columns, rows = _read_csv(path)
    _require(columns, ("Plugin ID", "Risk", "Host", "Name"), "Nessus CSV")
    date = _mtime(path)
    parsed = Report(path, "nessus_csv", date, "file modification time")
    joined: dict[str, Finding] = {}
    for line, row in enumerate(rows, 2):
        host = row["Host"].strip()
        if not host:
            raise FormatError(f"line {line} has no Host")
        parsed.hosts.setdefault(host, "")
        port_number = row.get("Port", "").strip()
        port = f"{port_number}/{row.get('Protocol', '').strip()}" if port_number not in ("", "0") else "general"
        plugin = row["Plugin ID"].strip()
        key = f"{host}|{plugin}|{port}"
        cves = _CVE.findall(row.get("CVE", ""))
        if key in joined:  # Nessus writes a row per CVE of the same finding
            joined[key].cves += [c for c in cves if c not in joined[key].cves]
            continue
        score = _score(row.get("CVSS v3.0 Base Score") or row.get("CVSS v2.0 Base Score") or row.get("CVSS"))
        risk = row["Risk"].strip()
        severity = classify(None, risk) if risk and risk.lower() != "none" else None
        if not risk:
            severity = classify(score, "")
        finding = Finding(host, f"{plugin}|{port}", row["Name"].strip(), port, severity, score, cves, date,
                          _first_seen(row, line))
        joined[key] = finding
        parsed.findings.append(finding)
    return parsed


def _mtime(path: str) -> datetime:
    return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)


def detect_format(path: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "greenbone_xml"
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    if "Plugin ID" in first:
        return "nessus_csv"
    if "NVT Name" in first or "NVT OID" in first:
        return "greenbone_csv"
    raise FormatError("neither a Greenbone XML or CSV export nor a Nessus CSV export")


READERS = {"greenbone_xml": read_greenbone_xml, "greenbone_csv": read_greenbone_csv,
           "nessus_csv": read_nessus_csv}


def read_report(path: str, format: str) -> Report:
    return READERS[detect_format(path) if format == "auto" else format](path)


# -- the check -------------------------------------------------------------------------------------------


def _severity_word(severity: Severity) -> dict[str, str]:
    return {"en": severity, "nl": SEVERITY_NL[severity]}


class Vulnerabilities(Check):
    name = "vulnerabilities"
    Params = VulnerabilitiesParams
    target_param = "path"

    def run(self, params: VulnerabilitiesParams, ctx: Context) -> Iterator[Result]:
        target = params.path
        pattern = ctx.resolve(params.path)
        exports: list[tuple[float, str]] = []
        for match in glob.glob(pattern, recursive=True):
            try:
                if os.path.isfile(match):
                    exports.append((os.stat(match).st_mtime, match))
            except OSError:
                continue
        exports.sort(reverse=True)
        if not exports:
            yield Result.failed(target, Message("No scanner export matches %(path)s.", path=params.path),
                                pattern=pattern)
            return
        newest_path = exports[0][1]
        try:
            report = read_report(newest_path, params.format)
        except (OSError, FormatError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            yield Result.errored(target, Message("Cannot read the scanner export %(path)s: %(reason)s.",
                                                 path=newest_path, reason=reason), report=newest_path)
            return
        now = ctx.now()
        report_age = now - report.date
        about: dict[str, Any] = {"report": report.path, "format": report.format, "report_date": report.date.isoformat(),
                 "report_date_from": report.date_source}
        if report_age > params.max_report_age:
            yield Result.failed(target, Message(
                "The newest scanner export %(path)s is from %(date)s, %(age)s ago (maximum %(maximum)s): "
                "the scan results are stale.", path=report.path, date=report.date.strftime("%Y-%m-%d"),
                age=format_duration(report_age), maximum=format_duration(params.max_report_age)),
                **about, max_report_age_seconds=int(params.max_report_age.total_seconds()))
            return
        judged = [f for f in report.findings if f.severity in params.max_age]
        since, history_read, history_errors = self._history(judged, exports[1:1 + params.history], params.format)
        about.update(history_read=history_read)
        if history_errors:
            about["history_unreadable"] = history_errors[:MAX_LISTED]
        by_host: dict[str, list[dict[str, Any]]] = {host: [] for host in report.hosts}
        for finding in judged:
            assert finding.severity is not None
            if finding.first_seen is not None:
                detected, source = finding.first_seen, "first seen (export)"
            elif since.get((finding.host, finding.key)) is not None:
                detected, source = since[(finding.host, finding.key)], "earlier exports"
            else:
                detected, source = finding.seen, "report date"
            limit = params.max_age[finding.severity]
            by_host.setdefault(finding.host, []).append({
                "name": finding.name[:120], "port": finding.port, "severity": finding.severity,
                "cvss": finding.score, "cves": finding.cves[:MAX_CVES], "detected": detected.isoformat(),
                "detected_from": source, "age": format_duration(now - detected), "limit": format_duration(limit),
                "due": (detected + limit).isoformat(), "_overdue": now - detected > limit})
        limits: dict[str, str] = {severity: format_duration(limit) for severity, limit in params.max_age.items()}
        if not by_host:
            yield Result.errored(target, Message("The scanner export %(path)s lists no hosts.", path=report.path),
                                 **about)
            return
        for host in sorted(by_host):
            yield self._judge_host(host, report.hosts.get(host, ""), by_host[host], about, limits)

    @staticmethod
    def _history(judged: list[Finding], older: list[tuple[float, str]],
                 format: str) -> tuple[dict[tuple[str, str], datetime], int, list[str]]:
        """When each judged finding was first seen in the unbroken series of older exports that hold it."""
        since: dict[tuple[str, str], datetime] = {}
        open_keys = {(f.host, f.key) for f in judged if f.first_seen is None}
        read = 0
        errors: list[str] = []
        for _, path in older:  # newest first
            if not open_keys:
                break
            try:
                earlier = read_report(path, format)
            except (OSError, FormatError, UnicodeError) as exc:
                errors.append(f"{path}: {exc}")
                break  # the series is broken where an export cannot be read: count no further back
            read += 1
            present = {(f.host, f.key): f.seen for f in earlier.findings}
            for key in list(open_keys):
                if key in present:
                    since[key] = present[key]
                else:
                    open_keys.discard(key)  # fixed in between: the finding counts from after this export
        return since, read, errors

    @staticmethod
    def _judge_host(host: str, hostname: str, findings: list[dict[str, Any]], about: dict[str, Any],
                    limits: dict[str, str]) -> Result:
        overdue = sorted((f for f in findings if f.pop("_overdue")), key=lambda f: f["due"])
        pending = sorted((f for f in findings if f not in overdue), key=lambda f: f["due"])
        evidence = {**about, "hostname": hostname, "limits": limits, "overdue_count": len(overdue),
                    "overdue": overdue[:MAX_LISTED], "open_within_limit_count": len(pending),
                    "open_within_limit": pending[:MAX_LISTED]}
        if overdue:
            shown: list[Message | str] = [
                Message("%(name)s (%(severity)s, %(cves)s) open %(age)s, limit %(limit)s", name=f["name"][:80],
                        severity=_severity_word(f["severity"]), cves=", ".join(f["cves"][:3]) or NO_CVE,
                        age=f["age"], limit=f["limit"]) for f in overdue[:3]]
            return Result.failed(host, Message(
                "%(host)s has %(count)s findings open past their deadline: %(findings)s.",
                host=host, count=len(overdue), findings=shown), **evidence)
        if pending:
            return Result.passed(host, Message(
                "%(host)s has no finding open past its deadline; %(count)s open within it, the first due %(due)s.",
                host=host, count=len(pending), due=pending[0]["due"][:10]), **evidence)
        return Result.passed(host, Message("%(host)s has no open finding of the judged severities.", host=host),
                             **evidence)
