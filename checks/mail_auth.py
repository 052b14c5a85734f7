"""`mail_auth`: a mail domain publishes strict SPF, strict DMARC and the DKIM keys it signs with.

Secure state (Forum Standaardisatie "pas toe of leg uit": SPF, DKIM and DMARC on every government
domain, whether it sends mail or not; strict SPF and DMARC since the end of 2019; BIO2 / ISO
27002:2022 5.14 information transfer), tested with internet.nl's thresholds. Three results per
domain, one per standard:

- SPF (RFC 7208): exactly one `v=spf1` TXT record, that parses, whose policy is `-all` or `~all`
  (its own `all`, or that of the record its `redirect=` points to; `+all`, `?all` or no `all` fail),
  and whose evaluation needs at most 10 DNS look-ups (`include`, `a`, `mx`, `ptr`, `exists`,
  `redirect`, counted through included records). An include without an SPF record fails (permerror).
- DMARC (RFC 7489): exactly one `v=DMARC1` record at `_dmarc.<domain>` (or, for a subdomain without
  one, at its organisational domain, approximated as the last two labels, where `sp=` applies) with a
  policy of at least `min_dmarc_policy` (default `quarantine`; `t=y` counts one level less strict)
  and a `rua=mailto:` address for reports. A reporting address in another domain must be authorised
  by that domain (`<domain>._report._dmarc.<other>`).
- DKIM (RFC 6376): every selector in `dkim_selectors` has a key record with a non-empty `p=`; RSA
  keys must have at least 1024 bits (RFC 8301). DKIM selectors cannot be discovered from DNS: list
  the ones your mail services use. Without selectors the check does what internet.nl does: it passes
  when `_domainkey.<domain>` exists (and for a domain that sends no mail, `v=spf1 -all`), and fails
  when it does not.

Verdicts: `fail` for a missing, duplicate, lax or broken record; `error` when DNS does not answer
(time-out, SERVFAIL) or the domain does not exist.

Example::

    id: MAIL-AUTH
    title: Mail domains publish strict SPF and DMARC, and the DKIM keys of our mail services
    theme: technological
    references: {bio2: "5.14", iso27002: "5.14", forum_standaardisatie: "SPF, DKIM, DMARC"}
    severity: high
    checks:
      - plugin: mail_auth
        params: {dkim_selectors: [selector1, selector2], min_dmarc_policy: quarantine}
        targets: mail_domains
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import dns.exception
import dns.name
import dns.resolver
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import Field, field_validator

from compliance.api import Check, Context, Message, Params, Result, Seconds
from compliance.checks._net import budget, nameserver_of, resolver

#: RFC 7208 4.6.4: at most 10 terms that cause DNS look-ups.
MAX_SPF_LOOKUPS = 10
POLICY_LEVELS = {"none": 0, "quarantine": 1, "reject": 2}
_SPF_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_LOOKUP_TERMS = {"include", "a", "mx", "ptr", "exists"}
_DOMAIN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_-]{1,63}\.?")


class DnsProblem(Exception):
    """DNS gave no usable answer (time-out, SERVFAIL, refused): the check cannot decide.

    `message` is the reason as a `Message`, so results can show it in Dutch."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


class MailAuthParams(Params):
    domain: str
    """The mail domain, e.g. gemeente.nl."""
    dkim_selectors: list[str] = Field(default_factory=list)
    """The DKIM selectors your mail services sign with (they cannot be discovered)."""
    min_dmarc_policy: Literal["none", "quarantine", "reject"] = "quarantine"
    """The weakest DMARC policy that passes; Forum Standaardisatie: quarantine or reject."""
    require_dmarc_reports: bool = True
    """Require a `rua=mailto:` address for aggregate reports."""
    nameserver: str | None = None
    """DNS resolver as host or host:port; default the configuration's, else the system's."""
    timeout: Seconds | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().rstrip(".").lower()
        if not _DOMAIN.fullmatch(value):
            raise ValueError(f"'{value}' is not a domain name")
        return value


