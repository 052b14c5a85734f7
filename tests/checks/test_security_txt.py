"""security_txt against a real HTTPS server on loopback serving security.txt files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme

from compliance.api import Context, Result, Status
from compliance.checks.security_txt import SecurityTxt
from tests.servers import HttpServer, Reply, server_context

PATH = "/.well-known/security.txt"
TEXT_PLAIN = {"Content-Type": "text/plain; charset=utf-8"}




def expires(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days, hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def security_txt(days: int = 90, contact: str | None = "mailto:security@gemeente.test",
                 extra: str = "") -> str:
    lines = ["# Gemeente Test", *([f"Contact: {contact}"] if contact else []), f"Expires: {expires(days)}",
             "Preferred-Languages: nl, en", extra]
    return "\n".join(line for line in lines if line) + "\n"


def check(ca: trustme.CA, ca_file: str, routes: dict[str, Reply]) -> tuple[str, Result]:
    with HttpServer(routes, context=server_context(ca.issue_cert("127.0.0.1"))) as site:
        [result] = SecurityTxt().run(SecurityTxt.Params(url=site.url, ca_file=ca_file), Context("C", 20, net_timeout=5))
    json.dumps(result.evidence)
    return site.url, result


def serve(text: str, headers: dict[str, str] = TEXT_PLAIN) -> dict[str, Reply]:
    return {PATH: Reply(200, headers, text.encode())}


def test_valid_file_passes(ca: trustme.CA, ca_file: str) -> None:
    url, result = check(ca, ca_file, serve(security_txt(90)))
    assert result.status == Status.PASS
    expiry = expires(90)[:10]
    assert result.message == (f"security.txt of {url} is valid: contact mailto:security@gemeente.test, expires "
                              f"{expiry} (in 90 days).")
    assert result.evidence["signed"] is False


def test_signed_file_is_accepted(ca: trustme.CA, ca_file: str) -> None:
    body = security_txt(30, extra="- Encryption: https://gemeente.test/pgp.asc")  # any line may be dash-escaped
    signed = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + body +
              "-----BEGIN PGP SIGNATURE-----\n\niHUEARYKAB0WIQ==\n=abcd\n-----END PGP SIGNATURE-----\n")
    url, result = check(ca, ca_file, serve(signed))
    assert result.status == Status.PASS, result.message
    assert result.message.startswith(f"security.txt of {url} is valid, signed: contact mailto:security@gemeente.test")
    assert result.evidence["signed"] is True and "encryption" in result.evidence["fields"]


@pytest.mark.parametrize(("text", "problem"), [
    (security_txt(-3), f"it expired on {expires(-3)[:10]}"),
    (security_txt(400), f"Expires {expires(400)[:10]} is 400 days away (at most a year)"),
    (security_txt(contact=None), "no Contact"),
    ("Contact: mailto:security@gemeente.test\n", "no Expires"),
    (security_txt(contact="http://gemeente.test/melden"),
     "Contact 'http://gemeente.test/melden' is a web address without https"),
    (security_txt(extra="Canonical: https://www.gemeente.test/.well-known/security.txt"),
     "Canonical does not list {url}/.well-known/security.txt"),
    (security_txt(extra="Expires: 2030-01-01T00:00:00Z"), "Expires appears 2 times (once allowed)"),
    (security_txt(extra="this is not a field"), "1 line(s) are not 'Field: value' (line 5: 'this is not a field')"),
    ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + security_txt(),
     "the PGP signed message is malformed (no blank line after the armor headers, or no complete signature block)"
     "; no Contact; no Expires"),
])
def test_invalid_files_fail_with_the_reason(ca: trustme.CA, ca_file: str, text: str, problem: str) -> None:
    url, result = check(ca, ca_file, serve(text))
    assert result.status == Status.FAIL
    assert result.message == f"security.txt of {url} is not valid: {problem.format(url=url)}."


def test_wrong_content_type_fails(ca: trustme.CA, ca_file: str) -> None:
    url, result = check(ca, ca_file, serve(security_txt(), {"Content-Type": "text/html"}))
    assert result.status == Status.FAIL
    assert result.message == f"security.txt of {url} is not valid: Content-Type is 'text/html', not text/plain."


def test_missing_file_fails(ca: trustme.CA, ca_file: str) -> None:
    url, result = check(ca, ca_file, {})
    assert result.status == Status.FAIL
    assert result.message == f"{url} has no security.txt (HTTP 404 for /.well-known/security.txt)."


def test_https_redirects_are_followed_http_ones_are_not(ca: trustme.CA, ca_file: str) -> None:
    def routes(target: str) -> dict[str, Reply]:
        return {PATH: Reply(302, {"Location": target}),
                "/security.txt": Reply(200, TEXT_PLAIN, security_txt().encode())}

    _, followed = check(ca, ca_file, routes("/security.txt"))
    url, refused = check(ca, ca_file, routes("http://127.0.0.1/security.txt"))
    assert followed.status == Status.PASS and followed.evidence["redirects"][-1].endswith("/security.txt")
    assert refused.status == Status.FAIL
    assert refused.message == (f"security.txt of {url} redirects to http://127.0.0.1/security.txt, which is not "
                               "HTTPS.")


def test_unreachable_site_is_an_error(ca: trustme.CA) -> None:
    with HttpServer({}) as gone:
        url = gone.url.replace("http:", "https:")
    [result] = SecurityTxt().run(SecurityTxt.Params(url=url), Context("C", 5, net_timeout=2))
    assert result.status == Status.ERROR
    assert result.message == f"Could not fetch security.txt of {url}: connection refused."


def test_a_control_with_security_txt_ends_up_as_findings(project: Any, ca: trustme.CA, ca_file: str) -> None:
    context = server_context(ca.issue_cert("127.0.0.1"))
    with HttpServer(serve(security_txt()), context=context) as good, \
            HttpServer(serve(security_txt(-1)), context=context) as expired:
        project.write_config(f"network:\n  ca_file: {ca_file}\n  timeout: 5s\n"
                             f"targets:\n  websites: ['{good.url}', '{expired.url}']\n")
        project.control("web.yaml", """\
