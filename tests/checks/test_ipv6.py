"""ipv6 against a loopback DNS zone with AAAA records pointing at ::1 and real listeners on ::1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from compliance.api import Context, Result, Status
from compliance.checks.ipv6 import Ipv6
from tests.servers import DnsServer, DnsServerV6, TcpListenerV6, free_port

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
    return {"web_ports": [listener.port], "mail_port": listener.port, "dns_port": dns_v6.port}


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
    [web] = check(dns_v4, "https://good.test/path", services=["web"], web_ports=[listener.port])
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
