"""`mail_auth`: a mail domain publishes strict SPF, strict DMARC and the DKIM keys it signs with.

Secure state (Forum Standaardisatie "pas toe of leg uit": SPF, DKIM and DMARC on every government
domain, whether it sends mail or not; strict SPF and DMARC since the end of 2019; BIO2 / ISO
27002:2022 5.14 information transfer), tested with internet.nl's thresholds. Three results per
domain, one per standard:

- SPF (RFC 7208): exactly one `v=spf1` TXT record whose syntax is valid (RFC 7208 section 12: the
  mechanisms all, include, a, mx, ptr, ip4, ip6, exists with an optional qualifier; valid IPv4 and
  IPv6 addresses, prefix lengths /0-32 and /0-128, domains with `%{...}` macros; redirect= and exp=
  at most once; unknown modifiers are ignored), whose policy is `-all` or `~all` (its own `all`, or
  that of the record its `redirect=` points to; `+all`, `?all` or no `all` fail), whose evaluation
  needs at most 10 DNS look-ups (`include`, `a`, `mx`, `ptr`, `exists`, `redirect`, counted through
  included records) and at most 2 of them void (a, mx, exists names that do not exist; RFC 7208
  4.6.4). An include without an SPF record or with a malformed one fails (permerror).
- DMARC (RFC 7489): exactly one `v=DMARC1` record at `_dmarc.<domain>` (or, for a subdomain without
  one, at its organisational domain by the public suffix list, where `sp=` applies) with a policy of
  at least `min_dmarc_policy` (default `quarantine`; `t=y` counts one level less strict). internet.nl
  only *recommends* a `rua=mailto:` address and the authorisation of a report address in another
  organisational domain (`<domain>._report._dmarc.<other>`).
- DKIM (RFC 6376): every selector in `dkim_selectors` has a key record with a non-empty `p=`; RSA
  keys must have at least 1024 bits (RFC 8301). DKIM selectors cannot be discovered from DNS: list
  the ones your mail services use. Without selectors the check does what internet.nl does: it passes
  when `_domainkey.<domain>` exists (and for a domain that sends no mail, `v=spf1 -all`), and fails
  when it does not.

`part` splits what internet.nl requires from what it recommends: `required` gives the three results
above without the recommendations (a rua address only with `require_dmarc_reports: true`);
`advice` gives one DMARC result on the recommendations (`skipped` when there is no single DMARC
record: the required part reports that); `all` (the default, as before this parameter existed)
judges both in the three results. The bundled FS-MAIL-AUTH control uses `required`, FS-MAIL-ADVICE
`advice`. Every result's evidence names its `part`.

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
import dataclasses
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from compliance.api import Check, Context, Message, Params, Result, Seconds
from compliance.checks._net import budget, load_libraries, nameserver_of, resolver

if TYPE_CHECKING:  # dnspython is imported where used: loading the plugin to read its parameters stays cheap
    import dns.resolver

#: RFC 7208 4.6.4: at most 10 terms that cause DNS look-ups.
MAX_SPF_LOOKUPS = 10
POLICY_LEVELS = {"none": 0, "quarantine": 1, "reject": 2}
_SPF_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_LOOKUP_TERMS = {"include", "a", "mx", "ptr", "exists"}
#: RFC 7208 4.6.4: more than two look-ups that find nothing (NXDOMAIN or no answer) are a permerror.
MAX_VOID_LOOKUPS = 2
#: The records a mechanism looks up, to count void look-ups (the address type depends on the sender:
#: a name counts as void only when it has neither).
_VOID_QUERIES = {"a": ("A", "AAAA"), "mx": ("MX",), "exists": ("A",)}
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
    require_dmarc_reports: bool | None = None
    """Require a `rua=mailto:` address for aggregate reports; default: yes with `part: all`, no with
    `part: required` (internet.nl only advises it)."""
    part: Literal["all", "required", "advice"] = "all"
    """`required`: what internet.nl requires (SPF, DKIM, DMARC policy); `advice`: what it only
    recommends (a DMARC rua address, authorised external report addresses), as one DMARC result;
    `all` (default): both in one verdict per standard, as before."""
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

    def _answer(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """The answer for `name`/`rdtype` (its rrset None when the name has no such records), None for NXDOMAIN."""
        import dns.exception
        import dns.resolver

        try:
            return self.res.resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoNameservers as exc:
            raise DnsProblem(Message("no name server answered for %(name)s (SERVFAIL or refused)", name=name)) from exc
        except dns.exception.Timeout as exc:
            raise DnsProblem(Message("DNS did not answer for %(name)s in time", name=name)) from exc
        except dns.exception.DNSException as exc:
            raise DnsProblem(Message("DNS error for %(name)s: %(reason)s", name=name, reason=str(exc))) from exc

    def txt(self, name: str) -> list[str] | None:
        """The TXT strings at `name` ([] when it exists without TXT), None for NXDOMAIN."""
        answer = self._answer(name, "TXT")
        if answer is None:
            return None
        if answer.rrset is None:
            return []
        return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer.rrset]

    def has(self, name: str, rdtype: str) -> bool:
        """Whether `name` has records of `rdtype` (False for NXDOMAIN or no answer: a void look-up)."""
        answer = self._answer(name, rdtype)
        return answer is not None and answer.rrset is not None


class MailAuth(Check):
    """A mail domain has strict SPF and DMARC and publishes its DKIM keys (internet.nl thresholds)."""

    name = "mail_auth"
    Params = MailAuthParams
    target_param = "domain"

    def run(self, params: MailAuthParams, ctx: Context) -> Iterator[Result]:
        load_libraries("dns", "cryptography")
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
        if params.part == "advice":
            yield self._part("DMARC", domain, params.part, lambda: check_dmarc_advice(domain, lookup))
            return
        require_reports = params.part == "all" if params.require_dmarc_reports is None else params.require_dmarc_reports
        spf = self._part("SPF", domain, params.part, lambda: check_spf(domain, txts, lookup))
        yield spf
        yield self._part("DMARC", domain, params.part, lambda: check_dmarc(domain, lookup, params.min_dmarc_policy,
                                                                           require_reports, params.part))
        no_mail = spf.evidence.get("record") == "v=spf1 -all"
        yield self._part("DKIM", domain, params.part,
                         lambda: check_dkim(domain, params.dkim_selectors, lookup, no_mail))

    @staticmethod
    def _part(what: str, domain: str, part: str, check: Callable[[], Result]) -> Result:
        """One standard's result, with the part it judges (`all`, `required`, `advice`) in its evidence."""
        try:
            result = check()
        except DnsProblem as exc:
            return Result.errored(domain, Message("Could not check %(standard)s of %(domain)s: %(reason)s.",
                                                  standard=what, domain=domain, reason=exc.message),
                                  standard=what.lower(), part=part)
        return dataclasses.replace(result, evidence={**result.evidence, "part": part})


