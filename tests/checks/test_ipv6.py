"""ipv6 against a loopback DNS zone with AAAA records pointing at ::1 and real listeners on ::1.

The same-website comparison runs against real HTTP(S) servers on 127.0.0.1 and ::1 on one port.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from compliance.api import Context, Result, Status
from compliance.checks.ipv6 import Ipv6, page_distance
from tests.servers import DnsServer, DnsServerV6, TcpListenerV6, free_port, server_context

SOA = "@ SOA ns1 hostmaster 1 3600 600 86400 300"

ZONES = {
    "good.test.": f"""$TTL 300
{SOA}
@ NS ns1
@ NS ns2
@ A 127.0.0.1
@ AAAA ::1
@ MX 10 mx
mx A 127.0.0.1
mx AAAA ::1
ns1 AAAA ::1
ns2 AAAA ::1
""",
    "nov6.test.": f"""$TTL 300
{SOA}
@ NS ns1
@ NS ns2
@ A 127.0.0.1
@ MX 10 mx1
@ MX 20 mx2
mx1 AAAA ::1
mx2 A 127.0.0.1
ns1 AAAA ::1
ns2 A 127.0.0.1
""",
    "mapped.test.": f"""$TTL 300
{SOA}
@ NS ns1
@ A 127.0.0.1
@ AAAA ::ffff:127.0.0.1
ns1 AAAA ::1
""",
    "nullmx.test.": f"""$TTL 300
{SOA}
@ NS ns1
@ MX 0 .
ns1 AAAA ::1
""",
    "nomx.test.": f"""$TTL 300
{SOA}
@ NS ns1
ns1 AAAA ::1
""",
    "mxbroken.test.": f"""$TTL 300
{SOA}
@ NS ns1
@ MX 10 mx.broken.test.
ns1 AAAA ::1
""",
    "broken.test.": f"""$TTL 300
{SOA}
@ NS ns1
ns1 AAAA ::1
""",
}


@pytest.fixture(scope="module")
def dns_v4() -> Iterator[DnsServer]:
    """The resolver the check asks (127.0.0.1); SERVFAIL for broken.test."""
    with DnsServer(ZONES, bogus=["broken.test."]) as server:
        yield server


@pytest.fixture(scope="module")
def dns_v6() -> Iterator[DnsServerV6]:
    """The same zones answered on ::1: the name servers ns1/ns2 as seen over IPv6."""
    with DnsServerV6(ZONES) as server:
        yield server


@pytest.fixture(scope="module")
def listener() -> Iterator[TcpListenerV6]:
    with TcpListenerV6() as server:
        yield server


def check(dns_v4: DnsServer, domain: str, **params: Any) -> list[Result]:
    ctx = Context("C", 20, nameserver=dns_v4.nameserver, net_timeout=2)
    results = list(Ipv6().run(Ipv6.Params.model_validate({"domain": domain, **params}), ctx))
    for result in results:
        json.dumps(result.evidence)
    return results


def ports(listener: TcpListenerV6, dns_v6: DnsServerV6) -> dict[str, Any]:
    """The listener only accepts TCP (no HTTP): the pages are compared in the tests further down."""
    return {"web_ports": [listener.port], "mail_port": listener.port, "dns_port": dns_v6.port,
            "same_website": False}


def test_everything_on_ipv6_passes(dns_v4: DnsServer, dns_v6: DnsServerV6, listener: TcpListenerV6) -> None:
    web, mail, ns = check(dns_v4, "good.test", **ports(listener, dns_v6))
    assert [r.status for r in (web, mail, ns)] == [Status.PASS] * 3, [r.message for r in (web, mail, ns)]
    assert web.message == "Web server good.test has IPv6 (::1) and answers over it."
    assert web.evidence["ports_open"] == {"::1": [listener.port]} and web.evidence["ipv4"] == ["127.0.0.1"]
    assert mail.message == (f"Every mail server of good.test has IPv6 and answers over it on TCP {listener.port} "
                            "(mx.good.test).")
    assert ns.message == "2 name servers of good.test. have IPv6 and answer DNS over it (ns1.good.test, ns2.good.test)."
    assert [r.evidence["service"] for r in (web, mail, ns)] == ["web", "mail", "ns"]


def test_missing_aaaa_records_fail(dns_v4: DnsServer, dns_v6: DnsServerV6, listener: TcpListenerV6) -> None:
    web, mail, ns = check(dns_v4, "nov6.test", **ports(listener, dns_v6))
    assert (web.status, web.message) == (Status.FAIL, "Web server nov6.test has no IPv6 address (no AAAA record).")
    assert (mail.status, mail.message) == (
        Status.FAIL, "Mail server(s) of nov6.test without an IPv6 address (no AAAA record): mx2.nov6.test.")
    assert (ns.status, ns.message) == (
        Status.FAIL, "1 of the name servers of nov6.test. have an IPv6 address; at least 2 must (ns1.nov6.test, "
                     "ns2.nov6.test).")


def test_one_name_server_with_ipv6_is_enough_when_configured(dns_v4: DnsServer, dns_v6: DnsServerV6) -> None:
    [ns] = check(dns_v4, "nov6.test", services=["ns"], min_ns_ipv6=1, dns_port=dns_v6.port)
    assert ns.status == Status.PASS


def test_a_url_target_and_a_domain_without_web_server(dns_v4: DnsServer, listener: TcpListenerV6) -> None:
    [web] = check(dns_v4, "https://good.test/path", services=["web"], web_ports=[listener.port],
                  same_website=False)
    assert web.status == Status.PASS and web.target == "good.test"
    [none] = check(dns_v4, "nullmx.test", services=["web"])
    assert (none.status, none.message) == (Status.SKIPPED, "nullmx.test has no IP address (no A or AAAA record): no "
                                                           "web server to test.")


def test_ipv4_mapped_addresses_are_not_ipv6(dns_v4: DnsServer, listener: TcpListenerV6) -> None:
    [web] = check(dns_v4, "mapped.test", services=["web"], web_ports=[listener.port])
    assert (web.status, web.message) == (Status.FAIL, "Web server mapped.test has no IPv6 address (no AAAA record).")


def test_addresses_that_do_not_answer_fail(dns_v4: DnsServer) -> None:
    closed = free_port(socket.AF_INET6)
    web, mail, ns = check(dns_v4, "good.test", web_ports=[closed], mail_port=closed,
                          dns_port=free_port(socket.AF_INET6, socket.SOCK_DGRAM), timeout=0.5)
    assert (web.status, web.message) == (Status.FAIL, f"Web server good.test does not answer over IPv6 at ::1 (TCP "
                                                      f"{closed}).")
    assert (mail.status, mail.message) == (Status.FAIL, f"Mail server(s) of good.test do not answer over IPv6 on TCP "
                                                        f"{closed}: mx.good.test ::1.")
    assert (ns.status, ns.message) == (Status.FAIL, "Name server(s) of good.test. do not answer DNS over IPv6: "
                                                    "ns1.good.test ::1, ns2.good.test ::1.")


def test_without_reachability_only_the_records_count(dns_v4: DnsServer) -> None:
    web, mail, ns = check(dns_v4, "good.test", reachability=False, web_ports=[free_port(socket.AF_INET6)])
    assert [r.status for r in (web, mail, ns)] == [Status.PASS] * 3
    assert web.message == "Web server good.test has IPv6 (::1); reachability not tested."


@pytest.mark.parametrize(("domain", "message"), [
    ("nullmx.test", "nullmx.test accepts no mail (null MX): IPv6 of mail servers not tested."),
    ("nomx.test", "nomx.test has no MX records: IPv6 of mail servers not tested."),
])
def test_no_mail_servers_is_skipped(dns_v4: DnsServer, domain: str, message: str) -> None:
    [mail] = check(dns_v4, domain, services=["mail"])
    assert (mail.status, mail.message) == (Status.SKIPPED, message)


def test_dns_problems_are_errors(dns_v4: DnsServer) -> None:
    [missing] = check(dns_v4, "nowhere.good.test")
    assert (missing.status, missing.message) == (
        Status.ERROR, "Could not check IPv6 of nowhere.good.test: the domain does not exist in DNS (NXDOMAIN).")
    [servfail] = check(dns_v4, "broken.test")
    assert servfail.status == Status.ERROR
    assert servfail.message == ("Could not check IPv6 of broken.test: no name server answered for broken.test "
                                "(SERVFAIL or refused).")


def test_a_dns_failure_in_one_service_is_an_error_of_that_service(dns_v4: DnsServer) -> None:
    [mail] = check(dns_v4, "mxbroken.test", services=["mail"])
    assert (mail.status, mail.message) == (
        Status.ERROR, "Could not check IPv6 of the mail servers of mxbroken.test: no name server answered for "
                      "mx.broken.test (SERVFAIL or refused).")
    assert mail.evidence["service"] == "mail"


def test_unreachable_resolver_is_an_error() -> None:
    ctx = Context("C", 20, nameserver=f"127.0.0.1:{free_port(kind=socket.SOCK_DGRAM)}", net_timeout=0.5)
    [result] = Ipv6().run(Ipv6.Params(domain="good.test"), ctx)
    assert result.status == Status.ERROR and result.message.startswith("Could not check IPv6 of good.test: ")


@pytest.mark.parametrize("params", [
    {"domain": "good.test", "web_ports": [0]},
    {"domain": "good.test", "services": []},
    {"domain": "good.test", "services": ["dns"]},
    {"domain": "not a domain"},
    {"domain": "https:///path"},
    {"domain": "good.test", "min_ns_ipv6": 0},
    {"domain": "good.test", "extra": 1},
])
def test_invalid_params_are_rejected(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Ipv6.Params.model_validate(params)


# --- the same website over IPv6 and IPv4 -----------------------------------------------------------

#: A page as a municipality serves it; the nonce changes per request and must not count.
PAGE = ("<!doctype html><html><head><title>Gemeente Voorbeeld</title>"
        "<script nonce=\"%s\">var x = 1;</script></head><body><h1>Welkom bij de gemeente</h1>"
        + "<p>Afval, paspoort, parkeren, vergunningen en meer.</p>" * 40 + "</body></html>")

#: (status, body) per request: the function gets the address family ("ipv4"/"ipv6") and a counter.
Serve = Callable[[str, int], tuple[int, bytes]]


class DualStackHttp:
    """HTTP (or HTTPS with `context`) on 127.0.0.1 and on ::1 on one port; `serve` decides the answers."""

    def __init__(self, serve: Serve, context: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, str, str]] = []
        owner = self

        def handler(family: str) -> type[BaseHTTPRequestHandler]:
            class Handler(BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"

                def do_GET(self) -> None:
                    owner.requests.append((family, self.path, self.headers.get("Host", "")))
                    status, body = serve(family, len(owner.requests))
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *_: Any) -> None:
                    pass

            return Handler

        class V6(ThreadingHTTPServer):
            address_family = socket.AF_INET6
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        class V4(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        for _ in range(20):  # the port the system gives on 127.0.0.1 may be taken on ::1
            v4 = V4(("127.0.0.1", 0), handler("ipv4"))
            try:
                v6 = V6(("::1", v4.server_address[1]), handler("ipv6"))
                break
            except OSError:
                v4.server_close()
        else:
            raise RuntimeError("no port free on both 127.0.0.1 and ::1")
        if context is not None:
            for httpd in (v4, v6):
                httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self.port: int = v4.server_address[1]
        self._servers = (v4, v6)
        self._threads = [threading.Thread(target=h.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                         for h in self._servers]

    def __enter__(self) -> DualStackHttp:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        for httpd in self._servers:
            httpd.shutdown()
            httpd.server_close()
        for thread in self._threads:
            thread.join(5)


def same_page(family: str, count: int) -> tuple[int, bytes]:
    return 200, (PAGE % f"nonce-{count}").encode()


def web(dns_v4: DnsServer, server: DualStackHttp, **params: Any) -> Result:
    [result] = check(dns_v4, "good.test", services=["web"], web_ports=[server.port], **params)
    return result


def test_the_same_website_over_both_families_passes(dns_v4: DnsServer) -> None:
    with DualStackHttp(same_page) as server:
        result = web(dns_v4, server)
    assert result.status == Status.PASS, result.message
    assert result.message == ("Web server good.test has IPv6 (::1), answers over it and shows the same website as "
                              "over IPv4 (simhash distance 0, at most 10).")
    same = result.evidence["same_website"]
    port = str(server.port)
    assert same["distance"] == {port: 0.0} and same["max_distance"] == 10.0
    assert same["status"] == {"ipv4": {port: 200}, "ipv6": {port: 200}}
    assert same["bytes_read"]["ipv4"][port] == same["bytes_read"]["ipv6"][port] > 2000
    assert sorted(r[0] for r in server.requests) == ["ipv4", "ipv6"]
    assert {r[2] for r in server.requests} == {"good.test"}  # the host name, not the address
    assert result.evidence["ports_open"] == {"::1": [server.port]}  # the existing evidence stays


def test_an_error_page_over_ipv6_fails(dns_v4: DnsServer) -> None:
    def serve(family: str, count: int) -> tuple[int, bytes]:
        return (503, b"<html><body>Service unavailable</body></html>") if family == "ipv6" else same_page(family,
                                                                                                           count)

    with DualStackHttp(serve) as server:
        result = web(dns_v4, server)
    assert (result.status, result.message) == (
        Status.FAIL, f"The website good.test over IPv6 differs from over IPv4: port {server.port} answers with "
                     "status 503 over IPv6 and 200 over IPv4.")
    assert result.evidence["same_website"]["status"]["ipv6"] == {str(server.port): 503}


def test_other_content_over_ipv6_is_a_notice_as_in_internet_nl_or_a_failure_on_request(dns_v4: DnsServer) -> None:
    def serve(family: str, count: int) -> tuple[int, bytes]:
        if family == "ipv6":
            return 200, b"<html><body><h1>Welcome to nginx!</h1><p>If you see this page, the web server works."
        return same_page(family, count)

    with DualStackHttp(serve) as server:
        noted = web(dns_v4, server)
        result = web(dns_v4, server, content_differs="fail")
    distance = noted.evidence["same_website"]["distance"][str(server.port)]
    assert distance > 10 and noted.evidence["same_website"]["content_differs"] is True
    assert noted.status == Status.PASS
    assert noted.message == (f"Web server good.test has IPv6 (::1) and answers over it with the same ports and "
                             f"status codes as over IPv4; notice: the page differs in content (simhash distance "
                             f"{distance:g}, more than 10; port {server.port}), which internet.nl notes without "
                             "failing.")
    assert result.status == Status.FAIL
    assert result.message == (f"The website good.test over IPv6 differs from over IPv4 (simhash distance "
                              f"{distance:g}, at most 10; port {server.port}).")


def test_the_threshold_and_switching_the_comparison_off(dns_v4: DnsServer) -> None:
    def serve(family: str, count: int) -> tuple[int, bytes]:
        status, body = same_page(family, count)
        return status, body + (b"<p>Alleen over IPv6: storing gemeld.</p>" * 30 if family == "ipv6" else b"")

    with DualStackHttp(serve) as server:
        strict = web(dns_v4, server, content_differs="fail")
        lenient = web(dns_v4, server, max_distance=60, content_differs="fail")
        off = web(dns_v4, server, same_website=False)
    assert strict.status == Status.FAIL and "at most 10;" in strict.message
    assert lenient.status == Status.PASS and "at most 60)" in lenient.message
    assert (off.status, off.message) == (Status.PASS, "Web server good.test has IPv6 (::1) and answers over it.")
    assert "same_website" not in off.evidence


def test_https_is_compared_without_verifying_the_certificate(dns_v4: DnsServer) -> None:
    ca = trustme.CA()  # not trusted by the check: the comparison is about content
    context = server_context(ca.issue_cert("good.test"))
    with DualStackHttp(same_page, context) as server:
        result = web(dns_v4, server, https_ports=[server.port])
        plain = web(dns_v4, server)  # plain HTTP to a TLS port: no HTTP answer over either family
    assert result.status == Status.PASS, result.message
    assert result.evidence["same_website"]["status"]["ipv6"] == {str(server.port): 200}
    assert plain.status == Status.ERROR
    assert plain.message.startswith("Could not compare the website good.test over IPv6 and IPv4: no HTTP answer "
                                    "over either (ipv4 port ")


def test_http_only_over_ipv6_fails(dns_v4: DnsServer, listener: TcpListenerV6) -> None:
    """::1 answers HTTP on a port where 127.0.0.1 refuses: not the same website."""
    with DualStackHttp(same_page) as server:
        server._servers[0].shutdown()
        server._servers[0].server_close()
        result = web(dns_v4, server)
    assert result.status == Status.FAIL
    assert result.message == (f"The website good.test over IPv6 differs from over IPv4: it answers HTTP on port(s) - "
                              f"over IPv4 and {server.port} over IPv6 (only over IPv4: -; only over IPv6: "
                              f"{server.port}).")
    assert str(server.port) in result.evidence["same_website"]["problems"]["ipv4"]


def test_no_http_answer_over_either_family_is_an_error(dns_v4: DnsServer, listener: TcpListenerV6) -> None:
    """The listener on ::1 accepts and closes (no HTTP), 127.0.0.1 refuses: nothing to compare."""
    [result] = check(dns_v4, "good.test", services=["web"], web_ports=[listener.port], timeout=1)
    assert result.status == Status.ERROR
    assert result.message.startswith("Could not compare the website good.test over IPv6 and IPv4: no HTTP answer")
    assert set(result.evidence["same_website"]["problems"]) == {"ipv4", "ipv6"}


def test_page_distance_ignores_nonces_viewstate_and_white_space() -> None:
    one = b'<script nonce="abc">x</script>\n  <input type="hidden" name="__VIEWSTATE" value="AAAA">  <p>hi</p>'
    other = b"<script nonce='zzzzzzzz'>x</script> <input name=__VIEWSTATE value=BBBBBBBBBBBB> <p>hi</p>"
    assert page_distance(one, other) == 0.0
    assert page_distance(b"", b"") == 0.0
    assert page_distance(b"abc", b"") == 100.0
    assert 0 < page_distance(b"<p>hallo wereld</p>", b"<p>hallo wereld!</p>") < 10


@pytest.mark.parametrize("params", [
    {"https_ports": [70000]},
    {"max_distance": -1},
    {"max_distance": 101},
    {"same_website": "maybe"},
])
def test_invalid_comparison_params_are_rejected(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Ipv6.Params.model_validate({"domain": "good.test", **params})
