"""`ipv6`: the web, mail and name servers of a domain have IPv6 addresses and answer over IPv6.

Secure state (Forum Standaardisatie "pas toe of leg uit": IPv6 and IPv4, since 2010; internet.nl
"Modern address (IPv6)"): every service of the domain can be reached by a client that only has IPv6.
Three results per domain, one per service (`services`; evidence `service`), as internet.nl scores them:

- `web`: the web host (`web_host`, default the domain itself) has an AAAA record, and every IPv6
  address accepts a TCP connection on at least one of `web_ports` (default 80 and 443). A host
  without any address (no A, no AAAA: a mail-only domain) is `skipped`. `domain` may be given as a
  URL (`https://www.gemeente.nl`): its host is the domain, so a `websites` target group works.
- `mail`: every MX host of the domain has an AAAA record, and every IPv6 address of them accepts a TCP
  connection on `mail_port` (25). A domain without MX records, or with only a null MX (RFC 7505, "I
  accept no mail"), is `skipped` (internet.nl: not tested).
- `ns`: at least `min_ns_ipv6` (default 2, as internet.nl: one is a failure) name servers of the
  domain's zone have an AAAA record, and each of their IPv6 addresses answers a DNS question (the
  zone's SOA over UDP to `dns_port`).

Same website over IPv6 and IPv4 (`same_website: true`, the default; internet.nl requires it): when
the web host also has an A record and its IPv6 addresses answer, `GET /` is fetched on every port of
`web_ports` once over an IPv4 address and once over an IPv6 address (connecting to the address, the
host name sent as Host header and TLS SNI; `https_ports`, default 443, speak HTTPS, the others plain
HTTP). Certificates are not verified for this comparison only: the point is the content (internet.nl
does the same; the certificate is the tls check's business). Redirects are not followed, at most
500 000 bytes are read per page, and every fetch stays within the time budget. Both families must
answer on the same ports with the same status code, and the pages may differ by at most
`max_distance` (default 10, internet.nl's threshold) on a 0-100 scale: internet.nl's "simhash"
distance, 100 minus 100 times difflib's `SequenceMatcher.quick_ratio` of the two pages, after removing
script/style nonces and ASP.NET `__VIEWSTATE` fields, which change per request. internet.nl shows a
larger content distance (with equal status codes) as a notice, and so do we by default (the pass
message says so, evidence `content_differs: true`); `content_differs: fail` makes it a failure (stricter:
the site a client sees should not depend on its address family). Other ports or status codes fail, as in
internet.nl. Set `same_website: false` for a site that deliberately differs. Evidence `same_website`:
ports and status codes per family, bytes read, the distance per port and the threshold.

IPv4-mapped addresses (`::ffff:a.b.c.d`) do not count as IPv6. `reachability: false` checks the AAAA
records only (for a monitor that itself has no IPv6 route); the pages are then not compared.

Verdicts: `fail` when a host lacks AAAA, too few name servers have it, an IPv6 address does not
answer, or the website over IPv6 differs from over IPv4 (other ports, status code or content);
`error` when DNS does not answer (time-out, SERVFAIL), the domain does not exist, or neither family
gives an HTTP answer to compare.

Example::

    id: NET-IPV6
    title: Our websites and mail domains are reachable over IPv6
    theme: technological
    references: {forum-standaardisatie: ipv6, iso27002: "5.14", bio2: "5.14.01"}
    severity: medium
    checks:
      - plugin: ipv6
        params: {web_ports: [443, 80]}
        targets: [gemeente.nl, gemeente-app.nl]
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from compliance.api import Check, Context, Message, Params, Result, Seconds
from compliance.checks._net import budget, load_libraries, nameserver_of, resolver
from compliance.checks.mail_auth import DnsProblem, MailAuthParams

if TYPE_CHECKING:  # dnspython is imported where used: loading the plugin to read its parameters stays cheap
    import dns.name
    import dns.resolver

Service = Literal["web", "mail", "ns"]
_ALL_PARTS: tuple[Service, ...] = ("web", "mail", "ns")
#: Addresses listed in evidence and messages per host.
_CAP = 10
#: Bytes of a page read for the comparison (internet.nl reads 500 000).
_PAGE_CAP = 500_000


class Ipv6Params(Params):
    domain: str
    """The domain, e.g. gemeente.nl: its MX hosts and name servers are checked, and its web host."""
    services: list[Service] = Field(default_factory=lambda: list(_ALL_PARTS), min_length=1)
    """Which services to check: web, mail, ns."""
    web_host: str | None = None
    """The web host to check; default the domain itself (www.gemeente.nl as a separate target)."""
    reachability: bool = True
    """Connect to every IPv6 address, besides looking up the AAAA records."""
    web_ports: list[int] = Field(default_factory=lambda: [80, 443], min_length=1)
    """TCP ports of the web service; an address must accept at least one of them."""
    mail_port: int = Field(25, ge=1, le=65535)
    """TCP port of the mail servers (SMTP)."""
    dns_port: int = Field(53, ge=1, le=65535)
    """UDP port the name servers are asked on."""
    same_website: bool = True
    """Compare the web page over IPv4 and over IPv6 (internet.nl); false for sites that deliberately differ."""
    https_ports: list[int] = Field(default_factory=lambda: [443])
    """Of `web_ports`, those that speak HTTPS in the comparison; the others plain HTTP."""
    max_distance: float = Field(10.0, ge=0, le=100)
    """Largest difference (0-100) of the two pages that still counts as the same website (internet.nl: 10)."""
    content_differs: Literal["notice", "fail"] = "notice"
    """A larger content difference (same ports and status codes): `notice` in the pass message and the
    evidence, as internet.nl shows it, or `fail` (stricter)."""
    min_ns_ipv6: int = Field(2, ge=1)
    """How many name servers must have an IPv6 address (internet.nl: at least two)."""
    nameserver: str | None = None
    """DNS resolver as host or host:port; default the configuration's, else the system's."""
    timeout: Seconds | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return domain_of(value)

    @field_validator("web_host")
    @classmethod
    def _web_host(cls, value: str | None) -> str | None:
        return None if value is None else MailAuthParams._domain(value)

    @field_validator("web_ports", "https_ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is not a number from 1 to 65535")
        return list(dict.fromkeys(value))

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[Service]) -> list[Service]:
        return list(dict.fromkeys(value))


def domain_of(value: str) -> str:
    """A domain, or the host of a URL (so that a `websites` target group can be used): validated, lower case."""
    from urllib.parse import urlsplit

    if "://" in value:
        host = urlsplit(value.strip()).hostname
        if not host:
            raise ValueError(f"'{value}' is a URL without a host")
        value = host
    return MailAuthParams._domain(value)


class Names:
    """Look-ups through one resolver that tell 'no such name' from 'no answer'.

    NXDOMAIN and NODATA give `[]` (the name has no such records); time-outs, SERVFAIL and refusals
    raise `DnsProblem`: the check cannot decide. Shared by the ipv6, rpki and dane checks.
    """

    def __init__(self, res: dns.resolver.Resolver) -> None:
        self.res = res

    def answer(self, name: str | dns.name.Name, rdtype: str) -> dns.resolver.Answer | None:
        """The answer, or None for NXDOMAIN."""
        import dns.exception
        import dns.resolver

        try:
            return self.res.resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoNameservers as exc:
            raise DnsProblem(Message("no name server answered for %(name)s (SERVFAIL or refused)",
                                     name=str(name))) from exc
        except dns.exception.Timeout as exc:
            raise DnsProblem(Message("DNS did not answer for %(name)s in time", name=str(name))) from exc
        except dns.exception.DNSException as exc:
            raise DnsProblem(Message("DNS error for %(name)s: %(reason)s", name=str(name), reason=str(exc))) from exc

    def records(self, name: str | dns.name.Name, rdtype: str) -> list[Any]:
        answer = self.answer(name, rdtype)
        return [] if answer is None or answer.rrset is None else list(answer.rrset)

    def exists(self, name: str) -> bool:
        """Whether the name exists (NOERROR for its SOA question, with or without records)."""
        return self.answer(name, "SOA") is not None

    def addresses(self, host: str, rdtype: Literal["A", "AAAA"]) -> list[str]:
        """The host's IPv4 (A) or IPv6 (AAAA) addresses; IPv4-mapped IPv6 addresses are left out."""
        found = []
        for rdata in self.records(host, rdtype):
            address = ipaddress.ip_address(rdata.address)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                continue
            found.append(str(address))
        return sorted(set(found))

    def mx_hosts(self, domain: str) -> tuple[list[str], bool]:
        """(MX host names, sorted by preference then name; whether there is a null MX `0 .`)."""
        import dns.name

        records = self.records(domain, "MX")
        null = any(r.exchange == dns.name.root for r in records)
        hosts = sorted({(int(r.preference), r.exchange.to_text(omit_final_dot=True).lower()) for r in records
                        if r.exchange != dns.name.root})
        return list(dict.fromkeys(h for _, h in hosts)), null

    def zone_of(self, domain: str) -> dns.name.Name:
        import dns.exception
        import dns.resolver

        try:
            return dns.resolver.zone_for_name(domain, resolver=self.res)
        except dns.resolver.NoRootSOA:
            raise DnsProblem(Message("no zone holds %(name)s (no SOA found up to the root)", name=domain)) from None
        except dns.resolver.NXDOMAIN:
            raise DnsProblem(Message("the domain does not exist in DNS (NXDOMAIN)")) from None
        except dns.resolver.NoNameservers as exc:
            raise DnsProblem(Message("no name server answered for %(name)s (SERVFAIL or refused)",
                                     name=domain)) from exc
        except dns.exception.Timeout as exc:
            raise DnsProblem(Message("DNS did not answer for %(name)s in time", name=domain)) from exc
        except dns.exception.DNSException as exc:
            raise DnsProblem(Message("DNS error for %(name)s: %(reason)s", name=domain, reason=str(exc))) from exc

    def ns_hosts(self, zone: dns.name.Name) -> list[str]:
        return sorted({r.target.to_text(omit_final_dot=True).lower() for r in self.records(zone, "NS")})


