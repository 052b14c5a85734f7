"""`https`: a website forces HTTPS, sets HSTS for at least a year and sends the security headers.

Secure state (Forum Standaardisatie "pas toe of leg uit": HTTPS and HSTS, required for government
websites by the Wet digitale overheid; BIO2 / ISO 27002:2022 8.26 application security requirements),
tested as internet.nl does:

- HTTPS forced: plain HTTP on the same host (port 80, or `http_url`) answers with a redirect whose
  first hop goes to HTTPS on the same host. A site that offers no plain HTTP at all passes this part.
- HSTS: the first HTTPS response (before any redirect) carries `Strict-Transport-Security` with a
  `max-age` of at least one year (31536000 s; `min_hsts_max_age`). internet.nl: shorter is
  insufficient, missing or unparsable is bad.
- Security headers on that same response (internet.nl's web application checks):
  `X-Content-Type-Options: nosniff`; `X-Frame-Options: DENY` or `SAMEORIGIN`, or a
  Content-Security-Policy with `frame-ancestors`; a `Referrer-Policy` that is not `unsafe-url`,
  `no-referrer-when-downgrade`, `origin` or `origin-when-cross-origin`; a `Content-Security-Policy`.
  internet.nl's finer points about the policy's directives are listed in the evidence, not failed.
  internet.nl only *recommends* these headers (X-Frame-Options is optional there): they do not
  count towards its score.

`part` splits what internet.nl requires from what it recommends: `required` judges HTTPS, the
redirect and HSTS (the headers are listed in the evidence under `advice`); `advice` judges only the
security headers, as its own result; `all` (the default, as before this parameter existed) judges
both in one result. The bundled FS-HTTPS control uses `required`, FS-WEB-ADVICE `advice`. The
evidence names the `part`.

Verdicts: `fail` for any part missed, including a certificate the browser would refuse and a site
that answers over HTTP but not over HTTPS; `error` when the site cannot be reached at all (the name
does not resolve, neither HTTPS nor HTTP answers) and, for `advice`, whenever no HTTPS response came.

Example::

    id: WEB-HTTPS
    title: Websites force HTTPS with HSTS and send the security headers
    theme: technological
    references: {bio2: "8.26", iso27002: "8.26", forum_standaardisatie: HTTPS en HSTS}
    severity: high
    checks:
      - plugin: https
        targets: websites
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from compliance.api import Check, Context, Message, Params, Result, Seconds
from compliance.checks._net import FetchError, Response, budget, ca_file_of, fetch, host_for_url, verifying_context

#: internet.nl: HSTS max-age of at least one year.
ONE_YEAR = 31536000
#: internet.nl's Referrer-Policy values that leak too much (the last value of the header counts).
BAD_REFERRER_POLICIES = {"unsafe-url", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin"}
KNOWN_REFERRER_POLICIES = BAD_REFERRER_POLICIES | {"no-referrer", "same-origin", "strict-origin",
                                                   "strict-origin-when-cross-origin"}


def normalize_url(value: str) -> str:
    """A website URL with https:// assumed when left out; anything but an https URL is refused."""
    value = value.strip()
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"'{value}' is not an https:// URL of a website")
    return value


#: A parameter type for the URL of a website (https:// assumed when left out).
WebsiteUrl = Annotated[str, AfterValidator(normalize_url)]


class HttpsParams(Params):
    url: WebsiteUrl
    """The website, e.g. https://www.gemeente.nl (https:// is assumed when left out)."""
    http_url: str | None = None
    """Where plain HTTP is tested; default the same host on port 80."""
    min_hsts_max_age: int = Field(ONE_YEAR, ge=0)
    """Seconds; default one year (internet.nl)."""
    part: Literal["all", "required", "advice"] = "all"
    """`required`: what internet.nl requires (HTTPS, HTTPS forced, HSTS); `advice`: the security
    headers it only recommends; `all` (default): both in one verdict, as before."""
    timeout: Seconds | None = None
    ca_file: str | None = None


