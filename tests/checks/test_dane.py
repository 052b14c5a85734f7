"""dane against real SMTP STARTTLS servers on loopback and a loopback DNS server with signed zones and TLSA records."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from compliance.api import Context, Result, Status
from compliance.checks.dane import Dane
from tests.servers import DnsServer, TlsServer, free_port, server_context, signed_zone


def spki_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def cert_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def child(origin: str, records: str) -> str:
    return f"""$TTL 300
@ SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 300
@ NS ns.{origin}
{records}"""


@dataclass
class Lab:
    dns: DnsServer
    validating: DnsServer
    ee_port: int
    ta_port: int
    plain_port: int
    closed_port: int


@pytest.fixture(scope="module")
def lab(ca: trustme.CA) -> Iterator[Lab]:
    """Three mail servers (DANE-EE target, DANE-TA target behind an intermediate CA, no STARTTLS) and the zones."""
    ee_leaf = ca.issue_cert("mx.good.test")
    intermediate = ca.create_child_ca()
    ta_leaf = intermediate.issue_cert("mx.ta.test")
    ee_cert = x509.load_pem_x509_certificate(ee_leaf.cert_chain_pems[0].bytes())
    inter_cert = x509.load_pem_x509_certificate(intermediate.cert_pem.bytes())
    other = x509.load_pem_x509_certificate(ca.issue_cert("other.test").cert_chain_pems[0].bytes())
    with TlsServer(server_context(ee_leaf), smtp=True) as ee, TlsServer(server_context(ta_leaf), smtp=True) as ta, \
            TlsServer(server_context(ee_leaf), smtp=True, offer_starttls=False) as plain:
        closed = free_port()
        ee_tlsa = f"3 1 1 {spki_sha256(ee_cert)}"
        per_domain = {
            # domain: (port of its MX, TLSA records at _port._tcp.mx.<domain>, signed?)
            "good": (ee.port, [ee_tlsa, "3 1 1 " + "00" * 32], True),
            "certhash": (ee.port, [f"3 0 1 {cert_sha256(ee_cert)}"], True),
            "ta": (ta.port, [f"2 0 1 {cert_sha256(inter_cert)}"], True),
            "wrongname": (ta.port, [f"2 0 1 {cert_sha256(inter_cert)}"], True),
            "nomatch": (ee.port, [f"3 1 1 {spki_sha256(other)}"], True),
            "pkix": (ee.port, [f"1 1 1 {spki_sha256(ee_cert)}"], True),
            "notlsa": (ee.port, [], True),
            "unsigned": (ee.port, [ee_tlsa], False),
            "nostarttls": (plain.port, [ee_tlsa], True),
            "down": (closed, [ee_tlsa], True),
            "bogus": (ee.port, [ee_tlsa], True),
            "tampered": (ee.port, [ee_tlsa], True),
            "dual": (ee.port, [ee_tlsa], True),
        }
        zones: dict[str, str] = {}
        parent = ["$TTL 300", "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300", "@ NS ns.test."]
        for name, (port, tlsa, signed) in per_domain.items():
            origin = f"{name}.test."
            records = f"@ MX 10 mx.{origin}\nmx A 127.0.0.1\n" + "".join(
                f"_{port}._tcp.mx TLSA {record}\n" for record in tlsa)
            if name == "dual":  # an IPv6 address where the mail server does not listen
                records += "mx AAAA ::1\n"
            text = child(origin, records)
            parent.append(f"{origin} NS ns.{origin}")
            if signed:
                text, ds = signed_zone(origin, text)
                parent.append(ds)
            if name == "tampered":  # the TLSA data changed after signing: the signature no longer fits
                digest = spki_sha256(ee_cert)
                assert digest in text.lower()
                text = re.sub(digest, spki_sha256(other), text, flags=re.IGNORECASE)
            zones[origin] = text
        zones["nullmx.test."] = child("nullmx.test.", "@ MX 0 .\n")
        zones["test."] = "\n".join(parent) + "\n"
        with DnsServer(zones) as dns, DnsServer(zones, validated=["good.test."],
                                                   bogus=[f"_{ee.port}._tcp.mx.bogus.test."]) as validating:
            yield Lab(dns, validating, ee.port, ta.port, plain.port, closed)


def check(server: DnsServer, domain: str, **params: Any) -> list[Result]:
    ctx = Context("C", 20, nameserver=server.nameserver, net_timeout=2)
    results = list(Dane().run(Dane.Params.model_validate({"domain": domain, **params}), ctx))
    for result in results:
        json.dumps(result.evidence)
    return results


def port_of(lab: Lab, domain: str) -> int:
    return {"ta.test": lab.ta_port, "wrongname.test": lab.ta_port, "nostarttls.test": lab.plain_port,
            "down.test": lab.closed_port}.get(domain, lab.ee_port)


def dane(lab: Lab, domain: str, server: DnsServer | None = None, **params: Any) -> Result:
    results = check(server or lab.dns, domain, port=port_of(lab, domain), mx_dnssec=False, **params)
    assert len(results) == 1, [r.message for r in results]
    return results[0]


OWN = "own RRSIG/DNSKEY/DS check"


def test_dane_ee_matching_key_passes_with_the_own_dnssec_check(lab: Lab) -> None:
    result = dane(lab, "good.test")
    assert result.status == Status.PASS, result.message
    assert result.message == (f"DANE of mail server mx.good.test is valid: DNSSEC-signed TLSA records ({OWN} "
                              f"({lab.dns.nameserver} did not validate)) match the certificate it presents (DANE-EE "
                              "3 1 1).")
    assert result.evidence["secure"] is True and result.evidence["rollover_scheme"] is True
    assert result.evidence["addresses"] == {"127.0.0.1": "DANE-EE 3 1 1"}
    assert result.evidence["tlsa_name"] == f"_{lab.ee_port}._tcp.mx.good.test"


def test_validating_resolver_ad_flag_is_trusted(lab: Lab) -> None:
    result = dane(lab, "good.test", lab.validating, method="resolver")
    assert result.status == Status.PASS
    assert f"(validating resolver {lab.validating.nameserver})" in result.message


def test_full_certificate_hash_and_dane_ta_pass(lab: Lab) -> None:
    assert dane(lab, "certhash.test").status == Status.PASS
    ta = dane(lab, "ta.test")
    assert ta.status == Status.PASS, ta.message
    assert ta.evidence["addresses"] == {"127.0.0.1": "DANE-TA 2 0 1"}


def test_dane_ta_requires_the_name(lab: Lab) -> None:
    result = dane(lab, "wrongname.test")
    assert (result.status, result.message) == (
        Status.FAIL, "DANE of mail server mx.wrongname.test fails: 127.0.0.1: the certificate does not name "
                     "mx.wrongname.test or wrongname.test (DANE-TA requires the name).")


@pytest.mark.parametrize(("domain", "message"), [
    ("nomatch.test", "DANE of mail server mx.nomatch.test fails: 127.0.0.1: the certificate matches none of the "
                     "TLSA records."),
    ("pkix.test", "Mail server mx.pkix.test has no usable TLSA records (only PKIX-TA/PKIX-EE or unknown types, which "
                  "SMTP ignores)."),
    ("nostarttls.test", "DANE of mail server mx.nostarttls.test fails: 127.0.0.1: the mail server does not offer "
                        "STARTTLS."),
])
def test_failures_name_the_reason(lab: Lab, domain: str, message: str) -> None:
    result = dane(lab, domain)
    assert (result.status, result.message) == (Status.FAIL, message)


def test_missing_tlsa_fails(lab: Lab) -> None:
    result = dane(lab, "notlsa.test")
    assert (result.status, result.message) == (
        Status.FAIL, f"Mail server mx.notlsa.test has no TLSA records (_{lab.ee_port}._tcp.mx.notlsa.test): no DANE.")


def test_unsigned_tlsa_is_unusable(lab: Lab) -> None:
    result = dane(lab, "unsigned.test")
    assert (result.status, result.message) == (
        Status.FAIL, "TLSA records of mail server mx.unsigned.test are not DNSSEC-signed (the records have no "
                     "signature (RRSIG)): unusable (RFC 7672 2.2).")


def test_bogus_tlsa_fails(lab: Lab) -> None:
    result = dane(lab, "bogus.test", lab.validating)
    assert result.status == Status.FAIL
    assert result.message.startswith("TLSA records of mail server mx.bogus.test do not validate with DNSSEC (")


def test_tampered_tlsa_fails_the_own_check(lab: Lab) -> None:
    result = dane(lab, "tampered.test", method="own")
    assert (result.status, result.message) == (
        Status.FAIL, "TLSA records of mail server mx.tampered.test do not validate with DNSSEC (the TLSA record set "
                     "of tampered.test. does not validate (no RRSIGs validated)): unusable.")


def test_unreachable_mail_server_is_an_error(lab: Lab) -> None:
    result = dane(lab, "down.test")
    assert (result.status, result.message) == (
        Status.ERROR, "Could not check DANE of mail server mx.down.test: 127.0.0.1: connection refused.")


def test_every_address_counts_unless_limited_to_ipv4(lab: Lab) -> None:
    both = dane(lab, "dual.test")
    assert (both.status, both.message) == (
        Status.ERROR, "Could not check DANE of mail server mx.dual.test: ::1: connection refused.")
    assert both.evidence["addresses"] == {"127.0.0.1": "DANE-EE 3 1 1", "::1": "unreachable"}
    assert dane(lab, "dual.test", ip_versions=[4]).status == Status.PASS


def test_mx_dnssec_results_follow(lab: Lab) -> None:
    results = check(lab.dns, "unsigned.test", port=lab.ee_port)
    assert [r.evidence["aspect"] for r in results] == ["dane", "mx_dnssec"]
    assert results[1].status == Status.FAIL and results[1].target == "unsigned.test"
    assert results[1].message.startswith("DNSSEC of mx.unsigned.test: zone unsigned.test. is not signed")
    good = check(lab.dns, "good.test", port=lab.ee_port)
    assert [r.status for r in good] == [Status.PASS, Status.PASS]


def test_no_mail_and_dns_errors(lab: Lab) -> None:
    [skipped] = check(lab.dns, "nullmx.test")
    assert (skipped.status, skipped.message) == (Status.SKIPPED, "DANE of nullmx.test not tested: the domain accepts "
                                                                 "no mail (null MX).")
    [nx] = check(lab.dns, "nowhere.good.test")
    assert (nx.status, nx.message) == (Status.ERROR, "Could not check DANE of nowhere.good.test: the domain does not "
                                                     "exist in DNS (NXDOMAIN).")
    ctx = Context("C", 20, nameserver=f"127.0.0.1:{free_port(kind=socket.SOCK_DGRAM)}", net_timeout=0.5)
    [down] = Dane().run(Dane.Params(domain="good.test"), ctx)
    assert down.status == Status.ERROR and down.message.startswith("Could not check DANE of good.test: ")


@pytest.mark.parametrize("params", [
    {"domain": "good.test", "port": 0},
    {"domain": "good.test", "method": "magic"},
    {"domain": "no domain"},
    {"domain": "good.test", "starttls": "smtp"},
    {"domain": "good.test", "ip_versions": [5]},
    {"domain": "good.test", "ip_versions": []},
])
def test_invalid_params_are_rejected(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Dane.Params.model_validate(params)
