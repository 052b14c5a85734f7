"""`dane`: every mail server of a domain publishes DNSSEC-signed TLSA records that match its certificate.

Secure state (Forum Standaardisatie "pas toe of leg uit": STARTTLS and DANE for mail, since 2016;
internet.nl "DANE existence", "DANE validity" and "DNSSEC of the mail server domains"): a sending
mail server that does DANE (RFC 7672) can tell that it talks to the real receiving server and
cannot be stripped of STARTTLS. Per MX host of the domain (one result each, evidence `aspect: dane`):

1. **TLSA records exist** at `_25._tcp.<mx host>` (`_<port>._tcp` with another `port`).
2. **They are DNSSEC-signed and validate**, decided like the `dnssec` check (`method`): a validating
   resolver's AD flag (SERVFAIL that answers with checking disabled = bogus), or the own check (the
   TLSA RRset's signature by a key of its zone, the zone's DNSKEY set signed by one of its keys, a
   DS at the parent that matches; the chain above the parent is not checked). TLSA records that do
   not validate are unusable (RFC 7672 2.2): fail.
3. **The certificate matches**: the check speaks SMTP to each address of the MX host (up to four;
   `ip_versions: [4]` for a monitor without an IPv6 route, else those addresses are errors),
   starts TLS (RFC 3207) and compares the presented chain with the usable records, RFC 7671/7672:
   - DANE-EE (3): the server certificate (selector 0) or its public key (selector 1) matches, in
     full (matching type 0), SHA-256 (1) or SHA-512 (2). No name or expiry check (RFC 7672 3.1.1).
   - DANE-TA (2): a certificate the server presents in its chain matches, the chain from the server
     certificate up to it is signed link by link and valid now, and the server certificate names the
     MX host or the domain (RFC 7672 3.2.2). A trust anchor the server does not present is not found.
   - PKIX-TA (0) and PKIX-EE (1) are unusable for SMTP (RFC 7672 3.1.3) and are ignored, as
     internet.nl does; only such records = "no usable TLSA records": fail.
   The evidence tells whether a key rollover scheme is in place (internet.nl: two DANE-EE records,
   or DANE-EE and DANE-TA; information only).

With `mx_dnssec: true` (default) it also checks, per MX host, that the **zone of the mail server's
name** is DNSSEC-signed and validates (the `dnssec` check on that name, evidence `aspect: mx_dnssec`);
`dnssec` on the mail domain itself covers the domain.

Verdicts: `fail` for no TLSA, unsigned or bogus TLSA, no usable record, a certificate that matches
none, a mail server that offers no STARTTLS or whose TLS handshake fails; `skipped` for a domain without
MX (or a null MX); `error` when DNS does not answer (time-out, SERVFAIL without bogus evidence), the
domain does not exist, or a mail server cannot be reached. Like internet.nl, a missing TLSA record
fails even when the mail server's zone is unsigned (internet.nl: DANE existence has worst status
"fail" for mail).

Example::

    id: MAIL-DANE
    title: Our mail servers are protected with DANE
    theme: technological
    references: {forum-standaardisatie: [dane, dnssec], iso27002: "5.14", bio2: "5.14.01"}
    severity: high
    checks:
      - plugin: dane
        params: {method: auto, mx_dnssec: true}
        targets: [gemeente.nl, gemeente-app.nl]
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from compliance.api import Check, Context, Message, Params, Result, Seconds
from compliance.checks import tls as tls_check
from compliance.checks._net import budget, load_libraries, nameserver_of, resolver
from compliance.checks.ipv6 import Names
from compliance.checks.mail_auth import DnsProblem, MailAuthParams

_CAP = 10
_MAX_ADDRESSES = 4
_BOTH: tuple[Literal[4, 6], ...] = (4, 6)
_USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}


class DaneParams(Params):
    domain: str
    """The mail domain, e.g. gemeente.nl: each of its MX hosts is checked."""
    port: int = Field(25, ge=1, le=65535)
    """The SMTP port of the mail servers; the TLSA records are looked up at _<port>._tcp.<mx host>."""
    method: Literal["auto", "resolver", "own"] = "auto"
    """How DNSSEC of the TLSA records is decided, as in the dnssec check."""
    mx_dnssec: bool = True
    """Also check that the zone of each mail server's name is DNSSEC-signed and validates."""
    ip_versions: list[Literal[4, 6]] = Field(default_factory=lambda: list(_BOTH), min_length=1)
    """Which addresses of the mail servers to connect to; [4] for a monitor without an IPv6 route."""
    nameserver: str | None = None
    """DNS resolver as host or host:port; default the configuration's, else the system's."""
    timeout: Seconds | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return MailAuthParams._domain(value)


