"""`tls`: a server's TLS meets the NCSC-NL TLS guidelines and its certificate is valid.

Secure state (Forum Standaardisatie "pas toe of leg uit": TLS configured per the NCSC TLS guidelines;
BIO2 / ISO 27002:2022 8.24 use of cryptography): the server offers no protocol version and no cipher
suite that the guideline rates insufficient, and its certificate is trusted, matches the host name,
has a key and signature hash the guideline accepts and is valid for at least `min_days` more days
(default 21). The ratings come from `checks/ncsc_tls.yaml`, one profile per guideline version:
`tls_profile: ncsc-2025-05` (the default) or `ncsc-2021`. With `starttls: smtp` the check speaks SMTP
first (EHLO, STARTTLS), for mail servers on port 25 or 587.

What it looks at, like internet.nl: hand-built ClientHellos (checks/_tlsprobe.py, no crypto needed to see
what a server accepts) find every protocol version (SSL 2.0 to TLS 1.3) and **every cipher suite the server
accepts per version**, each rated; the key-exchange group each accepted suite uses (a finite-field group by
its RFC 7919 name or as the server's own "DH-<bits>"); the cipher order on the highest TLS 1.0-1.2 version
(a phase-out suite must not be preferred to a better one; NCSC 2025-05 also wants good before sufficient);
secure renegotiation (RFC 5746), the extended master secret (RFC 7627), TLS compression and the hash the
server signs its key exchange with when a client offers only SHA-1 or SHA-224; every group the server
supports is listed as information. Through `openssl s_client`: 0-RTT early data (web servers) and
client-initiated renegotiation (information). Python's ssl completes a handshake per version for the
leaf certificate and the suite it picks (`ciphers`). Up to 8 probes run at once and none starts after the
check's time budget; what could not be tried in time makes the result an `error` unless something already
fails. With `starttls: smtp` and TLSA records at `_PORT._tcp.HOST` (DANE, asked of the configured name
server), certificate trust and host name are information, not a failure (internet.nl shows them so for mail).
Verdicts: `fail` when something is insufficient (or, with `phase_out_fails: true`, to be phased out),
when the certificate is untrusted, for another name, expired, not yet valid or expiring within
`min_days`, or when a mail server does not offer STARTTLS; `error` when the server cannot be reached
(name does not resolve, connection refused, no answer) or the time ran out.

Example::

    id: WEB-TLS
    title: The website and the mail server use TLS per the NCSC guidelines
    theme: technological
    references: {bio2: "8.24", iso27002: "8.24", forum_standaardisatie: TLS}
    severity: high
    checks:
      - plugin: tls
        params: {min_days: 21, tls_profile: ncsc-2025-05}
        targets: [www.gemeente.nl, vpn.gemeente.nl:8443, {host: mail.gemeente.nl, port: 25, starttls: smtp}]

A target (the `host` parameter) may carry its port: `vpn.gemeente.nl:8443`, or `[2001:db8::1]:8443` for
an IPv6 address. Giving a port there and a different one as `port` is a validation error.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from fnmatch import fnmatchcase
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from compliance.api import Check, Context, Message, Params, Result, Seconds
from compliance.checks import _tlsopenssl as openssl_tools
from compliance.checks import _tlsprobe as probes
from compliance.checks._net import (
    budget,
    ca_file_of,
    host_for_url,
    is_address,
    load_libraries,
    plain_host,
    port_in_host,
    resolver,
)

if TYPE_CHECKING:  # cryptography is imported where used: loading the plugin to read its parameters stays cheap
    from cryptography import x509

#: OpenSSL's X509_V_FLAG_NO_CHECK_TIME: verify the chain without looking at the dates, which this
#: check reports on its own (so that an expired certificate is still told apart from an untrusted one).
_NO_CHECK_TIME = 0x200000
#: OpenSSL's SSL_OP_LEGACY_SERVER_CONNECT: still connect to a server without secure renegotiation (RFC 5746),
#: so that its certificate can be checked; the probes rate the missing extension.
_LEGACY_SERVER_CONNECT = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)

#: The versions tried, best first: (name used in ncsc_tls.yaml and messages, ssl's version).
_VERSIONS = (
    ("TLS 1.3", ssl.TLSVersion.TLSv1_3),
    ("TLS 1.2", ssl.TLSVersion.TLSv1_2),
    ("TLS 1.1", ssl.TLSVersion.TLSv1_1),
    ("TLS 1.0", ssl.TLSVersion.TLSv1),
)
_LEGACY = {ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1}
_RANK = {"good": 0, "sufficient": 1, "phase_out": 2, "insufficient": 3}
_SHOWN = {"good": Message("good"), "sufficient": Message("sufficient"), "phase_out": Message("phase out"),
          "insufficient": Message("insufficient")}
_context_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def profiles() -> dict[str, Any]:
    """The guideline profiles from ncsc_tls.yaml (package data)."""
    data = yaml.safe_load((files("compliance.checks") / "ncsc_tls.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def profile(name: str) -> dict[str, Any]:
    return dict(profiles()["profiles"][name])


def guideline_title(rules: dict[str, Any]) -> dict[str, str]:
    """A profile's title per language ({"en": ..., "nl": ...}), a message parameter shown in the reader's language."""
    title = rules["title"]
    return {str(lang): str(text) for lang, text in title.items()} if isinstance(title, dict) else {"en": str(title)}


class TlsParams(Params):
    host: str
    """The server's name (or address), optionally with its port (`vpn.gemeente.nl:8443`, `[2001:db8::1]:8443`);
    also the name its certificate must carry unless `server_name` is set."""
    port: int | None = Field(None, ge=1, le=65535)
    """Default 443, or 25 with `starttls: smtp`; may also be given in `host`."""
    starttls: Literal["smtp"] | None = None
    min_days: int = Field(21, ge=0)
    """Fail when the certificate expires within this many days (default 21)."""
    tls_profile: str = "ncsc-2025-05"
    """Which guideline version rates what is offered: a profile in checks/ncsc_tls.yaml."""
    phase_out_fails: bool = False
    """Also fail on what the guideline rates "phase out" (by default reported, not failed)."""
    server_name: str | None = None
    """The name sent as SNI and checked in the certificate, when it differs from `host`."""
    timeout: Seconds | None = None
    """Per connection; default the configuration's network timeout."""
    ca_file: str | None = None
    """CA bundle trusted besides the system store; default the configuration's."""

    @model_validator(mode="before")
    @classmethod
    def _port_in_host(cls, data: Any) -> Any:
        return port_in_host(data)

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        return plain_host(value)

    @field_validator("tls_profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        known = sorted(profiles()["profiles"])
        if value not in known:
            raise ValueError(f"unknown TLS profile '{value}'; known: {', '.join(known)}")
        return value


class _Why(Exception):
    """A reason as a `Message` (`message`), so that a Dutch output shows it in Dutch; `str()` reads it in English."""

    def __init__(self, message: Message | str) -> None:
        super().__init__(str(message))
        self.message = message


class _NoStartTls(_Why):
    """The mail server answered but does not offer STARTTLS."""


class _Unreachable(_Why):
    """No TCP connection (or no SMTP conversation) could be had."""


class Tls(Check):
    """TLS versions, cipher and certificate of a server (or mail server with STARTTLS) per the NCSC guidelines."""

    name = "tls"
    Params = TlsParams
    target_param = "host"

    def run(self, params: TlsParams, ctx: Context) -> Iterator[Result]:
        load_libraries("cryptography")
        port = params.port or (25 if params.starttls == "smtp" else 443)
        target = f"{host_for_url(params.host)}:{port}"
        rules = profile(params.tls_profile)
        title = guideline_title(rules)
        sni = params.server_name or params.host
        timeout = budget(params.timeout, ctx)

        def handshake(context: ssl.SSLContext) -> ssl.SSLSocket:
            return _handshake(params.host, port, params.starttls, sni, context, budget(timeout, ctx))

        versions: dict[str, str] = {}
        ciphers: dict[str, dict[str, str]] = {}
        leaf: bytes | None = None
        best: ssl.TLSVersion | None = None
        try:
            for label, version in _VERSIONS:
                try:
                    with handshake(_probe_context(version)) as tls:
                        versions[label] = "offered"
                        name = (tls.cipher() or ("?",))[0]
                        iana = iana_cipher_name(name)
                        ciphers[label] = {"cipher": iana, "rating": rate_cipher(rules, iana)}
                        if leaf is None:
                            leaf, best = tls.getpeercert(binary_form=True), version
                except (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError):
                    versions[label] = "not offered"
                except _Unreachable as exc:
                    if leaf is None:
                        raise
                    versions[label] = f"not offered ({exc})"  # e.g. a server that stalls on old versions
                except (ValueError, Warning) as exc:  # this Python/OpenSSL cannot speak the version
                    versions[label] = f"not tested ({exc})"
        except _NoStartTls as exc:
            yield Result.failed(target,
                            Message("Mail server %(target)s does not offer STARTTLS (%(reason)s); mail to it travels "
                                        "unencrypted.", target=target, reason=exc.message), starttls=False)
            return
        except _Unreachable as exc:
            yield Result.errored(target,
                                 Message("Could not check TLS of %(target)s: %(reason)s.", target=target,
                                     reason=exc.message), reachable=False)
            return
        # the chain, before anything else connects (a single-threaded test server would make it wait)
        trust = _verify_chain(handshake, best, ca_file_of(params.ca_file, ctx)) if best is not None else None
        scanned = _scan(params.host, port, params.starttls, sni, timeout, ctx, rules)
        # what needs a full handshake (openssl s_client), after the probes, one after the other, renegotiation
        # last (a server's answer to a refused renegotiation may hold up what follows: s_server's does for 1 s)
        extras_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tls-openssl")
        server_name = None if is_address(sni) else sni
        early_data = (extras_pool.submit(openssl_tools.zero_rtt, params.host, port, server_name=server_name,
                                         timeout=budget(timeout, ctx))
                      if versions.get("TLS 1.3") == "offered" and params.starttls is None else None)
        legacy_offered = any(versions.get(label) == "offered" for label in ("TLS 1.2", "TLS 1.1", "TLS 1.0"))
        renegotiation = (extras_pool.submit(openssl_tools.client_renegotiation, params.host, port,
                                            server_name=server_name, starttls=params.starttls,
                                            timeout=budget(timeout, ctx)) if legacy_offered else None)
        extras_pool.shutdown(wait=False)
        if scanned is not None:
            for code, accepted in scanned.versions.items():
                label = probes.VERSION_NAMES[code]
                if accepted:
                    versions[label] = "offered"  # also what Python's OpenSSL cannot speak (SSL 3.0, old suites)
                elif label not in versions or versions[label].startswith("not tested"):
                    versions[label] = "not offered"
        else:
            versions["SSL 3.0"] = "not tested (the probes could not connect)"
        offered = [label for label, state in versions.items() if state == "offered"]
        evidence: dict[str, Any] = {"profile": params.tls_profile, "starttls": params.starttls,
                                    "protocols": {label: {"state": state, **({"rating": rules["protocols"][label]}
                                                                              if state == "offered" else {})}
                                                  for label, state in versions.items()},
                                    "ciphers": ciphers}
        problems: list[tuple[str, Message]] = []  # (rating, text)
        scan_problems: list[tuple[str, Message]] = []
        incomplete: list[str] = []
        if scanned is not None:
            scan_problems = _rate_scan(rules, scanned, evidence, mail=params.starttls is not None)
            incomplete = scanned.incomplete
        else:
            incomplete = ["every probe"]
        for label in offered:
            rating = rules["protocols"][label]
            if rating in ("phase_out", "insufficient"):
                problems.append((rating, Message("offers %(version)s (%(rating)s)", version=label,
                                                 rating=_SHOWN[rating])))
        problems += scan_problems
        evidence["client_renegotiation"] = renegotiation.result() if renegotiation is not None else None
        evidence["zero_rtt"] = early_data.result() if early_data is not None else None
        if evidence["zero_rtt"] == "accepted" and "zero_rtt" in rules:
            rating = str(rules["zero_rtt"])
            problems.append((rating, Message("accepts 0-RTT early data (%(rating)s)", rating=_SHOWN[rating])))
        if leaf is None or best is None:
            seen: list[Message | str] = [text for rating, text in problems if rating == "insufficient"]
            if seen:  # e.g. only SSL 3.0, or only suites this OpenSSL no longer has
                yield Result.failed(target, Message("%(target)s completes no TLS handshake with this OpenSSL "
                                                    "(certificate not checked) and falls short of %(guideline)s: "
                                                    "%(problems)s.", target=target, guideline=title, problems=seen),
                                    **evidence)
                return
            yield Result.failed(target, Message("%(target)s accepts connections but completes no TLS handshake "
                                        "(TLS 1.0 to 1.3 tried).", target=target), **evidence)
            return

        for label, info in ciphers.items():
            if scanned is None and info["rating"] in ("phase_out", "insufficient"):
                problems.append((info["rating"], Message("picks %(cipher)s with %(version)s (%(rating)s)",
                                                         cipher=info["cipher"], version=label,
                                                         rating=_SHOWN[info["rating"]])))

        from cryptography import x509

        cert = x509.load_der_x509_certificate(leaf)
        cert_info = describe_certificate(cert, ctx.now())
        evidence["certificate"] = cert_info
        key_rating = rate_key(rules, cert.public_key())
        hash_rating = rate_signature_hash(rules, cert_info["signature_hash"])
        cert_info["key_rating"], cert_info["signature_hash_rating"] = key_rating, hash_rating
        if key_rating in ("phase_out", "insufficient"):
            problems.append((key_rating, Message("certificate key %(key)s (%(rating)s)", key=cert_info["key"],
                                                 rating=_SHOWN[key_rating])))
        if hash_rating in ("phase_out", "insufficient"):
            problems.append((hash_rating, Message("certificate signed with %(hash)s (%(rating)s)",
                                                  hash=cert_info["signature_hash"], rating=_SHOWN[hash_rating])))

        certificate_problems: list[Message | str] = []
        cert_info["trusted"] = trust is None
        if trust is not None:
            cert_info["trust_problem"] = trust
            certificate_problems.append(Message("certificate not trusted (%(reason)s)", reason=trust))
        names_match = matches_hostname(cert, sni)
        cert_info["hostname_match"] = names_match
        if not names_match:
            shown = ", ".join(cert_info["names"][:3]) or "no names"
            certificate_problems.append(Message("certificate is for %(names)s, not %(host)s", names=shown, host=sni))
        days = cert_info["days_left"]
        if cert_info["not_yet_valid"]:
            certificate_problems.append(
                                        Message("certificate not valid before %(day)s",
                                            day=cert_info["not_before"][:10]))
        elif days < 0:
            ago = cert_info["days_expired"]
            certificate_problems.append(Message("certificate expired %(days)d day ago", days=ago) if ago == 1 else
                                        Message("certificate expired %(days)d days ago", days=ago))
        elif days < params.min_days:
            certificate_problems.append(
                Message("certificate expires in %(days)d day (minimum %(minimum)d)", days=days,
                        minimum=params.min_days) if days == 1 else
                Message("certificate expires in %(days)d days (minimum %(minimum)d)", days=days,
                        minimum=params.min_days))
        evidence["min_days"] = params.min_days

        dane_notes: list[Message | str] = []
        if params.starttls and (trust is not None or not names_match):
            dane = _tlsa_records(params.host, port, ctx, timeout)
            evidence["dane"] = dane
            if dane.get("tlsa"):
                # opportunistic TLS with DANE (RFC 7672): the TLSA records, not the web PKI, vouch for the
                # certificate; internet.nl shows trust and name as information then
                dane_notes = [Message("with DANE (TLSA records at %(name)s) the certificate's trust and name are "
                                      "information only: %(problems)s", name=dane["name"],
                                      problems=[p for p in certificate_problems
                                                if isinstance(p, Message) and p.template.startswith(
                                                    ("certificate not trusted", "certificate is for"))])]
                certificate_problems = [p for p in certificate_problems
                                        if not (isinstance(p, Message) and p.template.startswith(
                                            ("certificate not trusted", "certificate is for")))]
        failing: list[Message | str] = certificate_problems + [text for rating, text in problems
                                          if rating == "insufficient" or params.phase_out_fails]
        # offered versions are named with their rating already
        notes: list[Message | str] = [text for rating, text in problems
                                      if rating == "phase_out" and not params.phase_out_fails
                                      and not text.template.startswith("offers ")]
        notes += dane_notes
        protocols = _comma_list([Message("%(version)s (%(rating)s)", version=label,
                                         rating=_SHOWN[rules["protocols"][label]]) for label in offered])
        if incomplete and not failing:
            evidence["incomplete"] = incomplete[:20]
            yield Result.errored(target, Message("Could not finish testing TLS of %(target)s in time: %(what)s not "
                                                 "tested.", target=target, what=", ".join(incomplete[:5])), **evidence)
            return
        if failing:
            yield Result.failed(target,
                                Message("TLS of %(target)s falls short of %(guideline)s: %(problems)s.", target=target,
                                        guideline=title, problems=failing), **evidence)
            return
        if notes:
            passed = Message("TLS of %(target)s meets %(guideline)s: %(protocols)s; certificate valid for %(days)d "
                             "more days; to phase out: %(notes)s.", target=target, guideline=title, protocols=protocols,
                             days=days, notes=notes)
        else:
            passed = Message("TLS of %(target)s meets %(guideline)s: %(protocols)s; certificate valid for %(days)d "
                             "more days.", target=target, guideline=title, protocols=protocols, days=days)
        yield Result.passed(target, passed, **evidence)


def _comma_list(items: list[Message]) -> Message | str:
    """Messages joined by ", " (a message parameter's list is joined by "; ")."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return Message("%(first)s, %(rest)s", first=items[0], rest=_comma_list(items[1:]))


def _connect(host: str, port: int, starttls: str | None, timeout: float) -> socket.socket:
    """A TCP connection, after the SMTP conversation up to STARTTLS when asked; ready for a ClientHello."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise _Unreachable(Message("cannot resolve %(host)s (%(reason)s)", host=host,
                                   reason=str(exc.strerror or exc))) from None
    except ConnectionRefusedError:
        raise _Unreachable(Message("connection refused")) from None
    except TimeoutError:
        raise _Unreachable(Message("no answer within %(seconds)s s", seconds=format(timeout, "g"))) from None
    except OSError as exc:
        raise _Unreachable(exc.strerror or str(exc)) from None
    try:
        if starttls == "smtp":
            _smtp_starttls(sock)
        return sock
    except TimeoutError:
        sock.close()
        raise _Unreachable(Message("no answer within %(seconds)s s", seconds=format(timeout, "g"))) from None
    except BaseException:
        sock.close()
        raise


