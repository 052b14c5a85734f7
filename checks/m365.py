"""`m365`: Microsoft 365 / Entra ID settings read through Microsoft Graph with app-only credentials.

Secure state (BIO2 / ISO 27002:2022 5.17 authentication information, 8.5 secure authentication, 8.2
privileged access rights, 5.18 access rights): every user has registered a second factor, Conditional
Access requires MFA for all users and all cloud apps, legacy authentication (protocols that cannot do
MFA) is blocked, the number of Global Administrators lies within a range (at least two, so that one
can be locked out, and few) and guest accounts that no longer sign in are cleaned up.

How: the check signs in as an app registration with the client credentials flow (the tenant and
client id as parameters, the client secret only from the environment variable named by
`client_secret_env`) at the Microsoft identity platform and reads Microsoft Graph, following
`@odata.nextLink` until every page is read and waiting out throttling (429/503 with `Retry-After`)
within the check's time budget. `test` selects what is tested (default: all):

- `mfa_registered`: the authentication methods registration report
  (`/reports/authenticationMethods/userRegistrationDetails`, `isMfaRegistered`); fails naming the
  members without a registered MFA method, except those in `mfa_exceptions` (UPNs or object ids,
  `*` wildcards, e.g. break-glass accounts). Needs Entra ID P1; the report lags a few hours.
- `ca_mfa_all_users`: an enabled Conditional Access policy for all users and all cloud apps that
  requires MFA (the built-in control `mfa` or an authentication strength that grants an MFA claim),
  not narrowed by risk levels, platforms, locations or client apps. Report-only policies
  (`enabledForReportingButNotEnforced`) do not count. Its exclusions are listed in the evidence.
- `legacy_auth_blocked`: an enabled Conditional Access policy for all users and all cloud apps that
  blocks the client apps `exchangeActiveSync` and `other`; without Conditional Access, enabled
  security defaults (which block legacy authentication) pass too.
- `global_admins`: the holders of the Global Administrator role (directory role members, groups
  expanded) number `min_global_admins`..`max_global_admins` (default 2..4). PIM-eligible
  assignments are not counted.
- `stale_guests`: guest accounts (enabled ones, unless `include_disabled_guests`) whose last sign-in
  is longer ago than `guest_max_inactive` (default 90 days); a guest that never signed in counts
  when it was created longer ago than that.

Verdicts: `error` when the token endpoint refuses the credentials (the message names the
environment variable, never the secret), Graph refuses a request (the message names the application
permission to grant), the service keeps throttling past the time budget, cannot be reached or
answers something unexpected. Application permissions to grant (read-only, admin consent):
Policy.Read.All, AuditLog.Read.All, RoleManagement.Read.Directory, User.Read.All and, when a group
holds the Global Administrator role, GroupMember.Read.All.

Example::

    id: M365-MFA
    title: Microsoft 365 requires MFA for every user and blocks legacy authentication
    theme: technological
    references: {bio2: "5.17.01", iso27002: "8.5"}
    severity: high
    checks:
      - plugin: m365
        params:
          tenant: gemeente.onmicrosoft.com
          client_id: 00000000-0000-0000-0000-000000000000
          client_secret_env: M365_CLIENT_SECRET
          test: [mfa_registered, ca_mfa_all_users, legacy_auth_blocked]
          mfa_exceptions: [breakglass1@gemeente.onmicrosoft.com]
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from compliance.api import Check, Context, Duration, Message, Params, Result, Seconds
from compliance.checks._net import USER_AGENT, budget, ca_file_of, verifying_context

#: The role template id of Global Administrator, the same in every tenant.
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"

TestName = Literal["mfa_registered", "ca_mfa_all_users", "legacy_auth_blocked", "global_admins", "stale_guests"]
TESTS: tuple[TestName, ...] = ("mfa_registered", "ca_mfa_all_users", "legacy_auth_blocked", "global_admins",
                               "stale_guests")

#: What each test is called in messages.
TITLES: dict[str, Message] = {
    "mfa_registered": Message("MFA registration"),
    "ca_mfa_all_users": Message("Conditional Access MFA for all users"),
    "legacy_auth_blocked": Message("blocking of legacy authentication"),
    "global_admins": Message("the number of Global Administrators"),
    "stale_guests": Message("inactive guest accounts"),
}

#: The Graph application permissions each test needs (least privilege, read-only).
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "mfa_registered": ("AuditLog.Read.All",),
    "ca_mfa_all_users": ("Policy.Read.All",),
    "legacy_auth_blocked": ("Policy.Read.All",),
    "global_admins": ("RoleManagement.Read.Directory", "GroupMember.Read.All"),
    "stale_guests": ("User.Read.All", "AuditLog.Read.All"),
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Statuses Graph and the identity platform use for throttling and passing unavailability.
_RETRY_STATUSES = (429, 503, 504)
_MAX_ATTEMPTS = 5
#: The most a response may hold; a Graph page of 999 users is a few MB.
_MAX_BODY = 64 * 1024 * 1024
_MAX_PAGES = 10_000


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _service_url(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"'{value}' is not a URL such as https://graph.microsoft.com/v1.0")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(f"'{value}' is plain http; credentials and tokens travel over https only")
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


ServiceUrl = Annotated[str, AfterValidator(_service_url)]


class M365Params(Params):
    tenant: str
    """The tenant: its id (a GUID) or a verified domain such as gemeente.onmicrosoft.com."""
    client_id: str
    """The application (client) id of the app registration, a GUID."""
    client_secret_env: str = "M365_CLIENT_SECRET"
    """The environment variable that holds the app registration's client secret (never the secret itself)."""
    test: Annotated[tuple[TestName, ...], BeforeValidator(_as_list), Field(min_length=1)] = TESTS
    """What to test, one name or a list: mfa_registered, ca_mfa_all_users, legacy_auth_blocked,
    global_admins, stale_guests (default all)."""
    authority: ServiceUrl = "https://login.microsoftonline.com"
    """The Microsoft identity platform (another one for a national cloud)."""
    graph_url: ServiceUrl = "https://graph.microsoft.com/v1.0"
    """Microsoft Graph with its version (v1.0 or beta)."""
    scope: str | None = None
    """The token scope; default `<graph_url's origin>/.default`."""
    mfa_exceptions: tuple[str, ...] = ()
    """Users not required to have MFA registered: UPNs or object ids, `*` wildcards (case-insensitive)."""
    mfa_user_types: Annotated[tuple[Literal["member", "guest"], ...], BeforeValidator(_as_list),
                              Field(min_length=1)] = ("member",)
    """Which users of the registration report count: member (default), guest or both."""
    min_global_admins: int = Field(2, ge=0)
    """The fewest Global Administrators (two, so that one locked-out account does not lock the tenant)."""
    max_global_admins: int = Field(4, ge=1)
    """The most Global Administrators (Microsoft advises fewer than five)."""
    guest_max_inactive: Duration = timedelta(days=90)
    """A guest that has not signed in for longer than this fails: '90d', '26w'."""
    guest_exceptions: tuple[str, ...] = ()
    """Guests that may stay inactive: UPNs, mail addresses or object ids, `*` wildcards."""
    include_disabled_guests: bool = False
    """Also count disabled guest accounts (by default they are skipped: they cannot sign in)."""
    max_listed: int = Field(25, ge=1, le=500)
    """How many names a message and the evidence list at most."""
    timeout: Seconds | None = None
    """Per HTTP request; default the configuration's network timeout."""
    ca_file: str | None = None
    """CA bundle trusted besides the system store (for a TLS-inspecting proxy); default the configuration's."""

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        value = value.strip()
        if not (_GUID.match(value) or _DOMAIN.match(value)):
            raise ValueError(f"'{value}' is not a tenant id (a GUID) or a domain such as gemeente.onmicrosoft.com")
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        value = value.strip()
        if not _GUID.match(value):
            raise ValueError(f"'{value}' is not an application (client) id; it is a GUID such as "
                             "00000000-0000-0000-0000-000000000000")
        return value

    @field_validator("client_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"'{value}' is not the name of an environment variable (write the variable's name, "
                             "e.g. M365_CLIENT_SECRET, never the secret)")
        return value

    @model_validator(mode="after")
    def _range(self) -> M365Params:
        if self.min_global_admins > self.max_global_admins:
            raise ValueError(f"min_global_admins ({self.min_global_admins}) is larger than max_global_admins "
                             f"({self.max_global_admins})")
        if len(set(self.test)) != len(self.test):
            raise ValueError("a test is named twice in `test`")
        return self


class _Stop(Exception):
    """The test cannot decide: `message` says why (a `Message`, so a Dutch output shows it in Dutch)."""

    def __init__(self, message: Message, **evidence: Any) -> None:
        super().__init__(str(message))
        self.message = message
        self.evidence = evidence


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After in seconds (Graph sends seconds; an HTTP date is understood too), None when absent."""
    value = (headers or {}).get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - Context.now()).total_seconds()) if when.tzinfo else None


class _Graph:
    """A small Microsoft Graph client on urllib: one token, JSON GETs, paging, throttling within the budget."""

    def __init__(self, params: M365Params, ctx: Context, secret: str) -> None:
        import urllib.request

        self._params, self._ctx, self._secret = params, ctx, secret
        context = verifying_context(ca_file_of(params.ca_file, ctx))
        handlers: list[Any] = [urllib.request.HTTPSHandler(context=context)]
        if all(_loopback(urlsplit(u).hostname or "") for u in (params.authority, params.graph_url)):
            handlers.append(urllib.request.ProxyHandler({}))  # a local endpoint is never reached through a proxy
        self._opener = urllib.request.build_opener(*handlers)
        self._origin = _origin(params.graph_url)
        self._token: str | None = None
        self._refused: _Stop | None = None  # a refused token is not asked for again (no lockout by retries)
        self.requests = 0
        self.waited = 0.0

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _send(self, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        import http.client
        import urllib.error
        import urllib.request

        host = urlsplit(url).hostname or url
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            if self._ctx.remaining() <= 0:
                raise _Stop(Message("the time budget of %(seconds)s s ran out", seconds=format(self._ctx.timeout, "g")))
            request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
            for name, value in {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}.items():
                request.add_unredirected_header(name, value)  # never forwarded to another host on a redirect
            timeout = budget(self._params.timeout, self._ctx)
            self.requests += 1
            try:
                with self._opener.open(request, timeout=timeout) as response:
                    status, answer, body = response.status, response.headers, response.read(_MAX_BODY)
            except urllib.error.HTTPError as exc:
                status, answer = exc.code, exc.headers
                body = exc.read(_MAX_BODY) if exc.fp is not None else b""
            except urllib.error.URLError as exc:
                raise _Stop(Message("cannot reach %(host)s: %(reason)s", host=host,
                                    reason=_network_reason(exc.reason, host, timeout))) from None
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                raise _Stop(Message("cannot reach %(host)s: %(reason)s", host=host,
                                    reason=_network_reason(exc, host, timeout))) from None
            if status not in _RETRY_STATUSES:
                return status, answer, body
            wait = _retry_after(answer)
            if wait is None:
                wait = float(2 ** (attempt - 1))
            left = self._ctx.remaining()
            if attempt == _MAX_ATTEMPTS or wait >= left:
                raise _Stop(Message("%(host)s is throttling or unavailable (HTTP %(status)s, asked to retry after "
                                    "%(wait)s s, %(left)s s of the time budget left, %(attempts)d attempts)",
                                    host=host, status=status, wait=format(wait, "g"), left=format(left, ".0f"),
                                    attempts=attempt), throttled=True)
            time.sleep(wait)
            self.waited += wait
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None

    def token(self) -> str:
        """An access token from the client credentials flow (fetched once per run)."""
        if self._token is not None:
            return self._token
        if self._refused is not None:
            raise self._refused
        try:
            self._token = self._fetch_token()
        except _Stop as exc:
            self._refused = exc
            raise
        return self._token

    def _fetch_token(self) -> str:
        params = self._params
        url = f"{params.authority}/{quote(params.tenant)}/oauth2/v2.0/token"
        scope = params.scope or f"{_origin(params.graph_url)}/.default"
        form = urlencode({"client_id": params.client_id, "client_secret": self._secret, "scope": scope,
                          "grant_type": "client_credentials"}).encode()
        status, _, body = self._send(url, form, {"Content-Type": "application/x-www-form-urlencoded"})
        payload = self._json(body)
        if not isinstance(payload, dict):
            payload = {}
        token = payload.get("access_token")
        if status == 200 and isinstance(token, str) and token:
            return token
        error = str(payload.get("error") or "")
        description = self._scrub(str(payload.get("error_description") or "")).strip().splitlines()
        codes = [c for c in payload.get("error_codes") or [] if isinstance(c, int)]
        evidence = {"token_status": status, "token_error": error or None,
                    "aadsts": [f"AADSTS{c}" for c in codes][:5]}
        if error:
            raise _Stop(Message("the identity platform refused the app's credentials (HTTP %(status)s, %(error)s: "
                                "%(description)s); check the tenant, the client id and the client secret in the "
                                "environment variable %(env)s", status=status, error=error,
                                description=(description[0] if description else "")[:300],
                                env=params.client_secret_env), **evidence)
        raise _Stop(Message("the token endpoint %(url)s answered HTTP %(status)s without an access token",
                            url=url, status=status), **evidence)

    def url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        text = f"{self._params.graph_url}{path}"
        if query:
            text += "?" + urlencode(query, quote_via=quote, safe="$,'()")
        return text

    def get(self, url: str, permission: str) -> dict[str, Any]:
        """One Graph GET as a JSON object; refusals and errors raise `_Stop` naming the permission."""
        status, _, body = self._send(url, None, {"Authorization": f"Bearer {self.token()}"})
        payload = self._json(body)
        shown = urlsplit(url).path.removeprefix(urlsplit(self._params.graph_url).path) or "/"
        if status == 200 and isinstance(payload, dict):
            return payload
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or "-")
        reason = self._scrub(str(error.get("message") or "")).strip()[:300]
        evidence = {"graph_status": status, "graph_error": code, "path": shown}
        if status == 200:
            raise _Stop(Message("Microsoft Graph answered %(path)s with something that is not JSON", path=shown),
                        **evidence)
        if status == 403 and code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant":
            raise _Stop(Message("Microsoft Graph refused %(path)s: the tenant has no Microsoft Entra ID P1 or P2 "
                                "licence, which this report needs (%(code)s)", path=shown, code=code), **evidence)
        if status == 403:
            raise _Stop(Message("Microsoft Graph refused %(path)s (HTTP 403 %(code)s: %(reason)s): grant the app "
                                "registration the application permission %(permission)s with admin consent",
                                path=shown, code=code, reason=reason, permission=permission),
                        missing_permission=permission, **evidence)
        if status == 401:
            raise _Stop(Message("Microsoft Graph did not accept the access token for %(path)s (HTTP 401 %(code)s: "
                                "%(reason)s)", path=shown, code=code, reason=reason), **evidence)
        raise _Stop(Message("Microsoft Graph answered %(path)s with HTTP %(status)s (%(code)s: %(reason)s)",
                            path=shown, status=status, code=code, reason=reason), **evidence)

    def pages(self, path: str, permission: str, query: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of a collection, following @odata.nextLink until the last page."""
        url: str | None = self.url(path, query)
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        pages = 0
        while url is not None:
            payload = self.get(url, permission)
            pages += 1
            value = payload.get("value")
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise _Stop(Message("Microsoft Graph answered %(path)s without a list of objects", path=path))
            items.extend(value)
            link = payload.get("@odata.nextLink")
            if link is None:
                break
            if not isinstance(link, str) or _origin(link) != self._origin or link in seen or pages >= _MAX_PAGES:
                raise _Stop(Message("Microsoft Graph gave a next page link for %(path)s that leaves %(origin)s or "
                                    "repeats itself", path=path, origin=self._origin))
            seen.add(link)
            url = link
        return items


def _network_reason(reason: Any, host: str, timeout: float) -> Message | str:
    import socket
    import ssl

    if isinstance(reason, ssl.SSLCertVerificationError):
        return Message("certificate not accepted: %(reason)s", reason=str(reason.verify_message or reason.reason))
    if isinstance(reason, ssl.SSLError):
        return Message("TLS handshake failed: %(reason)s", reason=str(reason.reason or reason))
    if isinstance(reason, socket.gaierror):
        return Message("cannot resolve %(host)s: %(reason)s", host=host, reason=str(reason.strerror or reason))
    if isinstance(reason, ConnectionRefusedError):
        return Message("connection refused")
    if isinstance(reason, TimeoutError):
        return Message("no answer within %(seconds)s s", seconds=format(timeout, "g"))
    return f"{type(reason).__name__}: {reason}".rstrip(": ")


def _matches(patterns: tuple[str, ...], *names: Any) -> bool:
    lowered = [str(n).lower() for n in names if n]
    return any(fnmatchcase(name, pattern.lower()) for pattern in patterns for name in lowered)


def _capped(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit})" if len(items) > limit else "")


