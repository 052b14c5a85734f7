"""https against real HTTP and HTTPS servers on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from compliance.api import Context, Result, Status
from compliance.checks.https import Https
from tests.servers import HttpServer, Reply, server_context

GOOD_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}




class Site:
    """An HTTPS server with the given headers on `/` and a plain HTTP server that redirects (or not)."""

    def __init__(self, ca: trustme.CA, headers: dict[str, str], http: str = "redirect") -> None:
        self.headers = headers
        self.https = HttpServer(lambda path, host: Reply(200, self.headers, b"<html>hallo</html>"),
                                context=server_context(ca.issue_cert("127.0.0.1")))
        self.http_mode = http
        self.http = HttpServer(self._plain)

    def _plain(self, path: str, host: str) -> Reply:
        if self.http_mode == "redirect":
            return Reply(301, {"Location": f"{self.https.url}{path}"})
        if self.http_mode == "other-host":
            return Reply(301, {"Location": "https://www.elders.test/"})
        return Reply(200, {}, b"<html>plain</html>")

    def __enter__(self) -> Site:
        self.https.__enter__()
        self.http.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.__exit__(*exc)
        self.https.__exit__(*exc)


def run(site: Site, ca_file: str, **params: Any) -> Result:
    values = {"url": site.https.url, "http_url": f"{site.http.url}/", "ca_file": ca_file, **params}
    [result] = Https().run(Https.Params.model_validate(values), Context("C", 20, net_timeout=5))
    json.dumps(result.evidence)
    return result


@pytest.fixture
def good_site(ca: trustme.CA) -> Iterator[Site]:
    with Site(ca, dict(GOOD_HEADERS)) as site:
        yield site


def test_redirect_hsts_and_headers_pass(good_site: Site, ca_file: str) -> None:
    result = run(good_site, ca_file)
    assert result.status == Status.PASS
    assert result.message == (f"{good_site.https.url} redirects HTTP to HTTPS, sets HSTS for 365 days and sends "
                              "the security headers.")
    assert result.evidence["http"]["location"] == f"{good_site.https.url}/"
    assert result.evidence["hsts"]["max_age"] == 31536000


@pytest.mark.parametrize(("change", "problem"), [
    ({"Strict-Transport-Security": "max-age=300"}, "HSTS max-age is 300 s (minimum 31536000 s, one year)"),
    ({"Strict-Transport-Security": None}, "no HSTS (Strict-Transport-Security header)"),
    ({"Strict-Transport-Security": "includeSubDomains"}, "HSTS header has no valid max-age ('includeSubDomains')"),
    ({"X-Content-Type-Options": None}, "no X-Content-Type-Options: nosniff"),
    ({"X-Frame-Options": None, "Content-Security-Policy": "default-src 'self'"},
     "no X-Frame-Options (DENY or SAMEORIGIN) and no CSP frame-ancestors"),
    ({"Referrer-Policy": "unsafe-url"}, "Referrer-Policy unsafe-url passes too much to other sites"),
    ({"Referrer-Policy": None}, "no Referrer-Policy"),
    ({"Content-Security-Policy": None}, "no Content-Security-Policy"),
])
def test_each_missing_or_weak_header_fails(ca: trustme.CA, ca_file: str, change: dict[str, str | None],
                                           problem: str) -> None:
    headers = {k: v for k, v in {**GOOD_HEADERS, **change}.items() if v is not None}
    with Site(ca, headers) as site:
        result = run(site, ca_file)
    assert result.status == Status.FAIL
    assert result.message == f"{site.https.url} falls short: {problem}."


def test_long_hsts_is_enough_and_csp_frame_ancestors_replaces_x_frame_options(ca: trustme.CA, ca_file: str) -> None:
    headers = {**GOOD_HEADERS, "Strict-Transport-Security": "max-age=63072000"}
    del headers["X-Frame-Options"]
    with Site(ca, headers) as site:
        result = run(site, ca_file)
    assert result.status == Status.PASS and "sets HSTS for 730 days" in result.message


def test_csp_weaknesses_are_noted_not_failed(ca: trustme.CA, ca_file: str) -> None:
    headers = {**GOOD_HEADERS, "Content-Security-Policy": "script-src 'unsafe-inline' *; frame-ancestors 'self'"}
    with Site(ca, headers) as site:
        result = run(site, ca_file)
    assert result.status == Status.PASS
    assert result.evidence["csp_notes"] == ["no default-src", "uses 'unsafe-inline'", "allows any host or scheme"]


@pytest.mark.parametrize(("mode", "problem"), [
    ("plain", "HTTP answers 200 without redirecting to HTTPS"),
    ("other-host", "HTTP redirects to another host (www.elders.test) first; redirect to HTTPS on 127.0.0.1 first"),
])
def test_http_must_redirect_to_https_on_the_same_host(ca: trustme.CA, ca_file: str, mode: str, problem: str) -> None:
    with Site(ca, dict(GOOD_HEADERS), http=mode) as site:
        result = run(site, ca_file)
    assert result.status == Status.FAIL
    assert result.message == f"{site.https.url} falls short: {problem}."


def test_a_site_without_plain_http_passes(good_site: Site, ca_file: str) -> None:
    with HttpServer({}) as gone:
        closed = f"{gone.url}/"
    result = run(good_site, ca_file, http_url=closed)
    assert result.status == Status.PASS
    assert result.message.startswith(f"{good_site.https.url} offers no plain HTTP, sets HSTS")


def test_untrusted_certificate_fails(good_site: Site, tmp_path: Any) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    result = run(good_site, str(other))
    assert result.status == Status.FAIL
    assert result.message == (f"HTTPS of {good_site.https.url} is refused by browsers: certificate not accepted: "
                              "unable to get local issuer certificate.")


def test_http_only_site_fails_and_unreachable_site_is_an_error(ca: trustme.CA, ca_file: str) -> None:
    with HttpServer(lambda p, h: Reply(200, {}, b"plain")) as plain:
        with HttpServer({}, context=server_context(ca.issue_cert("127.0.0.1"))) as gone:
            https_url = gone.url
        values = {"url": https_url, "http_url": f"{plain.url}/", "ca_file": ca_file}
        [only_http] = Https().run(Https.Params.model_validate(values), Context("C", 20, net_timeout=5))
    [down] = Https().run(Https.Params.model_validate(values), Context("C", 20, net_timeout=5))
    assert only_http.status == Status.FAIL
    assert only_http.message == f"{https_url} answers over HTTP but not over HTTPS (connection refused)."
    assert down.status == Status.ERROR
    assert down.message == f"Could not reach {https_url} over HTTPS (connection refused) or HTTP."


def test_url_without_scheme_means_https_and_http_urls_are_refused() -> None:
    assert Https.Params(url="www.gemeente.nl").url == "https://www.gemeente.nl"
    with pytest.raises(ValueError, match="is not an https:// URL of a website"):
        Https.Params(url="http://www.gemeente.nl")


def test_a_control_with_https_ends_up_as_findings(project: Any, ca: trustme.CA, ca_file: str) -> None:
    weak = {**GOOD_HEADERS, "Strict-Transport-Security": "max-age=600"}
    with Site(ca, dict(GOOD_HEADERS)) as good, Site(ca, weak) as bad:
        project.write_config(f"network:\n  ca_file: {ca_file}\n  timeout: 5s\n"
                             f"targets:\n  websites:\n"
                             f"    - {{url: '{good.https.url}', http_url: '{good.http.url}/'}}\n"
                             f"    - {{url: '{bad.https.url}', http_url: '{bad.http.url}/'}}\n")
        project.control("web.yaml", """\
