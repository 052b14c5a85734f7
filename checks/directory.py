"""`directory`: accounts, privileged groups and the password policy in Active Directory or OpenLDAP.

Secure state (BIO2 / ISO 27002:2022 5.16 identity management, 5.17 authentication information, 5.18
access rights, 8.2 privileged access rights): accounts nobody uses are disabled, passwords expire unless
an exception was approved, only approved accounts hold administrative power, shared or generic accounts
are known exceptions, and the domain password policy meets the municipality's minimums. One control
item checks one thing, chosen with `test`:

- `stale_accounts` (5.16.01, 5.18.02): enabled accounts that have not logged on for longer than
  `max_inactive` (default 90d). Active Directory: `lastLogonTimestamp` (a Windows FILETIME; it is
  replicated with a lag of up to 14 days, so keep `max_inactive` well above 14d); an account that never
  logged on counts from its creation (`whenCreated`). OpenLDAP: `authTimestamp` from the lastbind
  overlay, `createTimestamp`; or any attribute named in `logon_attribute` (GeneralizedTime, a FILETIME
  or Unix seconds).
- `password_never_expires` (5.17.03): enabled accounts whose password never expires (AD:
  userAccountControl flag 0x10000 DONT_EXPIRE_PASSWORD; other directories: `never_expires_filter`).
- `privileged_groups` (5.18.01, 8.02.01): the members of each privileged group, nested groups resolved
  (cycles are safe) and, in AD, also the accounts whose primary group it is (primaryGroupID, which AD
  leaves out of `member`), against `approved`: a member nobody approved fails the group; an approved
  account that is no longer a member is reported as information. One result per group. Defaults for
  AD: Domain Admins, Enterprise Admins, Schema Admins and Administrators (a default group the domain does
  not have is skipped).
- `generic_accounts` (5.16.02): enabled accounts whose name looks generic or shared (admin, test,
  service, gebruiker, balie, ... or your own `patterns`) and are not in `allowed`.
- `password_policy` (5.17.03): AD's domain policy (minPwdLength, pwdHistoryLength, lockoutThreshold,
  maxPwdAge on the domain object `base_dn`) or an OpenLDAP ppolicy entry (`policy_dn`: pwdMinLength,
  pwdInHistory, pwdMaxFailure, pwdMaxAge, and pwdCheckQuality, without which OpenLDAP does not
  enforce the minimum length) against `min_password_length`, `min_password_history`,
  `max_lockout_threshold` and, when set, `max_password_age`.

"Enabled" in AD is userAccountControl without flag 2 (ACCOUNTDISABLE); elsewhere every account the
`user_filter` finds counts as enabled unless it matches `disabled_filter` (for OpenLDAP with ppolicy for
example `(pwdAccountLockedTime=000001010000Z)`).

The check binds as `bind_dn` (an AD user principal name such as `svc-compliance@gemeente.local` works
too) with the password from the environment variable `password_env`, never from the control. A read-only
account suffices: read access to the users, groups and the domain object (or policy entry). Every search
is paged (`page_size`), so directories larger than the server's size limit are read whole. The
connection must be encrypted: `ldaps://` or, with `ldap://`, StartTLS (the default), with a certificate
the system store or `ca_file` trusts; plain LDAP only with `insecure: true`, which the evidence then
shows. Unreachable server, failed TLS, refused credentials, a missing environment variable, a search
that fails or runs out of time: an `error` result, never a pass. A threshold or list of another test
(`max_inactive`, `approved`, `patterns`, `allowed`, the password minimums) is a validation error; what
describes the directory (flavor, filters, attributes, `groups`, `policy_dn`) may be given for every test,
so that one entry of a target group serves every control.

Example::

    id: IAM-ACCOUNTS
    title: Unused accounts are disabled and only approved accounts are administrators
    theme: organizational
    references: {bio2: "5.18.02", iso27002: "5.18"}
    severity: high
    checks:
      - plugin: directory
        params:
          url: ldaps://dc01.gemeente.local
          base_dn: DC=gemeente,DC=local
          bind_dn: svc-compliance@gemeente.local
          password_env: LDAP_BIND_PASSWORD
          test: stale_accounts
          max_inactive: 90d
          allowed: [adm-noodaccount]
      - plugin: directory
        params:
          url: ldaps://dc01.gemeente.local
          base_dn: DC=gemeente,DC=local
          bind_dn: svc-compliance@gemeente.local
          password_env: LDAP_BIND_PASSWORD
          test: privileged_groups
          approved: [adm-jansen, adm-devries, Administrator]
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from compliance.api import (
    EVIDENCE_LIMIT,
    Check,
    Context,
    Duration,
    Message,
    Params,
    Regex,
    Result,
    Seconds,
    format_duration,
)

if TYPE_CHECKING:
    from ldap3 import Connection

Test = Literal["stale_accounts", "password_never_expires", "privileged_groups", "generic_accounts",
               "password_policy"]

#: The thresholds and lists that only some tests read; giving them for another test is a mistake. (What
#: describes the directory itself, such as `policy_dn` or `never_expires_filter`, may be given for every
#: test, so that one entry of a target group serves all the controls that use it.)
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "max_inactive": ("stale_accounts",),
    "approved": ("privileged_groups",),
    "patterns": ("generic_accounts",),
    "allowed": ("stale_accounts", "password_never_expires", "generic_accounts"),
    "min_password_length": ("password_policy",),
    "min_password_history": ("password_policy",),
    "max_lockout_threshold": ("password_policy",),
    "max_password_age": ("password_policy",),
}

#: What a generic or shared account is often called (searched anywhere in the name, case ignored).
GENERIC_PATTERNS = (r"admin", r"beheer", r"test", r"demo", r"service|svc", r"gebruiker", r"^user", r"balie",
                    r"loket", r"receptie", r"gast|guest", r"stagiair", r"tijdelijk|^temp", r"algemeen|gedeeld|shared",
                    r"generiek|generic", r"kiosk", r"scanner")

_AD_USERS = "(&(objectCategory=person)(objectClass=user))"
_AD_GROUPS = ("Domain Admins", "Enterprise Admins", "Schema Admins", "Administrators")
_GROUP_CLASSES = {"group", "groupofnames", "groupofuniquenames", "posixgroup"}
_ACCOUNTDISABLE = 0x2
_DONT_EXPIRE_PASSWORD = 0x10000
_PAGED = "1.2.840.113556.1.4.319"
_FILETIME_EPOCH = 11644473600  # seconds from 1601-01-01 to 1970-01-01
_SHOWN = 10  # account names in a message
_LISTED = 50  # accounts in the evidence
_MAX_GROUP_ENTRIES = 5000  # entries read while resolving one group's nested members
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GENERALIZED = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{4})?")


def _balanced(value: str) -> str:
    depth = 0
    for char in value:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if not value.startswith("(") or not value.endswith(")") or depth != 0:
        raise ValueError(f"'{value}' is not an LDAP filter; write one in parentheses, e.g. '(objectClass=person)'")
    return value


class DirectoryParams(Params):
    url: str
    """The directory server: `ldaps://dc01.gemeente.local` (port 636) or `ldap://...` (389, with StartTLS)."""
    test: Test
    """What to check: stale_accounts, password_never_expires, privileged_groups, generic_accounts or
    password_policy."""
    base_dn: str = Field(min_length=1)
    """Where the accounts and groups are searched; for AD also the domain object with the password policy."""
    bind_dn: str = Field(min_length=1)
    """The read-only account the check binds as (a DN, or for AD a name such as user@gemeente.local)."""
    password_env: str
    """The environment variable holding the bind password (the password is never written in a control)."""
    flavor: Literal["ad", "openldap"] = "ad"
    """`ad` (Active Directory, the default) or `openldap` (or another directory: set the attributes)."""
    starttls: bool | None = None
    """With `ldap://`: StartTLS (the default). `false` sends everything unencrypted and needs `insecure: true`."""
    insecure: bool = False
    """Allow plain LDAP without TLS (a test lab only); the evidence then says so."""
    ca_file: str | None = None
    """CA bundle trusted besides the system store; default the configuration's."""
    timeout: Seconds | None = None
    """Per network operation; default the configuration's network timeout."""
    page_size: int = Field(500, ge=1, le=10000)
    """Entries per page of the paged searches."""
    user_filter: str | None = None
    """Which entries are accounts; default AD `(&(objectCategory=person)(objectClass=user))`, OpenLDAP
    `(objectClass=inetOrgPerson)`."""
    disabled_filter: str | None = None
    """Accounts matching this filter count as disabled and are left out (AD reads userAccountControl)."""
    name_attribute: str | None = None
    """The account name compared with the lists; default AD sAMAccountName, OpenLDAP uid."""
    max_inactive: Duration | None = None
    """stale_accounts: the longest an enabled account may go without logging on (default 90d)."""
    logon_attribute: str | None = None
    """stale_accounts: the last logon; default AD lastLogonTimestamp, OpenLDAP authTimestamp."""
    created_attribute: str | None = None
    """stale_accounts: creation time, for accounts that never logged on; default whenCreated/createTimestamp."""
    never_expires_filter: str | None = None
    """password_never_expires: accounts whose password never expires (required for OpenLDAP)."""
    groups: list[str] | None = None
    """privileged_groups: group names (cn) or DNs; default for AD Domain Admins, Enterprise Admins, Schema
    Admins and Administrators (required for OpenLDAP)."""
    approved: list[str] | dict[str, list[str]] | None = None
    """privileged_groups: approved members (account names or DNs): one list for all groups, or per group."""
    patterns: list[Regex] | None = None
    """generic_accounts: regular expressions for generic names (default: admin, test, service, gebruiker,
    balie and more)."""
    allowed: list[str] = Field(default_factory=list)
    """Accounts (names or DNs) that are approved exceptions for stale_accounts, password_never_expires or
    generic_accounts."""
    policy_dn: str | None = None
    """password_policy: the ppolicy entry (OpenLDAP; required there). AD reads the domain object, `base_dn`
    unless this names another."""
    min_password_length: int = Field(12, ge=0)
    """password_policy: the shortest minimum length that passes."""
    min_password_history: int = Field(5, ge=0)
    """password_policy: the fewest remembered passwords that pass."""
    max_lockout_threshold: int | None = Field(10, ge=1)
    """password_policy: accounts must lock after at most this many failed logons (a policy that never locks
    fails); null to leave lockout unchecked."""
    max_password_age: Duration | None = None
    """password_policy: when set, passwords must expire within this age (not checked by default: NCSC and
    NIST advise against forced periodic changes)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(f"'{value}' is not an LDAP URL; write ldaps://dc01.gemeente.local or ldap://host:389")
        if parts.username or parts.password or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"'{value}' carries more than scheme, host and port; give the DNs as parameters")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"'{value}': {exc}") from None
        return value.strip()

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(f"'{value}' is not an environment variable name (the password itself never goes here)")
        return value

    @field_validator("user_filter", "disabled_filter", "never_expires_filter")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        return None if value is None else _balanced(value.strip())

    @model_validator(mode="after")
    def _consistent(self) -> DirectoryParams:
        for name, tests in _ONLY_FOR.items():
            if name in self.model_fields_set and self.test not in tests:
                raise ValueError(f"'{name}' is a parameter of test {' / '.join(tests)}, not of {self.test}")
        scheme = urlsplit(self.url).scheme.lower()
        if scheme == "ldaps" and self.starttls:
            raise ValueError("ldaps:// is already encrypted; StartTLS is for ldap://")
        if scheme == "ldap" and self.starttls is False and not self.insecure:
            raise ValueError("plain LDAP sends the bind password unencrypted: use ldaps:// or StartTLS, or set "
                             "insecure: true (a test lab only)")
        if isinstance(self.approved, dict):
            known = {g.lower() for g in (self.groups if self.groups is not None else _AD_GROUPS)}
            unknown = [g for g in self.approved if g.lower() not in known]
            if unknown:
                raise ValueError(f"approved names group(s) {', '.join(unknown)} that are not checked; the groups are "
                                 f"{', '.join(self.groups if self.groups is not None else _AD_GROUPS)}")
        if self.flavor == "openldap":
            needed = {"password_never_expires": "never_expires_filter", "privileged_groups": "groups",
                      "password_policy": "policy_dn"}.get(self.test)
            if needed and getattr(self, needed) is None:
                raise ValueError(f"test {self.test} on OpenLDAP needs '{needed}'")
        return self

    # the flavour's defaults
    def users(self) -> str:
        return self.user_filter or (_AD_USERS if self.flavor == "ad" else "(objectClass=inetOrgPerson)")

    def name_attr(self) -> str:
        return self.name_attribute or ("sAMAccountName" if self.flavor == "ad" else "uid")

    def logon_attr(self) -> str:
        return self.logon_attribute or ("lastLogonTimestamp" if self.flavor == "ad" else "authTimestamp")

    def created_attr(self) -> str:
        return self.created_attribute or ("whenCreated" if self.flavor == "ad" else "createTimestamp")


class _Failure(Exception):
    """Why the check could not decide, as a Message for an `error` result."""

    def __init__(self, message: Message, **evidence: Any) -> None:
        super().__init__(str(message))
        self.message, self.evidence = message, evidence


@dataclass
class _Account:
    dn: str
    name: str
    enabled: bool
    attrs: dict[str, list[str]] = field(default_factory=dict)

    def first(self, attribute: str) -> str | None:
        values = self.attrs.get(attribute.lower())
        return values[0] if values else None

    def known_as(self, names: set[str]) -> bool:
        return self.name.lower() in names or self.dn.lower() in names


def _lowered(entry: Mapping[str, Any]) -> dict[str, list[str]]:
    """An entry's raw attributes as text, keyed by lower-case name (range options of AD dropped)."""
    found: dict[str, list[str]] = {}
    for key, values in (entry.get("raw_attributes") or {}).items():
        name = str(key).split(";", 1)[0].lower()
        if name == "objectsid":  # binary: kept as hex
            texts = [v.hex() if isinstance(v, bytes) else str(v) for v in values]
        else:
            texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
        found.setdefault(name, []).extend(texts)
    return found


