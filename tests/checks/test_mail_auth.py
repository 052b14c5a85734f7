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