def tcp_answers(address: str, ports: list[int], timeout: float) -> list[int]:
    """The ports of `ports` on which `address` accepts a TCP connection."""
    open_ports = []
    for port in ports:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                open_ports.append(port)
        except OSError:
            continue
    return open_ports


def dns_answers(address: str, port: int, zone: dns.name.Name, timeout: float) -> bool:
    """Whether a name server at `address` answers a question for the zone's SOA over UDP."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rdatatype

    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    query.flags &= ~dns.flags.RD
    try:
        dns.query.udp(query, address, port=port, timeout=timeout)
    except (dns.exception.DNSException, OSError):
        return False
    return True


@dataclass(frozen=True)
class Page:
    """The answer of one web server address to `GET /`: status code and (the first bytes of) the body."""

    address: str
    status: int
    body: bytes


def fetch_page(host: str, address: str, port: int, https: bool, timeout: float) -> Page:
    """GET / from `address`:`port` with `host` as Host header (and SNI), certificates not verified.

    The comparison is about content, so a certificate problem must not hide it (internet.nl does the
    same); the certificate is tested by the tls check. Redirects are not followed (the redirect itself
    is compared). At most `_PAGE_CAP` bytes are read; the whole fetch stops after `timeout` seconds.
    Raises OSError (ssl.SSLError and http.client.HTTPException included) when there is no HTTP answer.
    """
    import http.client
    import ssl

    deadline = time.monotonic() + timeout
    sock = socket.create_connection((address, port), timeout=timeout)
    try:
        if https:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        try:
            conn.request("GET", "/", headers={"Host": host, "User-Agent": "compliance-monitor ipv6 check",
                                              "Accept": "text/html,*/*", "Accept-Encoding": "identity",
                                              "Connection": "close"})
            response = conn.getresponse()
            body = b""
            while len(body) < _PAGE_CAP:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading the page took more than {timeout:g} s")
                chunk = response.read(min(65536, _PAGE_CAP - len(body)))
                if not chunk:
                    break
                body += chunk
            return Page(address, response.status, body)
        except http.client.HTTPException as exc:
            raise OSError(f"no valid HTTP answer ({type(exc).__name__}: {exc})") from exc
        finally:
            conn.close()
    finally:
        sock.close()


_NONCE = re.compile(rb"""\snonce\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_VIEWSTATE = re.compile(rb"""<input\b[^>]*\bname\s*=\s*["']?__VIEWSTATE["'\s>][^>]*>""", re.IGNORECASE)
_SPACE = re.compile(rb"\s+")