def _when(value: Any) -> datetime | None:
    """A Graph timestamp, None when absent or the 0001-01-01 placeholder."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None or when.year < 1900:
        return None
    return when


# --- Conditional Access ---------------------------------------------------------------------------------

def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _scope_gaps(policy: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Why a policy does not cover all users and all cloud apps (empty when it does), and its exclusions."""
    gaps: list[str] = []
    state = policy.get("state")
    if state != "enabled":
        gaps.append(f"state is {state}" + (" (report-only)" if state == "enabledForReportingButNotEnforced" else ""))
    conditions = policy.get("conditions") if isinstance(policy.get("conditions"), dict) else {}
    assert isinstance(conditions, dict)
    users = conditions.get("users") if isinstance(conditions.get("users"), dict) else {}
    apps = conditions.get("applications") if isinstance(conditions.get("applications"), dict) else {}
    assert isinstance(users, dict) and isinstance(apps, dict)
    if "All" not in _strings(users.get("includeUsers")):
        gaps.append("does not include all users")
    if "All" not in _strings(apps.get("includeApplications")):
        gaps.append("does not include all cloud apps")
    for risk in ("userRiskLevels", "signInRiskLevels", "servicePrincipalRiskLevels", "insiderRiskLevels"):
        if conditions.get(risk):  # a list of levels, or a text in newer versions: either narrows the policy
            gaps.append(f"applies only at {risk}")
    if conditions.get("authenticationFlows"):
        gaps.append("applies only to some authentication flows")
    platforms = conditions.get("platforms")
    if isinstance(platforms, dict) and "all" not in [p.lower() for p in _strings(platforms.get("includePlatforms"))]:
        gaps.append("applies only to some device platforms")
    locations = conditions.get("locations")
    if isinstance(locations, dict) and "all" not in [p.lower() for p in _strings(locations.get("includeLocations"))]:
        gaps.append("applies only at some locations")
    devices = conditions.get("devices")
    device_filter = devices.get("deviceFilter") if isinstance(devices, dict) else None
    if isinstance(device_filter, dict) and device_filter.get("mode") != "exclude":
        gaps.append("applies only to devices matching a filter")
    if apps.get("applicationFilter") or _strings(apps.get("includeUserActions")) or \
            _strings(apps.get("includeAuthenticationContextClassReferences")):
        gaps.append("applies only to some actions or apps")
    excluded: dict[str, Any] = {
        "users": _strings(users.get("excludeUsers")),
        "groups": _strings(users.get("excludeGroups")),
        "roles": _strings(users.get("excludeRoles")),
        "guests_or_external_users": users.get("excludeGuestsOrExternalUsers") or None,
        "applications": _strings(apps.get("excludeApplications")),
        "locations": _strings(locations.get("excludeLocations")) if isinstance(locations, dict) else [],
        "platforms": _strings(platforms.get("excludePlatforms")) if isinstance(platforms, dict) else [],
        "device_filter": device_filter.get("rule") if isinstance(device_filter, dict) else None,
    }
    return gaps, {k: v for k, v in excluded.items() if v}


