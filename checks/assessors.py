"""`scubagear` and `maester`: the results of the Microsoft 365 assessors a municipality already runs.

Many municipalities assess their Microsoft 365 tenant with CISA's ScubaGear (the SCuBA secure
configuration baselines, `MS.AAD.3.1v1` and so on) or with the Maester test suite (`MT.1001`,
`EIDSCA.AF01`, `CISA.MS.EXO.2.2`, ...). Both write a JSON file per run. These plugins read the NEWEST
file matching a path or glob (by modification time; relative paths count from the config file) and turn
the policies or tests a control selects into one result each, so that those hundreds of tenant checks
appear under the BIO2 measures they prove (MFA 5.17.01, privileged roles 8.02.01, audit logging 8.15.01,
mail authentication 5.14.01). Nothing talks to Microsoft: the assessor runs on its own schedule, with its
own read-only app registration, and this plugin only reads what it wrote.

Selection: `policies:` (ScubaGear) or `tests:`/`tags:` (Maester) list ids or glob patterns, compared
without regard to case. A ScubaGear pattern may leave off the baseline version (`MS.AAD.3.1` matches
`MS.AAD.3.1v1`), so controls survive a new baseline version. A pattern that matches nothing in the file
is an error: the product was probably not assessed, and nothing is proven.

The file must be fresh: its age is counted from the older of the time the assessor wrote in the file
(ScubaGear `MetaData.TimestampZulu`, Maester `ExecutedAt`) and the file's modification time. A file older
than `max_age` (default 8 days: a weekly run with slack) gives ONE `fail` for the whole file and no
per-policy results, because a stale assessment proves nothing about today's tenant; the scheduled run
that stopped is what must be fixed. No matching file, an unreadable or malformed file, the other tool's
file or a file of another tenant (`tenant:`) are errors that name the file.

ScubaGear results: `Pass` passes; `Fail` (a SHALL) fails; `Warning` (a SHOULD that is not met) fails
too, marked `level: should` in its evidence, unless `should: advice`, which reports it as skipped advice
(never as a pass); `N/A` (3rd-party or not-implemented policies ScubaGear cannot check) is skipped with
ScubaGear's explanation; `Error` is an error. An omission (`OmitPolicy` in ScubaGear's configuration) is
skipped while it runs, showing its rationale and expiry; it fails when its expiry date has come (on that
day, as ScubaGear counts it) or when it has no rationale. A result marked incorrect (`AnnotatePolicy`
`IncorrectResult`) is skipped with its justification when ScubaGear said Fail or Warning, and fails when
ScubaGear said Pass (the municipality itself says the pass is wrong) or when no justification is given.

Maester results: `Passed` passes; `Failed` fails; `Investigate` fails (Maester found something a person
must look at, not proven secure); `Error`, and tests skipped because Maester was not connected, not
authorised or not supported, are errors; tests skipped because they do not apply (licence, a custom
reason) and `NotRun` tests (filtered out of the run) are skipped with the reason.

Targets are `<tenant>/<id>`: ScubaGear's tenant domain (`gemeente.onmicrosoft.com`), Maester's tenant id.

Example::

    id: M365-MFA
    title: Microsoft 365 requires phishing-resistant MFA (ScubaGear MS.AAD.3)
    theme: technological
    references: {bio2: "5.17.01", iso27002: ["5.17", "8.5"]}
    severity: critical
    checks:
      - plugin: scubagear
        params: {policies: ["MS.AAD.3.*"], max_age: 8d}
        targets: [/srv/scubagear/M365BaselineConformance_*/ScubaResults*.json]
      - plugin: maester
        params: {tests: ["MT.1001", "EIDSCA.AM*"], max_age: 8d}
        targets: [/srv/maester/test-results/TestResults-*.json]
"""

from __future__ import annotations

import codecs
import fnmatch
import glob
import hashlib
import html
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from compliance.api import Check, Context, Duration, Message, Params, Result, format_duration

#: A result file larger than this is refused (a ScubaGear file with its raw export is a few MB).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: The most characters of the assessor's own details shown in a message, and kept in evidence.
MESSAGE_DETAILS = 300
EVIDENCE_DETAILS = 1000
#: At most this many ids or patterns in one check.
MAX_PATTERNS = 500

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_VERSION = re.compile(r"v\d+$", re.IGNORECASE)
_JUSTIFICATION = re.compile(r'User justification\s*"(.*)"\s*$', re.DOTALL)
_FRACTION = re.compile(r"(\.\d{6})\d+")
#: Maester skips that mean "could not assess" rather than "does not apply".
_MAESTER_COULD_NOT = ("NotConnected", "NotAuthorized", "NotSupported", "LimitedPermissions", "Error")


