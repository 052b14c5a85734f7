"""rpki against a loopback DNS zone and ROA exports in the formats of Routinator, rpki-client and Fort."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from compliance.api import Context, Result, Status
from compliance.checks.rpki import Rpki
from tests.servers import DnsServer, HttpServer, Reply

SOA = "@ SOA ns1 hostmaster 1 3600 600 86400 300"
ZONES = {
    "rpki.test.": f"""$TTL 300
{SOA}
@ NS ns1
@ A 192.0.2.10
@ AAAA 2001:db8::10
@ MX 10 mx
mx A 198.51.100.25
ns1 A 203.0.113.53
""",
    "bare.test.": f"""$TTL 300
{SOA}
@ NS ns1
@ A 100.64.0.1
@ MX 0 .
ns1 A 192.0.2.53
""",
    "mxbroken.test.": f"""$TTL 300
{SOA}
@ NS ns1
@ MX 10 mx.broken.test.
ns1 A 192.0.2.53
""",
    "broken.test.": f"""$TTL 300
{SOA}
@ NS ns1
ns1 A 192.0.2.53
""",
}

# (asn, prefix, maxLength)
VRPS = [(64500, "192.0.2.0/24", 24), (64500, "2001:db8::/32", 48), (64501, "198.51.100.0/24", 24),
        (0, "203.0.113.0/24", 24)]


def now() -> datetime:
    return datetime.now(UTC)


def routinator(generated: datetime, vrps: list[tuple[int, str, int]] = VRPS) -> str:
    return json.dumps({"metadata": {"generated": int(generated.timestamp()),
                                    "generatedTime": generated.strftime("%Y-%m-%dT%H:%M:%SZ")},
                       "roas": [{"asn": f"AS{a}", "prefix": p, "maxLength": m, "ta": "ripe"} for a, p, m in vrps]})


def rpki_client(built: datetime, vrps: list[tuple[int, str, int]] = VRPS, expired: int = 0) -> str:
    roas = [{"asn": a, "prefix": p, "maxLength": m, "ta": "ripe", "expires": int(built.timestamp()) + 86400}
            for a, p, m in vrps]
    for roa in roas[:expired]:
        roa["expires"] = int(built.timestamp()) - 60
    return json.dumps({"metadata": {"buildmachine": "rpki", "buildtime": built.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                    "vrps": len(roas)}, "roas": roas})


def fort_csv(vrps: list[tuple[int, str, int]] = VRPS) -> str:
    return "ASN,Prefix,Max prefix length\n" + "".join(f"AS{a},{p},{m}\n" for a, p, m in vrps)


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(ZONES, bogus=["broken.test."]) as server:
        yield server


def write(tmp_path: Path, name: str, text: str, age: timedelta | None = None) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    if age is not None:
        stamp = time.time() - age.total_seconds()
        os.utime(path, (stamp, stamp))
    return str(path)


def check(dns: DnsServer, domain: str, roas: str, **params: Any) -> list[Result]:
    ctx = Context("C", 20, nameserver=dns.nameserver, net_timeout=2)
    results = list(Rpki().run(Rpki.Params.model_validate({"domain": domain, "roas": roas, **params}), ctx))
    for result in results:
        json.dumps(result.evidence)
    return results


def test_covered_addresses_pass_and_as0_is_invalid(dns: DnsServer, tmp_path: Path) -> None:
    roas = write(tmp_path, "vrps.json", routinator(now() - timedelta(minutes=10)))
    web, mail, ns = check(dns, "rpki.test", roas)
    assert (web.status, web.message) == (Status.PASS, "Every address of the web servers of rpki.test is covered by a "
                                                      "ROA (rpki.test 192.0.2.10, rpki.test 2001:db8::10); the "
                                                      "announcing AS is not checked.")
    assert web.evidence["addresses"]["rpki.test 2001:db8::10"] == {"state": "covered",
                                                                   "roas": ["AS64500 2001:db8::/32 max 48"]}
    assert web.evidence["vrps"] == 4 and web.evidence["age_basis"] == "metadata.generatedTime"
    assert mail.status == Status.PASS
    assert (ns.status, ns.message) == (Status.FAIL, "RPKI of the name servers of rpki.test: RPKI-invalid (ROAs for "
                                                    "other ASes or AS 0 only): ns1.rpki.test 203.0.113.53.")


def test_origin_asn_tells_valid_from_invalid(dns: DnsServer, tmp_path: Path) -> None:
    roas = write(tmp_path, "vrps.json", routinator(now()))
    web, mail = check(dns, "rpki.test", roas, services=["web", "mail"], origin_asn="AS64500")
    assert (web.status, web.message) == (Status.PASS, "Every address of the web servers of rpki.test is RPKI-valid for "
                                                      "AS64500 (rpki.test 192.0.2.10, rpki.test 2001:db8::10).")
    assert (mail.status, mail.message) == (Status.FAIL, "RPKI of the mail servers of rpki.test: RPKI-invalid (ROAs "
                                                        "for other ASes or AS 0 only): mx.rpki.test 198.51.100.25.")
    assert mail.evidence["origin_asn"] == 64500


def test_address_without_roa_fails_and_null_mx_is_skipped(dns: DnsServer, tmp_path: Path) -> None:
    roas = write(tmp_path, "vrps.json", routinator(now()))
    web, mail, ns = check(dns, "bare.test", roas)
    assert (web.status, web.message) == (Status.FAIL, "RPKI of the web servers of bare.test: not covered by any ROA: "
                                                      "bare.test 100.64.0.1.")
    assert web.evidence["addresses"] == {"bare.test 100.64.0.1": {"state": "not-found", "roas": []}}
    assert (mail.status, mail.message) == (Status.SKIPPED, "RPKI of the mail servers of bare.test not tested: the "
                                                           "domain accepts no mail (null MX).")
    assert ns.status == Status.PASS


def test_rpki_client_export_skips_expired_vrps(dns: DnsServer, tmp_path: Path) -> None:
    roas = write(tmp_path, "json", rpki_client(now() - timedelta(hours=1), expired=1))  # 192.0.2.0/24 expired
    [web] = check(dns, "rpki.test", roas, services=["web"])
    assert web.status == Status.FAIL
    assert web.message.endswith("not covered by any ROA: rpki.test 192.0.2.10.")
    assert web.evidence["age_basis"] == "metadata.buildtime" and web.evidence["vrps"] == 3


def test_fort_csv_uses_the_file_time(dns: DnsServer, tmp_path: Path) -> None:
    roas = write(tmp_path, "roas.csv", fort_csv(), age=timedelta(hours=2))
    [web] = check(dns, "rpki.test", roas, services=["web"])
    assert web.status == Status.PASS and web.evidence["age_basis"] == "file modification time"
    [stale] = check(dns, "rpki.test", roas, services=["web"], max_age="1h")
    assert stale.status == Status.ERROR
    assert stale.message == (f"Could not check RPKI of rpki.test: the ROA export {roas} is stale: made 2h ago (file "
                             "modification time), more than max_age 1h (is the validator running?).")


def test_stale_metadata_is_an_error_even_for_a_fresh_file(dns: DnsServer, tmp_path: Path) -> None:
    roas = write(tmp_path, "vrps.json", routinator(now() - timedelta(days=2)))
    [result] = check(dns, "rpki.test", roas)
    assert result.status == Status.ERROR
    assert "is stale: made 2d ago (metadata.generatedTime), more than max_age 1d" in result.message


def test_export_over_http_with_last_modified(dns: DnsServer) -> None:
    body = json.dumps({"roas": [{"asn": "AS64500", "prefix": p, "maxLength": m} for _, p, m in VRPS[:2]]}).encode()
    fresh = {"Content-Type": "application/json", "Last-Modified": format_datetime(now(), usegmt=True)}
    with HttpServer({"/json": Reply(200, fresh, body), "/undated": Reply(200, {}, body)}) as web:
        [ok] = check(dns, "rpki.test", f"{web.url}/json", services=["web"])
        assert ok.status == Status.PASS and ok.evidence["age_basis"] == "Last-Modified"
        [undated] = check(dns, "rpki.test", f"{web.url}/undated", services=["web"])
        assert undated.status == Status.ERROR and "does not say when it was made" in undated.message
        [missing] = check(dns, "rpki.test", f"{web.url}/nothing", services=["web"])
        assert missing.message == (f"Could not check RPKI of rpki.test: the ROA export {web.url}/nothing answers "
                                   "HTTP 404.")


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "the ROA export is not valid JSON"),
    ('{"vrps": []}', 'the ROA export has no "roas" list'),
    ('{"roas": []}', "the ROA export contains no (unexpired) ROAs (is the validator running?)"),
    ('{"roas": [{"asn": "AS1", "prefix": "192.0.2.1/24", "maxLength": 24}]}',
     "ROA 1 of the export is malformed: 192.0.2.1/24 has host bits set"),
    ('{"roas": [{"asn": "AS1", "prefix": "192.0.2.0/24", "maxLength": 16}]}',
     "ROA 1 of the export is malformed: maxLength 16 does not fit 192.0.2.0/24"),
    ('{"roas": [{"asn": "ASX", "prefix": "192.0.2.0/24", "maxLength": 24}]}',
     "ROA 1 of the export is malformed: 'ASX' is not an AS number"),
    ("hello,world\n1,2\n", "the ROA export is neither JSON"),
])
def test_malformed_exports_are_errors(dns: DnsServer, tmp_path: Path, content: str, reason: str) -> None:
    [result] = check(dns, "rpki.test", write(tmp_path, "vrps.json", content))
    assert result.status == Status.ERROR
    assert result.message.startswith(f"Could not check RPKI of rpki.test: {reason}")


def test_missing_export_and_dns_problems_are_errors(dns: DnsServer, tmp_path: Path) -> None:
    [missing] = check(dns, "rpki.test", str(tmp_path / "nope.json"))
    assert missing.status == Status.ERROR
    assert "cannot read the ROA export" in missing.message and "No such file or directory" in missing.message
    roas = write(tmp_path, "vrps.json", routinator(now()))
    [nx] = check(dns, "nowhere.rpki.test", roas)
    assert (nx.status, nx.message) == (Status.ERROR, "Could not check RPKI of nowhere.rpki.test: the domain does not "
                                                     "exist in DNS (NXDOMAIN).")
    [servfail] = check(dns, "broken.test", roas)
    assert servfail.status == Status.ERROR and "SERVFAIL" in servfail.message
    [mail] = check(dns, "mxbroken.test", roas, services=["mail"])
    assert (mail.status, mail.message) == (
        Status.ERROR, "Could not check RPKI of the mail servers of mxbroken.test: no name server answered for "
                      "mx.broken.test (SERVFAIL or refused).")


@pytest.mark.parametrize("params", [
    {"domain": "rpki.test"},
    {"domain": "rpki.test", "roas": ""},
    {"domain": "rpki.test", "roas": "ftp://x/vrps.json"},
    {"domain": "rpki.test", "roas": "v.json", "origin_asn": "ASX"},
    {"domain": "rpki.test", "roas": "v.json", "origin_asn": 2**33},
    {"domain": "rpki.test", "roas": "v.json", "max_age": "0s"},
    {"domain": "rpki.test", "roas": "v.json", "services": ["dns"]},
])
def test_invalid_params_are_rejected(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Rpki.Params.model_validate(params)