def parse_time(value: str | None) -> datetime | None:
    """A logon or creation time: GeneralizedTime, a Windows FILETIME or Unix seconds; None for never/absent.

    Raises ValueError for a value that is none of these.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+", text) and len(text) != 14:  # 14 digits: GeneralizedTime without a zone
        number = int(text)
        if number <= 0 or number >= 0x7FFFFFFFFFFFFFFF:  # AD: 0 and the largest value mean never
            return None
        seconds = number / 10_000_000 - _FILETIME_EPOCH if number > 10**14 else float(number)
        return datetime.fromtimestamp(seconds, UTC)
    match = _GENERALIZED.fullmatch(text)
    if not match:
        raise ValueError(f"'{value}' is not a time (GeneralizedTime, FILETIME or Unix seconds)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0), tzinfo=UTC)
    if fraction:
        moment += timedelta(seconds=float("0." + fraction))
    if zone and zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        moment = moment - offset if zone[0] == "+" else moment + offset
    return moment


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _names(accounts: Sequence[str]) -> str:
    shown = ", ".join(accounts[:_SHOWN])
    return shown + (f" (+{len(accounts) - _SHOWN})" if len(accounts) > _SHOWN else "")


class _Directory:
    """One bound connection and the searches the tests need."""

    def __init__(self, conn: Connection, params: DirectoryParams, ctx: Context, timeout: float, target: str) -> None:
        self.conn, self.params, self.ctx, self.timeout, self.target = conn, params, ctx, timeout, target
        self.pages = 0

    def _check_time(self) -> None:
        if self.ctx.remaining() <= 0:
            raise _Failure(Message("The time for the check of %(target)s ran out while searching the directory.",
                                   target=self.target), reachable=True, timed_out=True)

    def _result_error(self, where: str) -> _Failure:
        result = self.conn.result or {}
        code, description = result.get("result"), str(result.get("description") or "unknown")
        detail = str(result.get("message") or "").strip()
        reason = f"{description} ({detail})" if detail else description
        if code == 3:
            return _Failure(Message("The directory at %(target)s did not finish the search under %(base)s within "
                                    "the time limit.", target=self.target, base=where), timed_out=True)
        return _Failure(Message("The search under %(base)s at %(target)s failed: %(reason)s.", base=where,
                                target=self.target, reason=reason), ldap_result=code)

    def search(self, base: str, filter_: str, attributes: Sequence[str]) -> Iterator[tuple[str, dict[str, list[str]]]]:
        """Every entry under `base` matching `filter_`, page by page."""
        from ldap3 import SUBTREE

        cookie: bytes | None = None
        while True:
            self._check_time()
            self.conn.search(base, filter_, SUBTREE, attributes=list(attributes), paged_size=self.params.page_size,
                             paged_cookie=cookie, time_limit=max(1, int(self.timeout)))
            self.pages += 1
            if (self.conn.result or {}).get("result") != 0:
                raise self._result_error(base)
            for entry in self.conn.response or []:
                if entry.get("type") == "searchResEntry":
                    yield str(entry["dn"]), _lowered(entry)
            control = ((self.conn.result or {}).get("controls") or {}).get(_PAGED) or {}
            cookie = (control.get("value") or {}).get("cookie") or None
            if not cookie:
                return

    def read(self, dn: str, attributes: Sequence[str]) -> dict[str, list[str]] | None:
        """One entry's attributes, or None when it does not exist."""
        from ldap3 import BASE

        self._check_time()
        self.conn.search(dn, "(objectClass=*)", BASE, attributes=list(attributes), time_limit=max(1, int(self.timeout)))
        code = (self.conn.result or {}).get("result")
        if code == 32:  # noSuchObject
            return None
        if code != 0:
            raise self._result_error(dn)
        for entry in self.conn.response or []:
            if entry.get("type") == "searchResEntry":
                return _lowered(entry)
        return None

    def accounts(self, extra: Sequence[str] = (), filter_: str | None = None) -> tuple[list[_Account], int]:
        """The enabled accounts (with the `extra` attributes) and how many accounts there are in all."""
        p = self.params
        users = filter_ or p.users()
        name = p.name_attr()
        wanted = [name, "cn", *extra] + (["userAccountControl"] if p.flavor == "ad" else [])
        disabled: set[str] = set()
        if p.disabled_filter:
            disabled = {dn.lower() for dn, _ in self.search(p.base_dn, f"(&{users}{p.disabled_filter})", ["1.1"])}
        found, total = [], 0
        for dn, attrs in self.search(p.base_dn, users, wanted):
            total += 1
            account = _Account(dn, (attrs.get(name.lower()) or attrs.get("cn") or [dn])[0], True, attrs)
            control = _int(account.first("userAccountControl"))
            if dn.lower() in disabled or (control is not None and control & _ACCOUNTDISABLE):
                account.enabled = False
            found.append(account)
        return [a for a in found if a.enabled], total