def _grant(policy: dict[str, Any]) -> dict[str, Any]:
    grant = policy.get("grantControls")
    return grant if isinstance(grant, dict) else {}


class _Tenant:
    """The tests, one method each, sharing one Graph client (and token)."""

    def __init__(self, graph: _Graph, params: M365Params, ctx: Context) -> None:
        self.graph, self.params, self.ctx = graph, params, ctx
        self._policies: list[dict[str, Any]] | None = None
        self._strengths: dict[str, str] = {}
        self.tenant = params.tenant

    def policies(self) -> list[dict[str, Any]]:
        if self._policies is None:
            self._policies = self.graph.pages("/identity/conditionalAccess/policies", "Policy.Read.All")
        return self._policies

    def _strength_grants_mfa(self, strength: dict[str, Any]) -> bool:
        satisfied = strength.get("requirementsSatisfied")
        if satisfied is None and isinstance(strength.get("id"), str):
            sid = strength["id"]
            if sid not in self._strengths:
                found = self.graph.get(self.graph.url(f"/policies/authenticationStrengthPolicies/{quote(sid)}"),
                                       "Policy.Read.All")
                self._strengths[sid] = str(found.get("requirementsSatisfied"))
            satisfied = self._strengths[sid]
        return str(satisfied).lower() == "mfa"

    def _mfa_gaps(self, policy: dict[str, Any]) -> list[str]:
        grant = _grant(policy)
        controls = [c.lower() for c in _strings(grant.get("builtInControls"))]
        strength = grant.get("authenticationStrength")
        alternatives: list[bool] = [c == "mfa" for c in controls]
        alternatives += [False] * (len(_strings(grant.get("customAuthenticationFactors")))
                                   + len(_strings(grant.get("termsOfUse"))))
        if isinstance(strength, dict):
            alternatives.append(self._strength_grants_mfa(strength))
        if "block" in controls:
            return ["blocks access instead of requiring MFA"]
        if not any(alternatives):
            return ["does not require MFA"]
        if str(grant.get("operator") or "OR").upper() == "OR" and not all(alternatives):
            return ["MFA is one of several alternatives (operator OR)"]
        conditions = policy.get("conditions") if isinstance(policy.get("conditions"), dict) else {}
        assert isinstance(conditions, dict)
        client_apps = {c.lower() for c in _strings(conditions.get("clientAppTypes"))}
        if "all" not in client_apps and not {"browser", "mobileappsanddesktopclients"} <= client_apps:
            return ["applies only to some client apps"]
        return []

    def _policy_results(self, gaps_of: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        counting, others = [], []
        for policy in self.policies():
            scope, excluded = _scope_gaps(policy)
            gaps = scope + gaps_of(policy)
            entry = {"id": policy.get("id"), "name": policy.get("displayName"), "state": policy.get("state")}
            if gaps:
                others.append({**entry, "does_not_count_because": gaps})
            else:
                limit = self.params.max_listed
                counting.append({**entry, "excluded": {k: v[:limit] if isinstance(v, list) else v
                                                       for k, v in excluded.items()},
                                 "excluded_counts": {k: len(v) if isinstance(v, list) else 1
                                                     for k, v in excluded.items()}})
        return counting, others

    def ca_mfa_all_users(self) -> Result:
        target = f"{self.tenant}/ca_mfa_all_users"
        counting, others = self._policy_results(self._mfa_gaps)
        evidence = {"policies_read": len(self.policies()), "counting": counting[:self.params.max_listed],
                    "not_counting": others[:self.params.max_listed]}
        if not counting:
            return Result.failed(target, Message(
                "No enabled Conditional Access policy of tenant %(tenant)s requires MFA for all users and all cloud "
                "apps (%(count)d policies read; report-only policies do not count).", tenant=self.tenant,
                count=len(self.policies())), **evidence)
        return Result.passed(target, Message(
            "Conditional Access of tenant %(tenant)s requires MFA for all users and all cloud apps: %(policies)s "
            "(exclusions: %(exclusions)s).", tenant=self.tenant,
            policies=_capped([str(p["name"]) for p in counting], self.params.max_listed),
            exclusions=_exclusions(counting)), **evidence)

    def legacy_auth_blocked(self) -> Result:
        target = f"{self.tenant}/legacy_auth_blocked"

        def gaps_of(policy: dict[str, Any]) -> list[str]:
            grant = _grant(policy)
            gaps = []
            if "block" not in [c.lower() for c in _strings(grant.get("builtInControls"))]:
                gaps.append("does not block")
            conditions = policy.get("conditions") if isinstance(policy.get("conditions"), dict) else {}
            assert isinstance(conditions, dict)
            client_apps = {c.lower() for c in _strings(conditions.get("clientAppTypes"))}
            if "all" not in client_apps and not {"exchangeactivesync", "other"} <= client_apps:
                gaps.append("does not cover the client apps exchangeActiveSync and other")
            return gaps

        counting, others = self._policy_results(gaps_of)
        evidence: dict[str, Any] = {"policies_read": len(self.policies()),
                                    "counting": counting[:self.params.max_listed],
                                    "not_counting": others[:self.params.max_listed]}
        if counting:
            return Result.passed(target, Message(
                "Conditional Access of tenant %(tenant)s blocks legacy authentication for all users and all cloud "
                "apps: %(policies)s (exclusions: %(exclusions)s).", tenant=self.tenant,
                policies=_capped([str(p["name"]) for p in counting], self.params.max_listed),
                exclusions=_exclusions(counting)), **evidence)
        defaults = self.graph.get(self.graph.url("/policies/identitySecurityDefaultsEnforcementPolicy"),
                                  "Policy.Read.All")
        evidence["security_defaults"] = defaults.get("isEnabled")
        if defaults.get("isEnabled") is True:
            return Result.passed(target, Message(
                "Tenant %(tenant)s has security defaults enabled, which block legacy authentication.",
                tenant=self.tenant), **evidence)
        return Result.failed(target, Message(
            "No enabled Conditional Access policy of tenant %(tenant)s blocks legacy authentication (client apps "
            "exchangeActiveSync and other) for all users and all cloud apps, and security defaults are off "
            "(%(count)d policies read).", tenant=self.tenant, count=len(self.policies())), **evidence)

    def mfa_registered(self) -> Result:
        target = f"{self.tenant}/mfa_registered"
        rows = self.graph.pages("/reports/authenticationMethods/userRegistrationDetails", "AuditLog.Read.All")
        kinds = set(self.params.mfa_user_types)
        counted = [r for r in rows if str(r.get("userType") or "member").lower() in kinds]
        missing, excepted, unknown = [], [], []
        for row in counted:
            name = str(row.get("userPrincipalName") or row.get("id") or "?")
            registered = row.get("isMfaRegistered")
            if registered is True:
                continue
            if _matches(self.params.mfa_exceptions, row.get("userPrincipalName"), row.get("id")):
                excepted.append(name)
            elif registered is False:
                missing.append(name)
            else:
                unknown.append(name)
        missing.sort(key=str.lower)
        limit = self.params.max_listed
        updated = sorted(str(r["lastUpdatedDateTime"]) for r in counted if r.get("lastUpdatedDateTime"))
        evidence = {"users": len(counted), "user_types": sorted(kinds), "without_mfa": len(missing),
                    "users_without_mfa": missing[:limit], "excepted": excepted[:limit],
                    "unknown": unknown[:limit], "report_updated": updated[-1] if updated else None}
        if unknown:
            return Result.errored(target, Message(
                "The registration report of tenant %(tenant)s does not say whether %(count)d users have MFA "
                "registered: %(users)s.", tenant=self.tenant, count=len(unknown),
                users=_capped(unknown, limit)), **evidence)
        if not counted:
            return Result.errored(target, Message(
                "The registration report of tenant %(tenant)s lists no users; the report may not be ready yet.",
                tenant=self.tenant), **evidence)
        if missing:
            return Result.failed(target, Message(
                "%(count)d of %(total)d users of tenant %(tenant)s have no MFA method registered: %(users)s.",
                count=len(missing), total=len(counted), tenant=self.tenant, users=_capped(missing, limit)), **evidence)
        return Result.passed(target, Message(
            "All %(total)d users of tenant %(tenant)s have an MFA method registered (%(excepted)d excepted).",
            total=len(counted), tenant=self.tenant, excepted=len(excepted)), **evidence)

    def global_admins(self) -> Result:
        target = f"{self.tenant}/global_admins"
        path = f"/directoryRoles(roleTemplateId='{GLOBAL_ADMINISTRATOR}')/members"
        holders: dict[str, dict[str, Any]] = {}
        groups: list[str] = []
        for member in self.graph.pages(path, "RoleManagement.Read.Directory"):
            kind = str(member.get("@odata.type") or "").removeprefix("#microsoft.graph.")
            if kind == "group":
                groups.append(str(member.get("displayName") or member.get("id")))
                for inner in self.graph.pages(f"/groups/{quote(str(member.get('id')))}/transitiveMembers",
                                              "GroupMember.Read.All"):
                    inner_kind = str(inner.get("@odata.type") or "").removeprefix("#microsoft.graph.")
                    if inner_kind in ("user", "servicePrincipal"):
                        holders.setdefault(str(inner.get("id")), _holder(inner, inner_kind, via=groups[-1]))
            else:
                holders.setdefault(str(member.get("id")), _holder(member, kind or "user"))
        names = sorted((h["name"] for h in holders.values()), key=str.lower)
        count, low, high = len(holders), self.params.min_global_admins, self.params.max_global_admins
        evidence = {"count": count, "minimum": low, "maximum": high, "via_groups": groups[:self.params.max_listed],
                    "holders": sorted(holders.values(), key=lambda h: str(h["name"]).lower())[:self.params.max_listed]}
        shown = _capped(names, self.params.max_listed) or "-"
        if count < low:
            return Result.failed(target, Message(
                "Tenant %(tenant)s has %(count)d Global Administrators, fewer than the minimum of %(minimum)d: "
                "%(names)s.", tenant=self.tenant, count=count, minimum=low, names=shown), **evidence)
        if count > high:
            return Result.failed(target, Message(
                "Tenant %(tenant)s has %(count)d Global Administrators, more than the maximum of %(maximum)d: "
                "%(names)s.", tenant=self.tenant, count=count, maximum=high, names=shown), **evidence)
        return Result.passed(target, Message(
            "Tenant %(tenant)s has %(count)d Global Administrators (allowed %(minimum)d to %(maximum)d): %(names)s.",
            tenant=self.tenant, count=count, minimum=low, maximum=high, names=shown), **evidence)

    def stale_guests(self) -> Result:
        target = f"{self.tenant}/stale_guests"
        query = {"$filter": "userType eq 'Guest'",
                 "$select": "id,displayName,userPrincipalName,mail,createdDateTime,accountEnabled,signInActivity"}
        guests = self.graph.pages("/users", "User.Read.All and AuditLog.Read.All", query)
        now, window = self.ctx.now(), self.params.guest_max_inactive
        stale: list[dict[str, Any]] = []
        skipped_disabled = excepted = 0
        for guest in guests:
            if guest.get("accountEnabled") is False and not self.params.include_disabled_guests:
                skipped_disabled += 1
                continue
            if _matches(self.params.guest_exceptions, guest.get("userPrincipalName"), guest.get("mail"),
                        guest.get("id")):
                excepted += 1
                continue
            activity = guest.get("signInActivity") if isinstance(guest.get("signInActivity"), dict) else {}
            assert isinstance(activity, dict)
            seen = [w for w in (_when(activity.get(k)) for k in ("lastSignInDateTime",
                                                                  "lastNonInteractiveSignInDateTime",
                                                                  "lastSuccessfulSignInDateTime")) if w]
            last = max(seen) if seen else None
            created = _when(guest.get("createdDateTime"))
            name = str(guest.get("mail") or guest.get("userPrincipalName") or guest.get("id"))
            if last is not None and now - last <= window:
                continue
            if last is None and created is not None and now - created <= window:
                continue  # invited recently, has not signed in yet
            stale.append({"name": name, "last_sign_in": last.isoformat() if last else None,
                          "created": created.isoformat() if created else None})
        stale.sort(key=lambda g: (g["last_sign_in"] or "", g["name"].lower()))
        days = int(window.total_seconds() // 86400)
        limit = self.params.max_listed
        evidence = {"guests": len(guests), "stale": len(stale), "max_inactive_days": days,
                    "skipped_disabled": skipped_disabled, "excepted": excepted, "stale_guests": stale[:limit]}
        if stale:
            return Result.failed(target, Message(
                "%(count)d of %(total)d guest accounts of tenant %(tenant)s have not signed in for more than "
                "%(days)d days: %(names)s.", count=len(stale), total=len(guests), tenant=self.tenant, days=days,
                names=_capped([g["name"] for g in stale], limit)), **evidence)
        return Result.passed(target, Message(
            "All %(total)d guest accounts of tenant %(tenant)s signed in within the last %(days)d days "
            "(%(disabled)d disabled ones skipped).", total=len(guests), tenant=self.tenant, days=days,
            disabled=skipped_disabled), **evidence)


def _holder(member: dict[str, Any], kind: str, via: str | None = None) -> dict[str, Any]:
    name = member.get("userPrincipalName") or member.get("displayName") or member.get("appId") or member.get("id")
    holder = {"name": str(name), "type": kind, "enabled": member.get("accountEnabled")}
    if via:
        holder["via_group"] = via
    return holder


def _exclusions(counting: list[dict[str, Any]]) -> Message | str:
    total: dict[str, int] = {}
    for policy in counting:
        for kind, count in policy["excluded_counts"].items():
            total[kind] = total.get(kind, 0) + count
    if not total:
        return Message("none")
    return Message("%(users)d users, %(groups)d groups, %(roles)d roles, %(other)d other",
                   users=total.pop("users", 0), groups=total.pop("groups", 0), roles=total.pop("roles", 0),
                   other=sum(total.values()))


class M365(Check):
    """Microsoft 365 / Entra ID: MFA, Conditional Access, Global Administrators and guests, via Microsoft Graph."""

    name = "m365"
    Params = M365Params
    target_param = "tenant"

    def run(self, params: M365Params, ctx: Context) -> Iterator[Result]:
        secret = os.environ.get(params.client_secret_env, "")
        if not secret:
            for test in params.test:
                yield Result.errored(f"{params.tenant}/{test}", Message(
                    "Could not check %(test)s of Microsoft 365 tenant %(tenant)s: the environment variable %(env)s "
                    "with the client secret is not set.", test=TITLES[test], tenant=params.tenant,
                    env=params.client_secret_env), test=test)
            return
        graph = _Graph(params, ctx, secret)
        tenant = _Tenant(graph, params, ctx)
        for test in params.test:
            base = {"test": test, "graph_url": params.graph_url, "permissions": list(PERMISSIONS[test])}
            try:
                result = getattr(tenant, test)()
            except _Stop as exc:
                result = Result.errored(f"{params.tenant}/{test}", Message(
                    "Could not check %(test)s of Microsoft 365 tenant %(tenant)s: %(reason)s.", test=TITLES[test],
                    tenant=params.tenant, reason=exc.message), **exc.evidence)
            evidence = {**base, **result.evidence, "requests": graph.requests,
                        "throttle_wait_seconds": round(graph.waited, 1)}
            yield Result(result.status, result.message, result.target, evidence)
