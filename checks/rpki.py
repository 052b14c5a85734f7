"""`rpki`: the addresses of a domain's web, mail and name servers are covered by a valid ROA.

Secure state (Forum Standaardisatie "pas toe of leg uit": RPKI, since 2019; internet.nl "Route
authorisation (RPKI)"): the IP prefixes the servers' addresses lie in have a Route Origin
Authorisation (ROA), so that routers doing route origin validation (RFC 6811) reject a hijack.

The monitor does not validate the RPKI itself: it reads the **validated ROA payloads (VRPs)** that
the municipality's own relying-party software exports, from a file or an `http(s)://` URL (`roas`):

- Routinator `json` / `jsonext` (`routinator vrps -f json`, or `/json` of its HTTP server):
  `{"metadata": {"generated": 1700000000, "generatedTime": "..."}, "roas": [{"asn": "AS1234",
  "prefix": "192.0.2.0/24", "maxLength": 24, "ta": "ripe"}]}`;
- rpki-client `json` (`/var/db/rpki-client/json`): `{"metadata": {"buildtime": "..."}, "roas":
  [{"asn": 1234, "prefix": ..., "maxLength": ..., "ta": ..., "expires": 1700000000}]}`; a VRP whose
  `expires` has passed is ignored;
- Fort `--output.roa` (CSV: `ASN,Prefix,Max prefix length`), or Fort's JSON (`"roas"` as above);
  Routinator's `csv` format is read too.

**Stale data**: the export's own time (`metadata.generated`/`generatedTime`, rpki-client's
`buildtime`), else the file's modification time (for a URL, `Last-Modified`) must be younger than
`max_age` (default 24h); older data, data whose age cannot be told, an unreadable or empty export
is an `error`, never a pass.

What it proves, per address (A and AAAA) of the web host (`web_host`, default the domain; `domain` may
be a URL, whose host is taken), each MX host and each name server of the domain's zone:

- `covered`: at least one VRP's prefix contains the address (not by AS 0 only). Which AS actually
  announces the address, and with which prefix length, is only known from BGP, which the monitor
  does not see; so without `origin_asn` the check proves that a ROA exists (internet.nl "RPKI
  exists"), not that the announcement is RPKI-valid (internet.nl "RPKI valid").
- With `origin_asn` (the AS that should announce the addresses, e.g. your hosting provider's): `valid`
  when a covering VRP names that AS; `invalid` when VRPs cover the address but none for that AS
  (routers doing origin validation would drop the route). `maxLength` cannot be judged without the
  announced prefix.
- An address covered only by AS 0 VRPs (RFC 6483: must not be routed) is `invalid`.

Verdicts per service (`services`: `web`, `mail`, `ns`; one result each, evidence `service` and per-address
states):
`pass` when every address is covered (or valid); `fail` when one is not covered (`not-found`) or
`invalid`; `skipped` when the service has no addresses (no MX, null MX); `error` for DNS failures and for
a missing, unreadable or stale ROA export.

Example::

    id: NET-RPKI
    title: Our servers' addresses are covered by RPKI route origin authorisations
    theme: technological
    references: {forum-standaardisatie: rpki, iso27002: "5.14", bio2: "5.14.01"}
    severity: medium
    checks:
      - plugin: rpki
        params: {roas: /var/lib/routinator/vrps.json, max_age: 6h}
        targets: [gemeente.nl, gemeente-app.nl]
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import Field, field_validator

from compliance.api import Check, Context, Duration, Message, Params, Result, Seconds, format_duration
from compliance.checks._net import (
    FetchError,
    budget,
    ca_file_of,
    fetch,
    load_libraries,
    nameserver_of,
    resolver,
    verifying_context,
)
from compliance.checks.ipv6 import Names, Service, domain_of
from compliance.checks.mail_auth import DnsProblem, MailAuthParams

_CAP = 10
#: The largest export read over HTTP (the full global VRP set in JSON is some 60 MB today).
_MAX_DOWNLOAD = 512 * 1024 * 1024
_ALL_PARTS: tuple[Service, ...] = ("web", "mail", "ns")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _asn(value: Any) -> int:
    """An AS number from 1234, '1234' or 'AS1234'."""
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not an AS number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().upper().removeprefix("AS").isdigit():
        number = int(value.strip().upper().removeprefix("AS"))
    else:
        raise ValueError(f"'{value}' is not an AS number (write 1234 or AS1234)")
    if not 0 <= number <= 4294967295:
        raise ValueError(f"AS number {number} is out of range")
    return number


class RpkiParams(Params):
    domain: str
    """The domain, e.g. gemeente.nl: the addresses of its web host, MX hosts and name servers are checked."""
    roas: str
    """The validated ROA payloads your validator exports: a file path or http(s) URL (Routinator, rpki-client, Fort)."""
    max_age: Duration = timedelta(hours=24)
    """The oldest the export may be (its own generation time, else the file's modification time)."""
    services: list[Service] = Field(default_factory=lambda: list(_ALL_PARTS), min_length=1)
    """Which servers to check: web, mail, ns."""
    web_host: str | None = None
    """The web host; default the domain itself."""
    origin_asn: int | None = None
    """The AS that should announce the addresses (1234 or AS1234): then covering ROAs of other ASes are invalid."""
    nameserver: str | None = None
    """DNS resolver as host or host:port; default the configuration's, else the system's."""
    timeout: Seconds | None = None
    ca_file: str | None = None
    """PEM bundle trusted besides the system store, for an https:// `roas` URL."""

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return domain_of(value)

    @field_validator("web_host")
    @classmethod
    def _web_host(cls, value: str | None) -> str | None:
        return None if value is None else MailAuthParams._domain(value)

    @field_validator("origin_asn", mode="before")
    @classmethod
    def _origin(cls, value: Any) -> int | None:
        return None if value is None else _asn(value)

    @field_validator("roas")
    @classmethod
    def _roas(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("give the file or URL of the validated ROA export")
        if "://" in value and not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}': a URL must be http:// or https://")
        return value

    @field_validator("max_age")
    @classmethod
    def _max_age(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("max_age must be positive, e.g. 24h")
        return value

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[Service]) -> list[Service]:
        return list(dict.fromkeys(value))


class RoaDataError(Exception):
    """The ROA export cannot be used: missing, unreadable, malformed, empty or stale."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass
class VrpSet:
    """Validated ROA payloads indexed by (IP version, prefix length) -> network as int -> [(asn, maxLength)]."""

    generated: datetime | None
    age_source: str
    count: int = 0
    index: dict[tuple[int, int], dict[int, list[tuple[int, int, str]]]] = field(default_factory=dict)

    def add(self, asn: int, prefix: ipaddress.IPv4Network | ipaddress.IPv6Network, max_length: int) -> None:
        bucket = self.index.setdefault((prefix.version, prefix.prefixlen), {})
        bucket.setdefault(int(prefix.network_address), []).append((asn, max_length, str(prefix)))
        self.count += 1

    def covering(self, address: IPAddress) -> list[tuple[int, int, str]]:
        """Every VRP whose prefix contains the address: (asn, maxLength, prefix)."""
        bits = 32 if address.version == 4 else 128
        value = int(address)
        found: list[tuple[int, int, str]] = []
        for length in range(bits + 1):
            bucket = self.index.get((address.version, length))
            if bucket:
                mask = ((1 << length) - 1) << (bits - length) if length else 0
                found.extend(bucket.get(value & mask, ()))
        return found


def parse_vrps(data: bytes, fallback_time: datetime | None, fallback_source: str, now: datetime) -> VrpSet:
    """Read a Routinator/rpki-client/Fort JSON or CSV export. Raises RoaDataError when it is not one."""
    text = data.decode("utf-8-sig", "replace").lstrip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RoaDataError(Message("the ROA export is not valid JSON (%(reason)s)", reason=str(exc))) from None
        if not isinstance(document, dict) or not isinstance(document.get("roas"), list):
            raise RoaDataError(Message("the ROA export has no \"roas\" list (not a Routinator, rpki-client or Fort "
                                       "export)"))
        generated, source = _generation_time(document.get("metadata"))
        vrps = VrpSet(generated or fallback_time, source if generated else fallback_source)
        rows: list[tuple[Any, Any, Any, Any]] = []
        for number, entry in enumerate(document["roas"], 1):
            if not isinstance(entry, dict):
                raise RoaDataError(Message("ROA %(number)d of the export is not an object", number=number))
            rows.append((entry.get("asn"), entry.get("prefix"), entry.get("maxLength"), entry.get("expires")))
    else:
        vrps = VrpSet(fallback_time, fallback_source)
        rows = _csv_rows(text)
    epoch_now = now.timestamp()
    for number, (asn, prefix, max_length, expires) in enumerate(rows, 1):
        try:
            network = ipaddress.ip_network(str(prefix).strip(), strict=True)
            max_len = int(max_length) if max_length not in (None, "") else network.prefixlen
            if not network.prefixlen <= max_len <= network.max_prefixlen:
                raise ValueError(f"maxLength {max_len} does not fit {network}")
            vrp_asn = _asn(asn)
        except (ValueError, TypeError) as exc:
            raise RoaDataError(Message("ROA %(number)d of the export is malformed: %(reason)s", number=number,
                                       reason=str(exc))) from None
        if isinstance(expires, int | float) and not isinstance(expires, bool) and expires < epoch_now:
            continue  # rpki-client: this VRP is no longer valid
        vrps.add(vrp_asn, network, max_len)
    if vrps.count == 0:
        raise RoaDataError(Message("the ROA export contains no (unexpired) ROAs (is the validator running?)"))
    return vrps


def _csv_rows(text: str) -> list[tuple[Any, Any, Any, Any]]:
    """Fort (`ASN,Prefix,Max prefix length`) and Routinator (`ASN,IP Prefix,Max Length,Trust Anchor`) CSV."""
    reader = csv.reader(io.StringIO(text))
    header = [cell.strip().lower() for cell in next(reader, [])]
    try:
        asn_at = next(i for i, h in enumerate(header) if h in ("asn", "as", "origin"))
        prefix_at = next(i for i, h in enumerate(header) if "prefix" in h and "max" not in h)
        max_at = next(i for i, h in enumerate(header) if "max" in h)
    except StopIteration:
        raise RoaDataError(Message("the ROA export is neither JSON with \"roas\" nor CSV with ASN, prefix and max "
                                   "length columns")) from None
    rows = []
    for line in reader:
        if not line or not any(cell.strip() for cell in line):
            continue
        if len(line) <= max(asn_at, prefix_at, max_at):
            raise RoaDataError(Message("line %(number)d of the ROA export has too few columns",
                                       number=reader.line_num))
        rows.append((line[asn_at].strip(), line[prefix_at], line[max_at].strip(), None))
    return rows


def _generation_time(metadata: Any) -> tuple[datetime | None, str]:
    """The export's own generation time: Routinator `generated`/`generatedTime`, rpki-client `buildtime`."""
    if not isinstance(metadata, dict):
        return None, ""
    for key in ("generatedTime", "buildtime"):
        value = metadata.get(key)
        if isinstance(value, str):
            try:
                stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)), f"metadata.{key}"
    value = metadata.get("generated")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC), "metadata.generated"
    return None, ""


