"""`dnssec`: a domain's zone is signed with DNSSEC and validates.

Secure state (Forum Standaardisatie "pas toe of leg uit": DNSSEC on every domain used to communicate
with citizens and businesses, since the end of 2017; internet.nl "DNSSEC exists" and "valid"): the
zone is signed and a validating resolver accepts it. Two ways to decide, and the result says which:

- `resolver`: ask the resolver (the `nameserver` parameter, else the configuration's, else the
  system's) with the DO and AD bits. It sets AD on an answer it validated (secure). When it answers
  SERVFAIL but does answer with checking disabled (CD), the signatures are bogus.
- `own`: check the chain one step ourselves: the zone's DNSKEY set is signed by one of its keys, its
  SOA is signed by a DNSKEY, and the parent publishes a DS record that matches one of the keys
  (RFC 4035 5). Signature times are checked. The chain above the parent (up to the root) is not.

`method: auto` (the default) trusts a resolver's AD flag and does the own check when the resolver did
not validate (no AD flag: an unsigned zone, or a resolver that does not validate).

Verdicts: `fail` when the zone is not signed, a signature is bogus or expired, or no DS at the parent
matches a key; `error` when DNS does not answer or the domain does not exist.

Example::

    id: DNS-DNSSEC
    title: Our domains are signed with DNSSEC
    theme: technological
    references: {bio2: "8.20", iso27002: "8.20", forum_standaardisatie: DNSSEC}
    severity: high
    checks:
      - plugin: dnssec
        params: {method: auto}
        targets: mail_domains
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from compliance.api import Check, Context, Message, Params, Result, Seconds
from compliance.checks._net import budget, load_libraries, nameserver_of, resolver
from compliance.checks.mail_auth import MailAuthParams

if TYPE_CHECKING:  # dnspython is imported where used: loading the plugin to read its parameters stays cheap
    import dns.name
    import dns.rdatatype
    import dns.resolver
    import dns.rrset


class DnssecParams(Params):
    domain: str
    """The domain, e.g. gemeente.nl; the zone it is in is checked."""
    method: Literal["auto", "resolver", "own"] = "auto"
    """How to decide: the resolver's AD flag, the own DNSKEY/RRSIG/DS check, or the first then the other."""
    nameserver: str | None = None
    """DNS resolver as host or host:port; default the configuration's, else the system's."""
    timeout: Seconds | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return MailAuthParams._domain(value)


#: The name shown for the nameserver when none is configured.
SYSTEM_RESOLVER = Message("the system resolver")


def _shown(nameserver: str) -> Message | str:
    """The nameserver as a message parameter: the system resolver's name translates."""
    return SYSTEM_RESOLVER if nameserver == str(SYSTEM_RESOLVER) else nameserver


