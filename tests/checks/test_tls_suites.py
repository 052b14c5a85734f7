"""tls rates every suite, group and option a server accepts: real `openssl s_server` and `gnutls-serv` servers on
loopback (tests/checks/tls_servers.py), a tiny hand-written server for what OpenSSL 3 cannot do any more
(SSL 2.0/3.0, compression), and the ClientHello builder / ServerHello reader on their own."""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme

from compliance.api import Context, Result, Status
from compliance.checks import _tlsprobe as probes
from compliance.checks.tls import Tls, profile, rate_group
from tests.checks.tls_servers import (
    GNUTLS_SERV,
    PROFILES,
    FakeHelloServer,
    GnuTlsServer,
    OpenSslServer,
    _client_hello_fields,
)
from tests.servers import DnsServer, TlsServer, server_context

NCSC_2025 = "NCSC TLS security guidelines 2025-05"
RENEGOTIATION_INFO_AND_EMS = b"\xff\x01\x00\x01\x00" + b"\x00\x17\x00\x00"


@pytest.fixture(scope="module")
def rsa(ca: trustme.CA) -> trustme.LeafCert:
    now = datetime.now(UTC).replace(tzinfo=None)
    return ca.issue_cert("127.0.0.1", "localhost", not_before=now - timedelta(days=1),
                         not_after=now + timedelta(days=90, hours=1), key_type=trustme.KeyType.RSA)


def run(port: int, ca_file: str | None = None, ctx: Context | None = None, **params: Any) -> Result:
    p = Tls.Params.model_validate({"host": "127.0.0.1", "port": port, **({"ca_file": ca_file} if ca_file else {}),
                                   **params})
    [result] = Tls().run(p, ctx or Context("C", 20, net_timeout=5))
    json.dumps(result.evidence)
    return result


def suites(result: Result, version: str) -> dict[str, str]:
    return {entry["suite"]: entry["rating"] for entry in result.evidence["accepted_suites"].get(version, [])}


@pytest.fixture(scope="module")
def servers(rsa: trustme.LeafCert) -> Iterator[dict[str, OpenSslServer]]:
    started: dict[str, OpenSslServer] = {}
    try:
        for name, args in PROFILES.items():
            started[name] = OpenSslServer(rsa, *args).__enter__()
        yield started
    finally:
        for server in started.values():
            server.__exit__()


# --- the five servers of issue 16 ---------------------------------------------------------------------