id: WEB-SECURITYTXT
title: Websites publish a valid security.txt
theme: organizational
severity: medium
checks:
  - plugin: security_txt
    targets: websites
""")
        scan = project.run("scan", "--format", "json")
    assert scan.exit_code == 1, scan.output
    statuses = {r["target"]: r["status"] for r in json.loads(scan.stdout)["results"]}
    assert statuses == {good.url: "pass", expired.url: "fail"}
    findings = json.loads(project.run("findings", "--format", "json").stdout)
    assert [(f["control"], f["target"]) for f in findings] == [("WEB-SECURITYTXT", expired.url)]
    assert findings[0]["message"].startswith(f"security.txt of {expired.url} is not valid: it expired on ")


# --- part: required (RFC 9116's musts decide) and part: advice (Expires within a year) ------------------

def run_part(ca: trustme.CA, ca_file: str, routes: dict[str, Reply], part: str) -> tuple[str, Result]:
    with HttpServer(routes, context=server_context(ca.issue_cert("127.0.0.1"))) as site:
        params = SecurityTxt.Params.model_validate({"url": site.url, "ca_file": ca_file, "part": part})
        [result] = SecurityTxt().run(params, Context("C", 20, net_timeout=5))
    json.dumps(result.evidence)
    assert result.evidence["part"] == part
    return site.url, result


@pytest.mark.parametrize(("routes", "part", "status", "message"), [
    (serve(security_txt(400)), "required", Status.PASS,
     "security.txt of {url} is valid: contact mailto:security@gemeente.test, expires {day400} (in 400 days)."),
    (serve(security_txt(400)), "advice", Status.FAIL,
     "security.txt of {url} does not follow the advice (RFC 9116 and internet.nl recommend it): Expires {day400} "
     "is 400 days away (at most a year)."),
    (serve(security_txt(400)), "all", Status.FAIL,
     "security.txt of {url} is not valid: Expires {day400} is 400 days away (at most a year)."),
    (serve(security_txt(90)), "advice", Status.PASS, "security.txt of {url} follows the advice: it expires within a "
                                                     "year."),
    (serve(security_txt(-3)), "required", Status.FAIL,
     "security.txt of {url} is not valid: it expired on {dayminus3}."),
    (serve(security_txt(-3)), "advice", Status.SKIPPED,
     "No advice on security.txt of {url}: the file is missing or not valid (the required check reports that)."),
    ({}, "advice", Status.SKIPPED,
     "No advice on security.txt of {url}: the file is missing or not valid (the required check reports that)."),
    ({}, "required", Status.FAIL, "{url} has no security.txt (HTTP 404 for /.well-known/security.txt)."),
])
def test_required_and_advice_parts(ca: trustme.CA, ca_file: str, routes: dict[str, Reply], part: str,
                                   status: Status, message: str) -> None:
    url, result = run_part(ca, ca_file, routes, part)
    assert (result.status, result.message) == (status, message.format(url=url, day400=expires(400)[:10],
                                                                      dayminus3=expires(-3)[:10]))


def test_required_part_keeps_the_advice_in_the_evidence(ca: trustme.CA, ca_file: str) -> None:
    _, result = run_part(ca, ca_file, serve(security_txt(400)), "required")
    assert result.evidence["advice"] == [f"Expires {expires(400)[:10]} is 400 days away (at most a year)"]


def test_advice_part_on_an_unreachable_site_is_an_error(ca: trustme.CA) -> None:
    with HttpServer({}) as gone:
        url = gone.url.replace("http:", "https:")
    [result] = SecurityTxt().run(SecurityTxt.Params(url=url, part="advice"), Context("C", 5, net_timeout=2))
    assert result.status == Status.ERROR