class _Explained(Exception):
    """An exception whose text is a `Message` of ours (`message`), so results can show it in Dutch."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


class DnsFailure(_Explained):
    """DNS gave no usable answer: the check cannot decide."""


class Bogus(_Explained):
    """The zone is signed but does not validate: the message says why."""


class Dnssec(Check):
    """A domain's zone is signed with DNSSEC and validates (resolver AD flag or own DNSKEY/RRSIG/DS check)."""

    name = "dnssec"
    Params = DnssecParams
    target_param = "domain"

    def run(self, params: DnssecParams, ctx: Context) -> Iterator[Result]:
        load_libraries("dns")
        import dns.flags

        domain = params.domain
        ns = nameserver_of(params.nameserver, ctx)
        res = resolver(ns, budget(params.timeout, ctx))
        res.use_edns(0, dns.flags.DO, 1232)
        shown_ns = ns or str(SYSTEM_RESOLVER)
        try:
            if params.method in ("auto", "resolver"):
                verdict = self._ask_resolver(domain, res, shown_ns)
                if verdict is not None or params.method == "resolver":
                    yield verdict or Result.failed(
                        domain,
                            Message("DNSSEC of %(domain)s is not validated by %(nameserver)s (no AD flag): the zone is "
                                "not signed, or the resolver does not validate.", domain=domain,
                                    nameserver=_shown(shown_ns)), method="resolver", nameserver=shown_ns,
                        validated=False)
                    return
            yield self._own_check(domain, res, shown_ns, params.method == "auto")
        except DnsFailure as exc:
            yield Result.errored(domain, Message("Could not check DNSSEC of %(domain)s: %(reason)s.", domain=domain,
                                                         reason=exc.message), nameserver=shown_ns)

    @staticmethod
    def _ask_resolver(domain: str, res: dns.resolver.Resolver, shown_ns: str) -> Result | None:
        """The resolver's verdict, or None when it did not validate (no AD flag)."""
        import dns.flags

        evidence: dict[str, Any] = {"method": "resolver", "nameserver": shown_ns}
        try:
            answer = _resolve(res, domain, "SOA", dns.flags.RD | dns.flags.AD)
        except Bogus:
            try:
                _resolve(res, domain, "SOA", dns.flags.RD | dns.flags.CD)
            except Bogus:
                raise DnsFailure(Message("%(nameserver)s answers SERVFAIL, also with checking disabled",
                                         nameserver=_shown(shown_ns))) from None
            return Result.failed(domain,
                                 Message("DNSSEC of %(domain)s does not validate: %(nameserver)s answers SERVFAIL, but "
                                         "answers with checking disabled (bogus signatures; method: validating "
                                         "resolver).", domain=domain, nameserver=_shown(shown_ns)),
                                 **evidence, validated=False, bogus=True)
        if answer.response.flags & dns.flags.AD:
            return Result.passed(domain,
                                 Message("DNSSEC of %(domain)s validates: %(nameserver)s sets the AD flag (method: "
                                         "validating resolver).", domain=domain, nameserver=_shown(shown_ns)),
                                 **evidence, validated=True)
        return None

    @staticmethod
    def _own_check(domain: str, res: dns.resolver.Resolver, shown_ns: str, after_resolver: bool) -> Result:
        import dns.dnssec
        import dns.exception
        import dns.flags
        import dns.rdatatype
        import dns.resolver

        res.flags = dns.flags.RD | dns.flags.CD  # the data even when a validating resolver finds it bogus
        method = (Message("own DNSKEY/RRSIG/DS check (%(nameserver)s did not validate)", nameserver=_shown(shown_ns))
                  if after_resolver else Message("own DNSKEY/RRSIG/DS check"))
        evidence: dict[str, Any] = {"method": "own", "nameserver": shown_ns}
        try:
            zone = dns.resolver.zone_for_name(domain, resolver=res)
        except dns.resolver.NXDOMAIN:
            raise DnsFailure(Message("the domain does not exist in DNS (NXDOMAIN)")) from None
        except dns.resolver.NoRootSOA:
            raise DnsFailure(Message("no zone holds it (no SOA found up to the root)")) from None
        except dns.exception.DNSException as exc:
            raise DnsFailure(Message("finding its zone failed: %(reason)s", reason=str(exc))) from None
        evidence["zone"] = zone.to_text()
        keys, key_sigs = _rrset_with_signatures(res, zone, dns.rdatatype.DNSKEY)
        if keys is None:
            return Result.failed(domain,
                                 Message("DNSSEC of %(domain)s: zone %(zone)s is not signed (no DNSKEY; method: "
                                         "%(method)s).", domain=domain, zone=str(zone), method=method),
                                 **evidence, signed=False)
        evidence["keys"] = [{"tag": dns.dnssec.key_id(k), "flags": k.flags, "algorithm": dns.dnssec.algorithm_to_text(
            k.algorithm)} for k in keys][:10]
        now = time.time()
        try:
            _validate(keys, key_sigs, zone, keys, now, Message("the DNSKEY set"))
            soa, soa_sigs = _rrset_with_signatures(res, zone, dns.rdatatype.SOA)
            if soa is None:
                raise DnsFailure(Message("zone %(zone)s returns no SOA", zone=str(zone)))
            _validate(soa, soa_sigs, zone, keys, now, Message("the SOA"))
        except Bogus as exc:
            return Result.failed(domain,
                                 Message("DNSSEC of %(domain)s does not validate: %(reason)s (method: %(method)s).",
                                         domain=domain, reason=exc.message, method=method),
                                 **evidence, signed=True, validated=False)
        ds_set, _ = _rrset_with_signatures(res, zone, dns.rdatatype.DS)
        if ds_set is None:
            return Result.failed(domain,
                            Message("DNSSEC of %(domain)s: zone %(zone)s is signed but its parent has no DS record, "
                                         "so no resolver can validate it (method: %(method)s).", domain=domain,
                                         zone=str(zone), method=method), **evidence, signed=True,
                                 validated=False, ds=[])
        matched = _matching_ds(zone, keys, ds_set)
        evidence["ds"] = [ds.to_text() for ds in ds_set][:10]
        if matched is None:
            return Result.failed(domain,
                                Message("DNSSEC of %(domain)s: no DS record at the parent of %(zone)s matches a DNSKEY "
                                         "of the zone (method: %(method)s).", domain=domain, zone=str(zone),
                                         method=method), **evidence, signed=True, validated=False)
        return Result.passed(domain,
                            Message("DNSSEC of %(domain)s validates: DNSKEY set and SOA of %(zone)s are signed and the "
                                     "parent's DS matches key %(key)s (method: %(method)s; the chain above the parent "
                                     "is not checked).", domain=domain, zone=str(zone), key=matched,
                                     method=method), **evidence, signed=True, validated=True)