def _patterns(value: list[str], what: str) -> list[str]:
    cleaned = []
    for item in value:
        item = item.strip()
        if not item:
            raise ValueError(f"an empty {what} id or pattern")
        if any(c.isspace() for c in item):
            raise ValueError(f"'{item}' contains white space; write one {what} id or glob pattern per item")
        cleaned.append(item)
    if len(cleaned) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} {what} ids or patterns")
    return cleaned


class _AssessorParams(Params):
    path: str
    """The result file or a glob (`**` matches folders at any depth); the newest match is read. Relative
    paths count from the config file."""
    max_age: Duration = timedelta(days=8)
    """The oldest the assessment may be: '8d', '36h'. An older one fails as a whole."""
    tenant: str | None = None
    """The tenant the results must be of (domain or tenant id); a file of another tenant is an error."""

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an empty path")
        return value.strip()

    @field_validator("max_age")
    @classmethod
    def _max_age(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("max_age must be more than zero")
        return value


class ScubaGearParams(_AssessorParams):
    policies: list[str] = Field(min_length=1)
    """ScubaGear policy ids or glob patterns, e.g. ["MS.AAD.3.*", "MS.EXO.1.1v2"]; the version may be left off."""
    should: Literal["fail", "advice"] = "fail"
    """A SHOULD policy that is not met (ScubaGear `Warning`): `fail`, or `advice` (reported as skipped)."""

    @field_validator("policies")
    @classmethod
    def _policies(cls, value: list[str]) -> list[str]:
        return _patterns(value, "policy")


class MaesterParams(_AssessorParams):
    tests: list[str] = Field(default_factory=list)
    """Maester test ids or glob patterns, e.g. ["MT.1001", "EIDSCA.*", "CISA.MS.AAD.*"]."""
    tags: list[str] = Field(default_factory=list)
    """Maester tags or glob patterns; a test with one of them is selected as well, e.g. ["CIS"]."""

    @field_validator("tests")
    @classmethod
    def _tests(cls, value: list[str]) -> list[str]:
        return _patterns(value, "test")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return _patterns(value, "tag")

    @model_validator(mode="after")
    def _something(self) -> MaesterParams:
        if not self.tests and not self.tags:
            raise ValueError("give `tests:` or `tags:` (ids or glob patterns) to select the Maester tests")
        return self


class _Problem(Exception):
    """The result file cannot be used: one result for the whole file instead of one per policy."""

    def __init__(self, message: Message, status: Literal["error", "fail"] = "error", **evidence: Any) -> None:
        super().__init__(str(message))
        self.message = message
        self.status = status
        self.evidence = evidence


@dataclass(frozen=True)
class _File:
    path: str
    data: Any
    sha256: str
    modified: datetime
    matches: int

    def evidence(self) -> dict[str, Any]:
        return {"file": self.path, "sha256": self.sha256, "file_modified": self.modified.isoformat(),
                "files_matching": self.matches}


def _newest(pattern: str) -> tuple[str, float, int] | None:
    newest: tuple[str, float] | None = None
    count = 0
    for match in glob.iglob(pattern, recursive=True):
        try:
            stat = os.stat(match)
        except OSError:
            continue
        if not os.path.isfile(match):
            continue
        count += 1
        if newest is None or (stat.st_mtime, match) > (newest[1], newest[0]):
            newest = (match, stat.st_mtime)
    return None if newest is None else (newest[0], newest[1], count)


def _decode(raw: bytes) -> str:
    """PowerShell writes UTF-8 with a byte order mark, Windows PowerShell 5.1 sometimes UTF-16."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def _load(params: _AssessorParams, ctx: Context, tool: str) -> _File:
    import json

    pattern = ctx.resolve(params.path)
    found = _newest(pattern)
    if found is None:
        raise _Problem(Message("No %(tool)s result file matches %(path)s.", tool=tool, path=params.path),
                       pattern=pattern)
    path, mtime, count = found
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise _Problem(Message("%(file)s is %(size)d MB, more than a %(tool)s result file can be "
                                       "(%(limit)d MB).", file=path, size=size // (1 << 20), tool=tool,
                                       limit=MAX_FILE_BYTES >> 20))
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _Problem(Message("Cannot read %(file)s: %(reason)s.", file=path,
                               reason=exc.strerror or str(exc))) from None
    try:
        data = json.loads(_decode(raw))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise _Problem(Message("%(file)s is not valid JSON: %(reason)s.", file=path, reason=reason[:200])) from None
    return _File(path, data, hashlib.sha256(raw).hexdigest(), datetime.fromtimestamp(mtime, UTC), count)


def _timestamp(value: Any) -> datetime | None:
    """An ISO 8601 time with a zone (PowerShell writes 7 fraction digits); None when absent or naive."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _fresh(params: _AssessorParams, ctx: Context, loaded: _File, written: datetime | None, tool: str,
           base: dict[str, Any]) -> dict[str, Any]:
    """The freshness evidence; raises a fail `_Problem` (with `base` evidence) when older than `max_age`."""
    assessed = min(written, loaded.modified) if written is not None else loaded.modified
    age = ctx.now() - assessed
    evidence = {"assessed": assessed.isoformat(), "age_seconds": int(age.total_seconds()),
                "max_age_seconds": int(params.max_age.total_seconds())}
    if age > params.max_age:
        raise _Problem(Message("The newest %(tool)s result %(file)s is %(age)s old, older than the maximum of "
                               "%(maximum)s; run %(tool)s again.", tool=tool, file=loaded.path,
                               age=format_duration(age), maximum=format_duration(params.max_age)),
                       status="fail", **base, **evidence)
    return evidence