# --- SPF ---------------------------------------------------------------------------------------

def spf_records(txts: list[str]) -> list[str]:
    return [t for t in txts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass
class SpfWalk:
    """What evaluating an SPF record through its includes and redirects costs and concludes."""

    lookups: int = 0
    voids: list[str] = field(default_factory=list)
    problems: list[Message] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)


# RFC 7208 section 12 (collected ABNF), for the syntax of terms.
_MACRO_EXPAND = r"%\{[slodiphcrtv][0-9]*r?[.+,/_=-]*\}|%%|%_|%-"
_MACRO_STRING = re.compile(rf"(?:{_MACRO_EXPAND}|[\x21-\x24\x26-\x7e])*", re.IGNORECASE)
_TOKENS = re.compile(rf"{_MACRO_EXPAND}|.", re.IGNORECASE | re.DOTALL)
_TOPLABEL = re.compile(r"[a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+-[a-z0-9-]*[a-z0-9]", re.IGNORECASE)
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", re.DOTALL)
_MECHANISM = re.compile(r"([+~?-]?)([A-Za-z][A-Za-z0-9]*)(.*)", re.DOTALL)
_DUAL_CIDR = re.compile(r"(?::(?P<domain>.*?))?(?:/(?P<cidr4>[0-9]+))?(?://(?P<cidr6>[0-9]+))?", re.DOTALL)
_IP_CIDR = re.compile(r":(?P<address>[^/]*)(?:/(?P<cidr>[0-9]+))?", re.DOTALL)


