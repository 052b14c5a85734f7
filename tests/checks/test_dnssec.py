"""dnssec against a real DNS server on loopback serving zones signed here (dnspython, ECDSA P-256)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from compliance.api import Context, Result, Status
from compliance.checks.dnssec import Dnssec
from tests.servers import DnsServer, signed_zone

OWN = "method: own DNSKEY/RRSIG/DS check"


def child(name: str) -> str:
    return f"""\
$TTL 300
@ SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 300
@ NS ns.{name}.
@ TXT "v=spf1 -all"
www A 192.0.2.10
"""


def build_zones() -> dict[str, str]:
    zones: dict[str, str] = {}
    parent = ["$TTL 300", "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300", "@ NS ns.test."]
    for name in ("signed", "island", "wrongds", "tampered", "expired", "bogus"):
        origin = f"{name}.test."
        if name == "expired":
            now = int(time.time())
            import dns.dnssec
            import dns.zone
            from cryptography.hazmat.primitives.asymmetric import ec

            zone = dns.zone.from_text(child(origin[:-1]), origin=origin, relativize=False)
            key = ec.generate_private_key(ec.SECP256R1())
            dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257)
            dns.dnssec.sign_zone(zone, keys=[(key, dnskey)], inception=now - 10 * 86400, expiration=now - 86400)
            text, ds = zone.to_text(relativize=False), f"{origin} DS {dns.dnssec.make_ds(origin, dnskey, 'SHA256')}"
        else:
            text, ds = signed_zone(origin, child(origin[:-1]))
        if name == "tampered":
            text = text.replace(f"hostmaster.{origin} 1 3600", f"hostmaster.{origin} 2 3600")
        if name == "wrongds":
            _, ds = signed_zone(origin, child(origin[:-1]))  # a DS for a key the zone does not use
        parent.append(f"{origin} NS ns.{origin}")  # the delegation
        if name != "island":
            parent.append(ds)
        zones[origin] = text
    zones["unsigned.test."] = child("unsigned.test")
    zones["test."] = "\n".join(parent) + "\n"
    return zones


@pytest.fixture(scope="module")
def zones() -> dict[str, str]:
    return build_zones()


@pytest.fixture(scope="module")
def plain(zones: dict[str, str]) -> Iterator[DnsServer]:
    """A resolver that does not validate: no AD flag ever."""
    with DnsServer(zones) as server:
        yield server


@pytest.fixture(scope="module")
def validating(zones: dict[str, str]) -> Iterator[DnsServer]:
    """Imitates a validating resolver: AD for signed.test, SERVFAIL (unless CD) for bogus.test."""
    with DnsServer(zones, validated=["signed.test."], bogus=["bogus.test."]) as server:
        yield server


def check(server: DnsServer, domain: str, **params: Any) -> Result:
    ctx = Context("C", 20, nameserver=server.nameserver, net_timeout=3)
    [result] = Dnssec().run(Dnssec.Params.model_validate({"domain": domain, **params}), ctx)
    json.dumps(result.evidence)
    return result


def test_signed_zone_with_matching_ds_passes_the_own_check(plain: DnsServer) -> None:
    result = check(plain, "signed.test")
    assert result.status == Status.PASS
    assert result.message.startswith("DNSSEC of signed.test validates: DNSKEY set and SOA of signed.test. are signed "
                                      "and the parent's DS matches key ")
    assert result.message.endswith(f"({OWN} ({plain.nameserver} did not validate); the chain above the parent is "
                                   "not checked).")
    assert result.evidence["method"] == "own" and result.evidence["validated"] is True


def test_a_name_inside_the_zone_checks_the_zone(plain: DnsServer) -> None:
    result = check(plain, "www.signed.test", method="own")
    assert result.status == Status.PASS and result.evidence["zone"] == "signed.test."
    assert f"({OWN}; the chain" in result.message


@pytest.mark.parametrize(("domain", "message"), [
    ("unsigned.test", f"DNSSEC of unsigned.test: zone unsigned.test. is not signed (no DNSKEY; {OWN})."),
    ("island.test", "DNSSEC of island.test: zone island.test. is signed but its parent has no DS record, so no "
                    f"resolver can validate it ({OWN})."),
    ("wrongds.test", f"DNSSEC of wrongds.test: no DS record at the parent of wrongds.test. matches a DNSKEY of the "
                     f"zone ({OWN})."),
    ("tampered.test", "DNSSEC of tampered.test does not validate: the SOA of tampered.test. does not validate (no "
                      f"RRSIGs validated) ({OWN})."),
    ("expired.test", "DNSSEC of expired.test does not validate: the DNSKEY set of expired.test. does not validate "
                     f"(its signature has expired) ({OWN})."),
])
def test_broken_dnssec_fails_with_the_reason(plain: DnsServer, domain: str, message: str) -> None:
    result = check(plain, domain, method="own")
    assert (result.status, result.message) == (Status.FAIL, message)


def test_validating_resolver_ad_flag_is_trusted(validating: DnsServer) -> None:
    result = check(validating, "signed.test")
    assert result.status == Status.PASS
    assert result.message == (f"DNSSEC of signed.test validates: {validating.nameserver} sets the AD flag (method: "
                              "validating resolver).")
    assert result.evidence["method"] == "resolver"


def test_validating_resolver_servfail_means_bogus(validating: DnsServer) -> None:
    result = check(validating, "bogus.test")
    assert result.status == Status.FAIL
    assert result.message == (f"DNSSEC of bogus.test does not validate: {validating.nameserver} answers SERVFAIL, "
                              "but answers with checking disabled (bogus signatures; method: validating resolver).")


def test_auto_falls_back_to_the_own_check_when_the_resolver_does_not_validate(validating: DnsServer) -> None:
    result = check(validating, "tampered.test")
    assert result.status == Status.FAIL and result.evidence["method"] == "own"
    assert "did not validate" in result.message


def test_method_resolver_requires_the_ad_flag(plain: DnsServer) -> None:
    result = check(plain, "signed.test", method="resolver")
    assert result.status == Status.FAIL
    assert result.message == (f"DNSSEC of signed.test is not validated by {plain.nameserver} (no AD flag): the zone "
                              "is not signed, or the resolver does not validate.")


def test_missing_domain_is_an_error(plain: DnsServer) -> None:
    result = check(plain, "nowhere.test")
    assert result.status == Status.ERROR
    assert result.message == "Could not check DNSSEC of nowhere.test: the domain does not exist in DNS (NXDOMAIN)."


def test_a_control_with_dnssec_ends_up_as_findings(project: Any, plain: DnsServer) -> None:
    project.write_config(f"network:\n  nameserver: {plain.nameserver}\n  timeout: 3s\n")
    project.control("dns.yaml", """\
id: DNS-DNSSEC
title: Our domains are signed with DNSSEC
theme: technological
severity: high
checks:
  - plugin: dnssec
    targets: [signed.test, island.test]
""")
    scan = project.run("scan", "--format", "json")
    assert scan.exit_code == 1, scan.output
    statuses = {r["target"]: r["status"] for r in json.loads(scan.stdout)["results"]}
    assert statuses == {"signed.test": "pass", "island.test": "fail"}
    findings = json.loads(project.run("findings", "--format", "json").stdout)
    assert [(f["control"], f["target"]) for f in findings] == [("DNS-DNSSEC", "island.test")]