def _text(value: Any, limit: int) -> str:
    """The assessor's HTML or markdown as one line of plain text, cut at `limit` characters."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value if v is not None)
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", str(value)))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _selected(ident: str, patterns: Iterable[str], unversioned: bool = False) -> list[str]:
    """The patterns that match `ident` (case-insensitive globs; ScubaGear ids also without `v1`)."""
    names = {ident.upper()}
    if unversioned:
        names.add(_VERSION.sub("", ident).upper())
    return [p for p in patterns if any(fnmatch.fnmatchcase(n, p.upper()) for n in names)]


def _obj(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def _known(value: Any) -> str | None:
    """A tenant field that holds a value (Maester writes placeholders when it was not connected)."""
    if isinstance(value, str) and value.strip() and "not connected" not in value.lower():
        return value.strip()
    return None


def _check_tenant(params: _AssessorParams, loaded: _File, tool: str, names: Iterable[str | None],
                  evidence: dict[str, Any]) -> None:
    if params.tenant is None:
        return
    known = [n for n in names if n]
    if params.tenant.lower() not in {n.lower() for n in known}:
        raise _Problem(Message("%(file)s holds %(tool)s results of tenant %(found)s, not of %(expected)s.",
                               file=loaded.path, tool=tool, found=" / ".join(known) or "?",
                               expected=params.tenant), **evidence)


def _unique(target: str, seen: dict[str, int]) -> str:
    seen[target] = seen.get(target, 0) + 1
    return target if seen[target] == 1 else f"{target}#{seen[target]}"


def _not_matched(patterns: list[str], used: set[str], tenant: str, loaded: _File, tool: str,
                 noun: Mapping[str, str], base: dict[str, Any]) -> Iterator[Result]:
    for pattern in patterns:
        if pattern not in used:
            yield Result.errored(f"{tenant}/{pattern}",
                                 Message("No %(tool)s %(kind)s in %(file)s matches %(pattern)s; was it assessed?",
                                         tool=tool, kind=dict(noun), file=loaded.path, pattern=pattern),
                                 pattern=pattern, **base)


def _from_problem(target: str, problem: _Problem) -> Result:
    if problem.status == "fail":
        return Result.failed(target, problem.message, **problem.evidence)
    return Result.errored(target, problem.message, **problem.evidence)


# --- ScubaGear -------------------------------------------------------------------------------------------


def _expiry(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


class _Scuba:
    """One ScubaGear result file, validated."""

    def __init__(self, loaded: _File) -> None:
        self.loaded = loaded
        data = loaded.data
        self._require(isinstance(data, dict), "Results")
        meta = _obj(data.get("MetaData"))
        tool = meta.get("Tool")
        if isinstance(tool, str) and tool.strip() and tool.strip().lower() != "scubagear":
            raise _Problem(Message("%(file)s was written by %(writer)s, not by %(tool)s.", file=loaded.path,
                                   writer=tool[:80], tool="ScubaGear"))
        results = data.get("Results")
        self._require(isinstance(results, dict) and bool(results), "Results")
        self.meta: dict[str, Any] = meta
        self.results: dict[str, Any] = results
        raw = _obj(data.get("Raw"))
        config = _obj(raw.get("scuba_config"))
        omit = _obj(config.get("OmitPolicy"))
        self.omit: dict[str, Any] = omit
        self.raw_timestamp = raw.get("timestamp_zulu")  # where ScubaGear versions before MetaData kept it
        for product, groups in results.items():
            self._require(isinstance(groups, list), f"Results.{product}")
            for gi, group in enumerate(groups):
                self._require(isinstance(group, dict) and isinstance(group.get("Controls"), list),
                              f"Results.{product}[{gi}].Controls")
                for ci, control in enumerate(group["Controls"]):
                    self._require(isinstance(control, dict) and isinstance(control.get("Control ID"), str)
                                  and isinstance(control.get("Result"), str),
                                  f"Results.{product}[{gi}].Controls[{ci}]")

    def _require(self, ok: bool, field: str) -> None:
        if not ok:
            raise _Problem(Message("%(file)s is not a %(tool)s result file: it lacks a valid %(field)s.",
                                   file=self.loaded.path, tool="ScubaGear", field=field))

    @property
    def written(self) -> datetime | None:
        return _timestamp(self.meta.get("TimestampZulu")) or _timestamp(self.raw_timestamp)

    @property
    def tenant(self) -> str:
        for key in ("DomainName", "TenantId", "DisplayName"):
            if value := _known(self.meta.get(key)):
                return value
        return "tenant"

    def controls(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        for product, groups in self.results.items():
            for group in groups:
                for control in group["Controls"]:
                    yield product, group, control


class ScubaGear(Check):
    """The policies of CISA's ScubaGear M365 baselines that a control selects, from the newest result file."""

    name = "scubagear"
    Params = ScubaGearParams
    target_param = "path"

    def run(self, params: ScubaGearParams, ctx: Context) -> Iterator[Result]:
        try:
            scuba = _Scuba(_load(params, ctx, "ScubaGear"))
            base = {**scuba.loaded.evidence(), "tenant": scuba.tenant, "tenant_id": scuba.meta.get("TenantId"),
                    "tool_version": scuba.meta.get("ToolVersion"), "report_uuid": scuba.meta.get("ReportUUID")}
            _check_tenant(params, scuba.loaded, "ScubaGear",
                          [_known(scuba.meta.get(k)) for k in ("DomainName", "TenantId", "DisplayName")], base)
            base |= _fresh(params, ctx, scuba.loaded, scuba.written, "ScubaGear", base)
        except _Problem as problem:
            yield _from_problem(params.path, problem)
            return
        used: set[str] = set()
        seen: dict[str, int] = {}
        for product, group, control in scuba.controls():
            policy = control["Control ID"]
            matched = _selected(policy, params.policies, unversioned=True)
            if not matched:
                continue
            used.update(matched)
            target = _unique(f"{scuba.tenant}/{policy}", seen)
            yield self._judge(params, ctx, scuba, target, product, group, control, base)
        yield from _not_matched(params.policies, used, scuba.tenant, scuba.loaded, "ScubaGear",
                                {"en": "policy", "nl": "beleidsregel"}, base)

    @staticmethod
    def _judge(params: ScubaGearParams, ctx: Context, scuba: _Scuba, target: str, product: str,
               group: dict[str, Any], control: dict[str, Any], base: dict[str, Any]) -> Result:
        policy: str = control["Control ID"]
        result: str = control["Result"].strip()
        criticality = str(control.get("Criticality") or "")
        details = _text(control.get("Details"), EVIDENCE_DETAILS)
        short = _text(control.get("Details"), MESSAGE_DETAILS) or "-"
        tenant = scuba.tenant
        evidence: dict[str, Any] = {
            **base, "policy": policy, "product": product, "group": str(group.get("GroupName") or ""),
            "result": result, "criticality": criticality, "details": details,
            "requirement": _text(control.get("Requirement"), MESSAGE_DETAILS)}
        lowered = result.lower()
        if lowered == "pass":
            return Result.passed(target, Message("%(policy)s passed the ScubaGear assessment of %(tenant)s.",
                                                 policy=policy, tenant=tenant), **evidence)
        if lowered == "fail":
            return Result.failed(target, Message("%(policy)s failed the ScubaGear assessment of %(tenant)s "
                                                 "(%(criticality)s): %(details)s", policy=policy, tenant=tenant,
                                                 criticality=criticality or "Shall", details=short),
                                 level="should" if criticality.lower().startswith("should") else "shall",
                                 **evidence)
        if lowered == "warning":
            if params.should == "advice":
                return Result.skipped(target, Message("Advice: %(policy)s, a SHOULD of the ScubaGear baseline, is not "
                                                      "met in %(tenant)s: %(details)s", policy=policy, tenant=tenant,
                                                      details=short), level="should", advice=True, **evidence)
            return Result.failed(target, Message("%(policy)s, a SHOULD of the ScubaGear baseline, is not met in "
                                                 "%(tenant)s: %(details)s", policy=policy, tenant=tenant,
                                                 details=short), level="should", **evidence)
        if lowered == "n/a":
            return Result.skipped(target, Message("ScubaGear cannot check %(policy)s (%(criticality)s); verify it by "
                                                  "hand or with the other tool: %(details)s", policy=policy,
                                                  criticality=criticality or "-", details=short), **evidence)
        if lowered == "omitted":
            return ScubaGear._omitted(ctx, scuba, target, control, evidence)
        if lowered == "incorrect result":
            return ScubaGear._disputed(target, tenant, control, evidence)
        if lowered.startswith("error"):
            return Result.errored(target, Message("ScubaGear could not assess %(policy)s in %(tenant)s (%(result)s): "
                                                  "%(details)s", policy=policy, tenant=tenant, result=result,
                                                  details=short), **evidence)
        if result == "-":
            return Result.skipped(target, Message("%(policy)s is no longer part of the ScubaGear baseline.",
                                                  policy=policy), **evidence)
        return Result.errored(target, Message("%(policy)s has a result that %(tool)s does not document: %(result)s.",
                                              policy=policy, tool="ScubaGear", result=result[:80]), **evidence)

    @staticmethod
    def _omitted(ctx: Context, scuba: _Scuba, target: str, control: dict[str, Any],
                 evidence: dict[str, Any]) -> Result:
        policy: str = control["Control ID"]
        configured = _obj(scuba.omit.get(policy))
        details = _text(control.get("Details"), EVIDENCE_DETAILS)
        rationale = ""
        if "justification not provided" not in details.lower():
            rationale = _text(configured.get("Rationale"), MESSAGE_DETAILS)
            if not rationale and (found := _JUSTIFICATION.search(details)):
                rationale = _text(found.group(1), MESSAGE_DETAILS)
            if not rationale and isinstance(control.get("Comments"), list) and control["Comments"]:
                rationale = _text(control["Comments"][-1], MESSAGE_DETAILS)
        written = control.get("ResolutionDate") or configured.get("Expiration") or None
        expires = _expiry(written)
        original = str(control.get("OmittedEvaluationResult") or control.get("OriginalResult") or "?")
        evidence |= {"omission": {"rationale": rationale or None, "expires": str(written) if written else None,
                                  "result_without_omission": original}}
        tenant = scuba.tenant
        if not rationale:
            return Result.failed(target, Message("%(policy)s is omitted from the ScubaGear assessment of %(tenant)s "
                                                 "without a rationale.", policy=policy, tenant=tenant), **evidence)
        if written and expires is None:
            return Result.failed(target, Message("The omission of %(policy)s has an expiry date that is not a date "
                                                 "(%(expires)s): %(rationale)s", policy=policy,
                                                 expires=str(written)[:40], rationale=rationale), **evidence)
        if expires is None:
            return Result.skipped(target, Message("%(policy)s is omitted from the ScubaGear assessment of %(tenant)s "
                                                  "without an expiry date: %(rationale)s", policy=policy,
                                                  tenant=tenant, rationale=rationale), **evidence)
        if expires <= ctx.now().date():
            return Result.failed(target, Message("The omission of %(policy)s expired on %(expires)s (%(rationale)s); "
                                                 "without it ScubaGear's result was %(original)s.", policy=policy,
                                                 expires=expires.isoformat(), rationale=rationale,
                                                 original=original), **evidence)
        return Result.skipped(target, Message("%(policy)s is omitted from the ScubaGear assessment of %(tenant)s "
                                              "until %(expires)s: %(rationale)s", policy=policy, tenant=tenant,
                                              expires=expires.isoformat(), rationale=rationale), **evidence)

    @staticmethod
    def _disputed(target: str, tenant: str, control: dict[str, Any], evidence: dict[str, Any]) -> Result:
        policy: str = control["Control ID"]
        original = str(control.get("IncorrectResult") or control.get("OriginalResult") or "?")
        details = _text(control.get("Details"), EVIDENCE_DETAILS)
        found = _JUSTIFICATION.search(details)
        justification = _text(found.group(1), MESSAGE_DETAILS) if found else ""
        evidence |= {"marked_incorrect": {"result": original, "justification": justification or None}}
        if original.lower() == "pass":
            return Result.failed(target, Message("ScubaGear's pass of %(policy)s in %(tenant)s is marked incorrect, "
                                                 "so it is not proven.", policy=policy, tenant=tenant), **evidence)
        if not justification:
            return Result.failed(target, Message("ScubaGear's result %(original)s for %(policy)s in %(tenant)s is "
                                                 "marked incorrect without a justification.", policy=policy,
                                                 tenant=tenant, original=original), **evidence)
        return Result.skipped(target, Message("ScubaGear's result %(original)s for %(policy)s in %(tenant)s is marked "
                                              "incorrect: %(justification)s", policy=policy, tenant=tenant,
                                              original=original, justification=justification), **evidence)