def _domain_spec_problem(value: str, explanation: bool = False) -> Message | None:
    """Why `value` is not an RFC 7208 domain-spec (a macro-string ending in "." toplabel or a macro), or None."""
    if not _MACRO_STRING.fullmatch(value):
        return Message("%(value)r is not a domain (or has a broken %%-macro)", value=value[:60])
    if not explanation:
        for macro in re.findall(r"%\{([a-z])", value, re.IGNORECASE):
            if macro.lower() in "crt":
                return Message("the macro %%{%(letter)s} is allowed only in exp=", letter=macro)
    if _TOKENS.findall(value)[-1:] and _TOKENS.findall(value)[-1].startswith("%"):
        return None  # domain-end is a macro
    labels = (value[:-1] if value.endswith(".") else value).split(".")
    if len(labels) < 2 or not _TOPLABEL.fullmatch(labels[-1]):
        return Message("%(value)r is not a domain (it must end in a dot and a top-level label, or in a macro)",
                       value=value[:60])
    return None


def _cidr_problem(value: str | None, maximum: int) -> Message | None:
    if value is None:
        return None
    if (value != "0" and value.startswith("0")) or int(value) > maximum:
        return Message("the prefix length /%(value)s is not 0 to %(maximum)d", value=value[:10], maximum=maximum)
    return None


def _address_problem(name: str, argument: str) -> Message | None:
    """The syntax of ip4:/ip6: (RFC 7208 5.6): a valid address and a prefix length within the family's range."""
    import ipaddress

    match = _IP_CIDR.fullmatch(argument)
    if match is None and argument.startswith(":") and argument[1:]:
        return Message("%(value)r is not an address with an optional /prefix length", value=argument[1:60])
    if match is None or not match.group("address"):
        return Message("%(name)s without an address", name=name)
    address = match.group("address")
    try:
        if name == "ip4":
            if not re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", address):
                raise ValueError(address)
            ipaddress.IPv4Address(address)
        else:
            if "%" in address:  # a scope zone (fe80::1%eth0) is no part of an SPF address
                raise ValueError(address)
            ipaddress.IPv6Address(address)
    except ValueError:
        return (Message("%(value)r is not an IPv4 address", value=address[:60]) if name == "ip4" else
                Message("%(value)r is not an IPv6 address", value=address[:60]))
    return _cidr_problem(match.group("cidr"), 32 if name == "ip4" else 128)


def _mechanism_problem(name: str, rest: str) -> Message | None:
    """Why a known mechanism's argument is not valid per RFC 7208 section 12, or None."""
    if name == "all":
        return Message("all takes no argument") if rest else None
    if name in ("include", "exists"):
        if not rest.startswith(":") or not rest[1:]:
            return Message("%(name)s without a domain", name=name)
        return _domain_spec_problem(rest[1:])
    if name == "ptr":
        if not rest:
            return None
        return _domain_spec_problem(rest[1:]) if rest.startswith(":") else Message("ptr takes only :domain")
    if name in ("ip4", "ip6"):
        return _address_problem(name, rest)
    match = _DUAL_CIDR.fullmatch(rest)  # a and mx: [":" domain-spec] [ip4-cidr-length] ["/" ip6-cidr-length]
    if match is None:
        return Message("%(name)s takes [:domain][/prefix][//prefix]", name=name)
    domain = match.group("domain")
    if domain is not None:
        problem = _domain_spec_problem(domain)
        if problem:
            return problem
    return _cidr_problem(match.group("cidr4"), 32) or _cidr_problem(match.group("cidr6"), 128)