class _Unreachable(Exception):
    def __init__(self, message: Message | str) -> None:
        super().__init__(str(message))
        self.message = message


class _NoTls(_Unreachable):
    """The server answered but TLS could not be started (no STARTTLS, handshake failure)."""


class Dane(Check):
    """Each MX host has DNSSEC-signed TLSA records that match its STARTTLS certificate (RFC 7672, internet.nl)."""

    name = "dane"
    Params = DaneParams
    target_param = "domain"

    def run(self, params: DaneParams, ctx: Context) -> Iterator[Result]:
        from compliance.checks.dnssec import Dnssec, DnssecParams

        load_libraries("dns", "cryptography")
        domain = params.domain
        ns = nameserver_of(params.nameserver, ctx)
        names = Names(resolver(ns, budget(params.timeout, ctx)))
        try:
            if not names.exists(domain):
                yield Result.errored(domain, Message("Could not check DANE of %(domain)s: the domain does not exist "
                                                     "in DNS (NXDOMAIN).", domain=domain))
                return
            hosts, null_mx = names.mx_hosts(domain)
        except DnsProblem as exc:
            yield Result.errored(domain, Message("Could not check DANE of %(domain)s: %(reason)s.", domain=domain,
                                                 reason=exc.message))
            return
        if not hosts:
            why = Message("accepts no mail (null MX)") if null_mx else Message("has no MX records")
            yield Result.skipped(domain, Message("DANE of %(domain)s not tested: the domain %(why)s.", domain=domain,
                                                 why=why), aspect="dane", null_mx=null_mx)
            return
        for host in hosts[:_CAP]:
            yield self._host(domain, host, params, ctx, ns)
        if params.mx_dnssec:
            dnssec = Dnssec()
            for host in hosts[:_CAP]:
                check_params = DnssecParams(domain=host, method=params.method, nameserver=params.nameserver,
                                            timeout=params.timeout)
                for result in dnssec.run(check_params, ctx):
                    yield dataclasses.replace(result, target=domain,
                                              evidence={**result.evidence, "aspect": "mx_dnssec", "mx": host})

    def _host(self, domain: str, host: str, params: DaneParams, ctx: Context, ns: str | None) -> Result:
        tlsa_name = f"_{params.port}._tcp.{host}"
        evidence: dict[str, Any] = {"aspect": "dane", "mx": host, "tlsa_name": tlsa_name}
        try:
            lookup = tlsa_lookup(tlsa_name, ns, budget(params.timeout, ctx), params.method)
        except DnsProblem as exc:
            return Result.errored(domain, Message("Could not check DANE of mail server %(host)s: %(reason)s.",
                                                  host=host, reason=exc.message), **evidence)
        evidence["dnssec"] = str(lookup.method_text)
        if not lookup.records:
            return Result.failed(domain, Message("Mail server %(host)s has no TLSA records (%(name)s): no DANE.",
                                                 host=host, name=tlsa_name), **evidence, tlsa=[])
        evidence["tlsa"] = [_record_text(r) for r in lookup.records][:_CAP]
        if lookup.state == "bogus":
            return Result.failed(domain, Message("TLSA records of mail server %(host)s do not validate with DNSSEC "
                                                 "(%(reason)s): unusable.", host=host, reason=lookup.reason),
                                 **evidence, secure=False)
        if lookup.state != "secure":
            return Result.failed(domain, Message("TLSA records of mail server %(host)s are not DNSSEC-signed "
                                                 "(%(reason)s): unusable (RFC 7672 2.2).", host=host,
                                                 reason=lookup.reason), **evidence, secure=False)
        evidence["secure"] = True
        usable = [r for r in lookup.records if r.usage in (2, 3) and r.selector in (0, 1) and r.mtype in (0, 1, 2)]
        ee = sum(1 for r in usable if r.usage == 3)
        evidence["rollover_scheme"] = ee > 1 or (ee > 0 and any(r.usage == 2 for r in usable))
        if not usable:
            return Result.failed(domain, Message("Mail server %(host)s has no usable TLSA records (only PKIX-TA/"
                                                 "PKIX-EE or unknown types, which SMTP ignores).", host=host),
                                 **evidence)
        try:
            addresses = names_for(host, ns, budget(params.timeout, ctx), params.ip_versions)
        except DnsProblem as exc:
            return Result.errored(domain, Message("Could not check DANE of mail server %(host)s: %(reason)s.",
                                                  host=host, reason=exc.message), **evidence)
        if not addresses:
            return Result.errored(domain, Message("Could not check DANE of mail server %(host)s: it has no IP address "
                                                  "(of the IP versions checked).", host=host), **evidence)
        outcomes: dict[str, str] = {}
        failures: list[Message | str] = []
        unreachable: list[Message | str] = []
        for address in addresses[:_MAX_ADDRESSES]:
            try:
                chain = starttls_chain(address, params.port, host, budget(params.timeout, ctx))
            except _NoTls as exc:
                outcomes[address] = "no TLS"
                failures.append(Message("%(address)s: %(reason)s", address=address, reason=exc.message))
                continue
            except _Unreachable as exc:
                outcomes[address] = "unreachable"
                unreachable.append(Message("%(address)s: %(reason)s", address=address, reason=exc.message))
                continue
            matched, reason = match_chain(chain, usable, host, domain, ctx.now())
            outcomes[address] = matched or "no match"
            if matched is None:
                failures.append(Message("%(address)s: %(reason)s", address=address, reason=reason))
        evidence["addresses"] = outcomes
        if failures:
            return Result.failed(domain, Message("DANE of mail server %(host)s fails: %(problems)s.", host=host,
                                                 problems=failures), **evidence)
        if unreachable:
            return Result.errored(domain, Message("Could not check DANE of mail server %(host)s: %(problems)s.",
                                                  host=host, problems=unreachable), **evidence)
        return Result.passed(domain, Message("DANE of mail server %(host)s is valid: DNSSEC-signed TLSA records "
                                             "(%(method)s) match the certificate it presents (%(matches)s).",
                                             host=host, method=lookup.method_text,
                                             matches=", ".join(sorted(set(outcomes.values())))), **evidence)