# --- Maester ---------------------------------------------------------------------------------------------


def _error_text(records: Any) -> str:
    """The first error message of a Pester ErrorRecord list as ConvertTo-Json writes it."""
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        return ""
    for record in records:
        if isinstance(record, str) and record.strip():
            return record
        if not isinstance(record, dict):
            continue
        exception = record.get("Exception")
        if isinstance(exception, dict) and isinstance(exception.get("Message"), str):
            return str(exception["Message"])
        if isinstance(exception, str) and exception.strip():
            return exception
        details = record.get("ErrorDetails")
        if isinstance(details, dict) and isinstance(details.get("Message"), str):
            return str(details["Message"])
        if isinstance(record.get("FullyQualifiedErrorId"), str):
            return str(record["FullyQualifiedErrorId"])
    return ""


class _MaesterFile:
    def __init__(self, loaded: _File) -> None:
        self.loaded = loaded
        data = loaded.data
        if not isinstance(data, dict) or not isinstance(data.get("Tests"), list):
            raise _Problem(Message("%(file)s is not a %(tool)s result file: it lacks a valid %(field)s.",
                                   file=loaded.path, tool="Maester", field="Tests"))
        self.data: dict[str, Any] = data
        for i, test in enumerate(data["Tests"]):
            ok = isinstance(test, dict) and isinstance(test.get("Result"), str) and (
                (isinstance(test.get("Id"), str) and bool(test["Id"].strip()))
                or (isinstance(test.get("Name"), str) and bool(test["Name"].strip())))
            if not ok:
                raise _Problem(Message("%(file)s is not a %(tool)s result file: it lacks a valid %(field)s.",
                                       file=loaded.path, tool="Maester", field=f"Tests[{i}]"))

    @property
    def tenant(self) -> str:
        return _known(self.data.get("TenantId")) or _known(self.data.get("TenantName")) or "tenant"

    @property
    def tenant_name(self) -> str:
        return _known(self.data.get("TenantName")) or self.tenant


