"""mail_auth against a real DNS server on loopback serving good and broken SPF, DMARC and DKIM records."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from compliance.api import Context, Result, Status
from compliance.checks.mail_auth import MailAuth
from tests.servers import DnsServer, txt_record


def dkim_key(bits: int) -> str:
    """A DKIM p= value: an RSA public key of `bits` bits (below 1024 made from numbers, as no one generates those)."""
    if bits >= 1024:
        key = rsa.generate_private_key(65537, bits).public_key()
    else:
        key = rsa.RSAPublicNumbers(65537, secrets.randbits(bits) | (1 << (bits - 1)) | 1).public_key()
    return base64.b64encode(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()


ZONE = f"""\
$ORIGIN test.
$TTL 300
@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ NS ns.test.
good TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.good.test -all"
good TXT "google-site-verification=abc"
_spf.good TXT "v=spf1 ip4:198.51.100.0/24 ~all"
_dmarc.good TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"
sel1._domainkey.good TXT {txt_record("v=DKIM1; k=rsa; p=" + dkim_key(2048))}
sel2._domainkey.good TXT {txt_record("v=DKIM1; p=" + dkim_key(1024))}
old._domainkey.good TXT "v=DKIM1; p="
weak._domainkey.good TXT {txt_record("v=DKIM1; p=" + dkim_key(512))}
soft TXT "v=spf1 mx ~all"
two TXT "v=spf1 -all"
two TXT "v=spf1 mx -all"
plus TXT "v=spf1 +all"
neutral TXT "v=spf1 mx ?all"
noall TXT "v=spf1 mx"
redirected TXT "v=spf1 redirect=_spf.good.test"
badinclude TXT "v=spf1 include:missing.test -all"
syntax TXT "v=spf1 ip4:192.0.2.1 foo:bar -all"
nospf TXT "hello"
ten TXT "v=spf1 a mx exists:e.test include:i1.many.test -all"
eleven TXT "v=spf1 a mx include:i1.many.test include:i2.many.test -all"
i1.many TXT "v=spf1 a mx a:x.test mx:y.test exists:z.test ptr ~all"
i2.many TXT "v=spf1 a -all"
; the names ten.test and eleven.test look up exist, so that no look-up is void (RFC 7208 4.6.4)
ten A 192.0.2.10
ten MX 10 ten.test.
eleven A 192.0.2.11
eleven MX 10 eleven.test.
i1.many A 192.0.2.12
i1.many MX 10 i1.many.test.
i2.many A 192.0.2.13
x A 192.0.2.14
y MX 10 ten.test.
z A 127.0.0.2
e A 127.0.0.2
_dmarc.none TXT "v=DMARC1; p=none; rua=mailto:d@none.test"
none TXT "v=spf1 -all"
_dmarc.testing TXT "v=DMARC1; p=quarantine; t=y; rua=mailto:d@testing.test"
testing TXT "v=spf1 -all"
_dmarc.norua TXT "v=DMARC1; p=reject"
norua TXT "v=spf1 -all"
_dmarc.twodmarc TXT "v=DMARC1; p=reject; rua=mailto:a@twodmarc.test"
_dmarc.twodmarc TXT "v=DMARC1; p=none; rua=mailto:b@twodmarc.test"
twodmarc TXT "v=spf1 -all"
_dmarc.ext TXT "v=DMARC1; p=reject; rua=mailto:dmarc@reports.example"
ext TXT "v=spf1 -all"
_dmarc.unauth TXT "v=DMARC1; p=reject; rua=mailto:dmarc@reports.example"
unauth TXT "v=spf1 -all"
mail.good TXT "v=spf1 -all"
nodmarc TXT "v=spf1 -all"
"""
REPORTS = """\
$ORIGIN reports.example.
$TTL 300
@ SOA ns.reports.example. hostmaster.reports.example. 1 3600 600 86400 300
ext.test._report._dmarc TXT "v=DMARC1"
"""


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    with DnsServer({"test.": ZONE, "reports.example.": REPORTS}, bogus=["broken.test."]) as server:
        yield server


def check(server: DnsServer, domain: str, **params: Any) -> dict[str, Result]:
    ctx = Context("C", 20, nameserver=server.nameserver, net_timeout=3)
    results = list(MailAuth().run(MailAuth.Params.model_validate({"domain": domain, **params}), ctx))
    for result in results:
        json.dumps(result.evidence)
        assert result.target == domain
    return {r.evidence.get("standard", "all"): r for r in results}


def test_good_domain_passes_all_three(dns_server: DnsServer) -> None:
    results = check(dns_server, "good.test", dkim_selectors=["sel1", "sel2"])
    assert [(k, r.status, r.message) for k, r in results.items()] == [
        ("spf", Status.PASS, "SPF of good.test is strict (-all) and needs 1 of at most 10 DNS look-ups."),
        ("dmarc", Status.PASS, "DMARC of good.test is p=reject with reports to mailto:dmarc@good.test."),
        ("dkim", Status.PASS, "DKIM keys of good.test are published for sel1 (RSA 2048 bits), sel2 (RSA 1024 bits)."),
    ]


@pytest.mark.parametrize(("domain", "status", "message"), [
    ("soft.test", Status.PASS, "SPF of soft.test is strict (~all) and needs 1 of at most 10 DNS look-ups."),
    ("redirected.test", Status.PASS,
     "SPF of redirected.test is strict (~all) and needs 1 of at most 10 DNS look-ups."),
    ("ten.test", Status.PASS, "SPF of ten.test is strict (-all) and needs 10 of at most 10 DNS look-ups."),
    ("eleven.test", Status.FAIL, "SPF of eleven.test is not valid and strict: it needs 11 DNS look-ups (at most 10)."),
    ("two.test", Status.FAIL, "two.test has 2 SPF records (exactly one allowed, RFC 7208 3.2)."),
    ("nospf.test", Status.FAIL, "nospf.test has no SPF record."),
    ("plus.test", Status.FAIL,
     "SPF of plus.test is not valid and strict: its policy is +all; it must be -all or ~all."),
    ("neutral.test", Status.FAIL, "SPF of neutral.test is not valid and strict: its policy is ?all; it must be -all or "
                                  "~all."),
    ("noall.test", Status.FAIL, "SPF of noall.test is not valid and strict: it does not end in -all or ~all (no all "
                                "mechanism)."),
    ("badinclude.test", Status.FAIL, "SPF of badinclude.test is not valid and strict: include missing.test has no SPF "
                                     "record (permerror)."),
    ("syntax.test", Status.FAIL, "SPF of syntax.test is not valid and strict: syntax error: unknown term 'foo:bar'."),
])
def test_spf(dns_server: DnsServer, domain: str, status: Status, message: str) -> None:
    spf = check(dns_server, domain)["spf"]
    assert (spf.status, spf.message) == (status, message)


def test_spf_evidence_lists_the_lookups_followed(dns_server: DnsServer) -> None:
    spf = check(dns_server, "eleven.test")["spf"]
    assert spf.evidence["lookups"] == 11
    assert spf.evidence["followed"] == ["i1.many.test", "i2.many.test"]


@pytest.mark.parametrize(("domain", "params", "status", "message"), [
    ("none.test", {}, Status.FAIL, "DMARC of none.test is not strict: its policy is p=none (minimum quarantine)."),
    ("none.test", {"min_dmarc_policy": "none"}, Status.PASS,
     "DMARC of none.test is p=none with reports to mailto:d@none.test."),
    ("testing.test", {}, Status.FAIL,
     "DMARC of testing.test is not strict: its policy is p=quarantine in test mode (t=y) (minimum quarantine)."),
    ("norua.test", {}, Status.FAIL, "DMARC of norua.test is not strict: it asks for no aggregate reports (no "
                                    "rua=mailto:)."),
    ("norua.test", {"require_dmarc_reports": False}, Status.PASS, "DMARC of norua.test is p=reject."),
    ("twodmarc.test", {}, Status.FAIL, "twodmarc.test has 2 DMARC records at _dmarc.twodmarc.test (exactly one "
                                       "allowed)."),
    ("nodmarc.test", {}, Status.FAIL, "nodmarc.test has no DMARC record (at _dmarc.nodmarc.test)."),
    ("ext.test", {}, Status.PASS, "DMARC of ext.test is p=reject with reports to mailto:dmarc@reports.example."),
    ("unauth.test", {}, Status.FAIL, "DMARC of unauth.test is not strict: reports.example has not authorised "
                                     "reports for unauth.test (unauth.test._report._dmarc.reports.example)."),
    ("mail.good.test", {}, Status.PASS, "DMARC of mail.good.test is p=reject (inherited from good.test) with "
                                        "reports to mailto:dmarc@good.test."),
])
def test_dmarc(dns_server: DnsServer, domain: str, params: dict[str, Any], status: Status, message: str) -> None:
    dmarc = check(dns_server, domain, **params)["dmarc"]
    assert (dmarc.status, dmarc.message) == (status, message)


@pytest.mark.parametrize(("domain", "selectors", "status", "message"), [
    ("good.test", ["sel1", "missing"], Status.FAIL,
     "DKIM of good.test is incomplete: selector missing has no key (missing._domainkey.good.test)."),
    ("good.test", ["old"], Status.FAIL, "DKIM of good.test is incomplete: selector old: its key is empty (revoked)."),
    ("good.test", ["weak"], Status.FAIL,
     "DKIM of good.test is incomplete: selector weak: its RSA key has 512 bits (at least 1024, RFC 8301)."),
    ("good.test", [], Status.PASS,
     "_domainkey.good.test exists, so good.test publishes DKIM keys; DKIM selectors cannot be discovered, list them "
     "in dkim_selectors to check the keys themselves."),
    ("soft.test", [], Status.FAIL,
     "soft.test publishes no DKIM keys (_domainkey.soft.test does not exist); DKIM selectors cannot be discovered, "
     "so list the selectors in dkim_selectors if keys exist elsewhere."),
    ("nodmarc.test", [], Status.PASS, "nodmarc.test sends no mail (v=spf1 -all), so it needs no DKIM key."),
])
def test_dkim(dns_server: DnsServer, domain: str, selectors: list[str], status: Status, message: str) -> None:
    dkim = check(dns_server, domain, dkim_selectors=selectors)["dkim"]
    assert (dkim.status, dkim.message) == (status, message)


def test_missing_domain_and_servfail_are_errors(dns_server: DnsServer) -> None:
    [missing] = check(dns_server, "nowhere.test").values()
    [broken] = check(dns_server, "broken.test").values()
    assert missing.status == broken.status == Status.ERROR
    assert missing.message == ("Could not check mail authentication of nowhere.test: the domain does not exist in DNS "
                               "(NXDOMAIN).")
    assert broken.message == ("Could not check mail authentication of broken.test: no name server answered for "
                              "broken.test (SERVFAIL or refused).")


def test_nameserver_parameter_overrides_the_configuration(dns_server: DnsServer) -> None:
    with DnsServer(ZONE.replace("p=reject; rua", "p=none; rua")) as other:
        ctx = Context("C", 20, nameserver=other.nameserver, net_timeout=3)
        from_config = list(MailAuth().run(MailAuth.Params(domain="good.test"), ctx))[1]
        overridden = list(MailAuth().run(MailAuth.Params(domain="good.test", nameserver=dns_server.nameserver), ctx))[1]
    assert from_config.status == Status.FAIL and overridden.status == Status.PASS


def test_invalid_domain_is_rejected() -> None:
    with pytest.raises(ValueError, match="'not a domain' is not a domain name"):
        MailAuth.Params(domain="not a domain")


def test_a_control_with_mail_auth_ends_up_as_findings(project: Any, dns_server: DnsServer) -> None:
    project.write_config(f"network:\n  nameserver: {dns_server.nameserver}\n  timeout: 3s\n"
                         "targets:\n  mail_domains: [good.test, none.test]\n")
    project.control("mail.yaml", """\