_CACHE: dict[tuple[str, float, int], VrpSet] = {}
_CACHE_LOCK = threading.Lock()


def load_vrps(source: str, *, timeout: float, ca_file: str | None, now: datetime) -> VrpSet:
    """The VRP set from a file (cached while its size and mtime stay the same) or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        context = verifying_context(ca_file) if source.startswith("https://") else None
        try:
            response = fetch(source, timeout=timeout, context=context, max_body=_MAX_DOWNLOAD)
        except FetchError as exc:
            raise RoaDataError(Message("cannot fetch the ROA export %(source)s: %(reason)s", source=source,
                                       reason=exc.message)) from None
        if response.status != 200:
            raise RoaDataError(Message("the ROA export %(source)s answers HTTP %(status)d", source=source,
                                       status=response.status))
        modified = None
        if last_modified := response.header("Last-Modified"):
            try:
                modified = parsedate_to_datetime(last_modified)
            except (TypeError, ValueError):
                modified = None
        return parse_vrps(response.body, modified, "Last-Modified", now)
    try:
        stat = os.stat(source)
        key = (source, stat.st_mtime, stat.st_size)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None:
            return cached
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise RoaDataError(Message("cannot read the ROA export %(source)s: %(reason)s", source=source,
                                   reason=str(exc.strerror or exc))) from None
    vrps = parse_vrps(data, datetime.fromtimestamp(stat.st_mtime, UTC), "file modification time", now)
    with _CACHE_LOCK:
        _CACHE.clear()  # one export at a time is plenty
        _CACHE[key] = vrps
    return vrps


def judge(address: IPAddress, vrps: VrpSet, origin_asn: int | None) -> tuple[str, list[str]]:
    """The state of one address: covered / valid / invalid / not-found, and the covering VRPs shown."""
    covering = vrps.covering(address)
    shown = [f"AS{asn} {prefix} max {max_len}" for asn, max_len, prefix in covering][:_CAP]
    if not covering:
        return "not-found", shown
    if origin_asn is not None:
        return ("valid" if any(asn == origin_asn for asn, _, _ in covering) else "invalid"), shown
    if all(asn == 0 for asn, _, _ in covering):
        return "invalid", shown
    return "covered", shown


class Rpki(Check):
    """The addresses of a domain's web, mail and name servers are covered by ROAs (your validator's export)."""

    name = "rpki"
    Params = RpkiParams
    target_param = "domain"

    def run(self, params: RpkiParams, ctx: Context) -> Iterator[Result]:
        load_libraries("dns", "http")
        domain = params.domain
        now = ctx.now()
        source = params.roas if "://" in params.roas else ctx.resolve(params.roas)
        timeout = budget(params.timeout, ctx)
        try:
            vrps = load_vrps(source, timeout=timeout, ca_file=ca_file_of(params.ca_file, ctx), now=now)
            if vrps.generated is None:
                raise RoaDataError(Message("the ROA export %(source)s does not say when it was made (no metadata, no "
                                           "Last-Modified)", source=params.roas))
            age = now - vrps.generated
            if age > params.max_age:
                raise RoaDataError(Message("the ROA export %(source)s is stale: made %(age)s ago (%(basis)s), more "
                                           "than max_age %(max_age)s (is the validator running?)",
                                           source=params.roas, age=format_duration(_minutes(age)),
                                           basis=_basis(vrps.age_source), max_age=format_duration(params.max_age)))
        except RoaDataError as exc:
            yield Result.errored(domain, Message("Could not check RPKI of %(domain)s: %(reason)s.", domain=domain,
                                                 reason=exc.message), roas=params.roas)
            return
        export = {"roas": params.roas, "vrps": vrps.count, "generated": vrps.generated.isoformat(timespec="seconds"),
                  "age_basis": vrps.age_source}
        names = Names(resolver(nameserver_of(params.nameserver, ctx), timeout))
        try:
            if not names.exists(domain):
                yield Result.errored(domain, Message("Could not check RPKI of %(domain)s: the domain does not exist "
                                                     "in DNS (NXDOMAIN).", domain=domain))
                return
        except DnsProblem as exc:
            yield Result.errored(domain, Message("Could not check RPKI of %(domain)s: %(reason)s.", domain=domain,
                                                 reason=exc.message))
            return
        for part in params.services:
            try:
                yield self._part(part, domain, params, names, vrps, export)
            except DnsProblem as exc:
                yield Result.errored(domain, Message("Could not check RPKI of the %(part)s of %(domain)s: "
                                                     "%(reason)s.", part=_PART_NAMES[part], domain=domain,
                                                     reason=exc.message), service=part)

    @staticmethod
    def _part(part: Service, domain: str, params: RpkiParams, names: Names, vrps: VrpSet,
              export: dict[str, Any]) -> Result:
        if part == "web":
            hosts = [params.web_host or domain]
        elif part == "mail":
            hosts, null_mx = names.mx_hosts(domain)
            if not hosts:
                why = Message("accepts no mail (null MX)") if null_mx else Message("has no MX records")
                return Result.skipped(domain, Message("RPKI of the mail servers of %(domain)s not tested: the domain "
                                                      "%(why)s.", domain=domain, why=why), service=part)
        else:
            hosts = names.ns_hosts(names.zone_of(domain))
        states: dict[str, dict[str, Any]] = {}
        for host in hosts[:_CAP]:
            for rdtype in ("A", "AAAA"):
                for text in names.addresses(host, rdtype):
                    state, shown = judge(ipaddress.ip_address(text), vrps, params.origin_asn)
                    states[f"{host} {text}"] = {"state": state, "roas": shown}
        evidence: dict[str, Any] = {"service": part, "hosts": hosts[:_CAP],
                                    "addresses": dict(list(states.items())[:20]), "origin_asn": params.origin_asn,
                                    **export}
        kind = _PART_NAMES[part]
        if not states:
            return Result.skipped(domain, Message("RPKI of the %(part)s of %(domain)s not tested: %(hosts)s "
                                                  "have no IP addresses.", part=kind, domain=domain,
                                                  hosts=", ".join(hosts[:_CAP]) or "-"), **evidence)
        invalid = [a for a, s in states.items() if s["state"] == "invalid"]
        missing = [a for a, s in states.items() if s["state"] == "not-found"]
        if invalid or missing:
            problems: list[Message | str] = []
            if invalid:
                problems.append(Message("RPKI-invalid (ROAs for other ASes or AS 0 only): %(addresses)s",
                                        addresses=_joined(invalid)))
            if missing:
                problems.append(Message("not covered by any ROA: %(addresses)s", addresses=_joined(missing)))
            return Result.failed(domain, Message("RPKI of the %(part)s of %(domain)s: %(problems)s.",
                                                 part=kind, domain=domain, problems=problems), **evidence)
        if params.origin_asn is not None:
            return Result.passed(domain, Message("Every address of the %(part)s of %(domain)s is RPKI-valid "
                                                 "for AS%(asn)d (%(addresses)s).", part=kind, domain=domain,
                                                 asn=params.origin_asn, addresses=_joined(list(states))), **evidence)
        return Result.passed(domain, Message("Every address of the %(part)s of %(domain)s is covered by a ROA "
                                             "(%(addresses)s); the announcing AS is not checked.", part=kind,
                                             domain=domain, addresses=_joined(list(states))), **evidence)


def _basis(source: str) -> Message | str:
    """Where the export's age comes from, for a message: the file time in words, metadata fields as named."""
    return Message("file modification time") if source == "file modification time" else source


def _minutes(age: timedelta) -> timedelta:
    """An age shown to the minute (seconds of a stale export are noise)."""
    return age if age < timedelta(minutes=1) else timedelta(minutes=int(age.total_seconds() // 60))


def _joined(items: list[str]) -> str:
    shown = ", ".join(items[:_CAP])
    return shown + (f" (+{len(items) - _CAP})" if len(items) > _CAP else "")


_PART_NAMES: dict[str, Message] = {"web": Message("web servers"), "mail": Message("mail servers"),
                                  "ns": Message("name servers")}
