"""Typed configuration from `compliance.yaml` and the environment.

Where the file is: `--config PATH`, else `COMPLIANCE_CONFIG`, else `./compliance.yaml` when it exists;
without one the defaults apply (relative paths then count from the working directory). Relative paths
in the file count from the file's own folder. Secrets (passwords, tokens) are read only from environment
variables, never from the file.

Environment variables that override the file:

- `COMPLIANCE_DATABASE_URL`: `database.url`
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from compliance.api import Seconds
from compliance.errors import ComplianceError, Problem, ValidationFailed, display_path

CONFIG_FILENAME = "compliance.yaml"
DEFAULT_DATABASE_URL = "sqlite:///compliance.db"


TargetItem = str | dict[str, Any]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    organisation: str = ""
    reporter: ContactSettings = ContactSettings()
    contact: ContactSettings = ContactSettings()


class Settings(Section):
    """The whole configuration. `base_dir` is the folder relative paths count from."""

    database: DatabaseSettings = DatabaseSettings()
    controls: ControlsSettings = ControlsSettings()
    scan: ScanSettings = ScanSettings()
    network: NetworkSettings = NetworkSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    incidents: IncidentsSettings = IncidentsSettings()
    targets: dict[str, list[TargetItem]] = Field(default_factory=dict)
    timezone: str = "Europe/Amsterdam"

    config_path: Path | None = Field(None, exclude=True)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_are_defaults(cls, data: Any) -> Any:
        # a section whose entries are all commented out reads as null: it means "the defaults"
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'; use an IANA name such as 'Europe/Amsterdam'") from None
        return value

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A path from the configuration made absolute against the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute against base_dir."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix):]
            path, sep, query = rest.partition("?")
            if path and path != ":memory:":
                return prefix + str(self.resolve(path)) + sep + query
        return url

    @property
    def control_paths(self) -> list[Path]:
        return [self.resolve(p) for p in self.controls.paths]

    @property
    def zone(self) -> Any:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


def find_config(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file to use, or None for defaults. An explicitly named file must exist."""
    environ = os.environ if environ is None else environ
    named = explicit or environ.get("COMPLIANCE_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            source = "--config" if explicit else "COMPLIANCE_CONFIG"
            raise ComplianceError(
                f"config file {display_path(path)} (from {source}) does not exist; "
                "create one with `compliance init` or point to an existing file"
            )
        return path
    default = Path.cwd() / CONFIG_FILENAME
    return default if default.is_file() else None


def load_settings(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load and validate the configuration; every problem in the file is reported at once."""
    from compliance.yamlfile import LocDict, load_yaml, position_of

    environ = os.environ if environ is None else environ
    path = find_config(explicit, environ)
    data: dict[str, Any] = {}
    if path is not None:
        raw, problems = load_yaml(path)
        if problems:
            raise ValidationFailed(problems)
        if raw is None:
            raw = LocDict()
        if not isinstance(raw, dict):
            raise ValidationFailed([Problem(str(path), 1, 1, "the config file must be a mapping of sections",
                                            "see config/compliance.example.yaml")])
        data = raw
        try:
            Settings.model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed(
                [_problem(str(path), data, err, position_of) for err in exc.errors()]
            ) from None
    overrides: dict[str, Any] = {}
    if environ.get("COMPLIANCE_DATABASE_URL"):
        overrides["database"] = {**dict(data.get("database") or {}), "url": environ["COMPLIANCE_DATABASE_URL"]}
    base_dir = path.resolve().parent if path is not None else Path.cwd()
    try:
        return Settings.model_validate({**data, **overrides, "config_path": path, "base_dir": base_dir})
    except ValidationError as exc:  # only the environment can still be wrong here
        raise ComplianceError(f"invalid setting from the environment: {exc.errors()[0]['msg']}") from None


def _problem(path: str, data: Any, err: Any, position_of: Any) -> Problem:
    loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        line, col = position_of(data, loc, key=True)
        return Problem(path, line, col, f"unknown setting '{dotted}'",
                       "remove it or check the spelling against config/compliance.example.yaml")
    line, col = position_of(data, loc)
    message = str(err["msg"]).removeprefix("Value error, ")
    return Problem(path, line, col, f"{dotted}: {message}", "")