id: WEB-HTTPS
title: Websites force HTTPS with HSTS and send the security headers
theme: technological
severity: high
checks:
  - plugin: https
    targets: websites
""")
        scan = project.run("scan", "--format", "json")
    assert scan.exit_code == 1, scan.output
    statuses = {r["target"]: r["status"] for r in json.loads(scan.stdout)["results"]}
    assert statuses == {good.https.url: "pass", bad.https.url: "fail"}
    findings = json.loads(project.run("findings", "--format", "json").stdout)
    assert [(f["control"], f["target"]) for f in findings] == [("WEB-HTTPS", bad.https.url)]
    assert findings[0]["message"] == (f"{bad.https.url} falls short: HSTS max-age is 600 s (minimum 31536000 s, one "
                                      "year).")


# --- part: required (internet.nl's requirements decide) and part: advice (its recommendations) ------------

BARE_HEADERS = {"Strict-Transport-Security": "max-age=31536000"}


def test_required_part_passes_without_the_advised_headers_and_lists_them(ca: trustme.CA, ca_file: str) -> None:
    with Site(ca, dict(BARE_HEADERS)) as site:
        result = run(site, ca_file, part="required")
    assert result.status == Status.PASS
    assert result.message == f"{site.https.url} redirects HTTP to HTTPS and sets HSTS for 365 days."
    assert result.evidence["part"] == "required"
    assert result.evidence["advice"] == ["no X-Content-Type-Options: nosniff",
                                         "no X-Frame-Options (DENY or SAMEORIGIN) and no CSP frame-ancestors",
                                         "no Referrer-Policy", "no Content-Security-Policy"]


@pytest.mark.parametrize(("http", "change", "status", "message"), [
    ("redirect", {"Strict-Transport-Security": "max-age=300"}, Status.FAIL,
     "{url} falls short: HSTS max-age is 300 s (minimum 31536000 s, one year)."),
    ("plain", {}, Status.FAIL, "{url} falls short: HTTP answers 200 without redirecting to HTTPS."),
    ("redirect", {"Strict-Transport-Security": None}, Status.FAIL,
     "{url} falls short: no HSTS (Strict-Transport-Security header)."),
])
def test_required_part_still_fails_on_https_and_hsts(ca: trustme.CA, ca_file: str, http: str,
                                                     change: dict[str, str | None], status: Status,
                                                     message: str) -> None:
    headers = {k: v for k, v in {**BARE_HEADERS, **change}.items() if v is not None}
    with Site(ca, headers, http=http) as site:
        result = run(site, ca_file, part="required")
    assert (result.status, result.message) == (status, message.format(url=site.https.url))


@pytest.mark.parametrize(("change", "status", "problem"), [
    ({}, Status.PASS, None),
    ({"Strict-Transport-Security": None}, Status.PASS, None),  # HSTS is required, not advice
    ({"X-Content-Type-Options": None}, Status.FAIL, "no X-Content-Type-Options: nosniff"),
    ({"Referrer-Policy": "unsafe-url"}, Status.FAIL, "Referrer-Policy unsafe-url passes too much to other sites"),
    ({"Content-Security-Policy": None, "X-Frame-Options": None}, Status.FAIL,
     "no X-Frame-Options (DENY or SAMEORIGIN) and no CSP frame-ancestors; no Content-Security-Policy"),
])
def test_advice_part_judges_only_the_security_headers(ca: trustme.CA, ca_file: str, change: dict[str, str | None],
                                                      status: Status, problem: str | None) -> None:
    headers = {k: v for k, v in {**GOOD_HEADERS, **change}.items() if v is not None}
    with Site(ca, headers, http="plain") as site:  # plain HTTP without a redirect: required, not advice
        result = run(site, ca_file, part="advice")
    assert result.status == status
    assert result.evidence["part"] == "advice"
    if problem is None:
        assert result.message == f"{site.https.url} sends the advised security headers."
    else:
        assert result.message == (f"{site.https.url} does not follow the advice on security headers (internet.nl "
                                  f"recommends them): {problem}.")


def test_advice_part_on_an_unreachable_site_is_an_error(ca: trustme.CA, ca_file: str) -> None:
    with HttpServer({}, context=server_context(ca.issue_cert("127.0.0.1"))) as gone:
        url = gone.url
    values = {"url": url, "http_url": f"{url.replace('https:', 'http:')}/", "ca_file": ca_file, "part": "advice"}
    [result] = Https().run(Https.Params.model_validate(values), Context("C", 20, net_timeout=5))
    assert result.status == Status.ERROR
    assert result.message == f"Could not read the security headers of {url}: connection refused."


def test_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match="Input should be 'all', 'required' or 'advice'"):
        Https.Params.model_validate({"url": "www.gemeente.nl", "part": "recommended"})