def _handshake(host: str, port: int, starttls: str | None, sni: str, context: ssl.SSLContext,
               timeout: float) -> ssl.SSLSocket:
    """Connect (and speak SMTP up to STARTTLS when asked), then complete a TLS handshake."""
    sock = _connect(host, port, starttls, timeout)
    try:
        server_hostname = None if is_address(sni) else sni
        return context.wrap_socket(sock, server_hostname=server_hostname)
    except TimeoutError:
        sock.close()
        raise _Unreachable(Message("no answer within %(seconds)s s", seconds=format(timeout, "g"))) from None
    except BaseException:
        sock.close()
        raise


def _smtp_reply(reader: Any) -> tuple[int, list[str]]:
    lines: list[str] = []
    while True:
        raw = reader.readline(1024)
        if not raw:
            raise _Unreachable(Message("the mail server closed the connection"))
        line = raw.decode("ascii", "replace").rstrip("\r\n")
        lines.append(line[4:])
        if len(line) < 4 or line[3] != "-":
            try:
                return int(line[:3]), lines
            except ValueError:
                raise _NoStartTls(Message("it does not speak SMTP: %(reply)s", reply=repr(line[:60]))) from None


def _smtp_starttls(sock: socket.socket) -> None:
    """The SMTP conversation up to the point where the TLS handshake starts (RFC 3207)."""
    reader = sock.makefile("rb")
    try:
        code, lines = _smtp_reply(reader)
        if code != 220:
            raise _Unreachable(Message("the mail server greets with %(code)d %(reply)s", code=code,
                                       reply=" ".join(lines)[:80]))
        sock.sendall(b"EHLO " + _ehlo_name().encode() + b"\r\n")
        code, lines = _smtp_reply(reader)
        if code != 250:
            raise _NoStartTls(Message("EHLO answered with %(code)d", code=code))
        if not any(line.upper().split(" ")[0] == "STARTTLS" for line in lines):
            raise _NoStartTls(Message("not in its EHLO answer"))
        sock.sendall(b"STARTTLS\r\n")
        code, lines = _smtp_reply(reader)
        if code != 220:
            raise _NoStartTls(Message("STARTTLS answered with %(code)d %(reply)s", code=code,
                                      reply=" ".join(lines)[:80]))
    finally:
        reader.close()


