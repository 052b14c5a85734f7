"""`security_txt`: a website publishes a valid security.txt (RFC 9116).

Secure state (Forum Standaardisatie "pas toe of leg uit": security.txt; BIO2 / ISO 27002:2022 5.5
contact with authorities, 6.8 information security event reporting): `https://<host>/.well-known/
security.txt` answers 200 with `Content-Type: text/plain`, has at least one `Contact` (a URI such as
`mailto:`, `https:` or `tel:`), exactly one `Expires` with a date in the future and less than a year
away (RFC 9116 2.5.5 recommends under a year, internet.nl shows it as a recommendation; see `part`),
and, when it lists `Canonical` URIs, lists the one it was fetched from. A PGP cleartext-signed file
is accepted; like internet.nl, the check reads the signed text and does not validate the signature.
Redirects are followed over HTTPS only (at most five).

`part` splits what RFC 9116 requires from what it recommends: `required` judges everything but the
year (the advice is listed in the evidence under `advice`); `advice` judges only that Expires is
less than a year away (`skipped` when the file is missing or not valid: the required part reports
that); `all` (the default, as before this parameter existed) judges both in one result. The bundled
FS-SECURITY-TXT control uses `required`, FS-WEB-ADVICE `advice`. The evidence names the `part`.

Verdicts: `fail` when the file is missing, served over a certificate browsers refuse, or breaks one
of the rules above; `error` when the site cannot be reached.

Example::

    id: WEB-SECURITYTXT
    title: Websites publish a valid security.txt
    theme: organizational
    references: {bio2: "6.8", iso27002: "6.8", forum_standaardisatie: security.txt}
    severity: medium
    checks:
      - plugin: security_txt
        targets: websites
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from compliance.api import Check, Context, Message, Params, Result, Seconds
from compliance.checks._net import FetchError, budget, ca_file_of, fetch, host_for_url, verifying_context
from compliance.checks.https import WebsiteUrl

WELL_KNOWN = "/.well-known/security.txt"
_SIGNED_START = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_START = "-----BEGIN PGP SIGNATURE-----"
_SIGNATURE_END = "-----END PGP SIGNATURE-----"
_FIELD = re.compile(r"([A-Za-z0-9-]+):\s*(.*)")


class SecurityTxtParams(Params):
    url: WebsiteUrl
    """The website, e.g. https://www.gemeente.nl; the file is looked up at /.well-known/security.txt."""
    part: Literal["all", "required", "advice"] = "all"
    """`required`: what RFC 9116 and internet.nl require (a Contact, one valid future Expires, ...);
    `advice`: what they only recommend (Expires less than a year ahead); `all` (default): both in one
    verdict, as before."""
    timeout: Seconds | None = None
    ca_file: str | None = None


class SecurityTxt(Check):
    """A website publishes a valid, unexpired security.txt (RFC 9116)."""

    name = "security_txt"
    Params = SecurityTxtParams
    target_param = "url"

    def run(self, params: SecurityTxtParams, ctx: Context) -> Iterator[Result]:
        target = params.url
        parts = urlsplit(params.url)
        location = f"https://{host_for_url(parts.hostname or '')}{f':{parts.port}' if parts.port else ''}{WELL_KNOWN}"
        context = verifying_context(ca_file_of(params.ca_file, ctx))
        chain = [location]
        try:
            response = fetch(location, timeout=budget(params.timeout, ctx), context=context)
            while (next_url := response.location()) is not None and len(chain) <= 5:
                if urlsplit(next_url).scheme != "https":
                    yield Result.failed(target,
                                        Message("security.txt of %(target)s redirects to %(url)s, which is not HTTPS.",
                                                target=target, url=next_url[:100]), redirects=[*chain, next_url])
                    return
                chain.append(next_url)
                response = fetch(next_url, timeout=budget(params.timeout, ctx), context=context)
        except FetchError as exc:
            if exc.kind == "tls":
                yield Result.failed(target,
                                    Message("security.txt of %(target)s cannot be fetched securely: %(reason)s.",
                                            target=target, reason=exc.message),
                                    url=chain[-1])
            else:
                yield Result.errored(target, Message("Could not fetch security.txt of %(target)s: %(reason)s.",
                                                     target=target, reason=exc.message), url=chain[-1])
            return
        evidence: dict[str, Any] = {"part": params.part, "url": location, "status": response.status}
        if len(chain) > 1:
            evidence["redirects"] = chain
        if response.status != 200:
            if params.part == "advice":
                yield self._moot(target, evidence)
                return
            yield Result.failed(target, Message("%(target)s has no security.txt (HTTP %(status)s for %(path)s).",
                                        target=target, status=response.status, path=WELL_KNOWN),
                                **evidence)
            return
        content_type = response.header("Content-Type") or ""
        evidence["content_type"] = content_type
        text = response.body.decode("utf-8", "replace")
        report = check_security_txt(text, content_type, location, ctx.now())
        evidence.update(report["evidence"])
        if params.part == "advice":
            if report["problems"]:
                yield self._moot(target, evidence)
            elif report["advice"]:
                yield Result.failed(target, Message("security.txt of %(target)s does not follow the advice (RFC 9116 "
                                                    "and internet.nl recommend it): %(problems)s.", target=target,
                                                    problems=list(report["advice"])), **evidence)
            else:
                yield Result.passed(target, Message("security.txt of %(target)s follows the advice: it expires "
                                                    "within a year.", target=target), **evidence)
            return
        problems = report["problems"] + (report["advice"] if params.part == "all" else [])
        if params.part == "required":
            evidence["advice"] = [str(problem) for problem in report["advice"]]
        if problems:
            yield Result.failed(target, Message("security.txt of %(target)s is not valid: %(problems)s.", target=target,
                                        problems=list(problems)),
                                **evidence)
            return
        expires: datetime = report["expires"]
        days = (expires - ctx.now()).days
        contact = report["evidence"]["contact"][0]
        filled = {"target": target, "contact": contact[:80], "day": expires.date().isoformat(), "days": days}
        if report["evidence"]["signed"]:
            passed = Message("security.txt of %(target)s is valid, signed: contact %(contact)s, expires %(day)s (in "
                             "%(days)d days).", **filled)
        else:
            passed = Message("security.txt of %(target)s is valid: contact %(contact)s, expires %(day)s (in %(days)d "
                             "days).", **filled)
        yield Result.passed(target, passed, **evidence)

    @staticmethod
    def _moot(target: str, evidence: dict[str, Any]) -> Result:
        """Advice on a file that is missing or not valid: the required check reports that, not the advice."""
        return Result.skipped(target, Message("No advice on security.txt of %(target)s: the file is missing or not "
                                              "valid (the required check reports that).", target=target), **evidence)