# --- TLSA look-up and DNSSEC -----------------------------------------------------------------------

@dataclasses.dataclass
class TlsaLookup:
    records: list[Any]
    state: Literal["secure", "insecure", "bogus", "none"]
    method_text: Message
    reason: Message | str = ""


def tlsa_lookup(name: str, ns: str | None, timeout: float, method: str) -> TlsaLookup:
    """The TLSA records at `name` and whether DNSSEC makes them usable. Raises DnsProblem when DNS fails."""
    import dns.flags
    import dns.resolver

    from compliance.checks.dnssec import SYSTEM_RESOLVER, Bogus, DnsFailure, _shown

    res = resolver(ns, timeout)
    res.use_edns(0, dns.flags.DO, 1232)
    shown = ns or str(SYSTEM_RESOLVER)
    names = Names(res)
    resolver_text = Message("validating resolver %(nameserver)s", nameserver=_shown(shown))
    if method in ("auto", "resolver"):
        res.flags = dns.flags.RD | dns.flags.AD
        try:
            answer = _query(res, name)
        except _ServFail:
            res.flags = dns.flags.RD | dns.flags.CD
            try:
                answer = _query(res, name)
            except _ServFail:
                raise DnsProblem(Message("no name server answered for %(name)s (SERVFAIL or refused)",
                                         name=name)) from None
            records = [] if answer is None or answer.rrset is None else list(answer.rrset)
            return TlsaLookup(records, "bogus", resolver_text,
                              Message("%(nameserver)s answers SERVFAIL, but answers with checking disabled",
                                      nameserver=_shown(shown)))
        records = [] if answer is None or answer.rrset is None else list(answer.rrset)
        if not records:
            return TlsaLookup([], "none", resolver_text)
        if answer is not None and answer.response.flags & dns.flags.AD:
            return TlsaLookup(records, "secure", resolver_text)
        if method == "resolver":
            return TlsaLookup(records, "insecure", resolver_text,
                              Message("%(nameserver)s does not set the AD flag", nameserver=_shown(shown)))
    own_text = (Message("own RRSIG/DNSKEY/DS check (%(nameserver)s did not validate)", nameserver=_shown(shown))
                if method == "auto" else Message("own RRSIG/DNSKEY/DS check"))
    try:
        return _own_tlsa_check(name, res, names, own_text)
    except DnsFailure as exc:
        raise DnsProblem(exc.message) from None
    except Bogus as exc:  # pragma: no cover - _own_tlsa_check turns Bogus into a verdict
        return TlsaLookup([], "bogus", own_text, exc.message)