@dataclass
class Lookup:
    """TXT look-ups through one resolver."""

    res: dns.resolver.Resolver

    def txt(self, name: str) -> list[str] | None:
        """The TXT strings at `name` ([] when it exists without TXT), None for NXDOMAIN."""
        try:
            answer = self.res.resolve(name, "TXT", raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoNameservers as exc:
            raise DnsProblem(Message("no name server answered for %(name)s (SERVFAIL or refused)", name=name)) from exc
        except dns.exception.Timeout as exc:
            raise DnsProblem(Message("DNS did not answer for %(name)s in time", name=name)) from exc
        except dns.exception.DNSException as exc:
            raise DnsProblem(Message("DNS error for %(name)s: %(reason)s", name=name, reason=str(exc))) from exc
        if answer.rrset is None:
            return []
        return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer.rrset]


class MailAuth(Check):
    """A mail domain has strict SPF and DMARC and publishes its DKIM keys (internet.nl thresholds)."""

    name = "mail_auth"
    Params = MailAuthParams
    target_param = "domain"

    def run(self, params: MailAuthParams, ctx: Context) -> Iterator[Result]:
        domain = params.domain
        lookup = Lookup(resolver(nameserver_of(params.nameserver, ctx), budget(params.timeout, ctx)))
        try:
            txts = lookup.txt(domain)
        except DnsProblem as exc:
            yield Result.errored(domain, Message("Could not check mail authentication of %(domain)s: %(reason)s.",
                                                 domain=domain, reason=exc.message))
            return
        if txts is None:
            yield Result.errored(domain,
                                 Message("Could not check mail authentication of %(domain)s: the domain does not "
                                         "exist in DNS (NXDOMAIN).", domain=domain))
            return
        spf = self._part("SPF", domain, lambda: check_spf(domain, txts, lookup))
        yield spf
        yield self._part("DMARC", domain, lambda: check_dmarc(domain, lookup, params.min_dmarc_policy,
                                                              params.require_dmarc_reports))
        no_mail = spf.evidence.get("record") == "v=spf1 -all"
        yield self._part("DKIM", domain, lambda: check_dkim(domain, params.dkim_selectors, lookup, no_mail))

    @staticmethod
    def _part(what: str, domain: str, check: Callable[[], Result]) -> Result:
        try:
            return check()
        except DnsProblem as exc:
            return Result.errored(domain, Message("Could not check %(standard)s of %(domain)s: %(reason)s.",
                                                      standard=what, domain=domain, reason=exc.message),
                                                          standard=what.lower())


# --- SPF ---------------------------------------------------------------------------------------

def spf_records(txts: list[str]) -> list[str]:
    return [t for t in txts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass
class SpfWalk:
    """What evaluating an SPF record through its includes and redirects costs and concludes."""

    lookups: int = 0
    problems: list[Message] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)