class Https(Check):
    """A website forces HTTPS, sets HSTS for a year and sends the security headers (internet.nl)."""

    name = "https"
    Params = HttpsParams
    target_param = "url"

    def run(self, params: HttpsParams, ctx: Context) -> Iterator[Result]:
        target = params.url
        host = urlsplit(params.url).hostname or ""
        timeout = budget(params.timeout, ctx)
        context = verifying_context(ca_file_of(params.ca_file, ctx))
        http_url = params.http_url or f"http://{host_for_url(host)}/"
        try:
            first = fetch(params.url, timeout=timeout, context=context)
        except FetchError as exc:
            if params.part == "advice":
                yield Result.errored(target, Message("Could not read the security headers of %(target)s: "
                                                     "%(reason)s.", target=target, reason=exc.message),
                                     part="advice", https=str(exc))
                return
            if exc.kind == "resolve":
                yield Result.errored(target, Message("Could not check %(target)s: %(reason)s.", target=target,
                                                     reason=exc.message))
                return
            if exc.kind == "tls":
                yield Result.failed(target,
                                    Message("HTTPS of %(target)s is refused by browsers: %(reason)s.", target=target,
                                                    reason=exc.message), part=params.part, https=str(exc))
                return
            plain = self._plain_http(http_url, host, budget(params.timeout, ctx))
            if plain.get("answered"):
                yield Result.failed(target, Message("%(target)s answers over HTTP but not over HTTPS (%(reason)s).",
                                            target=target, reason=exc.message),
                                    part=params.part, https=str(exc), http=_as_text(plain))
            else:
                yield Result.errored(target, Message("Could not reach %(target)s over HTTPS (%(reason)s) or HTTP.",
                                             target=target, reason=exc.message),
                                     https=str(exc), http=_as_text(plain))
            return

        headers = check_security_headers(first)
        if params.part == "advice":
            yield self._advice(target, headers)
            return
        problems: list[Message] = []
        redirect = self._plain_http(http_url, host, budget(params.timeout, ctx))
        if redirect["problem"]:
            problems.append(redirect["problem"])
        hsts = check_hsts(first.header("Strict-Transport-Security"), params.min_hsts_max_age)
        if hsts["problem"]:
            problems.append(hsts["problem"])
        if params.part == "all":
            problems.extend(headers["problems"])
        evidence: dict[str, Any] = {"part": params.part, "status": first.status, "http": _as_text(redirect),
                                    "hsts": _as_text(hsts), "headers": headers["seen"],
                                    "csp_notes": headers["csp_notes"]}
        if params.part == "required":
            evidence["advice"] = [str(problem) for problem in headers["problems"]]
        if problems:
            yield Result.failed(target, Message("%(target)s falls short: %(problems)s.", target=target,
                                                problems=list(problems)), **evidence)
            return
        days = hsts["max_age"] // 86400
        if params.part == "required":
            passed = (Message("%(target)s redirects HTTP to HTTPS and sets HSTS for %(days)d days.", target=target,
                              days=days) if redirect["answered"] else
                      Message("%(target)s offers no plain HTTP and sets HSTS for %(days)d days.", target=target,
                              days=days))
        elif redirect["answered"]:
            passed = Message("%(target)s redirects HTTP to HTTPS, sets HSTS for %(days)d days and sends the "
                             "security headers.", target=target, days=days)
        else:
            passed = Message("%(target)s offers no plain HTTP, sets HSTS for %(days)d days and sends the "
                             "security headers.", target=target, days=days)
        yield Result.passed(target, passed, **evidence)

    @staticmethod
    def _advice(target: str, headers: dict[str, Any]) -> Result:
        """The security headers internet.nl recommends (X-Content-Type-Options, Referrer-Policy, CSP)
        or shows as optional (X-Frame-Options), as one advice result."""
        evidence = {"part": "advice", "headers": headers["seen"], "csp_notes": headers["csp_notes"]}
        if headers["problems"]:
            return Result.failed(target, Message("%(target)s does not follow the advice on security headers "
                                                 "(internet.nl recommends them): %(problems)s.", target=target,
                                                 problems=list(headers["problems"])), **evidence)
        return Result.passed(target, Message("%(target)s sends the advised security headers.", target=target),
                             **evidence)

    @staticmethod
    def _plain_http(http_url: str, host: str, timeout: float) -> dict[str, Any]:
        """Whether plain HTTP redirects to HTTPS on the same host first (internet.nl "HTTPS forced")."""
        try:
            response = fetch(http_url, timeout=timeout, context=None)
        except FetchError as exc:
            # nothing listening on HTTP: nobody can be served unencrypted
            return {"url": http_url, "answered": False, "reason": str(exc), "problem": None}
        location = response.location()
        info: dict[str, Any] = {"url": http_url, "answered": True, "status": response.status, "location": location,
                                "problem": None}
        if location is None:
            info["problem"] = Message("HTTP answers %(status)s without redirecting to HTTPS", status=response.status)
            return info
        parts = urlsplit(location)
        if parts.scheme != "https":
            info["problem"] = Message("HTTP redirects to %(location)s, not to HTTPS", location=location[:100])
        elif (parts.hostname or "").lower() != host.lower():
            info["problem"] = Message("HTTP redirects to another host (%(other)s) first; redirect to HTTPS on "
                                      "%(host)s first", other=parts.hostname, host=host)
        return info