def page_distance(one: bytes, other: bytes) -> float:
    """How much two pages differ, 0 (same) to 100, as internet.nl measures it.

    internet.nl (its "simhash" test) strips script/style nonces and ASP.NET `__VIEWSTATE` fields, which
    change per request, and compares with difflib's `SequenceMatcher.quick_ratio`: distance =
    100 - 100 x ratio. Runs of white space are made one space (internet.nl re-indents the HTML).
    """
    from difflib import SequenceMatcher

    def clean(body: bytes) -> str:
        body = _VIEWSTATE.sub(b"", _NONCE.sub(b"", body))
        return _SPACE.sub(b" ", body).strip().decode("latin-1")

    left, right = clean(one), clean(other)
    if not left and not right:
        return 0.0
    return 100.0 - SequenceMatcher(None, left, right, autojunk=False).quick_ratio() * 100.0


def _joined(items: list[str]) -> str:
    shown = ", ".join(items[:_CAP])
    return shown + (f" (+{len(items) - _CAP})" if len(items) > _CAP else "")


class Ipv6(Check):
    """The web, mail and name servers of a domain have AAAA records and answer over IPv6 (internet.nl)."""

    name = "ipv6"
    Params = Ipv6Params
    target_param = "domain"

    def run(self, params: Ipv6Params, ctx: Context) -> Iterator[Result]:
        load_libraries("dns", "http")
        domain = params.domain
        timeout = budget(params.timeout, ctx)
        names = Names(resolver(nameserver_of(params.nameserver, ctx), timeout))
        try:
            if not names.exists(domain):
                yield Result.errored(domain, Message("Could not check IPv6 of %(domain)s: the domain does not exist "
                                                     "in DNS (NXDOMAIN).", domain=domain))
                return
        except DnsProblem as exc:
            yield Result.errored(domain, Message("Could not check IPv6 of %(domain)s: %(reason)s.", domain=domain,
                                                 reason=exc.message))
            return
        for part in params.services:
            try:
                if part == "web":
                    yield self._web(domain, params, names, ctx)
                elif part == "mail":
                    yield self._mail(domain, params, names, ctx)
                else:
                    yield self._ns(domain, params, names, ctx)
            except DnsProblem as exc:
                yield Result.errored(domain, Message("Could not check IPv6 of the %(part)s of %(domain)s: "
                                                     "%(reason)s.", part=_PART_NAMES[part], domain=domain,
                                                     reason=exc.message), service=part)

    @staticmethod
    def _web(domain: str, params: Ipv6Params, names: Names, ctx: Context) -> Result:
        host = params.web_host or domain
        v6 = names.addresses(host, "AAAA")
        evidence: dict[str, Any] = {"service": "web", "host": host, "ipv6": v6[:_CAP],
                                    "ipv4": names.addresses(host, "A")[:_CAP]}
        if not v6 and not evidence["ipv4"]:
            return Result.skipped(domain, Message("%(host)s has no IP address (no A or AAAA record): no web server to "
                                                  "test.", host=host), **evidence)
        if not v6:
            return Result.failed(domain, Message("Web server %(host)s has no IPv6 address (no AAAA record).",
                                                 host=host), **evidence)
        if params.reachability:
            ports = params.web_ports
            reach = {a: tcp_answers(a, ports, budget(params.timeout, ctx)) for a in v6[:_CAP]}
            evidence["ports_open"] = reach
            dead = [a for a, open_ports in reach.items() if not open_ports]
            if dead:
                return Result.failed(domain, Message("Web server %(host)s does not answer over IPv6 at %(addresses)s "
                                                     "(TCP %(ports)s).", host=host, addresses=_joined(dead),
                                                     ports=_joined([str(p) for p in ports])), **evidence)
            if params.same_website and evidence["ipv4"]:
                return Ipv6._same_website(domain, host, params, ctx, v6, evidence)
            return Result.passed(domain, Message("Web server %(host)s has IPv6 (%(addresses)s) and answers over it.",
                                                 host=host, addresses=_joined(v6)), **evidence)
        return Result.passed(domain, Message("Web server %(host)s has IPv6 (%(addresses)s); reachability not "
                                             "tested.", host=host, addresses=_joined(v6)), **evidence)

    @staticmethod
    def _same_website(domain: str, host: str, params: Ipv6Params, ctx: Context, v6: list[str],
                      evidence: dict[str, Any]) -> Result:
        """Fetch `/` over IPv4 and over IPv6 on every web port and compare (internet.nl "same website")."""
        v4: list[str] = evidence["ipv4"]
        answers: dict[str, dict[int, Page]] = {"ipv4": {}, "ipv6": {}}
        problems: dict[str, dict[int, str]] = {"ipv4": {}, "ipv6": {}}
        for family, addresses in (("ipv4", v4), ("ipv6", v6[:_CAP])):
            for port in params.web_ports:
                for address in addresses:
                    try:
                        answers[family][port] = fetch_page(host, address, port, port in params.https_ports,
                                                           budget(params.timeout, ctx))
                        break
                    except OSError as exc:
                        problems[family][port] = f"{address}: {str(exc) or type(exc).__name__}"
                else:
                    continue
                problems[family].pop(port, None)
        same: dict[str, Any] = {
            "max_distance": params.max_distance,
            "ports": {family: sorted(pages) for family, pages in answers.items()},
            "status": {family: {str(p): page.status for p, page in pages.items()} for family, pages in answers.items()},
            "bytes_read": {family: {str(p): len(page.body) for p, page in pages.items()}
                           for family, pages in answers.items()},
            "problems": {family: {str(p): reason[:200] for p, reason in found.items()}
                         for family, found in problems.items() if found},
        }
        evidence["same_website"] = same
        if not answers["ipv4"] and not answers["ipv6"]:
            reasons = [f"{family} port {p}: {r}" for family, found in problems.items() for p, r in found.items()]
            return Result.errored(domain, Message("Could not compare the website %(host)s over IPv6 and IPv4: no "
                                                  "HTTP answer over either (%(reasons)s).", host=host,
                                                  reasons=_joined(reasons)), **evidence)
        if set(answers["ipv4"]) != set(answers["ipv6"]):
            only4 = sorted(set(answers["ipv4"]) - set(answers["ipv6"]))
            only6 = sorted(set(answers["ipv6"]) - set(answers["ipv4"]))
            return Result.failed(domain, Message("The website %(host)s over IPv6 differs from over IPv4: it answers "
                                                 "HTTP on port(s) %(v4)s over IPv4 and %(v6)s over IPv6 (only over "
                                                 "IPv4: %(only4)s; only over IPv6: %(only6)s).", host=host,
                                                 v4=_joined([str(p) for p in sorted(answers["ipv4"])]) or "-",
                                                 v6=_joined([str(p) for p in sorted(answers["ipv6"])]) or "-",
                                                 only4=_joined([str(p) for p in only4]) or "-",
                                                 only6=_joined([str(p) for p in only6]) or "-"), **evidence)
        distances: dict[str, float] = {}
        for port in sorted(answers["ipv4"]):
            page4, page6 = answers["ipv4"][port], answers["ipv6"][port]
            if page4.status != page6.status:
                return Result.failed(domain, Message("The website %(host)s over IPv6 differs from over IPv4: port "
                                                     "%(port)d answers with status %(v6)d over IPv6 and %(v4)d over "
                                                     "IPv4.", host=host, port=port, v6=page6.status, v4=page4.status),
                                     **evidence)
            distances[str(port)] = round(page_distance(page4.body, page6.body), 1)
        same["distance"] = distances
        worst_port, worst = max(distances.items(), key=lambda item: item[1])
        same["content_differs"] = worst > params.max_distance
        if worst > params.max_distance and params.content_differs == "notice":
            return Result.passed(domain, Message("Web server %(host)s has IPv6 (%(addresses)s) and answers over it "
                                                 "with the same ports and status codes as over IPv4; notice: the "
                                                 "page differs in content (simhash distance %(distance)s, more than "
                                                 "%(max)s; port %(port)s), which internet.nl notes without failing.",
                                                 host=host, addresses=_joined(v6), distance=f"{worst:g}",
                                                 max=f"{params.max_distance:g}", port=worst_port), **evidence)
        if worst > params.max_distance:
            return Result.failed(domain, Message("The website %(host)s over IPv6 differs from over IPv4 (simhash "
                                                 "distance %(distance)s, at most %(max)s; port %(port)s).", host=host,
                                                 distance=f"{worst:g}", max=f"{params.max_distance:g}",
                                                 port=worst_port), **evidence)
        return Result.passed(domain, Message("Web server %(host)s has IPv6 (%(addresses)s), answers over it and shows "
                                             "the same website as over IPv4 (simhash distance %(distance)s, at most "
                                             "%(max)s).", host=host, addresses=_joined(v6), distance=f"{worst:g}",
                                             max=f"{params.max_distance:g}"), **evidence)

    @staticmethod
    def _mail(domain: str, params: Ipv6Params, names: Names, ctx: Context) -> Result:
        hosts, null_mx = names.mx_hosts(domain)
        if not hosts:
            if null_mx:
                return Result.skipped(domain, Message("%(domain)s accepts no mail (null MX): IPv6 of mail servers "
                                                      "not tested.", domain=domain), service="mail", null_mx=True)
            return Result.skipped(domain, Message("%(domain)s has no MX records: IPv6 of mail servers not tested.",
                                                  domain=domain), service="mail", mx=[])
        per_host = {h: names.addresses(h, "AAAA") for h in hosts[:_CAP]}
        evidence: dict[str, Any] = {"service": "mail", "mx": {h: a[:_CAP] for h, a in per_host.items()}}
        missing = [h for h, a in per_host.items() if not a]
        if missing:
            return Result.failed(domain, Message("Mail server(s) of %(domain)s without an IPv6 address (no AAAA "
                                                 "record): %(hosts)s.", domain=domain, hosts=_joined(missing)),
                                 **evidence)
        if not params.reachability:
            return Result.passed(domain, Message("Every mail server of %(domain)s has IPv6 (%(hosts)s); reachability "
                                                 "not tested.", domain=domain, hosts=_joined(hosts)), **evidence)
        dead = [f"{h} {a}" for h, addresses in per_host.items() for a in addresses[:_CAP]
                if not tcp_answers(a, [params.mail_port], budget(params.timeout, ctx))]
        evidence["unreachable"] = dead[:_CAP]
        if dead:
            return Result.failed(domain, Message("Mail server(s) of %(domain)s do not answer over IPv6 on TCP "
                                                 "%(port)s: %(addresses)s.", domain=domain, port=params.mail_port,
                                                 addresses=_joined(dead)), **evidence)
        return Result.passed(domain, Message("Every mail server of %(domain)s has IPv6 and answers over it on TCP "
                                             "%(port)s (%(hosts)s).", domain=domain, port=params.mail_port,
                                             hosts=_joined(hosts)), **evidence)

    @staticmethod
    def _ns(domain: str, params: Ipv6Params, names: Names, ctx: Context) -> Result:
        zone = names.zone_of(domain)
        hosts = names.ns_hosts(zone)
        per_host = {h: names.addresses(h, "AAAA") for h in hosts[:_CAP]}
        with_v6 = [h for h, a in per_host.items() if a]
        evidence: dict[str, Any] = {"service": "ns", "zone": zone.to_text(), "ns": {h: a[:_CAP]
                                                                                for h, a in per_host.items()}}
        if len(with_v6) < params.min_ns_ipv6:
            return Result.failed(domain, Message("%(count)d of the name servers of %(zone)s have an IPv6 address; at "
                                                 "least %(min)d must (%(hosts)s).", count=len(with_v6),
                                                 zone=zone.to_text(), min=params.min_ns_ipv6,
                                                 hosts=_joined(hosts) or "-"), **evidence)
        if not params.reachability:
            return Result.passed(domain, Message("%(count)d name servers of %(zone)s have IPv6 (%(hosts)s); "
                                                 "reachability not tested.", count=len(with_v6), zone=zone.to_text(),
                                                 hosts=_joined(with_v6)), **evidence)
        dead = [f"{h} {a}" for h in with_v6 for a in per_host[h][:_CAP]
                if not dns_answers(a, params.dns_port, zone, budget(params.timeout, ctx))]
        evidence["unreachable"] = dead[:_CAP]
        if dead:
            return Result.failed(domain, Message("Name server(s) of %(zone)s do not answer DNS over IPv6: "
                                                 "%(addresses)s.", zone=zone.to_text(), addresses=_joined(dead)),
                                 **evidence)
        return Result.passed(domain, Message("%(count)d name servers of %(zone)s have IPv6 and answer DNS over it "
                                             "(%(hosts)s).", count=len(with_v6), zone=zone.to_text(),
                                             hosts=_joined(with_v6)), **evidence)


_PART_NAMES: dict[str, Message] = {"web": Message("web servers"), "mail": Message("mail servers"),
                                  "ns": Message("name servers")}