def _resolve(res: dns.resolver.Resolver, name: str | dns.name.Name, rdtype: dns.rdatatype.RdataType | str,
             flags: int | None = None) -> dns.resolver.Answer:
    """One query; SERVFAIL raises Bogus (a validating resolver's answer to bad signatures)."""
    import dns.exception
    import dns.resolver

    if flags is not None:
        res.flags = flags
    try:
        return res.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        raise DnsFailure(Message("the domain does not exist in DNS (NXDOMAIN)")) from None
    except dns.resolver.NoNameservers as exc:
        if any(error[3] == "SERVFAIL" for error in exc.kwargs.get("errors") or []):
            raise Bogus(Message("SERVFAIL")) from None
        raise DnsFailure(Message("no name server answered (%(reason)s)", reason=str(exc))) from None
    except dns.exception.Timeout:
        raise DnsFailure(Message("DNS did not answer in time")) from None
    except dns.exception.DNSException as exc:
        raise DnsFailure(Message("DNS error: %(reason)s", reason=str(exc))) from None


def _rrset_with_signatures(res: dns.resolver.Resolver, name: dns.name.Name,
                           rdtype: dns.rdatatype.RdataType) -> tuple[dns.rrset.RRset | None, dns.rrset.RRset | None]:
    import dns.rdatatype

    try:
        response = _resolve(res, name, rdtype).response
    except Bogus:  # SERVFAIL even with checking disabled
        raise DnsFailure(Message("%(name)s %(type)s answers SERVFAIL", name=str(name),
                                 type=dns.rdatatype.to_text(rdtype))) from None
    rrset = sigs = None
    for candidate in response.answer:
        if candidate.name != name:
            continue
        if candidate.rdtype == rdtype:
            rrset = candidate
        elif candidate.rdtype == dns.rdatatype.RRSIG and candidate.covers == rdtype:
            sigs = candidate
    return rrset, sigs


def _validate(rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None, zone: dns.name.Name, keys: dns.rrset.RRset,
              now: float, what: Message) -> None:
    import dns.dnssec
    import dns.exception

    if sigs is None:
        raise Bogus(Message("%(what)s of %(zone)s has no signature (RRSIG)", what=what, zone=str(zone)))
    try:
        dns.dnssec.validate(rrset, sigs, {zone: keys}, now=now)
    except dns.exception.ValidationFailure as exc:
        expired = [s for s in sigs if s.expiration < now]
        reason = Message("its signature has expired") if expired and len(expired) == len(sigs) else str(exc)
        raise Bogus(Message("%(what)s of %(zone)s does not validate (%(reason)s)", what=what, zone=str(zone),
                            reason=reason)) from None


def _matching_ds(zone: dns.name.Name, keys: dns.rrset.RRset, ds_set: dns.rrset.RRset) -> int | None:
    import dns.dnssec
    import dns.exception

    for ds in ds_set:
        for key in keys:
            if dns.dnssec.key_id(key) != int(ds.key_tag):
                continue
            try:
                if dns.dnssec.make_ds(zone, key, ds.digest_type) == ds:
                    return int(ds.key_tag)
            except (dns.exception.UnsupportedAlgorithm, ValueError):
                continue
    return None