@functools.lru_cache(maxsize=1)
def _ehlo_name() -> str:
    name = socket.getfqdn()
    return name if "." in name else "compliance-monitor.invalid"


def _legacy_context(setup: Any) -> ssl.SSLContext:
    """Build a context that allows TLS 1.0/1.1, without the DeprecationWarning Python gives for it."""
    with _context_lock, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"ssl\.TLSVersion\.TLSv1", category=DeprecationWarning)
        context: ssl.SSLContext = setup()
        return context


@functools.lru_cache(maxsize=8)
def _probe_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A context that speaks exactly one version and offers every cipher suite OpenSSL has.

    Offering everything shows what the server is willing to pick; the probe does not verify, the
    chain is verified separately.
    """
    def setup() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.options |= _LEGACY_SERVER_CONNECT
        context.minimum_version = version
        context.maximum_version = version
        return context

    return _legacy_context(setup) if version in _LEGACY else setup()


@functools.lru_cache(maxsize=32)
def _verify_context(ca_file: str | None, version: ssl.TLSVersion) -> ssl.SSLContext:
    def setup() -> ssl.SSLContext:
        context = ssl.create_default_context()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        context.check_hostname = False  # checked on its own, to report it separately
        context.verify_flags |= _NO_CHECK_TIME
        context.options |= _LEGACY_SERVER_CONNECT
        if version in _LEGACY:
            context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = version
        context.maximum_version = version
        return context

    return _legacy_context(setup) if version in _LEGACY else setup()


def _verify_chain(handshake: Any, version: ssl.TLSVersion, ca_file: str | None) -> str | None:
    """None when the chain is trusted (system store plus `ca_file`), else why not."""
    try:
        with handshake(_verify_context(ca_file, version)):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc.reason)
    except ssl.SSLError as exc:
        return f"the verifying handshake failed: {exc.reason or exc}"


def _scan(host: str, port: int, starttls: str | None, sni: str, timeout: float, ctx: Context,
          rules: dict[str, Any]) -> probes.ServerScan | None:
    """Every suite, group and option the server accepts (hand-built ClientHellos, see _tlsprobe), or None
    when no probe could connect. Probes run 8 at a time and stop starting at the check's time budget."""
    def connect() -> socket.socket:
        try:
            return _connect(host, port, starttls, budget(timeout, ctx))
        except _Why as exc:
            raise probes.ProbeError(str(exc)) from None

    deadline = time.monotonic() + max(1.0, ctx.remaining() - 1.0)
    try:
        # a mail server gets fewer connections at a time and no group-by-group probes (information only):
        # every probe is an SMTP session there
        return probes.scan(connect, deadline=deadline, rate=functools.partial(rate_cipher, rules),
                           server_name=None if is_address(sni) else sni, workers=8 if starttls is None else 4,
                           groups=starttls is None)
    except probes.ProbeError:
        return None