def _test_id(test: dict[str, Any]) -> str:
    if isinstance(test.get("Id"), str) and test["Id"].strip():
        return str(test["Id"]).strip()
    name = str(test["Name"])
    return name.split(":", 1)[0].strip() if ":" in name else name.strip()


def _tags(test: dict[str, Any]) -> list[str]:
    tags = test.get("Tag")
    if isinstance(tags, str):
        return [tags]
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


class Maester(Check):
    """The Maester tests a control selects (by id or tag), from the newest TestResults JSON file."""

    name = "maester"
    Params = MaesterParams
    target_param = "path"

    def run(self, params: MaesterParams, ctx: Context) -> Iterator[Result]:
        try:
            maester = _MaesterFile(_load(params, ctx, "Maester"))
            base = {**maester.loaded.evidence(), "tenant": maester.tenant, "tenant_name": maester.tenant_name,
                    "tool_version": maester.data.get("CurrentVersion")}
            _check_tenant(params, maester.loaded, "Maester",
                          [_known(maester.data.get(k)) for k in ("TenantId", "TenantName")], base)
            base |= _fresh(params, ctx, maester.loaded, _timestamp(maester.data.get("ExecutedAt")), "Maester",
                            base)
        except _Problem as problem:
            yield _from_problem(params.path, problem)
            return
        used: set[str] = set()
        used_tags: set[str] = set()
        seen: dict[str, int] = {}
        for test in maester.data["Tests"]:
            ident = _test_id(test)
            by_id = _selected(ident, params.tests)
            by_tag = [p for p in params.tags if any(_selected(tag, [p]) for tag in _tags(test))]
            if not by_id and not by_tag:
                continue
            used.update(by_id)
            used_tags.update(by_tag)
            target = _unique(f"{maester.tenant}/{ident}", seen)
            yield self._judge(maester, target, ident, test, base)
        yield from _not_matched(params.tests, used, maester.tenant, maester.loaded, "Maester",
                                {"en": "test", "nl": "test"}, base)
        yield from _not_matched(params.tags, used_tags, maester.tenant, maester.loaded, "Maester",
                                {"en": "test tag", "nl": "testlabel"}, base)

    @staticmethod
    def _judge(maester: _MaesterFile, target: str, ident: str, test: dict[str, Any],
               base: dict[str, Any]) -> Result:
        result = str(test["Result"]).strip()
        detail = _obj(test.get("ResultDetail"))
        title = _text(test.get("Title") or detail.get("TestTitle") or test.get("Name"), MESSAGE_DETAILS) or ident
        skipped_because = str(detail.get("TestSkipped") or "")
        reason = (_text(detail.get("SkippedReason"), MESSAGE_DETAILS) or _text(_error_text(test.get("ErrorRecord")),
                                                                                 MESSAGE_DETAILS))
        tenant = maester.tenant_name
        evidence: dict[str, Any] = {
            **base, "test": ident, "title": title, "result": result, "severity": test.get("Severity") or None,
            "block": test.get("Block"), "tags": _tags(test)[:20], "help_url": test.get("HelpUrl") or None,
            "details": _text(detail.get("TestResult"), EVIDENCE_DETAILS) or None,
            "error": _text(_error_text(test.get("ErrorRecord")), EVIDENCE_DETAILS) or None,
            "skipped_because": skipped_because or None}
        lowered = result.lower()
        if lowered == "passed":
            return Result.passed(target, Message("%(test)s passed the Maester assessment of %(tenant)s: %(title)s",
                                                 test=ident, tenant=tenant, title=title), **evidence)
        if lowered == "failed":
            return Result.failed(target, Message("%(test)s failed the Maester assessment of %(tenant)s: %(title)s",
                                                 test=ident, tenant=tenant, title=title), **evidence)
        if lowered == "investigate":
            return Result.failed(target, Message("%(test)s needs investigation according to Maester in %(tenant)s: "
                                                 "%(title)s", test=ident, tenant=tenant, title=title), **evidence)
        could_not = lowered == "error" or (lowered == "skipped" and skipped_because.startswith(_MAESTER_COULD_NOT))
        if could_not:
            return Result.errored(target, Message("Maester could not run %(test)s in %(tenant)s: %(reason)s",
                                                  test=ident, tenant=tenant, reason=reason or "-"), **evidence)
        if lowered == "skipped":
            return Result.skipped(target, Message("%(test)s was skipped by Maester in %(tenant)s: %(reason)s",
                                                  test=ident, tenant=tenant, reason=reason or "-"), **evidence)
        if lowered == "notrun":
            return Result.skipped(target, Message("%(test)s was not run in this Maester assessment of %(tenant)s.",
                                                  test=ident, tenant=tenant), **evidence)
        return Result.errored(target, Message("%(policy)s has a result that %(tool)s does not document: %(result)s.",
                                              policy=ident, tool="Maester", result=result[:80]), **evidence)
