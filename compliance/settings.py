"""Typed configuration from `compliance.yaml` and the environment.

Where the file is: `--config PATH`, else `COMPLIANCE_CONFIG`, else `compliance.yaml` in the working
directory or the nearest folder above it, the way git finds `.git`. The commands that use the
configuration refuse to run without one (`NoConfig`), unless `COMPLIANCE_DATABASE_URL` names the database;
then the defaults apply and relative paths count from the working directory. Relative paths in the file
count from the file's own folder. Secrets (passwords, tokens) are read only from environment
variables, never from the file.

Environment variables that override the file:

- `COMPLIANCE_DATABASE_URL`: `database.url`
- `COMPLIANCE_SMTP_HOST`, `COMPLIANCE_SMTP_PORT`, `COMPLIANCE_SMTP_STARTTLS` (true/false), `COMPLIANCE_SMTP_USER`:
  `smtp.*`; `COMPLIANCE_DIGEST_FROM`, `COMPLIANCE_DIGEST_TO` (comma-separated): `digest.from`, `digest.to`;
  `COMPLIANCE_SLACK_CHANNEL`: `slack.channel`

Secrets, only from the environment (a secret in the file is an error): `COMPLIANCE_SMTP_PASSWORD`,
`COMPLIANCE_SLACK_TOKEN`, `COMPLIANCE_SLACK_WEBHOOK_URL`, `COMPLIANCE_AUDIT_KEY` (the audit trail's key,
or a 0600 file named by `incidents.audit_key_file`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from compliance.cron import schedule_error
from compliance.durations import Duration, Seconds
from compliance.errors import ComplianceError, Problem, ValidationFailed
from compliance.settings_view import (
    CONFIG_FILENAME,
    ENVIRONMENT_SETTINGS,
    ORG_CODE_PATTERN,
    SECRET_SETTINGS,
    NoConfig,
    ScheduleMethods,
    SettingsMethods,
    SlackMethods,
    SmtpMethods,
    find_config,
)

__all__ = ["CONFIG_FILENAME", "ENVIRONMENT_SETTINGS", "ORG_CODE_PATTERN", "SECRET_SETTINGS", "NoConfig", "Settings",
           "find_config", "load_settings"]

DEFAULT_DATABASE_URL = "sqlite:///compliance.db"


TargetItem = str | dict[str, Any]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class DatabaseSettings(Section):
    url: str = DEFAULT_DATABASE_URL


class ControlsSettings(Section):
    paths: list[str] = Field(default_factory=lambda: ["controls"])
    #: frameworks whose controls from the shipped catalog are loaded: bio2, avg, forum-standaardisatie
    bundled: list[Literal["bio2", "avg", "forum-standaardisatie"]] = Field(default_factory=list)


class EvidenceSettings(Section):
    #: folder where `compliance attest --copy` keeps copies of evidence files
    store: str = "evidence"


class ScanSettings(Section):
    concurrency: int = Field(32, ge=1, le=4096)
    timeout: Seconds = 30.0


class ZonesSettings(Section):
    """Checks in other network zones, run by `compliance worker --zone NAME` through a message broker.

    The broker's URL comes only from the environment (COMPLIANCE_BROKER_URL): it holds a password.
    """

    #: target group -> zone whose workers can reach its targets (a check or control may name its own zone)
    groups: dict[str, Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]] = Field(default_factory=dict)
    #: how long a scan waits for a zone that sends no answer at all, on top of the longest check timeout;
    #: then that zone's unanswered checks become `error` results ("no answer from zone ... within N s")
    patience: Seconds = 60.0
    #: how long a scan waits for the workers of a zone to answer "who is there?" before it starts
    discovery_timeout: Seconds = 1.0
    #: checks of one zone per message (fewer messages cost the scan, broker and workers less; 1 gives an
    #: answer per check as soon as it is done)
    batch: int = Field(8, ge=1, le=64)


class NetworkSettings(Section):
    nameserver: str | None = None
    timeout: Seconds = 10.0
    ca_file: str | None = None


class ContactSettings(Section):
    """A person the authority can reach about a breach notification (AP form, section 1)."""

    name: str = ""
    function: str = ""
    phone: str = ""
    email: str = ""


class IncidentsSettings(Section):
    """The breach register: the id prefix and what the AP notification form asks about the organisation."""

    id_prefix: str = Field("DL", pattern=r"^[A-Z][A-Z0-9]{0,7}$")
    #: Above this many people an assessment's band rises one step (ENISA's number of people; issue 14).
    large_scale: int = Field(10_000, ge=1)
    #: The file with the audit trail's key (mode 0600; `compliance init` writes one); COMPLIANCE_AUDIT_KEY wins.
    audit_key_file: str | None = None
    organisation: str = ""
    reporter: ContactSettings = Field(default_factory=ContactSettings)
    contact: ContactSettings = Field(default_factory=ContactSettings)


# -- scheduler, digest and notifications (`compliance schedule run`, `compliance digest send`) --------


def _schedule_spec(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    problem = schedule_error(value)
    if problem:
        raise ValueError(problem)
    return value


def _address_list(value: Any) -> Any:
    """A list of addresses; one string may hold several, separated by commas (as in the environment)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _addresses(value: list[str]) -> list[str]:
    for address in value:
        if "@" not in address or any(c.isspace() for c in address.strip()):
            raise ValueError(f"'{address}' is not an e-mail address")
    return value