def _as_text(info: dict[str, Any]) -> dict[str, Any]:
    """Evidence as JSON: a problem (a `Message`) as its English text."""
    return {key: str(value) if isinstance(value, Message) else value for key, value in info.items()}


def check_hsts(value: str | None, minimum: int) -> dict[str, Any]:
    """The first HSTS policy (RFC 6797 8.1: only the first header counts) against the minimum max-age.

    The problem, if any, is a `Message`."""
    result: dict[str, Any] = {"header": value, "max_age": 0, "problem": None}
    if not value:
        result["problem"] = Message("no HSTS (Strict-Transport-Security header)")
        return result
    directives = {}
    for part in value.split(",")[0].split(";"):
        name, _, raw = part.strip().partition("=")
        directives[name.strip().lower()] = raw.strip().strip('"')
    try:
        max_age = int(directives["max-age"])
    except (KeyError, ValueError):
        result["problem"] = Message("HSTS header has no valid max-age (%(header)r)", header=value[:80])
        return result
    result["max_age"] = max_age
    result["include_subdomains"] = "includesubdomains" in directives
    if max_age < minimum:
        result["problem"] = Message("HSTS max-age is %(max_age)d s (minimum %(minimum)d s, one year)",
                                    max_age=max_age, minimum=minimum) if minimum == ONE_YEAR \
            else Message("HSTS max-age is %(max_age)d s (minimum %(minimum)d s)", max_age=max_age, minimum=minimum)
    return result


def _csp_directives(csp: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for policy in csp.split(","):
        for part in policy.split(";"):
            words = part.split()
            if words:
                directives.setdefault(words[0].lower(), words[1:])
    return directives


def check_security_headers(response: Response) -> dict[str, Any]:
    """The headers internet.nl's "security options" test looks at, on one response (problems as `Message`s)."""
    seen = {name: response.header(name) for name in ("X-Content-Type-Options", "X-Frame-Options",
                                                      "Referrer-Policy", "Content-Security-Policy")}
    problems: list[Message] = []
    csp = seen["Content-Security-Policy"] or ""
    directives = _csp_directives(csp)
    if (seen["X-Content-Type-Options"] or "").split(",")[0].strip().lower() != "nosniff":
        problems.append(Message("no X-Content-Type-Options: nosniff"))
    frame = (seen["X-Frame-Options"] or "").split(",")[0].strip().upper()
    if frame not in ("DENY", "SAMEORIGIN") and "frame-ancestors" not in directives:
        problems.append(Message("no X-Frame-Options (DENY or SAMEORIGIN) and no CSP frame-ancestors"))
    referrer = seen["Referrer-Policy"]
    if not referrer or not referrer.strip():
        problems.append(Message("no Referrer-Policy"))
    else:
        last = referrer.split(",")[-1].strip().lower()
        if last in BAD_REFERRER_POLICIES:
            problems.append(Message("Referrer-Policy %(policy)s passes too much to other sites", policy=last))
        elif last not in KNOWN_REFERRER_POLICIES:
            problems.append(Message("Referrer-Policy %(policy)r is not a known policy", policy=last[:40]))
    if not csp.strip():
        problems.append(Message("no Content-Security-Policy"))
    notes = []
    if csp.strip():
        if "default-src" not in directives:
            notes.append("no default-src")
        for word in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'"):
            if any(word in values for values in directives.values()):
                notes.append(f"uses {word}")
        if any(re.fullmatch(r"(\*|http:|https:)", v) for values in directives.values() for v in values):
            notes.append("allows any host or scheme")
    return {"seen": seen, "problems": problems, "csp_notes": notes}