id: MAIL-AUTH
title: Mail domains publish strict SPF and DMARC, and our DKIM keys
theme: technological
severity: high
checks:
  - plugin: mail_auth
    params: {dkim_selectors: [sel1]}
    targets: mail_domains
""")
    scan = project.run("scan", "--format", "json")
    assert scan.exit_code == 1, scan.output
    results = [(r["target"], r["evidence"]["standard"], r["status"]) for r in json.loads(scan.stdout)["results"]]
    assert sorted(results) == [
        ("good.test", "dkim", "pass"), ("good.test", "dmarc", "pass"), ("good.test", "spf", "pass"),
        ("none.test", "dkim", "fail"), ("none.test", "dmarc", "fail"), ("none.test", "spf", "pass")]
    findings = json.loads(project.run("findings", "--format", "json").stdout)
    assert [(f["control"], f["target"]) for f in findings] == [("MAIL-AUTH", "none.test")]
    assert findings[0]["message"] == "DMARC of none.test is not strict: its policy is p=none (minimum quarantine)."


# --- SPF syntax (RFC 7208 section 12), void look-ups, the public suffix list, required and advice ----------

@pytest.mark.parametrize("record", [
    "v=spf1 -all",
    "v=spf1 ip4:192.0.2.0/24 ip4:192.0.2.1 ip4:0.0.0.0/0 ip4:198.51.100.7/32 ~all",
    "v=spf1 ip6:2001:db8::/32 ip6:::1 ip6:2001:db8::1/128 ip6:::ffff:192.0.2.1 ip6:2001:db8::/0 -all",
    "v=spf1 a a:mail.example.com a/24 a//64 a/24//64 a:mail.example.com/28//96 mx mx:example.com/24 -all",
    "v=spf1 ptr ptr:example.com ?include:_spf.example.com +exists:%{i}._spf.%{d} -all",
    "v=spf1 include:_spf.%{d2} a:%{l1r-}.example.com exists:%{ir}.%{v}._spf.%{d} include:%{d} -all",
    "v=spf1 redirect=_spf.example.com",
    "v=spf1 exp=explain.%{d} -all",
    "v=spf1 exp=%{c}.%{r}.%{t}.example.com -all",
    "v=spf1 -all unknown-modifier=anything%%here foo.bar_baz=%{d}",
    "v=spf1 A:Example.COM MX IP4:192.0.2.1 -ALL",
    "v=spf1  ~all  ",
    "v=spf1 include:example.com.",
])
def test_valid_spf_syntax(record: str) -> None:
    from compliance.checks.mail_auth import parse_spf

    assert parse_spf(record)[2] is None


@pytest.mark.parametrize(("record", "problem"), [
    ("v=spf1 ip4:999.1.1.1 -all", "'ip4:999.1.1.1': '999.1.1.1' is not an IPv4 address"),
    ("v=spf1 ip4:192.0.2.256 -all", "'ip4:192.0.2.256': '192.0.2.256' is not an IPv4 address"),
    ("v=spf1 ip4:192.0.2 -all", "'ip4:192.0.2': '192.0.2' is not an IPv4 address"),
    ("v=spf1 ip4:01.2.3.4 -all", "'ip4:01.2.3.4': '01.2.3.4' is not an IPv4 address"),
    ("v=spf1 ip4:2001:db8::1 -all", "'ip4:2001:db8::1': '2001:db8::1' is not an IPv4 address"),
    ("v=spf1 ip4:192.0.2.0/33 -all", "'ip4:192.0.2.0/33': the prefix length /33 is not 0 to 32"),
    ("v=spf1 ip4:192.0.2.0/024 -all", "'ip4:192.0.2.0/024': the prefix length /024 is not 0 to 32"),
    ("v=spf1 ip4:192.0.2.0/ -all", "'ip4:192.0.2.0/': '192.0.2.0/' is not an address with an optional /prefix length"),
    ("v=spf1 ip4: -all", "'ip4:': ip4 without an address"),
    ("v=spf1 ip4 -all", "'ip4': ip4 without an address"),
    ("v=spf1 ip6:2001:db8::/129 -all", "'ip6:2001:db8::/129': the prefix length /129 is not 0 to 128"),
    ("v=spf1 ip6:2001:db8:::1 -all", "'ip6:2001:db8:::1': '2001:db8:::1' is not an IPv6 address"),
    ("v=spf1 ip6:192.0.2.1 -all", "'ip6:192.0.2.1': '192.0.2.1' is not an IPv6 address"),
    ("v=spf1 ip6:fe80::1%eth0 -all", "'ip6:fe80::1%eth0': 'fe80::1%eth0' is not an IPv6 address"),
    ("v=spf1 a/33 -all", "'a/33': the prefix length /33 is not 0 to 32"),
    ("v=spf1 mx//129 -all", "'mx//129': the prefix length /129 is not 0 to 128"),
    ("v=spf1 a:192.0.2.1 -all", "'a:192.0.2.1': '192.0.2.1' is not a domain (it must end in a dot and a top-level "
                                "label, or in a macro)"),
    ("v=spf1 include:localhost -all", "'include:localhost': 'localhost' is not a domain (it must end in a dot and a "
                                      "top-level label, or in a macro)"),
    ("v=spf1 include:example.-com -all", "'include:example.-com': 'example.-com' is not a domain (it must end in a "
                                         "dot and a top-level label, or in a macro)"),
    ("v=spf1 mx:example.com:25 -all", "'mx:example.com:25': 'example.com:25' is not a domain (it must end in a dot "
                                      "and a top-level label, or in a macro)"),
    ("v=spf1 include: -all", "'include:': include without a domain"),
    ("v=spf1 exists -all", "'exists': exists without a domain"),
    ("v=spf1 all:example.com", "'all:example.com': all takes no argument"),
    ("v=spf1 ptr=example.com -all", None),  # a modifier named ptr: unknown modifiers are ignored (RFC 7208 6)
    ("v=spf1 ptrexample.com -all", "unknown term 'ptrexample.com'"),
    ("v=spf1 exists:%{x}.example.com -all", "'exists:%{x}.example.com': '%{x}.example.com' is not a domain (or has "
                                            "a broken %-macro)"),
    ("v=spf1 include:%{d.example.com -all", "'include:%{d.example.com': '%{d.example.com' is not a domain (or has a "
                                            "broken %-macro)"),
    ("v=spf1 exists:%{c}.example.com -all", "'exists:%{c}.example.com': the macro %{c} is allowed only in exp="),
    ("v=spf1 redirect=localhost", "'redirect=localhost': 'localhost' is not a domain (it must end in a dot and a "
                                  "top-level label, or in a macro)"),
    ("v=spf1 foo=%z -all", "'foo=%z': '%z' has a broken %-macro"),
    ("v=spf1 redirect=a.example redirect=b.example", "the redirect= modifier appears twice"),
    ("v=spf1 exp=a.example exp=b.example -all", "the exp= modifier appears twice"),
    ("v=spf1 -all\tmx", "'-all\\tmx' has characters SPF does not allow"),
    ("v=spf1 a:exämple.com -all", "'a:exämple.com' has characters SPF does not allow"),
    ("v=spf1 =all", "unknown term '=all'"),
    ("v=spf1 !all", "unknown term '!all'"),
])
def test_invalid_spf_syntax_is_named(record: str, problem: str | None) -> None:
    from compliance.checks.mail_auth import parse_spf

    found = parse_spf(record)[2]
    assert (str(found) if found else None) == problem


SYNTAX_ZONE = """\
$ORIGIN syntax.test.
$TTL 300
@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ NS ns.test.
badip TXT "v=spf1 ip4:999.1.1.1 -all"
badprefix TXT "v=spf1 ip6:2001:db8::/200 -all"
badinc TXT "v=spf1 include:inner.syntax.test -all"
inner TXT "v=spf1 ip4:192.0.2.0/40 ~all"
voids TXT "v=spf1 a:gone1.syntax.test mx:gone2.syntax.test exists:gone3.syntax.test -all"
twovoids TXT "v=spf1 a:gone1.syntax.test mx mx:here.syntax.test exists:here.syntax.test -all"
here A 192.0.2.1
here MX 10 here.syntax.test.
"""
PSL_ZONES = {
    "co.uk.": """\