def parse_spf(record: str) -> tuple[list[tuple[str, str, str]], dict[str, str], Message | None]:
    """Mechanisms (qualifier, name, argument), modifiers, and a syntax problem or None."""
    mechanisms: list[tuple[str, str, str]] = []
    modifiers: dict[str, str] = {}
    for term in record.split()[1:]:
        modifier = re.fullmatch(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", term)
        if modifier:
            name = modifier.group(1).lower()
            if name in modifiers and name in ("redirect", "exp"):
                return mechanisms, modifiers, Message("the %(name)s= modifier appears twice", name=name)
            modifiers[name] = modifier.group(2)
            continue
        qualifier = term[0] if term[0] in "+-~?" else "+"
        body = term[1:] if term[0] in "+-~?" else term
        match = re.fullmatch(r"([A-Za-z0-9]+)([:/].*)?", body)
        if not match or match.group(1).lower() not in _SPF_MECHANISMS:
            return mechanisms, modifiers, Message("unknown term %(term)r", term=term[:40])
        name, argument = match.group(1).lower(), (match.group(2) or "").lstrip(":")
        if name in ("include", "exists") and not argument:
            return mechanisms, modifiers, Message("%(name)s without a domain", name=name)
        if name in ("ip4", "ip6") and not argument:
            return mechanisms, modifiers, Message("%(name)s without an address", name=name)
        mechanisms.append((qualifier, name, argument))
    return mechanisms, modifiers, None


def _walk(record: str, domain: str, lookup: Lookup, walk: SpfWalk, depth: int) -> str | None:
    """Count look-ups through includes and redirects; return the policy qualifier of `all` (or None)."""
    mechanisms, modifiers, problem = parse_spf(record)
    if problem:
        walk.problems.append(Message("syntax error: %(problem)s", problem=problem) if depth == 0 else
                             Message("syntax error in the record of %(domain)s: %(problem)s", domain=domain,
                                     problem=problem))
        return None
    policy = None
    for qualifier, name, argument in mechanisms:
        if name in _LOOKUP_TERMS:
            walk.lookups += 1
        if name == "all":
            policy = qualifier
        if name == "include" and walk.lookups <= MAX_SPF_LOOKUPS:
            _follow(argument, lookup, walk, depth, "include")
    if "redirect" in modifiers and policy is None:  # RFC 7208 6.1: redirect= is ignored when there is an all
        walk.lookups += 1
        if walk.lookups <= MAX_SPF_LOOKUPS:
            return _follow(modifiers["redirect"], lookup, walk, depth, "redirect")
    return policy


def _follow(target: str, lookup: Lookup, walk: SpfWalk, depth: int, how: str) -> str | None:
    if "%" in target:
        walk.followed.append(f"{target} (macro, not followed)")
        return None
    if depth >= 10:
        walk.problems.append(Message("includes nest too deep (a loop?)"))
        return None
    walk.followed.append(target)
    txts = lookup.txt(target)
    records = spf_records(txts or [])
    if len(records) != 1:
        walk.problems.append(Message("%(how)s %(target)s has no SPF record (permerror)", how=how, target=target)
                             if not records else
                             Message("%(how)s %(target)s has %(count)d SPF records (permerror)", how=how,
                                     target=target, count=len(records)))
        return None
    return _walk(records[0], target, lookup, walk, depth + 1)


def check_spf(domain: str, txts: list[str], lookup: Lookup) -> Result:
    records = spf_records(txts)
    if not records:
        return Result.failed(domain,
                             Message("%(domain)s has no SPF record.", domain=domain), standard="spf", record=None)
    if len(records) > 1:
        return Result.failed(domain,
                             Message("%(domain)s has %(count)d SPF records (exactly one allowed, RFC 7208 3.2).",
                                     domain=domain, count=len(records)), standard="spf", records=records[:5])
    record = records[0]
    walk = SpfWalk()
    policy = _walk(record, domain, lookup, walk, 0)
    evidence = {"standard": "spf", "record": record, "lookups": walk.lookups, "followed": walk.followed[:30],
                "policy": f"{policy}all" if policy else None}
    problems = list(walk.problems)
    if walk.lookups > MAX_SPF_LOOKUPS:
        problems.insert(0, Message("it needs %(lookups)d DNS look-ups (at most %(maximum)d)", lookups=walk.lookups,
                                   maximum=MAX_SPF_LOOKUPS) if walk.lookups <= 30 else
                        Message("it needs more than 30 DNS look-ups (at most %(maximum)d)", maximum=MAX_SPF_LOOKUPS))
    elif policy is None and not walk.problems:
        problems.append(Message("it does not end in -all or ~all (no all mechanism)"))
    elif policy in ("+", "?"):
        problems.append(Message("its policy is %(policy)sall; it must be -all or ~all", policy=policy))
    if problems:
        return Result.failed(domain, Message("SPF of %(domain)s is not valid and strict: %(problems)s.",
                                                 domain=domain, problems=list(problems)), **evidence)
    return Result.passed(domain, Message("SPF of %(domain)s is strict (%(policy)sall) and needs %(lookups)d of at most "
                                 "%(maximum)d DNS look-ups.", domain=domain, policy=policy, lookups=walk.lookups,
                                 maximum=MAX_SPF_LOOKUPS), **evidence)


# --- DMARC -------------------------------------------------------------------------------------

def dmarc_records(txts: list[str]) -> list[str]:
    return [t for t in txts if re.match(r"v\s*=\s*DMARC1\s*(;|$)", t, re.IGNORECASE)]


def parse_tags(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


def organisational_domain(domain: str) -> str:
    """The last two labels: an approximation of RFC 7489's organisational domain without the public
    suffix list, right for .nl and most government domains."""
    return ".".join(domain.split(".")[-2:])


def check_dmarc(domain: str, lookup: Lookup, minimum: str, require_reports: bool) -> Result:
    location = f"_dmarc.{domain}"
    records = dmarc_records(lookup.txt(location) or [])
    inherited = False
    org = organisational_domain(domain)
    if not records and org != domain:
        location = f"_dmarc.{org}"
        records = dmarc_records(lookup.txt(location) or [])
        inherited = bool(records)
    if not records:
        return Result.failed(domain,
                             Message("%(domain)s has no DMARC record (at _dmarc.%(domain)s).", domain=domain),
                                 standard="dmarc",
                             record=None)
    if len(records) > 1:
        return Result.failed(domain,
                             Message("%(domain)s has %(count)d DMARC records at %(location)s (exactly one allowed).",
                                     domain=domain, count=len(records), location=location), standard="dmarc",
                                         records=records[:5])
    record = records[0]
    tags = parse_tags(record)
    evidence: dict[str, Any] = {"standard": "dmarc", "record": record, "location": location, "tags": tags}
    problems: list[Message] = []
    policy_tag = "sp" if inherited and "sp" in tags else "p"
    policy = tags.get(policy_tag, "").lower()
    if policy not in POLICY_LEVELS:
        problems.append(Message("it has no valid %(tag)s= policy (%(policy)r)", tag=policy_tag, policy=policy[:20])
                        if policy else Message("it has no valid %(tag)s= policy", tag=policy_tag))
        level = -1
    else:
        level = POLICY_LEVELS[policy]
        if tags.get("t", "n").lower() == "y":  # DMARCbis test mode: applied one level less strict
            level = max(0, level - 1)
            evidence["test_mode"] = True
        if level < POLICY_LEVELS[minimum]:
            filled = {"tag": policy_tag, "policy": policy, "minimum": minimum}
            problems.append(Message("its policy is %(tag)s=%(policy)s in test mode (t=y) (minimum %(minimum)s)",
                                    **filled) if evidence.get("test_mode") else
                            Message("its policy is %(tag)s=%(policy)s (minimum %(minimum)s)", **filled))
    reports = [uri.strip() for uri in tags.get("rua", "").split(",") if uri.strip().lower().startswith("mailto:")]
    evidence["rua"] = reports
    if require_reports and not reports:
        problems.append(Message("it asks for no aggregate reports (no rua=mailto:)"))
    for uri in reports + [u.strip() for u in tags.get("ruf", "").split(",") if u.strip().lower().startswith("mailto:")]:
        destination = uri[7:].split("!")[0].rsplit("@", 1)[-1].lower().rstrip(".")
        if destination and not (destination in (org, domain) or destination.endswith("." + org)):
            authorised = dmarc_records(lookup.txt(f"{domain}._report._dmarc.{destination}") or [])
            if not authorised:
                problems.append(Message("%(destination)s has not authorised reports for %(domain)s "
                                        "(%(domain)s._report._dmarc.%(destination)s)", destination=destination,
                                        domain=domain))
    if problems:
        return Result.failed(domain, Message("DMARC of %(domain)s is not strict: %(problems)s.", domain=domain,
                                                 problems=list(problems)), **evidence)
    shown: Message | str = f"{policy_tag}={policy}"
    if inherited:
        shown = Message("%(policy)s (inherited from %(org)s)", policy=shown, org=org)
    if reports:
        return Result.passed(domain, Message("DMARC of %(domain)s is %(policy)s with reports to %(reports)s.",
                                             domain=domain, policy=shown, reports=", ".join(reports)[:120]),
                             **evidence)
    return Result.passed(domain, Message("DMARC of %(domain)s is %(policy)s.", domain=domain, policy=shown),
                         **evidence)


# --- DKIM --------------------------------------------------------------------------------------

def describe_dkim_key(tags: dict[str, str]) -> tuple[str, Message | None]:
    """A description of the key and a problem, or None."""
    data = re.sub(r"\s+", "", tags.get("p", ""))
    if not data:
        return "revoked", Message("its key is empty (revoked)")
    kind = tags.get("k", "rsa").lower()
    try:
        key = load_der_public_key(base64.b64decode(data, validate=True))
    except ValueError:
        if kind == "ed25519" and len(base64.b64decode(data + "==")) == 32:
            return "Ed25519", None
        return kind, Message("its key cannot be read")
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 1024:
            return f"RSA {key.key_size} bits", Message("its RSA key has %(bits)d bits (at least 1024, RFC 8301)",
                                                           bits=key.key_size)
        return f"RSA {key.key_size} bits", None
    return type(key).__name__, None


def check_dkim(domain: str, selectors: list[str], lookup: Lookup, no_mail: bool) -> Result:
    if not selectors:
        if no_mail:
            return Result.passed(domain, Message("%(domain)s sends no mail (v=spf1 -all), so it needs no DKIM key.",
                                                 domain=domain),
                                 standard="dkim", selectors=[], no_mail=True)
        exists = lookup.txt(f"_domainkey.{domain}") is not None
        evidence = {"standard": "dkim", "selectors": [], "domainkey_exists": exists}
        if exists:
            return Result.passed(domain, Message("_domainkey.%(domain)s exists, so %(domain)s publishes DKIM keys; "
                                                 "DKIM selectors cannot be discovered, list them in dkim_selectors to "
                                                 "check the keys themselves.", domain=domain), **evidence)
        return Result.failed(domain, Message("%(domain)s publishes no DKIM keys (_domainkey.%(domain)s does not "
                                             "exist); DKIM selectors cannot be discovered, so list the selectors in "
                                             "dkim_selectors if keys exist elsewhere.", domain=domain), **evidence)
    keys: dict[str, str] = {}
    problems: list[Message] = []
    for selector in selectors:
        name = f"{selector}._domainkey.{domain}"
        records = [t for t in lookup.txt(name) or [] if "p=" in t.replace(" ", "")]
        if not records:
            problems.append(Message("selector %(selector)s has no key (%(name)s)", selector=selector, name=name))
            continue
        description, problem = describe_dkim_key(parse_tags(records[0]))
        keys[selector] = description
        if problem:
            problems.append(Message("selector %(selector)s: %(problem)s", selector=selector, problem=problem))
    evidence = {"standard": "dkim", "selectors": selectors, "keys": keys}
    if problems:
        return Result.failed(domain, Message("DKIM of %(domain)s is incomplete: %(problems)s.", domain=domain,
                                                 problems=list(problems)), **evidence)
    found = ", ".join(f"{s} ({k})" for s, k in keys.items())
    return Result.passed(domain, Message("DKIM keys of %(domain)s are published for %(selectors)s.", domain=domain,
                                 selectors=found), **evidence)