def _tlsa_records(host: str, port: int, ctx: Context, timeout: float) -> dict[str, Any]:
    """The TLSA records at _PORT._tcp.HOST (RFC 6698/7672), asked of the configuration's name server."""
    load_libraries("dns")
    import dns.exception
    import dns.resolver

    name = f"_{port}._tcp.{host.rstrip('.')}"
    if is_address(host):
        return {"name": name, "tlsa": []}
    try:
        answer = resolver(ctx.nameserver, budget(timeout, ctx)).resolve(name, "TLSA")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return {"name": name, "tlsa": []}
    except dns.exception.DNSException as exc:
        return {"name": name, "tlsa": [], "error": str(exc)[:200]}
    return {"name": name, "tlsa": [rdata.to_text()[:200] for rdata in answer][:10]}


def rate_group(rules: dict[str, Any], name: str) -> str:
    """A key-exchange group's rating ("x25519", "ffdhe3072", "DH-1024" for a server's own DH prime)."""
    for rating in ("good", "sufficient", "phase_out"):
        if name in (rules.get("groups", {}).get(rating) or []):
            return rating
    return "insufficient"


def _names(items: list[str], shown: int = 4) -> str:
    return ", ".join(items[:shown]) + (f" (+{len(items) - shown})" if len(items) > shown else "")