class _ServFail(Exception):
    """The resolver answered SERVFAIL (a validating resolver's answer to bad signatures)."""


def _query(res: Any, name: str) -> Any:
    """One TLSA query: the answer, None for NXDOMAIN; SERVFAIL raises _ServFail, other failures DnsProblem."""
    import dns.exception
    import dns.resolver

    try:
        return res.resolve(name, "TLSA", raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return None
    except dns.resolver.NoNameservers as exc:
        if any(error[3] == "SERVFAIL" for error in exc.kwargs.get("errors") or []):
            raise _ServFail from None
        raise DnsProblem(Message("no name server answered for %(name)s (SERVFAIL or refused)", name=name)) from exc
    except dns.exception.Timeout as exc:
        raise DnsProblem(Message("DNS did not answer for %(name)s in time", name=name)) from exc
    except dns.exception.DNSException as exc:
        raise DnsProblem(Message("DNS error for %(name)s: %(reason)s", name=name, reason=str(exc))) from exc


def _own_tlsa_check(name: str, res: Any, names: Names, method_text: Message) -> TlsaLookup:
    import dns.flags
    import dns.name
    import dns.rdatatype

    from compliance.checks.dnssec import Bogus, _matching_ds, _rrset_with_signatures, _validate

    res.flags = dns.flags.RD | dns.flags.CD
    qname = dns.name.from_text(name)
    answer = names.answer(qname, "TLSA")
    if answer is None or answer.rrset is None:
        return TlsaLookup([], "none", method_text)
    tlsa = sigs = None
    for rrset in answer.response.answer:
        if rrset.name != qname:
            continue
        if rrset.rdtype == dns.rdatatype.TLSA:
            tlsa = rrset
        elif rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == dns.rdatatype.TLSA:
            sigs = rrset
    records = list(answer.rrset)
    if tlsa is None or sigs is None:
        return TlsaLookup(records, "insecure", method_text, Message("the records have no signature (RRSIG)"))
    zone = next(iter(sigs)).signer
    keys, key_sigs = _rrset_with_signatures(res, zone, dns.rdatatype.DNSKEY)
    if keys is None:
        return TlsaLookup(records, "bogus", method_text,
                          Message("zone %(zone)s publishes no DNSKEY for the signature", zone=zone.to_text()))
    now = time.time()
    try:
        _validate(keys, key_sigs, zone, keys, now, Message("the DNSKEY set"))
        _validate(tlsa, sigs, zone, keys, now, Message("the TLSA record set"))
    except Bogus as exc:
        return TlsaLookup(records, "bogus", method_text, exc.message)
    ds_set, _ = _rrset_with_signatures(res, zone, dns.rdatatype.DS)
    if ds_set is None:
        return TlsaLookup(records, "insecure", method_text,
                          Message("zone %(zone)s is signed but its parent has no DS record", zone=zone.to_text()))
    if _matching_ds(zone, keys, ds_set) is None:
        return TlsaLookup(records, "bogus", method_text,
                          Message("no DS record at the parent of %(zone)s matches a DNSKEY", zone=zone.to_text()))
    return TlsaLookup(records, "secure", method_text)


def names_for(host: str, ns: str | None, timeout: float, versions: list[Literal[4, 6]]) -> list[str]:
    """The host's IPv4 then IPv6 addresses (of the IP versions asked), through the configured resolver."""
    names = Names(resolver(ns, timeout))
    return (names.addresses(host, "A") if 4 in versions else []) + (
        names.addresses(host, "AAAA") if 6 in versions else [])


def _record_text(rdata: Any) -> str:
    usage = _USAGES.get(int(rdata.usage), str(rdata.usage))
    return f"{rdata.usage} {rdata.selector} {rdata.mtype} {rdata.cert.hex()[:64]} ({usage})"


# --- SMTP STARTTLS and certificate matching ----------------------------------------------------------

def starttls_chain(address: str, port: int, sni: str, timeout: float) -> list[bytes]:
    """Speak SMTP up to STARTTLS (RFC 3207), complete a TLS handshake, return the presented chain (DER).

    The handshake does not verify the certificate: under DANE the TLSA records decide (RFC 7672).
    """
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        raise _Unreachable(Message("connection refused")) from None
    except TimeoutError:
        raise _Unreachable(Message("no answer within %(seconds)s s", seconds=format(timeout, "g"))) from None
    except OSError as exc:
        raise _Unreachable(Message("cannot connect: %(reason)s", reason=str(exc.strerror or exc))) from None
    with sock:
        try:
            tls_check._smtp_starttls(sock)  # the SMTP conversation up to STARTTLS, as the tls check has it
        except tls_check._NoStartTls as exc:
            if getattr(exc.message, "template", None) in ("not in its EHLO answer", "EHLO answered with %(code)d"):
                raise _NoTls(Message("the mail server does not offer STARTTLS")) from None
            raise _NoTls(exc.message) from None
        except tls_check._Unreachable as exc:
            raise _Unreachable(exc.message) from None
        except TimeoutError:
            raise _Unreachable(Message("no answer within %(seconds)s s", seconds=format(timeout, "g"))) from None
        except OSError as exc:
            raise _Unreachable(Message("connection lost: %(reason)s", reason=str(exc.strerror or exc))) from None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with context.wrap_socket(sock, server_hostname=sni) as tls:
                return _presented_chain(tls)
        except ssl.SSLError as exc:
            raise _NoTls(Message("TLS handshake failed: %(reason)s", reason=str(exc.reason or exc))) from None
        except TimeoutError:
            raise _Unreachable(Message("no answer within %(seconds)s s", seconds=format(timeout, "g"))) from None
        except OSError as exc:
            raise _NoTls(Message("TLS handshake failed: %(reason)s", reason=str(exc.strerror or exc))) from None


def _presented_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """The certificates the server sent, leaf first (Python 3.13 has this public; 3.11/3.12 privately)."""
    getter = getattr(tls, "get_unverified_chain", None) or getattr(getattr(tls, "_sslobj", None),
                                                                   "get_unverified_chain", None)
    import _ssl

    chain: list[bytes] = []
    if getter is not None:
        der = getattr(ssl, "ENCODING_DER", getattr(_ssl, "ENCODING_DER", 1))
        for cert in getter() or []:
            chain.append(cert if isinstance(cert, bytes) else cert.public_bytes(der))
    if not chain:
        leaf = tls.getpeercert(binary_form=True)
        if leaf:
            chain = [leaf]
    if not chain:
        raise _NoTls(Message("the server presented no certificate"))
    return chain


def association(der: bytes, selector: int, mtype: int) -> bytes | None:
    """The certificate association data of a certificate for a TLSA selector and matching type."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    if selector == 0:
        data = der
    elif selector == 1:
        data = x509.load_der_x509_certificate(der).public_key().public_bytes(Encoding.DER,
                                                                            PublicFormat.SubjectPublicKeyInfo)
    else:
        return None
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return None


def match_chain(chain: list[bytes], records: list[Any], host: str, domain: str,
                now: datetime) -> tuple[str | None, Message | str]:
    """(What matched, e.g. 'DANE-EE 3 1 1', or None; why nothing matched)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    for record in records:
        if record.usage == 3 and association(chain[0], record.selector, record.mtype) == record.cert:
            return f"DANE-EE {record.usage} {record.selector} {record.mtype}", ""
    reason: Message | str = Message("the certificate matches none of the TLSA records")
    ta_records = [r for r in records if r.usage == 2]
    if not ta_records:
        return None, reason
    certs = [x509.load_der_x509_certificate(der) for der in chain]
    for depth in range(1, len(certs)):
        found = next((r for r in ta_records
                      if association(chain[depth], r.selector, r.mtype) == r.cert), None)
        if found is None:
            continue
        try:
            for lower, upper in itertools.pairwise(certs[:depth + 1]):
                lower.verify_directly_issued_by(upper)
        except (ValueError, TypeError, InvalidSignature) as exc:  # wrong issuer, unsupported key, bad signature
            return None, Message("the chain to the DANE-TA certificate does not verify (%(reason)s)",
                                 reason=type(exc).__name__)
        for cert in certs[:depth + 1]:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                return None, Message("a certificate in the chain to the DANE-TA certificate is expired or not yet "
                                     "valid (%(subject)s)", subject=cert.subject.rfc4514_string()[:80])
        if not _names_match(certs[0], (host, domain)):
            return None, Message("the certificate does not name %(host)s or %(domain)s (DANE-TA requires the name)",
                                 host=host, domain=domain)
        return f"DANE-TA {found.usage} {found.selector} {found.mtype}", ""
    return None, reason


def _names_match(cert: Any, wanted: tuple[str, ...]) -> bool:
    from cryptography import x509

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    for pattern in (str(n).lower().rstrip(".") for n in names):
        for name in wanted:
            if pattern == name:
                return True
            if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
                return True
    return False