$ORIGIN co.uk.
$TTL 300
@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ NS ns.test.
_dmarc TXT "v=DMARC1; p=none"
example TXT "v=spf1 -all"
_dmarc.example TXT "v=DMARC1; p=reject; sp=quarantine"
gemeente.example TXT "v=spf1 -all"
""",
    "gov.uk.": """\
$ORIGIN gov.uk.
$TTL 300
@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ NS ns.test.
_dmarc TXT "v=DMARC1; p=reject"
gemeente TXT "v=spf1 -all"
afdeling.gemeente TXT "v=spf1 -all"
""",
}


@pytest.fixture(scope="module")
def more_dns() -> Iterator[DnsServer]:
    with DnsServer({"syntax.test.": SYNTAX_ZONE, **PSL_ZONES}) as server:
        yield server


@pytest.mark.parametrize(("domain", "problem"), [
    ("badip.syntax.test", "syntax error: 'ip4:999.1.1.1': '999.1.1.1' is not an IPv4 address"),
    ("badprefix.syntax.test", "syntax error: 'ip6:2001:db8::/200': the prefix length /200 is not 0 to 128"),
    ("badinc.syntax.test", "syntax error in the record of inner.syntax.test: 'ip4:192.0.2.0/40': the prefix length "
                           "/40 is not 0 to 32"),
    ("voids.syntax.test", "3 of its look-ups find nothing (at most 2 void look-ups, RFC 7208 4.6.4): "
                          "a:gone1.syntax.test, mx:gone2.syntax.test, exists:gone3.syntax.test"),
])
def test_a_malformed_spf_record_or_too_many_void_lookups_fail(more_dns: DnsServer, domain: str, problem: str) -> None:
    spf = check(more_dns, domain)["spf"]
    assert (spf.status, spf.message) == (Status.FAIL, f"SPF of {domain} is not valid and strict: {problem}.")


def test_two_void_lookups_are_allowed(more_dns: DnsServer) -> None:
    spf = check(more_dns, "twovoids.syntax.test")["spf"]
    assert spf.status == Status.PASS, spf.message
    assert spf.evidence["void_lookups"] == ["a:gone1.syntax.test", "mx:twovoids.syntax.test"]


@pytest.mark.parametrize(("domain", "org"), [
    ("gemeente.nl", "gemeente.nl"),
    ("mail.afdeling.gemeente.nl", "gemeente.nl"),
    ("gemeente.example.co.uk", "example.co.uk"),
    ("example.co.uk", "example.co.uk"),
    ("afdeling.gemeente.gov.uk", "gemeente.gov.uk"),
    ("co.uk", "co.uk"),
    ("mail.good.test", "good.test"),  # a TLD the list does not know: its default rule '*'
    ("GEMEENTE.NL.", "gemeente.nl"),
])
def test_the_organisational_domain_follows_the_public_suffix_list(domain: str, org: str) -> None:
    from compliance.checks.mail_auth import organisational_domain

    assert organisational_domain(domain) == org


@pytest.mark.parametrize(("domain", "status", "message"), [
    # the last two labels would be co.uk and gov.uk, whose records (p=none, p=reject) must not count
    ("gemeente.example.co.uk", Status.PASS, "DMARC of gemeente.example.co.uk is sp=quarantine (inherited from "
                                            "example.co.uk)."),
    ("afdeling.gemeente.gov.uk", Status.FAIL, "afdeling.gemeente.gov.uk has no DMARC record (at "
                                              "_dmarc.afdeling.gemeente.gov.uk)."),
])
def test_a_subdomain_inherits_dmarc_from_its_organisational_domain(more_dns: DnsServer, domain: str, status: Status,
                                                                   message: str) -> None:
    dmarc = check(more_dns, domain, part="required")["dmarc"]
    assert (dmarc.status, dmarc.message) == (status, message)


@pytest.mark.parametrize(("domain", "part", "statuses", "dmarc_message"), [
    ("norua.test", "required", {"spf": "pass", "dmarc": "pass", "dkim": "pass"}, "DMARC of norua.test is p=reject."),
    ("norua.test", "advice", {"dmarc": "fail"}, "DMARC of norua.test does not follow the advice (internet.nl "
                                                "recommends it): it asks for no aggregate reports (no rua=mailto:)."),
    ("norua.test", "all", {"spf": "pass", "dmarc": "fail", "dkim": "pass"},
     "DMARC of norua.test is not strict: it asks for no aggregate reports (no rua=mailto:)."),
    ("unauth.test", "required", {"spf": "pass", "dmarc": "pass", "dkim": "pass"},
     "DMARC of unauth.test is p=reject with reports to mailto:dmarc@reports.example."),
    ("unauth.test", "advice", {"dmarc": "fail"}, "DMARC of unauth.test does not follow the advice (internet.nl "
                                                 "recommends it): reports.example has not authorised reports for "
                                                 "unauth.test (unauth.test._report._dmarc.reports.example)."),
    ("good.test", "advice", {"dmarc": "pass"}, "DMARC of good.test asks for aggregate reports at "
                                               "mailto:dmarc@good.test, as advised."),
    ("ext.test", "advice", {"dmarc": "pass"}, "DMARC of ext.test asks for aggregate reports at "
                                              "mailto:dmarc@reports.example, as advised."),
    ("nodmarc.test", "advice", {"dmarc": "skipped"}, "No DMARC advice for nodmarc.test: it has no single DMARC "
                                                     "record (the required check reports that)."),
    ("none.test", "required", {"spf": "pass", "dmarc": "fail", "dkim": "pass"},
     "DMARC of none.test is not strict: its policy is p=none (minimum quarantine)."),
])
def test_required_and_advice_parts(dns_server: DnsServer, domain: str, part: str, statuses: dict[str, str],
                                   dmarc_message: str) -> None:
    results = check(dns_server, domain, part=part)
    assert {k: r.status.value for k, r in results.items()} == statuses
    assert results["dmarc"].message == dmarc_message
    assert results["dmarc"].evidence["part"] == part


def test_require_dmarc_reports_still_decides_when_given(dns_server: DnsServer) -> None:
    assert check(dns_server, "norua.test", part="required", require_dmarc_reports=True)["dmarc"].status == Status.FAIL
    assert check(dns_server, "norua.test", require_dmarc_reports=False)["dmarc"].status == Status.PASS


def test_required_and_advice_are_told_apart_in_the_scan_json(project: Any, dns_server: DnsServer) -> None:
    project.write_config(f"network:\n  nameserver: {dns_server.nameserver}\n  timeout: 3s\n"
                         "targets:\n  mail_domains: [norua.test]\n")
    project.control("mail.yaml", """\
- id: MAIL-REQUIRED
  title: Mail domains meet what internet.nl requires
  theme: technological
  severity: high
  checks:
    - {plugin: mail_auth, params: {part: required}, targets: mail_domains}
- id: MAIL-ADVICE
  title: Mail domains follow internet.nl's advice
  theme: technological
  severity: low
  checks:
    - {plugin: mail_auth, params: {part: advice}, targets: mail_domains}
""")
    scan = project.run("scan", "--format", "json")
    assert scan.exit_code == 1, scan.output
    results = sorted((r["control"], r["evidence"]["standard"], r["evidence"].get("part"), r["status"])
                     for r in json.loads(scan.stdout)["results"])
    assert results == [("MAIL-ADVICE", "dmarc", "advice", "fail"), ("MAIL-REQUIRED", "dkim", "required", "pass"),
                       ("MAIL-REQUIRED", "dmarc", "required", "pass"), ("MAIL-REQUIRED", "spf", "required", "pass")]
    findings = json.loads(project.run("findings", "--format", "json").stdout)
    assert [(f["control"], f["target"]) for f in findings] == [("MAIL-ADVICE", "norua.test")]