def _rate_scan(rules: dict[str, Any], scan: probes.ServerScan, evidence: dict[str, Any],
               mail: bool) -> list[tuple[str, Message]]:
    """Rate what the probes saw; add it to `evidence`; return the problems as (rating, text)."""
    problems: list[tuple[str, Message]] = []
    accepted: dict[str, list[dict[str, str]]] = {}
    used: dict[str, str] = {}  # group -> rating, over all accepted suites
    for code in (probes.TLS13, *probes.LEGACY_VERSIONS):
        if code not in scan.suites:
            continue
        label = probes.VERSION_NAMES[code]
        rated = []
        for suite in scan.suites[code]:
            name = probes.suite_name(suite)
            entry = {"suite": name, "rating": rate_cipher(rules, name)}
            if group := scan.kex.get(code, {}).get(suite):
                entry["group"] = group
                used[group] = rate_group(rules, group)
            rated.append(entry)
        accepted[label] = rated[:60]
        for rating in ("insufficient", "phase_out"):
            bad = [entry["suite"] for entry in rated if entry["rating"] == rating]
            if bad:
                problems.append((rating, Message("accepts %(ciphers)s with %(version)s (%(rating)s)",
                                                 ciphers=_names(bad), version=label, rating=_SHOWN[rating])))
    evidence["accepted_suites"] = accepted
    order: dict[str, Any] = {}
    if scan.order_version is not None:
        label = probes.VERSION_NAMES[scan.order_version]
        order = {"version": label, "enforced": scan.order_enforced,
                 "violation": [probes.suite_name(c) for c in scan.order_violation or ()],
                 "good_before_sufficient_violation": [probes.suite_name(c) for c in scan.good_order_violation or ()]}
        for key, violation in (("cipher_order", scan.order_violation), ("good_cipher_order",
                                                                        scan.good_order_violation)):
            if violation is not None and key in rules:
                rating = str(rules[key])
                problems.append((rating, Message("prefers %(worse)s to %(better)s with %(version)s (%(rating)s)",
                                                 worse=probes.suite_name(violation[0]),
                                                 better=probes.suite_name(violation[1]), version=label,
                                                 rating=_SHOWN[rating])))
    evidence["cipher_order"] = order
    evidence["groups"] = used
    evidence["groups_supported"] = {probes.GROUPS[g]: rate_group(rules, probes.GROUPS[g])
                                    for g, ok in scan.groups_supported.items() if ok}
    for rating in ("insufficient", "phase_out"):
        bad = [name for name, given in used.items() if given == rating]
        if bad:
            problems.append((rating, Message("uses key-exchange group %(groups)s (%(rating)s)",
                                             groups=_names(bad), rating=_SHOWN[rating])))
    evidence["secure_renegotiation"] = scan.secure_renegotiation
    if scan.secure_renegotiation is False and "no_secure_renegotiation" in rules:
        rating = str(rules["no_secure_renegotiation"])
        problems.append((rating, Message("no secure renegotiation (RFC 5746) (%(rating)s)", rating=_SHOWN[rating])))
    evidence["extended_master_secret"] = scan.extended_master_secret
    if (scan.extended_master_secret is False and scan.versions.get(probes.TLS12)
            and "no_extended_master_secret" in rules):
        rating = str(rules["no_extended_master_secret"])
        problems.append((rating, Message("TLS 1.2 without extended master secret (RFC 7627) (%(rating)s)",
                                         rating=_SHOWN[rating])))
    evidence["compression"] = (None if scan.compression is None else
                               "none" if scan.compression == 0 else f"method {scan.compression}")
    if scan.compression and "compression" in rules:
        rating = str(rules["compression"])
        problems.append((rating, Message("TLS compression (%(rating)s)", rating=_SHOWN[rating])))
    evidence["kex_hash"] = scan.kex_hash or ("sha2" if scan.versions.get(probes.TLS12) else None)
    if scan.kex_hash and scan.kex_hash in rules.get("kex_hash", {}):
        rating = str(rules["kex_hash"][scan.kex_hash])
        if mail and rating == "insufficient":
            rating = "phase_out"  # internet.nl: a notice for mail servers
        problems.append((rating, Message("signs the key exchange with %(hash)s when asked to (%(rating)s)",
                                         hash=scan.kex_hash.upper().replace("SHA", "SHA-"), rating=_SHOWN[rating])))
    if scan.incomplete:
        evidence["incomplete"] = scan.incomplete[:20]
    return problems