#: A cron expression (five fields, in the configured time zone) or "every <duration>" (e.g. "every 2s").
ScheduleSpec = Annotated[str, BeforeValidator(_schedule_spec)]
Addresses = Annotated[list[str], BeforeValidator(_address_list)]


class ScheduleSettings(Section, ScheduleMethods):
    """The scheduler daemon: when controls without a schedule of their own run, catching up, alerts."""

    #: cron or "every <duration>" for controls without a `schedule`; null: only those with one are scanned
    default: ScheduleSpec | None = "0 2 * * *"
    #: a run missed while the daemon was down still runs (once) when the daemon is back within this time
    misfire_grace: Seconds = 12 * 3600.0
    #: how often the daemon looks at the breach register's deadlines and retries failed deliveries
    alert_interval: Seconds = 300.0
    #: the leader's lease on SQLite (renewed every third of it); a standby takes over once it ran out
    lease: Seconds = 30.0
    #: on SIGTERM/SIGINT a scan in flight may finish for this long; then it is abandoned (marked interrupted)
    stop_grace: Duration = timedelta(seconds=10)
    #: a failed delivery is retried after this, doubling each time, up to max_attempts attempts in all
    retry_backoff: Seconds = 300.0
    max_attempts: int = Field(6, ge=1, le=50)

class DigestSettings(Section):
    """The weekly digest for management, by e-mail and/or Slack."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    cron: ScheduleSpec = "0 8 * * mon"
    sender: str | None = Field(None, alias="from")
    to: Addresses = Field(default_factory=list)
    lang: Literal["nl", "en"] = "nl"
    #: where the full reports are published; `{period}` is replaced by the week, e.g. 2026-W09
    report_url: str | None = None

    _check_to = field_validator("to")(_addresses)


class SmtpSettings(Section, SmtpMethods):
    """The mail server. The password comes only from COMPLIANCE_SMTP_PASSWORD."""

    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)  # default 587, or 465 with tls
    starttls: bool = True
    tls: bool = False  # TLS from the first byte (port 465); starttls is then not used
    user: str | None = None
    password: SecretStr | None = Field(None, exclude=True, repr=False)
    ca_file: str | None = None  # a private CA for the mail server's certificate
    timeout: Seconds = 30.0

class SlackSettings(Section, SlackMethods):
    """Slack: a bot token (chat.postMessage to `channel`) or an incoming webhook (its own channel)."""

    mode: Literal["token", "webhook"] | None = None  # default: whichever secret is set
    channel: str | None = None
    api_url: str = "https://slack.com/api/"
    token: SecretStr | None = Field(None, exclude=True, repr=False)
    webhook_url: SecretStr | None = Field(None, exclude=True, repr=False)
    timeout: Seconds = 30.0

class AlertsSettings(Section):
    """Breach deadline alerts to the privacy officer."""

    email: Addresses = Field(default_factory=list)
    #: the channel for alerts with a bot token; with a webhook any value switches Slack alerts on
    slack_channel: str | None = None
    lang: Literal["nl", "en"] = "nl"

    _check_email = field_validator("email")(_addresses)


class HistorySettings(Section):
    """How long the history is kept (`compliance db prune`, run daily by the scheduler).

    Raw results older than `raw_days` days are rolled up per day, control, check and target and then
    deleted; the report and the ENSIA export read the rollups for those days, with the same figures.
    `keep` is how many days the daily rollups are kept (None: forever); it must be more than `raw_days`.
    """

    #: days of raw results kept (the day of the prune not counted); None keeps every raw result
    raw_days: int | None = Field(90, ge=1)
    #: days of daily rollups kept; None keeps them forever (the trend and the ENSIA years stay exact)
    keep: int | None = Field(None, ge=1)
    #: when the scheduler daemon prunes (cron in the configured time zone); null: only `compliance db prune`
    cron: ScheduleSpec | None = "30 3 * * *"

    @model_validator(mode="after")
    def _keep_covers_raw(self) -> HistorySettings:
        if self.keep is not None and self.raw_days is not None and self.keep <= self.raw_days:
            raise ValueError(f"history.keep ({self.keep} days) is not longer than history.raw_days ({self.raw_days}): "
                             "rollups would be removed before or with the raw results they replace; raise keep "
                             "or leave it out (forever)")
        return self


# -- several organisations in one install (issue 20) ------------------------------------------------

OrgCode = Annotated[str, Field(pattern=ORG_CODE_PATTERN)]
#: An entry of `orgs:`: an organisation's code, or "*" for every organisation.
OrgGrant = Annotated[str, Field(pattern=r"^(\*|[a-z][a-z0-9-]{1,39})$")]


class AccessSettings(Section):
    """Who may act for which organisation: operating-system users and groups, each with the codes of
    the organisations it may see ("*": all). Without this section every user may act for every one.

    This keeps colleagues to their own municipality in the monitor's commands; it is not a security
    boundary against someone who can read the database files or the server directly.
    """

    users: dict[str, list[OrgGrant]] = Field(default_factory=dict)
    groups: dict[str, list[OrgGrant]] = Field(default_factory=dict)


class OrgSlackSettings(Section):
    """The organisation's own Slack channel; the token or webhook (from the environment) is shared."""

    channel: str | None = None