class Directory(Check):
    """Stale, never-expiring, generic and privileged accounts and the password policy of AD or OpenLDAP."""

    name = "directory"
    Params = DirectoryParams
    target_param = "url"

    def run(self, params: DirectoryParams, ctx: Context) -> Iterator[Result]:
        parts = urlsplit(params.url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (636 if scheme == "ldaps" else 389)
        target = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
        transport = "ldaps" if scheme == "ldaps" else ("starttls" if params.starttls is not False else "plain")
        base: dict[str, Any] = {"test": params.test, "flavor": params.flavor, "base_dn": params.base_dn,
                                "bind_dn": params.bind_dn, "transport": transport, "insecure": transport == "plain"}
        password = os.environ.get(params.password_env)
        if not password:
            yield Result.errored(target, Message("The environment variable %(env)s with the bind password for "
                                                 "%(target)s is not set (or empty).", env=params.password_env,
                                                 target=target),
                                 **base, password_env=params.password_env)
            return
        from compliance.checks._net import budget

        timeout = budget(params.timeout, ctx)
        try:
            conn = _connect(params, ctx, host, port, transport, password, timeout, target)
        except _Failure as exc:
            yield Result.errored(target, exc.message, **base, **exc.evidence)
            return
        from ldap3.core.exceptions import LDAPException

        try:
            directory = _Directory(conn, params, ctx, timeout, target)
            runner = {"stale_accounts": _stale, "password_never_expires": _never_expires,
                      "privileged_groups": _privileged, "generic_accounts": _generic,
                      "password_policy": _policy}[params.test]
            results = list(runner(directory, target, base))
        except _Failure as exc:
            yield Result.errored(target, exc.message, **base, **exc.evidence)
            return
        except (LDAPException, OSError) as exc:  # the connection broke mid-way
            failure = _classify(exc, target)
            yield Result.errored(target, failure.message, **base, **failure.evidence)
            return
        finally:
            _close(conn)
        for result in results:
            yield _fit(result)


def _reason(exc: BaseException) -> str:
    """An exception's text without the tuple wrappings ldap3 adds: ("('socket ssl wrapping error: ...',)",)."""
    text = " ".join(str(exc).split())
    for _ in range(5):
        match = re.fullmatch(r"""\(\s*(['"])(.*)\1\s*,?\s*\)""", text)
        if not match:
            break
        text = match.group(2)
    return text or type(exc).__name__


def _classify(exc: BaseException, target: str) -> _Failure:
    """An ldap3 or socket error as unreachable, timeout or TLS failure."""
    text = _reason(exc)
    low = text.lower()
    if "timed out" in low or "timeout" in low or isinstance(exc, TimeoutError):
        return _Failure(Message("The directory at %(target)s did not answer in time (%(reason)s).", target=target,
                                reason=text), reachable=False, timed_out=True)
    if "ssl" in low or "certificate" in low or "tls" in low or "handshake" in low:
        return _Failure(Message("TLS with the directory at %(target)s failed: %(reason)s.", target=target,
                                reason=text), reachable=True, tls=False)
    return _Failure(Message("Could not reach the directory at %(target)s: %(reason)s.", target=target, reason=text),
                    reachable=False)


@functools.lru_cache(maxsize=1)
def _tls_class() -> type[Any]:
    """ldap3's TLS settings with Python's own verification: the chain and the host name (ldap3 checks the host
    name with ssl.match_hostname, which Python 3.12 no longer has), by a context that trusts the system store
    plus the configured CA file."""
    import ssl

    import ldap3

    class VerifiedTls(ldap3.Tls):
        def __init__(self, context: ssl.SSLContext, host: str) -> None:
            super().__init__(validate=ssl.CERT_REQUIRED)
            self.context, self.host = context, host

        def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
            connection.socket = self.context.wrap_socket(connection.socket, server_side=False,
                                                         do_handshake_on_connect=do_handshake,
                                                         server_hostname=self.host)

    return VerifiedTls


def _connect(params: DirectoryParams, ctx: Context, host: str, port: int, transport: str, password: str,
             timeout: float, target: str) -> Connection:
    from compliance.checks._net import load_libraries

    load_libraries("ldap3")
    import ldap3
    from ldap3.core.exceptions import LDAPException

    tls = None
    if transport != "plain":
        from compliance.checks._net import ca_file_of, verifying_context

        ca_file = ca_file_of(params.ca_file, ctx)
        if ca_file and not os.path.isfile(ca_file):
            raise _Failure(Message("The CA file %(path)s for %(target)s does not exist.", path=ca_file, target=target))
        try:
            context = verifying_context(ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise _Failure(Message("The CA file %(path)s for %(target)s cannot be used: %(reason)s.",
                                   path=str(ca_file), target=target, reason=str(exc))) from None
        tls = _tls_class()(context, host)
    server = ldap3.Server(host, port=port, use_ssl=transport == "ldaps", tls=tls, get_info=ldap3.NONE,
                          connect_timeout=timeout)
    conn = ldap3.Connection(server, user=params.bind_dn, password=password, read_only=True, auto_referrals=False,
                            receive_timeout=max(1, math.ceil(timeout)), raise_exceptions=False, auto_range=True)
    try:
        conn.open()
        if transport == "starttls":
            try:
                started = conn.start_tls()
            except (LDAPException, OSError) as exc:
                failure = _classify(exc, target)
                if "timed_out" in failure.evidence:
                    raise failure from None
                raise _Failure(Message("TLS with the directory at %(target)s failed: %(reason)s.", target=target,
                                       reason=_reason(exc)), reachable=True, tls=False) from None
            if not started:
                raise _Failure(Message("The directory at %(target)s refused StartTLS: %(reason)s.", target=target,
                                       reason=str(conn.last_error or conn.result)), reachable=True, tls=False)
        bound = conn.bind()
    except _Failure:
        _close(conn)
        raise
    except (LDAPException, OSError) as exc:
        _close(conn)
        raise _classify(exc, target) from None
    if not bound:
        result = conn.result or {}
        _close(conn)
        if result.get("result") == 49:
            raise _Failure(Message("The directory at %(target)s refused the bind as %(dn)s: invalid credentials "
                                   "(the password comes from the environment variable %(env)s).", target=target,
                                   dn=params.bind_dn, env=params.password_env),
                           reachable=True, password_env=params.password_env, ldap_result=49)
        reason = str(result.get("description") or conn.last_error or "unknown")
        detail = str(result.get("message") or "").strip()
        raise _Failure(Message("The directory at %(target)s refused the bind as %(dn)s: %(reason)s.", target=target,
                               dn=params.bind_dn, reason=f"{reason} ({detail})" if detail else reason),
                       reachable=True, ldap_result=result.get("result"))
    return conn


def _close(conn: Connection) -> None:
    """Unbind and close, also a connection that already broke (ldap3 may leave its socket open then)."""
    with contextlib.suppress(Exception):
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _fit(result: Result, limit: int = EVIDENCE_LIMIT - 2048) -> Result:
    """The result with its evidence's longest lists shortened until the evidence fits the engine's limit."""
    evidence = dict(result.evidence)

    def size() -> int:
        return len(json.dumps(evidence, default=str, ensure_ascii=False).encode())

    while size() > limit:
        key, longest = max(((k, v) for k, v in evidence.items() if isinstance(v, list)), key=lambda kv: len(kv[1]),
                           default=("", []))
        if len(longest) <= 1:
            break
        evidence[key] = longest[: len(longest) // 2]
        evidence["shortened"] = True
    return result if evidence == result.evidence else Result(result.status, result.message, result.target, evidence)


def _listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"findings": items[:_LISTED], "findings_total": len(items)}


def _no_accounts(d: _Directory, target: str, base: dict[str, Any]) -> Result:
    return Result.errored(target, Message("No account under %(base)s at %(target)s matches %(filter)s; the check "
                                          "cannot judge an empty list (is base_dn or user_filter wrong, or may the "
                                          "bind account not read the accounts?).", base=d.params.base_dn,
                                          target=target, filter=d.params.users()),
                          **base, pages=d.pages, accounts_total=0)


def _stale(d: _Directory, target: str, base: dict[str, Any]) -> Iterator[Result]:
    p = d.params
    max_inactive = p.max_inactive or timedelta(days=90)
    logon, created = p.logon_attr(), p.created_attr()
    enabled, total = d.accounts([logon, created])
    if total == 0:
        yield _no_accounts(d, target, base)
        return
    allowed = {a.lower() for a in p.allowed}
    cutoff = d.ctx.now() - max_inactive
    stale: list[dict[str, Any]] = []
    skipped: list[str] = []
    for account in enabled:
        try:
            last = parse_time(account.first(logon))
        except ValueError:
            last, unreadable = None, account.first(logon)
        else:
            unreadable = None
        try:
            made = parse_time(account.first(created))
        except ValueError:
            made = None
        active = last is not None and last >= cutoff
        new = last is None and unreadable is None and made is not None and made >= cutoff
        if active or new:
            continue
        if account.known_as(allowed):
            skipped.append(account.name)
            continue
        shown = last.isoformat(timespec="seconds") if last else (f"unreadable: {unreadable}" if unreadable else None)
        stale.append({"account": account.name, "dn": account.dn, "last_logon": shown,
                      "created": made.isoformat(timespec="seconds") if made else None})
    stale.sort(key=lambda s: (s["last_logon"] or "", s["account"].lower()))
    evidence = {**base, "pages": d.pages, "accounts_total": total, "enabled": len(enabled),
                "logon_attribute": logon, "max_inactive_days": round(max_inactive.total_seconds() / 86400, 2),
                "cutoff": cutoff.isoformat(), "allowed_skipped": skipped[:_LISTED], **_listed(stale)}
    if stale:
        yield Result.failed(target, Message("%(count)d enabled accounts at %(target)s have not logged on for more than "
                                            "%(maximum)s: %(accounts)s.", count=len(stale), target=target,
                                            maximum=format_duration(max_inactive),
                                            accounts=_names([s["account"] for s in stale])), **evidence)
    else:
        yield Result.passed(target, Message("All %(count)d enabled accounts at %(target)s logged on within the last "
                                            "%(maximum)s or were created since.", count=len(enabled), target=target,
                                            maximum=format_duration(max_inactive)), **evidence)


def _never_expires(d: _Directory, target: str, base: dict[str, Any]) -> Iterator[Result]:
    p = d.params
    enabled, total = d.accounts()
    if total == 0:
        yield _no_accounts(d, target, base)
        return
    if p.never_expires_filter:
        matching, _ = d.accounts(filter_=f"(&{p.users()}{p.never_expires_filter})")
    else:
        matching = [a for a in enabled if (_int(a.first("userAccountControl")) or 0) & _DONT_EXPIRE_PASSWORD]
    allowed = {a.lower() for a in p.allowed}
    findings = [{"account": a.name, "dn": a.dn} for a in matching if not a.known_as(allowed)]
    skipped = [a.name for a in matching if a.known_as(allowed)]
    findings.sort(key=lambda f: f["account"].lower())
    evidence = {**base, "pages": d.pages, "accounts_total": total, "enabled": len(enabled),
                "criterion": p.never_expires_filter or "userAccountControl & 0x10000 (DONT_EXPIRE_PASSWORD)",
                "allowed_skipped": skipped[:_LISTED], **_listed(findings)}
    if findings:
        yield Result.failed(target, Message("%(count)d enabled accounts at %(target)s have a password that never "
                                            "expires without an approved exception: %(accounts)s.",
                                            count=len(findings), target=target,
                                            accounts=_names([f["account"] for f in findings])), **evidence)
    else:
        yield Result.passed(target, Message("None of the %(count)d enabled accounts at %(target)s has a password that "
                                            "never expires, apart from %(allowed)d approved exceptions.",
                                            count=len(enabled), target=target, allowed=len(skipped)), **evidence)


def _generic(d: _Directory, target: str, base: dict[str, Any]) -> Iterator[Result]:
    p = d.params
    enabled, total = d.accounts()
    if total == 0:
        yield _no_accounts(d, target, base)
        return
    patterns = [re.compile(x, re.IGNORECASE) for x in (p.patterns if p.patterns is not None else GENERIC_PATTERNS)]
    allowed = {a.lower() for a in p.allowed}
    findings: list[dict[str, Any]] = []
    skipped: list[str] = []
    for account in enabled:
        hit = next((x.pattern for x in patterns if x.search(account.name)), None)
        if hit is None:
            continue
        if account.known_as(allowed):
            skipped.append(account.name)
        else:
            findings.append({"account": account.name, "dn": account.dn, "pattern": hit})
    findings.sort(key=lambda f: f["account"].lower())
    evidence = {**base, "pages": d.pages, "accounts_total": total, "enabled": len(enabled),
                "patterns": [x.pattern for x in patterns], "allowed_skipped": skipped[:_LISTED], **_listed(findings)}
    if findings:
        yield Result.failed(target, Message("%(count)d enabled accounts at %(target)s look generic or shared and are "
                                            "not on the allowed list: %(accounts)s.", count=len(findings),
                                            target=target, accounts=_names([f["account"] for f in findings])),
                            **evidence)
    else:
        yield Result.passed(target, Message("None of the %(count)d enabled accounts at %(target)s has a generic name, "
                                            "apart from %(allowed)d allowed ones.", count=len(enabled), target=target,
                                            allowed=len(skipped)), **evidence)


@dataclass
class _Member:
    dn: str
    name: str
    enabled: bool | None
    via: list[str]


def _privileged(d: _Directory, target: str, base: dict[str, Any]) -> Iterator[Result]:
    from ldap3.utils.conv import escape_filter_chars

    p = d.params
    explicit = p.groups is not None
    groups = p.groups if p.groups is not None else list(_AD_GROUPS)
    group_filter = "(objectClass=group)" if p.flavor == "ad" else \
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
    name = p.name_attr()
    attrs = ["objectClass", "cn", name, "member", "uniqueMember", "userAccountControl"] + \
        (["objectSid"] if p.flavor == "ad" else [])
    for group in groups:
        group_target = f"{target} ({group})"
        if "=" in group:
            dns = [group] if d.read(group, ["1.1"]) is not None else []
        else:
            escaped = escape_filter_chars(group)
            wanted = f"(cn={escaped})" if p.flavor != "ad" else f"(|(cn={escaped})(sAMAccountName={escaped}))"
            dns = [dn for dn, _ in d.search(p.base_dn, f"(&{group_filter}{wanted})", ["1.1"])]
        if len(dns) != 1:
            evidence = {**base, "group": group, "pages": d.pages, "found": dns[:_LISTED]}
            if not dns and not explicit:
                yield Result.skipped(group_target, Message("Group %(group)s is not in the directory at %(target)s "
                                                           "(under %(base)s).", group=group, target=target,
                                                           base=p.base_dn), **evidence)
            elif not dns:
                yield Result.errored(group_target, Message("Group %(group)s was not found in the directory at "
                                                           "%(target)s (under %(base)s).", group=group, target=target,
                                                           base=p.base_dn), **evidence)
            else:
                yield Result.errored(group_target, Message("%(count)d groups are called %(group)s at %(target)s; give "
                                                           "the group's DN.", count=len(dns), group=group,
                                                           target=target), **evidence)
            continue
        members = _resolve(d, dns[0], attrs, name)
        if isinstance(p.approved, dict):
            lists = {k.lower(): v for k, v in p.approved.items()}
            approved_list = lists.get(group.lower(), [])
        else:
            approved_list = list(p.approved or [])
        approved = {a.lower() for a in approved_list}
        present = {m.name.lower() for m in members} | {m.dn.lower() for m in members}
        unapproved = [m for m in members if m.name.lower() not in approved and m.dn.lower() not in approved]
        gone = [a for a in approved_list if a.lower() not in present]
        evidence = {**base, "group": group, "group_dn": dns[0], "pages": d.pages,
                    "members_total": len(members),
                    "members": [{"account": m.name, "dn": m.dn, "enabled": m.enabled, "via": m.via}
                                for m in members][:_LISTED],
                    "unapproved": [m.name for m in unapproved][:_LISTED], "approved_not_member": gone[:_LISTED]}
        if unapproved:
            yield Result.failed(group_target, Message("%(count)d members of %(group)s at %(target)s were not "
                                                      "approved: %(accounts)s.", count=len(unapproved), group=group,
                                                      target=target, accounts=_names([m.name for m in unapproved])),
                                **evidence)
        elif gone:
            yield Result.passed(group_target, Message("All %(count)d members of %(group)s at %(target)s are approved; "
                                                      "approved but no longer members: %(accounts)s.",
                                                      count=len(members), group=group, target=target,
                                                      accounts=_names(gone)), **evidence)
        else:
            yield Result.passed(group_target, Message("All %(count)d members of %(group)s at %(target)s are approved.",
                                                      count=len(members), group=group, target=target), **evidence)


def _resolve(d: _Directory, group_dn: str, attrs: list[str], name: str) -> list[_Member]:
    """The accounts in a group, nested groups resolved, each with the groups it came through."""
    members: dict[str, _Member] = {}
    seen = {group_dn.lower()}
    queue: list[tuple[str, list[str]]] = [(group_dn, [])]
    reads = 0
    while queue:
        dn, path = queue.pop(0)
        entry = d.read(dn, attrs)
        reads += 1
        if reads > _MAX_GROUP_ENTRIES:
            raise _Failure(Message("Group %(group)s at %(target)s has more than %(limit)d nested entries; the check "
                                   "stopped.", group=group_dn, target=d.target, limit=_MAX_GROUP_ENTRIES))
        if entry is None:  # a member that does not exist (or may not be read): keep it, it is a member
            members.setdefault(dn.lower(), _Member(dn, dn, None, path))
            continue
        classes = {c.lower() for c in entry.get("objectclass", [])}
        if dn.lower() != group_dn.lower() and not classes & _GROUP_CLASSES:
            control = _int(next(iter(entry.get("useraccountcontrol") or []), None))
            shown = (entry.get(name.lower()) or entry.get("cn") or [dn])[0]
            enabled = True if control is None else not control & _ACCOUNTDISABLE
            members.setdefault(dn.lower(), _Member(dn, shown, enabled, path))
            continue
        label = (entry.get("cn") or [dn])[0]
        within = [*path, label] if dn.lower() != group_dn.lower() else path
        rid = _rid(next(iter(entry.get("objectsid") or []), None))
        if rid is not None:
            # AD lists no member whose primary group this is (primaryGroupID): a way to hide an administrator
            for account_dn, account in d.search(d.params.base_dn, f"(primaryGroupID={rid})",
                                                [name, "cn", "userAccountControl"]):
                control = _int(next(iter(account.get("useraccountcontrol") or []), None))
                shown = (account.get(name.lower()) or account.get("cn") or [account_dn])[0]
                members.setdefault(account_dn.lower(), _Member(
                    account_dn, shown, True if control is None else not control & _ACCOUNTDISABLE,
                    [*within, "(primary group)"]))
        for member in entry.get("member", []) + entry.get("uniquemember", []):
            member_dn = member.split("#", 1)[0] if "uniquemember" in entry and member in entry["uniquemember"] \
                else member  # uniqueMember may carry '#'uid
            if member_dn.lower() in seen:
                continue
            seen.add(member_dn.lower())
            queue.append((member_dn, within))
    return sorted(members.values(), key=lambda m: m.name.lower())


def _rid(sid_hex: str | None) -> int | None:
    """The relative id (the last sub-authority) of a binary SID given as hex, e.g. 512 for Domain Admins."""
    try:
        sid = bytes.fromhex(sid_hex or "")
    except ValueError:
        return None
    if len(sid) < 12 or len(sid) != 8 + 4 * sid[1]:
        return None
    return int.from_bytes(sid[-4:], "little") if sid[1] else None


def _policy(d: _Directory, target: str, base: dict[str, Any]) -> Iterator[Result]:
    p = d.params
    where = p.policy_dn or p.base_dn
    if p.flavor == "ad":
        names = {"length": "minPwdLength", "history": "pwdHistoryLength", "lockout": "lockoutThreshold",
                 "max_age": "maxPwdAge"}
    else:
        names = {"length": "pwdMinLength", "history": "pwdInHistory", "lockout": "pwdMaxFailure",
                 "max_age": "pwdMaxAge", "quality": "pwdCheckQuality"}
    entry = d.read(where, list(names.values()))
    if entry is None:
        yield Result.errored(target, Message("The password policy entry %(dn)s does not exist at %(target)s (or the "
                                             "bind account may not read it).", dn=where, target=target),
                             **base, policy_dn=where)
        return
    raw = {key: next(iter(entry.get(attr.lower()) or []), None) for key, attr in names.items()}
    if all(raw[k] is None for k in ("length", "history", "lockout")):
        yield Result.errored(target, Message("%(dn)s at %(target)s holds no password policy attributes (%(names)s); "
                                             "is it the right entry, and may the bind account read them?", dn=where,
                                             target=target, names=", ".join(names.values())),
                             **base, policy_dn=where)
        return
    length, history, lockout = (_int(raw[k]) or 0 for k in ("length", "history", "lockout"))
    age_raw = _int(raw["max_age"]) or 0
    if "quality" in names:  # ppolicy: seconds, 0 = never
        max_age = timedelta(seconds=age_raw) if age_raw > 0 else None
    else:  # AD: negative 100 ns intervals; 0 and the smallest value mean never
        max_age = timedelta(seconds=-age_raw / 10_000_000) if age_raw < 0 and age_raw != -(2**63) else None
    problems: list[Message | str] = []
    quality = _int(raw.get("quality")) if "quality" in names else None
    if "quality" in names and not quality and length:
        problems.append(Message("pwdCheckQuality is 0, so the minimum length of %(length)d is not enforced",
                                length=length))
    if length < p.min_password_length:
        problems.append(Message("minimum length %(value)d, below %(minimum)d", value=length,
                                minimum=p.min_password_length))
    if history < p.min_password_history:
        problems.append(Message("password history %(value)d, below %(minimum)d", value=history,
                                minimum=p.min_password_history))
    if p.max_lockout_threshold is not None:
        if lockout == 0:
            problems.append(Message("accounts are never locked after failed logons"))
        elif lockout > p.max_lockout_threshold:
            problems.append(Message("accounts lock after %(value)d failed logons, more than %(maximum)d",
                                    value=lockout, maximum=p.max_lockout_threshold))
    if p.max_password_age is not None:
        if max_age is None:
            problems.append(Message("passwords never expire"))
        elif max_age > p.max_password_age:
            problems.append(Message("passwords expire after %(value)s, later than %(maximum)s",
                                    value=format_duration(max_age), maximum=format_duration(p.max_password_age)))
    evidence = {**base, "policy_dn": where,
                "policy": {names["length"]: length, names["history"]: history, names["lockout"]: lockout,
                           names["max_age"]: raw["max_age"],
                           "max_age_days": round(max_age.total_seconds() / 86400, 2) if max_age else None,
                           **({"pwdCheckQuality": quality or 0} if "quality" in names else {})},
                "minimums": {"min_password_length": p.min_password_length,
                             "min_password_history": p.min_password_history,
                             "max_lockout_threshold": p.max_lockout_threshold,
                             "max_password_age_days": round(p.max_password_age.total_seconds() / 86400, 2)
                             if p.max_password_age else None},
                "problems": [str(m) for m in problems]}
    if problems:
        yield Result.failed(target, Message("The password policy at %(target)s (%(dn)s) falls short: %(problems)s.",
                                            target=target, dn=where, problems=problems), **evidence)
    else:
        yield Result.passed(target, Message("The password policy at %(target)s (%(dn)s) meets the minimums: length "
                                            "%(length)d, history %(history)d, lockout: %(lockout)s.",
                                            target=target, dn=where, length=length, history=history,
                                            lockout=Message("after %(count)d failed logons", count=lockout) if lockout
                                            else Message("none")), **evidence)