# --- ratings -----------------------------------------------------------------------------------

_KEY_EXCHANGE = (  # OpenSSL name prefix -> IANA key exchange and authentication, longest first
    ("ECDHE-ECDSA-", "ECDHE_ECDSA"), ("ECDHE-RSA-", "ECDHE_RSA"), ("ECDHE-PSK-", "ECDHE_PSK"),
    ("DHE-RSA-", "DHE_RSA"), ("DHE-DSS-", "DHE_DSS"), ("DHE-PSK-", "DHE_PSK"), ("RSA-PSK-", "RSA_PSK"),
    ("EDH-RSA-", "DHE_RSA"), ("EDH-DSS-", "DHE_DSS"), ("SRP-DSS-", "SRP_SHA_DSS"), ("SRP-RSA-", "SRP_SHA_RSA"),
    ("SRP-", "SRP_SHA"), ("ADH-", "DH_anon"), ("AECDH-", "ECDH_anon"), ("PSK-", "PSK"),
    ("ECDHE-", "ECDHE_RSA"),  # OpenSSL's ECDHE-ARIA* names leave out RSA
)
_BULK = re.compile(r"(AES|ARIA|CAMELLIA)-?(128|256)(?:-(GCM|CCM8|CCM|CBC))?(?:-(SHA\d*|MD5))?")