class OrganisationSettings(Section):
    """What differs for one organisation (`organisations: CODE:`); everything else in the file is shared.

    Each section named here replaces the keys it names in the shared section; `targets` adds groups (a
    group of the same name replaces the shared one); `controls.paths` are loaded after the shared paths,
    so the organisation's own controls come on top of the shared catalog (`override: true` changes one).
    """

    targets: dict[str, list[TargetItem]] = Field(default_factory=dict)
    controls: ControlsSettings = Field(default_factory=ControlsSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    incidents: IncidentsSettings = Field(default_factory=IncidentsSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    slack: OrgSlackSettings = Field(default_factory=OrgSlackSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    zones: ZonesSettings = Field(default_factory=ZonesSettings)


class Settings(Section, SettingsMethods):
    """The whole configuration. `base_dir` is the folder relative paths count from."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    controls: ControlsSettings = Field(default_factory=ControlsSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    incidents: IncidentsSettings = Field(default_factory=IncidentsSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    zones: ZonesSettings = Field(default_factory=ZonesSettings)
    targets: dict[str, list[TargetItem]] = Field(default_factory=dict)
    timezone: str = "Europe/Amsterdam"
    #: the organisation a command acts for when neither --org nor COMPLIANCE_ORG names one
    org: OrgCode | None = None
    #: who may act for which organisation (absent: everyone for every organisation)
    orgs: AccessSettings | None = None
    #: per organisation, what differs from the shared settings
    organisations: dict[OrgCode, OrganisationSettings] = Field(default_factory=dict)

    config_path: Path | None = Field(None, exclude=True)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    #: the organisation these settings are for (`for_org`); None: the shared settings
    org_code: str | None = Field(None, exclude=True)
    #: what the environment set, by section: it wins over an organisation's section too
    environment: dict[str, frozenset[str]] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_are_defaults(cls, data: Any) -> Any:
        # a section whose entries are all commented out reads as null: it means "the defaults"
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    @field_validator("targets", mode="wrap")
    @classmethod
    def _targets_keep_positions(cls, value: Any, handler: Any) -> Any:
        # a valid group read from the file is equal to its validated copy; keeping the located one lets
        # the catalog report a bad target at the line of compliance.yaml where it was written
        from compliance.located import LocDict

        groups = handler(value)
        return value if isinstance(value, LocDict) else groups

    @model_validator(mode="after")
    def _zones_name_known_groups(self) -> Settings:
        unknown = sorted(set(self.zones.groups) - set(self.targets))
        if unknown:
            raise ValueError(f"zones.groups names target group {', '.join(repr(g) for g in unknown)}, which is not "
                             "under `targets:`; correct the name or add the group")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'; use an IANA name such as 'Europe/Amsterdam'") from None
        return value


def load_settings(explicit: str | None = None, environ: Mapping[str, str] | None = None, *,
                  require: bool = False) -> Settings:
    """Load and validate the configuration; every problem in the file is reported at once.

    With `require`, a missing config file is an error (`NoConfig`) unless COMPLIANCE_DATABASE_URL
    names the database: without either, the monitor would not know which database is meant.
    The commands read it through `compliance.configuration.load_settings`, which keeps the result.
    """
    environ = os.environ if environ is None else environ
    path = find_config(explicit, environ)
    if path is None and require and not environ.get("COMPLIANCE_DATABASE_URL"):
        raise NoConfig()
    return validated(path, environ)


def validated(path: Path | None, environ: Mapping[str, str], text: str | None = None) -> Settings:
    """The configuration read from PATH (whose TEXT may have been read already) and the environment."""
    from compliance.located import LocDict, position_of
    from compliance.yamlfile import load_yaml

    data: dict[str, Any] = {}
    if path is not None:
        raw, problems = load_yaml(path, text)
        if problems:
            raise ValidationFailed(problems)
        if raw is None:
            raw = LocDict()
        if not isinstance(raw, dict):
            raise ValidationFailed([Problem(str(path), 1, 1, "the config file must be a mapping of sections",
                                            "see config/compliance.example.yaml")])
        data = raw
        secrets = [Problem(str(path), *position_of(data, (section, key), key=True),
                           f"{section}.{key} is a secret and does not belong in the config file",
                           f"remove it and set the environment variable {variable} instead")
                   for (section, key), variable in SECRET_SETTINGS.items()
                   if isinstance(data.get(section), dict) and key in data[section]]
        try:
            Settings.model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed(
                secrets + [_problem(str(path), data, err, position_of) for err in exc.errors()]
            ) from None
        if secrets:
            raise ValidationFailed(secrets)
    overrides: dict[str, Any] = {}
    environment: dict[str, set[str]] = {}
    for variable, (section, key) in ENVIRONMENT_SETTINGS.items():
        if environ.get(variable):
            environment.setdefault(section, set()).add("sender" if key == "from" else key)
    if environ.get("COMPLIANCE_DATABASE_URL"):
        overrides["database"] = {**dict(data.get("database") or {}), "url": environ["COMPLIANCE_DATABASE_URL"]}
    for variable, (section, key) in ENVIRONMENT_SETTINGS.items():
        if environ.get(variable):
            overrides.setdefault(section, dict(data.get(section) or {}))[key] = environ[variable]
    base_dir = path.resolve().parent if path is not None else Path.cwd()
    try:
        return Settings.model_validate({**data, **overrides, "config_path": path, "base_dir": base_dir,
                                        "environment": {k: frozenset(v) for k, v in environment.items()}})
    except ValidationError as exc:  # only the environment can still be wrong here
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ComplianceError(f"invalid setting from the environment: {where}: {message}") from None


# -- the validated configuration in the cache ---------------------------------------------------------


class NotCached(Exception):
    """A value the cache cannot hold as JSON: the configuration is then validated on every run."""


def encoded(value: Any) -> Any:
    """VALUE as JSON that `settings_view.from_cache` reads back as an equal view (secrets left out)."""
    from compliance.located import LocDict, LocList

    if isinstance(value, Section):
        return {"!model": type(value).__name__, "set": sorted(value.model_fields_set),
                "v": {name: encoded(getattr(value, name)) for name in type(value).model_fields
                      if not isinstance(getattr(value, name), SecretStr)}}
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, LocDict):
        return {"!locdict": {k: encoded(v) for k, v in value.items()}, "path": value.path, "pos": value.pos,
                "key_pos": value.key_pos, "value_pos": value.value_pos}
    if isinstance(value, LocList):
        return {"!loclist": [encoded(v) for v in value], "path": value.path, "pos": value.pos,
                "item_pos": value.item_pos}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"!dict": {k: encoded(v) for k, v in value.items()}}
    if isinstance(value, list):
        return [encoded(v) for v in value]
    if isinstance(value, Path):
        return {"!path": str(value)}
    if isinstance(value, timedelta):
        return {"!timedelta": value.total_seconds()}
    if isinstance(value, frozenset) and all(isinstance(v, str) for v in value):
        return {"!frozenset": sorted(value)}
    raise NotCached(type(value).__name__)


def _problem(path: str, data: Any, err: Any, position_of: Any) -> Problem:
    loc = tuple(err["loc"])
    if len(loc) == 3 and loc[0] == "organisations" and loc[-1] == "[key]":  # a code that is not valid
        line, col = position_of(data, loc[:-1], key=True)
        return Problem(path, line, col, f"organisations.{loc[1]}: '{loc[1]}' is not a valid organisation code",
                       "use 2 to 40 lower-case letters, digits and hyphens, starting with a letter (e.g. utrecht, "
                       "de-bilt), as in `compliance org list`")
    dotted = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        line, col = position_of(data, loc, key=True)
        return Problem(path, line, col, f"unknown setting '{dotted}'",
                       "remove it or check the spelling against config/compliance.example.yaml")
    line, col = position_of(data, loc)
    message = str(err["msg"]).removeprefix("Value error, ")
    return Problem(path, line, col, f"{dotted}: {message}", "")