def test_a_good_server_passes_and_every_suite_is_rated(servers: dict[str, OpenSslServer], ca_file: str) -> None:
    result = run(servers["good"].port, ca_file)
    assert result.status == Status.PASS, result.message
    assert suites(result, "TLS 1.3") == {"TLS_AES_256_GCM_SHA384": "good", "TLS_CHACHA20_POLY1305_SHA256": "good",
                                         "TLS_AES_128_GCM_SHA256": "sufficient"}
    assert suites(result, "TLS 1.2") == {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "sufficient",
                                         "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "sufficient",
                                         "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "sufficient"}
    evidence = result.evidence
    assert evidence["cipher_order"] == {"version": "TLS 1.2", "enforced": True, "violation": [],
                                        "good_before_sufficient_violation": []}
    assert evidence["groups"] == {"x25519": "good"}  # what a usual client gets
    assert {"x25519", "secp256r1", "secp384r1"} <= set(evidence["groups_supported"])
    assert evidence["secure_renegotiation"] is True and evidence["extended_master_secret"] is True
    assert evidence["compression"] == "none"
    assert {k: v["state"] for k, v in evidence["protocols"].items()} == {
        "TLS 1.3": "offered", "TLS 1.2": "offered", "TLS 1.1": "not offered", "TLS 1.0": "not offered",
        "SSL 3.0": "not offered", "SSL 2.0": "not offered"}
    assert "incomplete" not in evidence


def test_an_rsa_key_exchange_suite_fails_although_the_server_picks_a_good_one(servers: dict[str, OpenSslServer],
                                                                             ca_file: str) -> None:
    result = run(servers["rsa_kex"].port, ca_file)
    # what the old check saw: the suite picked for a client offering everything is fine
    assert result.evidence["ciphers"]["TLS 1.2"] == {"cipher": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                                                     "rating": "sufficient"}
    assert result.status == Status.FAIL
    assert "accepts TLS_RSA_WITH_AES_128_GCM_SHA256 with TLS 1.2 (insufficient)" in result.message
    assert suites(result, "TLS 1.2") == {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "sufficient",
                                         "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "sufficient",
                                         "TLS_RSA_WITH_AES_128_GCM_SHA256": "insufficient"}


def test_a_tls_10_only_server_fails_on_version_and_suites(servers: dict[str, OpenSslServer], ca_file: str) -> None:
    result = run(servers["tls10_only"].port, ca_file)
    assert result.status == Status.FAIL
    assert result.message.startswith(f"TLS of 127.0.0.1:{servers['tls10_only'].port} falls short of {NCSC_2025}: "
                                     "offers TLS 1.0 (insufficient); accepts ")
    assert suites(result, "TLS 1.0") == {"TLS_RSA_WITH_AES_128_CBC_SHA": "insufficient",
                                         "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "insufficient"}
    assert set(result.evidence["accepted_suites"]) == {"TLS 1.0"}
    assert result.evidence["cipher_order"]["enforced"] is False  # s_server follows the client without -serverpref
    assert result.evidence["extended_master_secret"] is True  # seen; rated for TLS 1.2 only
    assert result.evidence["kex_hash"] is None


def test_a_weak_dh_group_fails_under_2025_and_is_phase_out_under_2021(servers: dict[str, OpenSslServer],
                                                                      ca_file: str) -> None:
    port = servers["weak_dh"].port
    result = run(port, ca_file)
    assert result.status == Status.FAIL
    assert "uses key-exchange group ffdhe2048 (insufficient)" in result.message
    assert result.evidence["groups"] == {"ffdhe2048": "insufficient"}
    assert suites(result, "TLS 1.2") == {"TLS_DHE_RSA_WITH_AES_256_GCM_SHA384": "phase_out",
                                         "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "phase_out"}
    older = run(port, ca_file, tls_profile="ncsc-2021")
    assert older.status == Status.PASS, older.message
    assert "uses key-exchange group ffdhe2048 (phase out)" in older.message


def test_a_servers_own_1024_bit_dh_group_is_insufficient(rsa: trustme.LeafCert, ca_file: str) -> None:
    with OpenSslServer(rsa, "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", "-no_tls1_3", "-dhparam",
                       "{1024}") as server:
        result = run(server.port, ca_file, tls_profile="ncsc-2021")
    assert result.status == Status.FAIL
    assert "uses key-exchange group DH-1024 (insufficient)" in result.message
    assert result.evidence["accepted_suites"]["TLS 1.2"] == [
        {"suite": "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "rating": "sufficient", "group": "DH-1024"}]


# CI installs gnutls-bin (.ci/run): there the test runs, and fails without the server instead of skipping
@pytest.mark.skipif(GNUTLS_SERV is None and not os.environ.get("CI"),
                    reason="gnutls-serv (Debian gnutls-bin) is not installed")
def test_a_server_without_secure_renegotiation_fails(rsa: trustme.LeafCert, ca_file: str) -> None:
    with GnuTlsServer(rsa) as server:
        result = run(server.port, ca_file)
    assert result.status == Status.FAIL
    assert "no secure renegotiation (RFC 5746) (insufficient)" in result.message
    assert result.evidence["secure_renegotiation"] is False
    assert result.evidence["client_renegotiation"] == "accepted"  # and insecurely so
    assert result.evidence["certificate"]["trusted"] is True  # the certificate is still checked


# --- order, TLS 1.3 CCM_8, groups -------------------------------------------------------------------


@pytest.mark.parametrize("serverpref", [True, False])
def test_a_phase_out_suite_preferred_to_a_better_one_fails(rsa: trustme.LeafCert, ca_file: str,
                                                          serverpref: bool) -> None:
    args = ["-cipher", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-GCM-SHA256", "-no_tls1_3"]
    with OpenSslServer(rsa, *args, *(["-serverpref"] if serverpref else [])) as server:
        result = run(server.port, ca_file)
    assert result.status == Status.FAIL
    assert ("prefers TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 to TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 with TLS 1.2 "
            "(insufficient)") in result.message
    assert result.evidence["cipher_order"]["enforced"] is serverpref


def test_the_right_order_passes(rsa: trustme.LeafCert, ca_file: str) -> None:
    args = ["-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256", "-no_tls1_3", "-serverpref"]
    with OpenSslServer(rsa, *args) as server:
        result = run(server.port, ca_file)
    assert result.status == Status.PASS, result.message
    assert "accepts TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 with TLS 1.2 (phase out)" in result.message
    assert result.evidence["cipher_order"]["violation"] == []


def test_tls_13_ccm_8_is_insufficient(rsa: trustme.LeafCert, ca_file: str) -> None:
    with OpenSslServer(rsa, "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_AES_128_CCM_8_SHA256", "-no_tls1_2") as server:
        result = run(server.port, ca_file)
    assert result.status == Status.FAIL
    assert "accepts TLS_AES_128_CCM_8_SHA256 with TLS 1.3 (insufficient)" in result.message
    assert suites(result, "TLS 1.3") == {"TLS_AES_256_GCM_SHA384": "good", "TLS_AES_128_CCM_8_SHA256": "insufficient"}


def test_each_supported_group_is_listed_and_rated(rsa: trustme.LeafCert, ca_file: str) -> None:
    with OpenSslServer(rsa, "-groups", "X25519:P-224:ffdhe2048", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256") as server:
        result = run(server.port, ca_file)
    assert result.evidence["groups_supported"] == {"x25519": "good", "secp224r1": "phase_out",
                                                   "ffdhe2048": "insufficient"}
    assert result.evidence["groups"] == {"x25519": "good"}  # used with a usual client: the verdict's part
    assert result.status == Status.PASS, result.message


# --- a full handshake through openssl s_client: client-initiated renegotiation, 0-RTT ---------------------------


def test_client_initiated_renegotiation_is_information(rsa: trustme.LeafCert, ca_file: str) -> None:
    args = ["-no_tls1_3", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]
    with OpenSslServer(rsa, *args) as refusing, OpenSslServer(rsa, *args, "-client_renegotiation") as allowing:
        refused, allowed = run(refusing.port, ca_file), run(allowing.port, ca_file)
    assert refused.evidence["client_renegotiation"] == "refused"
    assert allowed.evidence["client_renegotiation"] == "accepted"
    assert allowed.status == refused.status == Status.PASS  # internet.nl: information only


def test_0_rtt_fails_a_web_server_and_is_not_tried_on_mail(rsa: trustme.LeafCert, ca_file: str) -> None:
    with OpenSslServer(rsa, "-early_data", "-no_tls1_2", www=False) as early, \
            OpenSslServer(rsa, "-max_early_data", "1024", "-no_tls1_2") as late:
        accepting, rejecting = run(early.port, ca_file), run(late.port, ca_file)
    assert accepting.evidence["zero_rtt"] == "accepted"
    assert accepting.status == Status.FAIL and "accepts 0-RTT early data (insufficient)" in accepting.message
    assert rejecting.evidence["zero_rtt"] == "rejected"  # offered in the ticket, not taken by the -www server
    assert rejecting.status == Status.PASS, rejecting.message
    with TlsServer(server_context(rsa), smtp=True) as mail:
        result = run(mail.port, ca_file, starttls="smtp")
    assert result.evidence["zero_rtt"] is None


# --- what OpenSSL 3 servers cannot do: a hand-written ServerHello -------------------------------------------


def test_ssl_30_is_found_and_fails() -> None:
    with FakeHelloServer(version=probes.SSL3, suite=0x000A) as server:
        result = run(server.port)
    assert result.status == Status.FAIL
    assert result.message == (f"127.0.0.1:{server.port} completes no TLS handshake with this OpenSSL (certificate "
                              f"not checked) and falls short of {NCSC_2025}: offers SSL 3.0 (insufficient); accepts "
                              "TLS_RSA_WITH_3DES_EDE_CBC_SHA with SSL 3.0 (insufficient); no secure renegotiation "
                              "(RFC 5746) (insufficient).")
    assert result.evidence["protocols"]["SSL 3.0"] == {"state": "offered", "rating": "insufficient"}


def test_ssl_20_and_compression_are_found() -> None:
    with FakeHelloServer(sslv2=True, compression=1, extensions=RENEGOTIATION_INFO_AND_EMS) as server:
        result = run(server.port)
    assert result.status == Status.FAIL
    assert "offers SSL 2.0 (insufficient)" in result.message
    assert "TLS compression (insufficient)" in result.message
    assert result.evidence["compression"] == "method 1"
    assert result.evidence["secure_renegotiation"] is True


def test_the_probes_see_a_missing_renegotiation_info_and_ems() -> None:
    with FakeHelloServer() as server:
        scan = probes.scan(lambda: socket.create_connection(("127.0.0.1", server.port), timeout=3),
                           deadline=float("inf"), rate=lambda name: "sufficient")
    assert scan.versions[probes.TLS12] and not scan.versions[probes.TLS13]
    assert scan.suites[probes.TLS12] == [0xC02F]
    assert scan.secure_renegotiation is False and scan.extended_master_secret is False


# --- mail: DANE makes trust and name information ------------------------------------------------------------


def test_with_dane_a_mail_servers_name_mismatch_is_information(ca: trustme.CA, ca_file: str) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    other = ca.issue_cert("mx.elsewhere.test", not_before=now - timedelta(days=1),
                          not_after=now + timedelta(days=90, hours=1))
    with TlsServer(server_context(other), smtp=True) as server:
        zone = f"$ORIGIN localhost.\n@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns\n" \
               f"_{server.port}._tcp 3600 IN TLSA 3 1 1 {'ab' * 32}\n"
        params = {"host": "localhost", "port": server.port, "starttls": "smtp", "ca_file": ca_file}
        with DnsServer(zone, origin="localhost.") as dns:
            [with_dane] = Tls().run(Tls.Params.model_validate(params),
                                    Context("C", 20, net_timeout=5, nameserver=dns.nameserver))
        with DnsServer(zone.replace("TLSA", "TXT").replace(f"3 1 1 {'ab' * 32}", '"x"'),
                       origin="localhost.") as dns:
            [without] = Tls().run(Tls.Params.model_validate(params),
                                  Context("C", 20, net_timeout=5, nameserver=dns.nameserver))
    assert with_dane.status == Status.PASS, with_dane.message
    assert (f"with DANE (TLSA records at _{server.port}._tcp.localhost) the certificate's trust and name are "
            "information only: certificate is for mx.elsewhere.test, not localhost") in with_dane.message
    assert with_dane.evidence["dane"]["tlsa"]
    assert without.status == Status.FAIL
    assert "certificate is for mx.elsewhere.test, not localhost" in without.message


# --- the builder and the reader on their own ---------------------------------------------------------------


@pytest.mark.parametrize("version", [probes.SSL3, probes.TLS10, probes.TLS12, probes.TLS13])
def test_a_client_hello_offers_what_it_is_asked(version: int) -> None:
    record = probes.client_hello(version, [0x1301, 0xC02F] if version == probes.TLS13 else [0xC02F, 0x002F],
                                 server_name="www.gemeente.nl", compression=(1, 0))
    kind, _, length = struct.unpack("!BHH", record[:5])
    assert kind == 22 and length == len(record) - 5
    fields = _client_hello_fields(record[5:])
    assert fields["version"] == min(version, probes.TLS12)
    assert fields["compression"] == [1, 0]
    assert fields["tls13"] is (version == probes.TLS13)
    if version == probes.SSL3:
        assert fields["suites"] == [0xC02F, 0x002F, 0x00FF]  # with the renegotiation SCSV
    elif version != probes.TLS13:
        assert len(record) - 5 < 256 or len(record) - 5 >= 512  # padded past the F5 bug's window
    assert (b"www.gemeente.nl" in record) is (version >= probes.TLS10)  # SSL 3.0 has no extensions


def test_a_hello_retry_request_counts_as_acceptance() -> None:
    import hashlib

    extensions = b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x02\x00\x17"
    body = (b"\x03\x03" + hashlib.sha256(b"HelloRetryRequest").digest() + b"\x00" + b"\x13\x02\x00"
            + struct.pack("!H", len(extensions)) + extensions)
    hello = probes.parse_server_hello(body)
    assert hello.accepted and hello.retry
    assert hello.version == probes.TLS13 and hello.suite == 0x1302 and hello.group == 0x0017


def test_dh_primes_are_named_by_rfc_7919_or_by_size() -> None:
    primes = {name: prime for prime, name in probes.ffdhe_primes().items()}
    assert hex(primes["ffdhe2048"]).endswith("61285c97ffffffffffffffff")
    assert hex(primes["ffdhe3072"]).endswith("66c62e37ffffffffffffffff")
    assert probes.dh_group_name(primes["ffdhe4096"]) == "ffdhe4096"
    assert probes.dh_group_name(primes["ffdhe2048"] - 2) == "DH-2048"
    rules = profile("ncsc-2025-05")
    assert [rate_group(rules, g) for g in ("x25519", "secp224r1", "ffdhe3072", "ffdhe2048", "DH-4096")] == [
        "good", "phase_out", "phase_out", "insufficient", "insufficient"]


def test_suites_are_offered_in_interleaved_chunks_of_at_most_64() -> None:
    parts = probes.chunks(list(probes.LEGACY_SUITES))
    assert all(len(part) <= 64 for part in parts)
    assert sorted(code for part in parts for code in part) == sorted(probes.LEGACY_SUITES)
    assert len(probes.COMMON_SUITES) < 64


def test_an_sslv2_client_hello_is_well_formed() -> None:
    record = probes.sslv2_client_hello()
    length = struct.unpack("!H", record[:2])[0] & 0x7FFF
    assert record[0] & 0x80 and length == len(record) - 2 and record[2] == 1
    assert struct.unpack("!H", record[3:5])[0] == probes.SSL2


def test_nothing_listening_is_an_error_and_never_a_pass() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(port, ctx=Context("C", 5, net_timeout=2))
    assert result.status == Status.ERROR