def iana_cipher_name(openssl_name: str) -> str:
    """The IANA name of a cipher suite from its OpenSSL name ("ECDHE-RSA-AES128-GCM-SHA256" ->
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"). TLS 1.3 names are the same in both."""
    if openssl_name.startswith("TLS_"):
        return openssl_name
    kx, rest = "RSA", openssl_name
    for prefix, iana in _KEY_EXCHANGE:
        if openssl_name.startswith(prefix):
            kx, rest = iana, openssl_name[len(prefix):]
            break
    if rest == "CHACHA20-POLY1305":
        bulk = "CHACHA20_POLY1305_SHA256"
    elif rest in ("DES-CBC3-SHA", "3DES-EDE-CBC-SHA"):
        bulk = "3DES_EDE_CBC_SHA"
    elif rest.startswith("RC4-"):
        bulk = "RC4_128_" + rest[4:]
    elif rest.startswith("NULL-"):
        bulk = "NULL_" + rest[5:]
    elif match := _BULK.fullmatch(rest):
        algorithm, bits, mode, mac = match.groups()
        mode = {"CCM8": "CCM_8", None: "CBC"}.get(mode, mode)
        bulk = f"{algorithm}_{bits}_{mode}" + (f"_{mac}" if mac else "")
    else:
        return f"OPENSSL_{openssl_name}"  # unknown: rated insufficient, shown as OpenSSL named it
    return f"TLS_{kx}_WITH_{bulk}"