def parse_spf(record: str) -> tuple[list[tuple[str, str, str]], dict[str, str], Message | None]:
    """Mechanisms (qualifier, name, argument), modifiers, and the first syntax problem or None.

    The syntax is RFC 7208 section 12: terms separated by spaces; mechanisms `all`, `include`, `a`,
    `mx`, `ptr`, `ip4`, `ip6`, `exists` with an optional qualifier (+ - ~ ?); modifiers `redirect=`,
    `exp=` (each at most once) and unknown `name=macro-string` ones, which are ignored."""
    mechanisms: list[tuple[str, str, str]] = []
    modifiers: dict[str, str] = {}
    for term in [t for t in record.split(" ")[1:] if t]:
        if not term.isascii() or not term.isprintable():
            return mechanisms, modifiers, Message("%(term)r has characters SPF does not allow", term=term[:40])
        modifier = _MODIFIER.fullmatch(term)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in modifiers and name in ("redirect", "exp"):
                return mechanisms, modifiers, Message("the %(name)s= modifier appears twice", name=name)
            if name in ("redirect", "exp"):
                problem = _domain_spec_problem(value, explanation=name == "exp")
            else:
                problem = None if _MACRO_STRING.fullmatch(value) else Message("%(value)r has a broken %%-macro",
                                                                              value=value[:60])
            if problem:
                return mechanisms, modifiers, Message("%(term)r: %(problem)s", term=term[:60], problem=problem)
            modifiers[name] = value
            continue
        match = _MECHANISM.fullmatch(term)
        if not match or match.group(2).lower() not in _SPF_MECHANISMS:
            return mechanisms, modifiers, Message("unknown term %(term)r", term=term[:40])
        qualifier, name, rest = match.group(1) or "+", match.group(2).lower(), match.group(3)
        problem = _mechanism_problem(name, rest)
        if problem:
            return mechanisms, modifiers, Message("%(term)r: %(problem)s", term=term[:60], problem=problem)
        argument = rest[1:] if rest.startswith(":") else rest
        if name in ("a", "mx"):  # the domain without the prefix lengths
            dual = _DUAL_CIDR.fullmatch(rest)
            argument = (dual.group("domain") or "") if dual else ""
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
            if name in _VOID_QUERIES and "%" not in argument and walk.lookups <= MAX_SPF_LOOKUPS:
                target = (argument or domain).rstrip(".")
                if not any(lookup.has(target, rdtype) for rdtype in _VOID_QUERIES[name]):
                    walk.voids.append(f"{name}:{target}")
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
                "void_lookups": walk.voids[:10],
                "policy": f"{policy}all" if policy else None}
    problems = list(walk.problems)
    if walk.lookups > MAX_SPF_LOOKUPS:
        problems.insert(0, Message("it needs %(lookups)d DNS look-ups (at most %(maximum)d)", lookups=walk.lookups,
                                   maximum=MAX_SPF_LOOKUPS) if walk.lookups <= 30 else
                        Message("it needs more than 30 DNS look-ups (at most %(maximum)d)", maximum=MAX_SPF_LOOKUPS))
    if len(walk.voids) > MAX_VOID_LOOKUPS:
        problems.append(Message("%(count)d of its look-ups find nothing (at most %(maximum)d void look-ups, RFC 7208 "
                                "4.6.4): %(names)s", count=len(walk.voids), maximum=MAX_VOID_LOOKUPS,
                                names=", ".join(walk.voids[:5])))
    if walk.lookups <= MAX_SPF_LOOKUPS and policy is None and not walk.problems:
        problems.append(Message("it does not end in -all or ~all (no all mechanism)"))
    elif walk.lookups <= MAX_SPF_LOOKUPS and policy in ("+", "?"):
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


