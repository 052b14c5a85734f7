"""tls against real TLS servers on loopback, with certificates made here (trustme)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from compliance.api import Context, Result, Status
from compliance.checks.tls import Tls, iana_cipher_name, profile, profiles, rate_cipher
from tests.servers import TlsServer, server_context

V = ssl.TLSVersion
NCSC_2025 = "NCSC TLS security guidelines 2025-05"




def issue(ca: trustme.CA, *names: str, days: float = 90, key_type: trustme.KeyType = trustme.KeyType.ECDSA,
          expired: bool = False) -> trustme.LeafCert:
    now = datetime.now(UTC).replace(tzinfo=None)
    if expired:
        return ca.issue_cert(*(names or ("127.0.0.1",)), not_before=now - timedelta(days=30),
                             not_after=now - timedelta(days=2, hours=1), key_type=key_type)
    return ca.issue_cert(*(names or ("127.0.0.1", "localhost")), not_before=now - timedelta(days=1),
                         not_after=now + timedelta(days=days, hours=1), key_type=key_type)


def run(server: TlsServer, ctx: Context | None = None, **params: Any) -> Result:
    p = Tls.Params.model_validate({"host": "127.0.0.1", "port": server.port, **params})
    [result] = Tls().run(p, ctx or Context("C", 20, net_timeout=5))
    json.dumps(result.evidence)  # evidence must be plain JSON
    return result


@pytest.fixture
def modern(ca: trustme.CA) -> Iterator[TlsServer]:
    with TlsServer(server_context(issue(ca))) as server:
        yield server


def test_tls_12_and_13_pass_with_the_ratings_in_the_message(modern: TlsServer, ca_file: str) -> None:
    result = run(modern, ca_file=ca_file)
    days = result.evidence["certificate"]["days_left"]
    assert days == 90
    assert result.status == Status.PASS
    # Python's server accepts two CBC suites (phase out) and lets a client ask for SHA-224 signatures
    assert result.message == (f"TLS of 127.0.0.1:{modern.port} meets {NCSC_2025}: TLS 1.3 (good), TLS 1.2 "
                              "(sufficient); certificate valid for 90 more days; to phase out: accepts "
                              "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384 with "
                              "TLS 1.2 (phase out); signs the key exchange with SHA-224 when asked to (phase out).")
    protocols = result.evidence["protocols"]
    assert {k: v["state"] for k, v in protocols.items()} == {
        "TLS 1.3": "offered", "TLS 1.2": "offered", "TLS 1.1": "not offered", "TLS 1.0": "not offered",
        "SSL 3.0": "not offered", "SSL 2.0": "not offered"}
    assert result.evidence["ciphers"]["TLS 1.3"] == {"cipher": "TLS_AES_256_GCM_SHA384", "rating": "good"}
    assert result.evidence["certificate"]["key"] == "ECDSA secp256r1"
    assert result.evidence["certificate"]["trusted"] is True


@pytest.mark.parametrize(("versions", "offered"), [
    ([V.TLSv1_2], ["TLS 1.2"]),
    ([V.TLSv1_3], ["TLS 1.3"]),
])
def test_only_one_good_version_passes(ca: trustme.CA, ca_file: str, versions: list[V], offered: list[str]) -> None:
    with TlsServer(server_context(issue(ca), versions)) as server:
        result = run(server, ca_file=ca_file)
    assert result.status == Status.PASS
    assert [k for k, v in result.evidence["protocols"].items() if v["state"] == "offered"] == offered


def test_tls_10_and_11_are_insufficient_under_ncsc_2025(ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca), [V.TLSv1, V.TLSv1_1], legacy=True)) as server:
        result = run(server, ca_file=ca_file)
    assert result.status == Status.FAIL
    assert result.message.startswith(f"TLS of 127.0.0.1:{server.port} falls short of {NCSC_2025}: offers TLS 1.1 "
                                     "(insufficient); offers TLS 1.0 (insufficient); accepts ")
    assert result.evidence["protocols"]["TLS 1.0"] == {"state": "offered", "rating": "insufficient"}


def test_tls_10_and_11_are_phase_out_under_ncsc_2021(ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca), [V.TLSv1, V.TLSv1_1], legacy=True)) as server:
        lenient = run(server, ca_file=ca_file, tls_profile="ncsc-2021")
        strict = run(server, ca_file=ca_file, tls_profile="ncsc-2021", phase_out_fails=True)
    assert lenient.status == Status.PASS
    assert "TLS 1.1 (phase out), TLS 1.0 (phase out)" in lenient.message
    assert strict.status == Status.FAIL and "offers TLS 1.1 (phase out)" in strict.message


def test_expired_certificate_fails(ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca, expired=True))) as server:
        result = run(server, ca_file=ca_file)
    assert result.status == Status.FAIL
    assert result.message == (f"TLS of 127.0.0.1:{server.port} falls short of {NCSC_2025}: certificate expired 2 "
                              "days ago.")
    assert result.evidence["certificate"]["trusted"] is True  # the chain itself is fine


def test_certificate_expiring_within_min_days_fails(ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca, days=9))) as server:
        default = run(server, ca_file=ca_file)
        relaxed = run(server, ca_file=ca_file, min_days=7)
    assert default.status == Status.FAIL
    assert default.message == (f"TLS of 127.0.0.1:{server.port} falls short of {NCSC_2025}: certificate expires in "
                               "9 days (minimum 21).")
    assert relaxed.status == Status.PASS


def test_wrong_hostname_fails(ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca, "www.gemeente.test"))) as server:
        result = run(server, ca_file=ca_file)
        named = run(server, ca_file=ca_file, server_name="www.gemeente.test")
    assert result.status == Status.FAIL
    assert result.message.endswith(": certificate is for www.gemeente.test, not 127.0.0.1.")
    assert named.status == Status.PASS


def test_untrusted_ca_fails(ca_file: str) -> None:
    stranger = trustme.CA()
    with TlsServer(server_context(issue(stranger))) as server:
        result = run(server, ca_file=ca_file)
    assert result.status == Status.FAIL
    assert result.message.endswith(": certificate not trusted (unable to get local issuer certificate).")


def test_ca_file_comes_from_the_configuration_and_the_parameter_overrides_it(modern: TlsServer, ca_file: str,
                                                                             tmp_path: Path) -> None:
    configured = Context("C", 20, ca_file=ca_file, net_timeout=5)
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    assert run(modern, configured).status == Status.PASS
    assert run(modern, configured, ca_file=str(other)).status == Status.FAIL


def test_rsa_2048_is_phase_out_under_ncsc_2025(ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca, key_type=trustme.KeyType.RSA))) as server:
        result = run(server, ca_file=ca_file)
    assert result.status == Status.PASS
    assert result.message.endswith("; certificate key RSA 2048 bits (phase out).")


def test_smtp_starttls_is_followed_by_the_tls_checks(ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca)), smtp=True) as server:
        result = run(server, ca_file=ca_file, starttls="smtp")
    assert result.status == Status.PASS and result.evidence["starttls"] == "smtp"
    assert result.evidence["certificate"]["trusted"] is True


def test_mail_server_without_starttls_fails(ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca)), smtp=True, offer_starttls=False) as server:
        result = run(server, ca_file=ca_file, starttls="smtp")
    assert result.status == Status.FAIL
    assert result.message == (f"Mail server 127.0.0.1:{server.port} does not offer STARTTLS (not in its EHLO "
                              "answer); mail to it travels unencrypted.")


def test_smtp_default_port_is_25() -> None:
    assert Tls.Params.model_validate({"host": "mx.gemeente.nl", "starttls": "smtp"}).port is None
    [result] = Tls().run(Tls.Params(host="no-such-host.invalid", starttls="smtp"), Context("C", 5, net_timeout=2))
    assert result.target == "no-such-host.invalid:25"


def test_unreachable_server_is_an_error() -> None:
    with TlsServer(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)) as server:
        port = server.port
    result = run_plain(port)
    assert result.status == Status.ERROR
    assert result.message == f"Could not check TLS of 127.0.0.1:{port}: connection refused."


def run_plain(port: int) -> Result:
    [result] = Tls().run(Tls.Params(host="127.0.0.1", port=port), Context("C", 5, net_timeout=2))
    return result


def test_unknown_profile_is_rejected_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown TLS profile 'ncsc-2019'; known: ncsc-2021, ncsc-2025-05"):
        Tls.Params.model_validate({"host": "h", "tls_profile": "ncsc-2019"})


def test_profiles_are_data_with_2025_as_default() -> None:
    data = profiles()
    assert data["default"] == "ncsc-2025-05" == Tls.Params.model_fields["tls_profile"].default
    assert set(data["profiles"]) == {"ncsc-2025-05", "ncsc-2021"}
    for name in data["profiles"]:
        rules = profile(name)
        assert set(rules["protocols"]) == {"TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0", "SSL 3.0", "SSL 2.0"}


@pytest.mark.parametrize(("openssl", "iana"), [
    ("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    ("ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    ("DHE-RSA-AES256-CCM8", "TLS_DHE_RSA_WITH_AES_256_CCM_8"),
    ("ECDHE-ARIA256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384"),
    ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
    ("DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    ("DHE-RSA-CAMELLIA256-SHA256", "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256"),
])
def test_openssl_cipher_names_map_to_iana(openssl: str, iana: str) -> None:
    assert iana_cipher_name(openssl) == iana


@pytest.mark.parametrize(("iana", "r2025", "r2021"), [
    ("TLS_AES_256_GCM_SHA384", "good", "good"),
    ("TLS_AES_128_GCM_SHA256", "sufficient", "good"),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "sufficient", "good"),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "phase_out", "sufficient"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "insufficient", "sufficient"),
    ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "phase_out", "sufficient"),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", "insufficient", "phase_out"),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "insufficient", "phase_out"),
    ("TLS_AES_128_CCM_8_SHA256", "insufficient", "good"),
])
def test_cipher_ratings_follow_the_profiles(iana: str, r2025: str, r2021: str) -> None:
    assert rate_cipher(profile("ncsc-2025-05"), iana) == r2025
    assert rate_cipher(profile("ncsc-2021"), iana) == r2021


def test_every_openssl_cipher_gets_a_tls_name() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers("ALL:@SECLEVEL=0")
    names = [iana_cipher_name(c["name"]) for c in context.get_ciphers()]
    assert all(n.startswith("TLS_") for n in names), [n for n in names if not n.startswith("TLS_")]


def test_a_control_with_tls_ends_up_as_findings(project: Any, ca: trustme.CA, ca_file: str) -> None:
    with TlsServer(server_context(issue(ca))) as good, TlsServer(server_context(issue(ca, expired=True))) as bad:
        project.write_config(f"network:\n  ca_file: {ca_file}\n  timeout: 5s\n")
        project.control("tls.yaml", f"""\