def rate_cipher(rules: dict[str, Any], iana: str) -> str:
    for rating in ("good", "sufficient", "phase_out"):
        if any(fnmatchcase(iana, pattern) for pattern in rules["ciphers"].get(rating) or []):
            return rating
    return "insufficient"


def rate_key(rules: dict[str, Any], key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    spec = rules["certificate_key"]
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        limits = spec.get("rsa" if isinstance(key, rsa.RSAPublicKey) else "dsa") or {}
        for rating in ("sufficient", "phase_out"):
            if rating in limits and key.key_size >= limits[rating]:
                return rating
        return "insufficient"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curves = spec.get("ec_curves") or {}
        for rating in ("good", "sufficient", "phase_out"):
            if key.curve.name in (curves.get(rating) or []):
                return rating
        return "insufficient"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return str(spec.get("eddsa", "insufficient"))
    return "insufficient"


def rate_signature_hash(rules: dict[str, Any], name: str) -> str:
    if name == "none (EdDSA)":
        return "good"
    for rating in ("good", "sufficient", "phase_out"):
        if name in (rules["signature_hash"].get(rating) or []):
            return rating
    return "insufficient"


def describe_key(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size} bits"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses in the subject alternative name extension."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def matches_hostname(cert: x509.Certificate, host: str) -> bool:
    """Whether the certificate's subject alternative names cover `host` (RFC 6125; no CN fallback,
    as browsers do): exact names, a wildcard for the whole left-most label, IP addresses."""
    names = certificate_names(cert)
    if is_address(host):
        wanted = ipaddress.ip_address(host)
        return any(is_address(n) and ipaddress.ip_address(n) == wanted for n in names)
    host = host.rstrip(".").lower()
    for name in names:
        name = name.rstrip(".").lower()
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            first, rest = host.split(".", 1)
            if rest == name[2:] and first and rest.count(".") >= 1:
                return True
    return False


def describe_certificate(cert: x509.Certificate, now: datetime) -> dict[str, Any]:
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    hash_algorithm = cert.signature_hash_algorithm
    return {
        "subject": cert.subject.rfc4514_string()[:300],
        "issuer": cert.issuer.rfc4514_string()[:300],
        "names": certificate_names(cert)[:20],
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "not_yet_valid": not_before > now,
        "days_left": int((not_after - now).total_seconds() // 86400),
        "days_expired": max(0, int((now - not_after).total_seconds() // 86400)),
        "key": describe_key(cert.public_key()),
        "signature_hash": hash_algorithm.name if hash_algorithm is not None else "none (EdDSA)",
    }