@functools.cache
def _public_suffix_list() -> Any:
    """The public suffix list shipped with the `publicsuffixlist` package (no network access), read once."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """RFC 7489 3.2: the public suffix of `domain` by the public suffix list (ICANN and private
    sections, as internet.nl uses it) plus one label; `domain` itself when it is a public suffix
    or has no known suffix. A name under a TLD the list does not know (`.test`) counts its last
    label as the suffix (the list's default rule `*`)."""
    return str(_public_suffix_list().privatesuffix(domain.lower().rstrip(".")) or domain)


def find_dmarc(domain: str, lookup: Lookup) -> tuple[str, list[str], bool]:
    """Where the DMARC record of `domain` is (its own, else its organisational domain's), the records
    there, and whether they are inherited."""
    location = f"_dmarc.{domain}"
    records = dmarc_records(lookup.txt(location) or [])
    org = organisational_domain(domain)
    if not records and org != domain:
        inherited = dmarc_records(lookup.txt(f"_dmarc.{org}") or [])
        if inherited:
            return f"_dmarc.{org}", inherited, True
    return location, records, False


def _report_addresses(tags: dict[str, str], tag: str) -> list[str]:
    return [uri.strip() for uri in tags.get(tag, "").split(",") if uri.strip().lower().startswith("mailto:")]


def _unauthorised_destinations(domain: str, reports: list[str], lookup: Lookup) -> list[Message]:
    """RFC 7489 7.1: a report address in another organisational domain must be authorised there."""
    problems: list[Message] = []
    org = organisational_domain(domain)
    for uri in reports:
        destination = uri[7:].split("!")[0].rsplit("@", 1)[-1].lower().rstrip(".")
        if (destination and organisational_domain(destination) != org
                and not dmarc_records(lookup.txt(f"{domain}._report._dmarc.{destination}") or [])):
            problems.append(Message("%(destination)s has not authorised reports for %(domain)s "
                                    "(%(domain)s._report._dmarc.%(destination)s)", destination=destination,
                                    domain=domain))
    return problems


def check_dmarc(domain: str, lookup: Lookup, minimum: str, require_reports: bool, part: str = "all") -> Result:
    """The DMARC result for `part` "all" (policy, reports and report authorisation) or "required"
    (the policy; reports only when `require_reports`); "advice" is `check_dmarc_advice`."""
    location, records, inherited = find_dmarc(domain, lookup)
    org = organisational_domain(domain)
    if not records:
        return Result.failed(domain,
                             Message("%(domain)s has no DMARC record (at _dmarc.%(domain)s).", domain=domain),
                             standard="dmarc", part=part, record=None)
    if len(records) > 1:
        return Result.failed(domain,
                             Message("%(domain)s has %(count)d DMARC records at %(location)s (exactly one allowed).",
                                     domain=domain, count=len(records), location=location), standard="dmarc",
                             part=part, records=records[:5])
    record = records[0]
    tags = parse_tags(record)
    evidence: dict[str, Any] = {"standard": "dmarc", "part": part, "record": record, "location": location,
                                "tags": tags, "organisational_domain": org}
    problems: list[Message] = []
    policy_tag = "sp" if inherited and "sp" in tags else "p"
    policy = tags.get(policy_tag, "").lower()
    if policy not in POLICY_LEVELS:
        problems.append(Message("it has no valid %(tag)s= policy (%(policy)r)", tag=policy_tag, policy=policy[:20])
                        if policy else Message("it has no valid %(tag)s= policy", tag=policy_tag))
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
    reports = _report_addresses(tags, "rua")
    evidence["rua"] = reports
    if require_reports and not reports:
        problems.append(Message("it asks for no aggregate reports (no rua=mailto:)"))
    if part == "all":
        problems.extend(_unauthorised_destinations(domain, reports + _report_addresses(tags, "ruf"), lookup))
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


def check_dmarc_advice(domain: str, lookup: Lookup) -> Result:
    """internet.nl's recommendations on DMARC: an aggregate report address (rua=mailto:), and report
    addresses in another organisational domain authorised there (RFC 7489 7.1; internet.nl: notice)."""
    location, records, _ = find_dmarc(domain, lookup)
    if len(records) != 1:
        return Result.skipped(domain, Message("No DMARC advice for %(domain)s: it has no single DMARC record (the "
                                              "required check reports that).", domain=domain),
                              standard="dmarc", part="advice", records=records[:5])
    tags = parse_tags(records[0])
    reports = _report_addresses(tags, "rua")
    evidence: dict[str, Any] = {"standard": "dmarc", "part": "advice", "record": records[0], "location": location,
                                "rua": reports, "ruf": _report_addresses(tags, "ruf")}
    problems: list[Message] = []
    if not reports:
        problems.append(Message("it asks for no aggregate reports (no rua=mailto:)"))
    problems.extend(_unauthorised_destinations(domain, reports + evidence["ruf"], lookup))
    if problems:
        return Result.failed(domain, Message("DMARC of %(domain)s does not follow the advice (internet.nl "
                                             "recommends it): %(problems)s.", domain=domain, problems=list(problems)),
                             **evidence)
    return Result.passed(domain, Message("DMARC of %(domain)s asks for aggregate reports at %(reports)s, as "
                                         "advised.", domain=domain, reports=", ".join(reports)[:120]), **evidence)


# --- DKIM --------------------------------------------------------------------------------------

def describe_dkim_key(tags: dict[str, str]) -> tuple[str, Message | None]:
    """A description of the key and a problem, or None."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

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
