"""scubagear and maester: the newest result file of the M365 assessors, one result per selected policy/test.

The tests write result files in the formats the tools document (ScubaGear's ScubaResults_<uuid>.json with
its UTF-8 byte order mark, Maester's TestResults-<timestamp>.json), with times relative to now.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from compliance.api import Context, Result, Status
from compliance.checks.assessors import Maester, ScubaGear

TENANT = "gemeente.onmicrosoft.com"
TENANT_ID = "0f3c2f0e-5b7a-4c1e-9d7a-2b1e4f6a8c90"


def now() -> datetime:
    return datetime.now(UTC)


def control(cid: str, result: str, criticality: str = "Shall", details: str = "", **extra: Any) -> dict[str, Any]:
    return {"Control ID": cid, "Requirement": f"{cid} requirement <div class='policy-indicators'></div>",
            "Result": result, "Criticality": criticality, "Details": details or f"{result} details",
            "OmittedEvaluationResult": "N/A", "OmittedEvaluationDetails": "N/A", "IncorrectResult": "N/A",
            "IncorrectResultDetails": "N/A", "OriginalResult": result, "OriginalDetails": details,
            "Comments": [], "ResolutionDate": None, **extra}


def omitted(cid: str, rationale: str | None, expires: str | None, was: str = "Fail") -> dict[str, Any]:
    details = ("Test omitted by user. <span class='comment-heading'>User justification</span>"
               f'"{rationale}"' if rationale else
               "Test omitted by user. <span class='comment-heading'>User justification not provided</span>")
    return control(cid, "Omitted", details=details, OmittedEvaluationResult=was, OriginalResult=was,
                   Comments=[rationale] if rationale else [], ResolutionDate=expires)


def scuba_report(controls: dict[str, list[dict[str, Any]]], when: datetime | None = None,
                 omit: dict[str, Any] | None = None, domain: str = TENANT) -> dict[str, Any]:
    when = when or now() - timedelta(hours=2)
    results = {product: [{"GroupName": f"{product} group", "GroupNumber": "1", "Controls": items}]
               for product, items in controls.items()}
    return {
        "MetaData": {"TenantId": TENANT_ID, "DisplayName": "Gemeente", "DomainName": domain,
                     "ProductSuite": "Microsoft 365", "ProductsAssessed": list(controls), "Tool": "ScubaGear",
                     "ToolVersion": "1.8.0", "TimestampZulu": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                     "ReportUUID": "fa5589b7-d528-4f80-8e7d-5c20eda7b6d8"},
        "Summary": {p: {"Passes": 0} for p in controls},
        "AnnotatedFailedPolicies": {},
        "Results": results,
        "Raw": {"scuba_config": {"OmitPolicy": omit or {}}},
    }


def realistic() -> dict[str, Any]:
    """Several products, a fail, a warning, N/A, an omission in force and an expired one."""
    soon = (now() + timedelta(days=60)).date().isoformat()
    past = (now() - timedelta(days=3)).date().isoformat()
    return scuba_report({
        "AAD": [
            control("MS.AAD.1.1v1", "Pass"),
            control("MS.AAD.3.1v1", "Fail", details="0 conditional access policy(s) found that meet(s) all "
                                                    "requirements. <a href='#caps'>View all CA policies</a>."),
            control("MS.AAD.3.3v1", "N/A", "Shall/Not-Implemented", "This product does not currently have the "
                                                                      "capability to check compliance"),
            control("MS.AAD.3.7v1", "Warning", "Should", "0 conditional access policy(s) found"),
            omitted("MS.AAD.3.6v1", "Break-glass accounts are excluded; see risk acceptance RA-2026-4", soon),
            control("MS.AAD.7.1v1", "Pass"),
        ],
        "EXO": [
            control("MS.EXO.2.2v2", "Pass"),
            omitted("MS.EXO.4.1v1", "DMARC moved to the new mail gateway", past, was="Pass"),
            control("MS.EXO.17.1v1", "Error", details="This test depends on Get-AdminAuditLogConfig"),
        ],
    }, omit={"MS.AAD.3.6v1": {"Rationale": "Break-glass accounts are excluded; see risk acceptance RA-2026-4",
                              "Expiration": soon}})


def write(path: Path, data: Any, hours_old: float = 0.0, bom: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    t = time.time() - hours_old * 3600
    os.utime(path, (t, t))
    return path


def scuba(tmp_path: Path, **params: Any) -> dict[str, Result]:
    params.setdefault("path", "scuba/M365BaselineConformance_*/ScubaResults*.json")
    results = list(ScubaGear().run(ScubaGear.Params.model_validate(params), Context("C", 5, base_dir=str(tmp_path))))
    return {r.target: r for r in results}


def maester(tmp_path: Path, **params: Any) -> dict[str, Result]:
    params.setdefault("path", "maester/test-results/TestResults-*.json")
    results = list(Maester().run(Maester.Params.model_validate(params), Context("C", 5, base_dir=str(tmp_path))))
    return {r.target: r for r in results}


SCUBA = "scuba/M365BaselineConformance_2026/ScubaResults_fa5589b7-d528-4f80.json"


# --- ScubaGear -----------------------------------------------------------------------------------------


def test_scubagear_one_result_per_selected_policy(tmp_path: Path) -> None:
    write(tmp_path / SCUBA, realistic())
    results = scuba(tmp_path, policies=["MS.AAD.3.*", "MS.AAD.1.1"])  # a pattern without the version
    assert set(results) == {f"{TENANT}/MS.AAD.1.1v1", f"{TENANT}/MS.AAD.3.1v1", f"{TENANT}/MS.AAD.3.3v1",
                            f"{TENANT}/MS.AAD.3.7v1", f"{TENANT}/MS.AAD.3.6v1"}
    passed = results[f"{TENANT}/MS.AAD.1.1v1"]
    assert passed.status == Status.PASS
    assert passed.message == f"MS.AAD.1.1v1 passed the ScubaGear assessment of {TENANT}."
    assert passed.evidence["file"] == str(tmp_path / SCUBA)
    assert passed.evidence["tenant_id"] == TENANT_ID and passed.evidence["product"] == "AAD"
    assert len(passed.evidence["sha256"]) == 64

    failed = results[f"{TENANT}/MS.AAD.3.1v1"]
    assert failed.status == Status.FAIL and failed.evidence["level"] == "shall"
    assert failed.message == (f"MS.AAD.3.1v1 failed the ScubaGear assessment of {TENANT} (Shall): 0 conditional "
                              "access policy(s) found that meet(s) all requirements. View all CA policies .")

    warning = results[f"{TENANT}/MS.AAD.3.7v1"]
    assert warning.status == Status.FAIL and warning.evidence["level"] == "should"
    assert "a SHOULD of the ScubaGear baseline, is not met" in warning.message

    manual = results[f"{TENANT}/MS.AAD.3.3v1"]
    assert manual.status == Status.SKIPPED
    assert "ScubaGear cannot check MS.AAD.3.3v1 (Shall/Not-Implemented)" in manual.message


def test_scubagear_should_as_advice_is_never_a_pass(tmp_path: Path) -> None:
    write(tmp_path / SCUBA, realistic())
    [warning] = scuba(tmp_path, policies=["ms.aad.3.7v1"], should="advice").values()  # ids compare without case
    assert warning.status == Status.SKIPPED and warning.evidence["advice"] is True
    assert warning.message.startswith("Advice: MS.AAD.3.7v1, a SHOULD of the ScubaGear baseline")


def test_scubagear_omission_keeps_rationale_and_expiry(tmp_path: Path) -> None:
    write(tmp_path / SCUBA, realistic())
    results = scuba(tmp_path, policies=["MS.AAD.3.6v1", "MS.EXO.4.*"])
    running = results[f"{TENANT}/MS.AAD.3.6v1"]
    soon = (now() + timedelta(days=60)).date().isoformat()
    assert running.status == Status.SKIPPED
    assert running.message == (f"MS.AAD.3.6v1 is omitted from the ScubaGear assessment of {TENANT} until {soon}: "
                               "Break-glass accounts are excluded; see risk acceptance RA-2026-4")
    assert running.evidence["omission"] == {
        "rationale": "Break-glass accounts are excluded; see risk acceptance RA-2026-4", "expires": soon,
        "result_without_omission": "Fail"}
    expired = results[f"{TENANT}/MS.EXO.4.1v1"]
    past = (now() - timedelta(days=3)).date().isoformat()
    assert expired.status == Status.FAIL
    assert expired.message == (f"The omission of MS.EXO.4.1v1 expired on {past} (DMARC moved to the new mail "
                               "gateway); without it ScubaGear's result was Pass.")


def test_scubagear_omission_without_rationale_fails_and_without_expiry_is_shown(tmp_path: Path) -> None:
    write(tmp_path / SCUBA, scuba_report({"Defender": [omitted("MS.DEFENDER.1.1v1", None, None),
                                                       omitted("MS.DEFENDER.1.2v1", "Third-party EDR", None)]}))
    results = scuba(tmp_path, policies=["MS.DEFENDER.*"])
    assert results[f"{TENANT}/MS.DEFENDER.1.1v1"].status == Status.FAIL
    assert "without a rationale" in results[f"{TENANT}/MS.DEFENDER.1.1v1"].message
    open_ended = results[f"{TENANT}/MS.DEFENDER.1.2v1"]
    assert open_ended.status == Status.SKIPPED
    assert open_ended.message.endswith("without an expiry date: Third-party EDR")


def test_scubagear_result_marked_incorrect(tmp_path: Path) -> None:
    justified = ("Test result marked incorrect by user. <span class='comment-heading'>User justification</span>"
                 '"MFA is enforced by the on-premises federation server"')
    unjustified = ("Test result marked incorrect by user. <span class='comment-heading'>User justification not "
                   "provided</span>")
    write(tmp_path / SCUBA, scuba_report({"AAD": [
        control("MS.AAD.3.2v1", "Incorrect result", details=justified, IncorrectResult="Fail"),
        control("MS.AAD.3.5v1", "Incorrect result", details=justified, IncorrectResult="Pass"),
        control("MS.AAD.3.8v1", "Incorrect result", "Should", details=unjustified, IncorrectResult="Warning"),
    ]}))
    results = scuba(tmp_path, policies=["MS.AAD.3.*"])
    disputed = results[f"{TENANT}/MS.AAD.3.2v1"]
    assert disputed.status == Status.SKIPPED
    assert disputed.message == (f"ScubaGear's result Fail for MS.AAD.3.2v1 in {TENANT} is marked incorrect: MFA is "
                                "enforced by the on-premises federation server")
    assert results[f"{TENANT}/MS.AAD.3.5v1"].status == Status.FAIL  # a pass the municipality itself doubts
    assert results[f"{TENANT}/MS.AAD.3.8v1"].status == Status.FAIL
    assert "without a justification" in results[f"{TENANT}/MS.AAD.3.8v1"].message


def test_scubagear_error_result_and_unmatched_pattern_are_errors(tmp_path: Path) -> None:
    write(tmp_path / SCUBA, realistic())
    results = scuba(tmp_path, policies=["MS.EXO.17.*", "MS.TEAMS.*"])
    assert results[f"{TENANT}/MS.EXO.17.1v1"].status == Status.ERROR
    assert "ScubaGear could not assess MS.EXO.17.1v1" in results[f"{TENANT}/MS.EXO.17.1v1"].message
    missing = results[f"{TENANT}/MS.TEAMS.*"]
    assert missing.status == Status.ERROR
    assert missing.message == f"No ScubaGear policy in {tmp_path / SCUBA} matches MS.TEAMS.*; was it assessed?"


def test_scubagear_newest_file_is_read(tmp_path: Path) -> None:
    old = scuba_report({"AAD": [control("MS.AAD.3.1v1", "Fail")]}, when=now() - timedelta(days=2))
    new = scuba_report({"AAD": [control("MS.AAD.3.1v1", "Pass")]}, when=now() - timedelta(hours=1))
    write(tmp_path / "scuba/M365BaselineConformance_a/ScubaResults_aaaa.json", old, hours_old=48)
    write(tmp_path / "scuba/M365BaselineConformance_b/ScubaResults_bbbb.json", new, hours_old=1)
    [result] = scuba(tmp_path, policies=["MS.AAD.3.1v1"]).values()
    assert result.status == Status.PASS
    assert result.evidence["file"].endswith("ScubaResults_bbbb.json") and result.evidence["files_matching"] == 2


def test_scubagear_stale_assessment_fails_as_a_whole(tmp_path: Path) -> None:
    # the file was copied yesterday, but ScubaGear ran ten days ago: its own timestamp counts
    write(tmp_path / SCUBA, scuba_report({"AAD": [control("MS.AAD.3.1v1", "Pass")]},
                                         when=now() - timedelta(days=10)), hours_old=24)
    [result] = scuba(tmp_path, policies=["MS.AAD.*"], max_age="8d").values()
    assert result.status == Status.FAIL
    assert result.target == "scuba/M365BaselineConformance_*/ScubaResults*.json"
    assert result.evidence["tenant"] == TENANT and result.evidence["max_age_seconds"] == 8 * 86400
    assert result.message == (f"The newest ScubaGear result {tmp_path / SCUBA} is 10d old, older than the "
                              "maximum of 8d; run ScubaGear again.")


def test_scubagear_no_file_malformed_and_wrong_tool_are_errors(tmp_path: Path) -> None:
    [none] = scuba(tmp_path, policies=["MS.AAD.*"]).values()
    assert none.status == Status.ERROR
    assert none.message == "No ScubaGear result file matches scuba/M365BaselineConformance_*/ScubaResults*.json."

    write(tmp_path / SCUBA, '{"MetaData": {"Tool": "ScubaGear"}, "Results": {"AAD": [')
    [bad] = scuba(tmp_path, policies=["MS.AAD.*"]).values()
    assert bad.status == Status.ERROR
    assert bad.message.startswith(f"{tmp_path / SCUBA} is not valid JSON: ")

    write(tmp_path / SCUBA, maester_report([mt("MT.1001", "Passed")]))
    [wrong] = scuba(tmp_path, policies=["MS.AAD.*"]).values()
    assert wrong.status == Status.ERROR
    assert wrong.message == f"{tmp_path / SCUBA} is not a ScubaGear result file: it lacks a valid Results."

    write(tmp_path / SCUBA, {**realistic(), "MetaData": {"Tool": "SomethingElse"}})
    [other] = scuba(tmp_path, policies=["MS.AAD.*"]).values()
    assert other.message == f"{tmp_path / SCUBA} was written by SomethingElse, not by ScubaGear."

    write(tmp_path / SCUBA, {"Results": {"AAD": [{"GroupName": "x", "Controls": [{"Control ID": 5}]}]}})
    [broken] = scuba(tmp_path, policies=["MS.AAD.*"]).values()
    assert broken.message.endswith("it lacks a valid Results.AAD[0].Controls[0].")


def test_scubagear_file_of_another_tenant_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / SCUBA, realistic())
    [result] = scuba(tmp_path, policies=["MS.AAD.*"], tenant="buurgemeente.onmicrosoft.com").values()
    assert result.status == Status.ERROR
    assert "not of buurgemeente.onmicrosoft.com" in result.message
    assert scuba(tmp_path, policies=["MS.AAD.1.1v1"], tenant=TENANT_ID)[f"{TENANT}/MS.AAD.1.1v1"].status == Status.PASS


def test_scubagear_utf16_file_from_windows_powershell_is_read(tmp_path: Path) -> None:
    path = tmp_path / SCUBA
    path.parent.mkdir(parents=True)
    path.write_bytes(json.dumps(realistic()).encode("utf-16"))  # with its byte order mark
    assert scuba(tmp_path, policies=["MS.AAD.1.1v1"])[f"{TENANT}/MS.AAD.1.1v1"].status == Status.PASS


def test_scubagear_params_are_strict() -> None:
    for bad in ({"path": "x"}, {"path": "x", "policies": []}, {"path": "x", "policies": [" "]},
                {"path": "x", "policies": ["MS.AAD 3"]}, {"path": "x", "policies": ["MS.*"], "max_age": "0s"},
                {"path": "x", "policies": ["MS.*"], "should": "ignore"},
                {"path": "x", "policies": ["MS.*"], "unknown": 1}):
        with pytest.raises(ValidationError):
            ScubaGear.Params.model_validate(bad)


# --- Maester -------------------------------------------------------------------------------------------


def mt(tid: str, result: str, title: str = "", tags: list[str] | None = None, skipped: str | None = None,
       reason: str | None = None, error: str | None = None) -> dict[str, Any]:
    title = title or f"{tid} title"
    return {
        "Index": 1, "Id": tid, "Title": title, "Name": f"{tid}: {title}", "HelpUrl": "https://maester.dev/docs/tests",
        "Severity": "High", "Tag": tags or ["Maester", tid], "Result": result, "ScriptBlock": "Test-Mt",
        "ScriptBlockFile": "C:\\maester\\tests\\x.Tests.ps1",
        "ErrorRecord": [{"Exception": {"Message": error, "HResult": -2146233088},
                         "CategoryInfo": {"Reason": "Exception"}, "FullyQualifiedErrorId": "PesterAssertionFailed"}]
        if error else [],
        "Block": "Maester/Entra", "Duration": "00:00:00.120",
        "ResultDetail": {"TestTitle": f"{tid}: {title}", "TestDescription": "# Why", "Service": None,
                         "TestResult": f"{result} **details** | a | b |", "TestSkipped": skipped or "",
                         "SkippedReason": reason, "TestInvestigate": result == "Investigate", "Severity": "High"},
    }


def maester_report(tests: list[dict[str, Any]], when: datetime | None = None,
                   tenant_id: str = TENANT_ID) -> dict[str, Any]:
    when = when or now() - timedelta(hours=3)
    return {"Result": "Failed", "FailedCount": 1, "PassedCount": 1, "ErrorCount": 0, "InvestigateCount": 0,
            "SkippedCount": 0, "NotRunCount": 0, "TotalCount": len(tests),
            "ExecutedAt": when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "3+00:00",  # PowerShell's 7 fraction digits
            "TotalDuration": "00:01:02", "TenantId": tenant_id, "TenantName": "Gemeente Voorbeeld",
            "Account": "auditor@gemeente.nl", "CurrentVersion": "1.3.0", "LatestVersion": "1.3.0",
            "Tests": tests, "Blocks": [], "EndOfJson": "EndOfJson"}


def maester_tests() -> list[dict[str, Any]]:
    return [
        mt("MT.1001", "Passed", "At least one Conditional Access policy is configured with device compliance"),
        mt("MT.1005", "Failed", "All Conditional Access policies exclude at least one emergency account",
           error="Expected $true, but got $false."),
        mt("EIDSCA.AM01", "Passed", tags=["EIDSCA", "EIDSCA.AM01", "MFA"]),
        mt("EIDSCA.AM02", "Investigate", tags=["EIDSCA", "MFA"]),
        mt("EIDSCA.AF01", "Skipped", tags=["EIDSCA"], skipped="NotLicensedEntraIDP2",
           reason="This test is for tenants that are licensed for Entra ID P2."),
        mt("CISA.MS.EXO.2.2", "Skipped", tags=["CISA"], skipped="NotConnectedExchange",
           reason="Not connected to Exchange Online. See [Connecting](https://maester.dev/docs/connect-maester)"),
        mt("MT.1020", "Error", error="Response status code does not indicate success: Forbidden (Forbidden)."),
        mt("CIS.M365.1.1.1", "NotRun", tags=["CIS"]),
    ]


MAESTER = "maester/test-results/TestResults-2026-11-30-010203.json"


def test_maester_one_result_per_selected_test(tmp_path: Path) -> None:
    write(tmp_path / MAESTER, maester_report(maester_tests()))
    results = maester(tmp_path, tests=["MT.10*", "CIS*"], tags=["mfa"])
    assert set(results) == {f"{TENANT_ID}/{t}" for t in ("MT.1001", "MT.1005", "MT.1020", "EIDSCA.AM01",
                                                          "EIDSCA.AM02", "CISA.MS.EXO.2.2", "CIS.M365.1.1.1")}
    ok = results[f"{TENANT_ID}/MT.1001"]
    assert ok.status == Status.PASS
    assert ok.message == ("MT.1001 passed the Maester assessment of Gemeente Voorbeeld: At least one Conditional "
                          "Access policy is configured with device compliance")
    assert ok.evidence["file"] == str(tmp_path / MAESTER) and ok.evidence["severity"] == "High"
    failed = results[f"{TENANT_ID}/MT.1005"]
    assert failed.status == Status.FAIL and failed.evidence["error"] == "Expected $true, but got $false."
    assert results[f"{TENANT_ID}/EIDSCA.AM02"].status == Status.FAIL
    assert "needs investigation" in results[f"{TENANT_ID}/EIDSCA.AM02"].message
    assert results[f"{TENANT_ID}/MT.1020"].status == Status.ERROR
    assert results[f"{TENANT_ID}/MT.1020"].message.endswith("Forbidden (Forbidden).")
    not_connected = results[f"{TENANT_ID}/CISA.MS.EXO.2.2"]
    assert not_connected.status == Status.ERROR
    assert not_connected.message.startswith("Maester could not run CISA.MS.EXO.2.2 in Gemeente Voorbeeld: Not "
                                            "connected to Exchange Online.")
    assert results[f"{TENANT_ID}/CIS.M365.1.1.1"].status == Status.SKIPPED


def test_maester_skip_that_does_not_apply_keeps_its_reason(tmp_path: Path) -> None:
    write(tmp_path / MAESTER, maester_report(maester_tests()))
    [skipped] = maester(tmp_path, tests=["EIDSCA.AF01"]).values()
    assert skipped.status == Status.SKIPPED
    assert skipped.message == ("EIDSCA.AF01 was skipped by Maester in Gemeente Voorbeeld: This test is for tenants "
                               "that are licensed for Entra ID P2.")
    assert skipped.evidence["skipped_because"] == "NotLicensedEntraIDP2"


def test_maester_unmatched_test_and_tag_are_errors(tmp_path: Path) -> None:
    write(tmp_path / MAESTER, maester_report(maester_tests()))
    results = maester(tmp_path, tests=["MT.9999"], tags=["ORCA"])
    assert {r.status for r in results.values()} == {Status.ERROR}
    assert results[f"{TENANT_ID}/MT.9999"].message == (f"No Maester test in {tmp_path / MAESTER} matches MT.9999; "
                                                       "was it assessed?")
    assert f"{TENANT_ID}/ORCA" in results


def test_maester_newest_file_and_staleness(tmp_path: Path) -> None:
    write(tmp_path / "maester/test-results/TestResults-old.json",
          maester_report([mt("MT.1001", "Failed")], when=now() - timedelta(days=3)), hours_old=72)
    write(tmp_path / MAESTER, maester_report([mt("MT.1001", "Passed")]), hours_old=3)
    [result] = maester(tmp_path, tests=["MT.1001"]).values()
    assert result.status == Status.PASS and result.evidence["files_matching"] == 2
    [stale] = maester(tmp_path, tests=["MT.1001"], max_age="2h").values()
    assert stale.status == Status.FAIL
    assert stale.message == (f"The newest Maester result {tmp_path / MAESTER} is 3h old, older than the maximum "
                             "of 2h; run Maester again.")


def test_maester_malformed_and_wrong_tool_are_errors(tmp_path: Path) -> None:
    write(tmp_path / MAESTER, "not json at all")
    [bad] = maester(tmp_path, tests=["MT.*"]).values()
    assert bad.status == Status.ERROR and str(tmp_path / MAESTER) in bad.message
    # ScubaGear's own TestResults.json (the OPA output, a list) is not Maester's
    write(tmp_path / MAESTER, [{"PolicyId": "MS.AAD.1.1v1", "RequirementMet": True}])
    [wrong] = maester(tmp_path, tests=["MT.*"]).values()
    assert wrong.message == f"{tmp_path / MAESTER} is not a Maester result file: it lacks a valid Tests."
    write(tmp_path / MAESTER, realistic())
    [scuba_file] = maester(tmp_path, tests=["MT.*"]).values()
    assert scuba_file.status == Status.ERROR
    write(tmp_path / MAESTER, "[" * 100_000 + "]" * 100_000)  # too deep for the parser
    [deep] = maester(tmp_path, tests=["MT.*"]).values()
    assert deep.status == Status.ERROR


def test_maester_needs_a_selection_and_not_connected_tenant_is_named_plainly(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="give `tests:` or `tags:`"):
        Maester.Params.model_validate({"path": "x"})
    write(tmp_path / MAESTER, maester_report([mt("MT.1001", "Passed"), mt("MT.1001", "Passed")],
                                             tenant_id="TenantId (not connected to Graph)"))
    results = maester(tmp_path, tests=["MT.1001"])
    assert set(results) == {"Gemeente Voorbeeld/MT.1001", "Gemeente Voorbeeld/MT.1001#2"}  # targets stay unique