def unsign(text: str) -> tuple[str, bool, Message | None]:
    """The signed text of a PGP cleartext-signed message (RFC 4880 7), whether it was signed, and a
    problem with the framing if any. The signature itself is not validated."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != _SIGNED_START:
        return text, False, None
    try:
        blank = lines.index("", 1)
        start = lines.index(_SIGNATURE_START, blank)
        lines.index(_SIGNATURE_END, start)
    except ValueError:
        return "", True, Message("the PGP signed message is malformed (no blank line after the armor headers, "
                                 "or no complete signature block)")
    body = [line[2:] if line.startswith("- ") else line for line in lines[blank + 1:start]]
    return "\n".join(body), True, None


def _one_year_after(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 1, day=28)


def check_security_txt(text: str, content_type: str, location: str, now: datetime) -> dict[str, Any]:
    """RFC 9116 rules on the file's text. Returns problems (`Message`s; empty when valid), advice (what
    RFC 9116 only recommends, `Message`s), evidence and the expiry."""
    problems: list[Message] = []
    advice: list[Message] = []  # RFC 9116 recommendations, shown by internet.nl as such
    if not content_type.lower().startswith("text/plain"):
        problems.append(Message("Content-Type is %(content_type)r, not text/plain", content_type=content_type)
                        if content_type else Message("Content-Type is 'missing', not text/plain"))
    body, signed, framing = unsign(text)
    if framing:
        problems.append(framing)
    fields: dict[str, list[str]] = {}
    invalid: list[Message] = []
    for number, raw in enumerate(body.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _FIELD.fullmatch(line)
        if match is None:
            invalid.append(Message("line %(number)d: %(line)r", number=number, line=line[:60]))
            continue
        fields.setdefault(match.group(1).lower(), []).append(match.group(2).strip())
    if invalid:
        problems.append(Message("%(count)d line(s) are not 'Field: value' (%(first)s)", count=len(invalid),
                                 first=invalid[0]))
    contacts = fields.get("contact", [])
    if not contacts:
        problems.append(Message("no Contact"))
    for contact in contacts:
        scheme = contact.split(":", 1)[0].lower() if ":" in contact else ""
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
            problems.append(Message("Contact %(contact)r is not a URI (use mailto:, https: or tel:)",
                                    contact=contact[:60]))
        elif scheme == "http":
            problems.append(Message("Contact %(contact)r is a web address without https", contact=contact[:60]))
    expires_values = fields.get("expires", [])
    expires: datetime | None = None
    if not expires_values:
        problems.append(Message("no Expires"))
    elif len(expires_values) > 1:
        problems.append(Message("Expires appears %(count)d times (once allowed)", count=len(expires_values)))
    else:
        try:
            expires = datetime.fromisoformat(expires_values[0])
            if expires.tzinfo is None:
                raise ValueError("no time zone")
        except ValueError:
            problems.append(Message("Expires %(value)r is not an RFC 3339 date and time with time zone",
                                     value=expires_values[0][:40]))
            expires = None
    if expires is not None:
        if expires <= now:
            problems.append(Message("it expired on %(day)s", day=expires.date().isoformat()))
        elif expires > _one_year_after(now):
            days = (expires - now) // timedelta(days=1)
            advice.append(Message("Expires %(day)s is %(days)d days away (at most a year)",
                                    day=expires.date().isoformat(), days=days))
    canonical = fields.get("canonical", [])
    if canonical and location not in canonical:
        problems.append(Message("Canonical does not list %(location)s", location=location))
    if len(fields.get("preferred-languages", [])) > 1:
        problems.append(Message("Preferred-Languages appears more than once"))
    evidence = {"signed": signed, "contact": contacts[:10], "expires": expires_values[:3],
                "canonical": canonical[:10], "fields": sorted(fields)[:30]}
    return {"problems": problems, "advice": advice, "evidence": evidence, "expires": expires}