id: WEB-TLS
title: TLS per the NCSC guidelines
theme: technological
severity: high
checks:
  - plugin: tls
    params: {{min_days: 21}}
    targets: [{{host: 127.0.0.1, port: {good.port}}}, {{host: 127.0.0.1, port: {bad.port}}}]
""")
        scan = project.run("scan", "--format", "json")
    assert scan.exit_code == 1, scan.output
    statuses = {r["target"]: r["status"] for r in json.loads(scan.stdout)["results"]}
    assert statuses == {f"127.0.0.1:{good.port}": "pass", f"127.0.0.1:{bad.port}": "fail"}
    findings = json.loads(project.run("findings", "--format", "json").stdout)
    assert [(f["control"], f["target"], f["state"]) for f in findings] == [("WEB-TLS", f"127.0.0.1:{bad.port}", "open")]
    assert findings[0]["message"].endswith("certificate expired 2 days ago.")


def test_a_host_port_target_is_scanned_on_that_port(modern: TlsServer, ca_file: str, tmp_path: Path) -> None:
    from compliance.catalog import load_catalog, plan

    (tmp_path / "tls.yaml").write_text(
        "id: TLS\ntitle: t\ntheme: technological\nseverity: high\n"
        f"checks: [{{plugin: tls, params: {{ca_file: {ca_file}}}, targets: ['127.0.0.1:{modern.port}']}}]\n")
    [planned] = plan(load_catalog([tmp_path]).get("TLS"), {}, 30)  # type: ignore[arg-type]
    [result] = Tls().run(Tls.Params.model_validate(planned.params), Context("TLS", 20, net_timeout=5))
    assert result.status == Status.PASS
    assert result.message.startswith(f"TLS of 127.0.0.1:{modern.port} meets {NCSC_2025}: ")


@pytest.mark.parametrize(("given", "host", "port"), [
    ({"host": "vpn.gemeente.nl:8443"}, "vpn.gemeente.nl", 8443),
    ({"host": "[::1]:8443"}, "::1", 8443),
    ({"host": "[::1]"}, "::1", None),
    ({"host": "2001:db8::1"}, "2001:db8::1", None),
    ({"host": "vpn.gemeente.nl:8443", "port": 8443}, "vpn.gemeente.nl", 8443),
    ({"host": "vpn.gemeente.nl", "port": 8443}, "vpn.gemeente.nl", 8443),
])
def test_the_port_may_be_written_in_the_host(given: dict[str, Any], host: str, port: int | None) -> None:
    params = Tls.Params.model_validate(given)
    assert (params.host, params.port) == (host, port)


@pytest.mark.parametrize(("given", "message"), [
    ({"host": "vpn.gemeente.nl:8443", "port": 443},
     "'vpn.gemeente.nl:8443' gives port 8443 and the port parameter another; give the port once"),
    ({"host": "vpn.gemeente.nl:https"}, "port 'https' in 'vpn.gemeente.nl:https' is not a number from 1 to 65535"),
    ({"host": "vpn.gemeente.nl:70000"}, "port '70000' in 'vpn.gemeente.nl:70000' is not a number from 1 to 65535"),
    ({"host": "[::1]8443"}, "'[::1]8443' is not a host; write an IPv6 address with a port as [2001:db8::1]:8443"),
])
def test_a_bad_port_in_the_host_is_a_validation_error(given: dict[str, Any], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        Tls.Params.model_validate(given)
    [error] = info.value.errors()
    assert (error["loc"], error["msg"]) == (("host",), f"Value error, {message}")
