"""The configuration as the commands read it, without pydantic: what `compliance.settings` validates.

`compliance.settings` defines the configuration as pydantic models and validates compliance.yaml and
the environment against them. Importing pydantic and building those models takes longer than the rest
of a command such as `incident list` (issue 18), so a validated configuration is kept in the cache
(`compliance.configuration`) and read back as *views*: frozen objects with the same attributes, the same
`model_fields_set` and `model_copy`, and the same methods, which both share through the mixins here
(`SettingsMethods`, ...). Nothing here imports pydantic, PyYAML or APScheduler.

Also here, because the cached path needs them before any validation: where the config file is
(`find_config`), the environment variables the configuration reads, and `NoConfig`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError, display_path

if TYPE_CHECKING:
    from compliance.settings import Settings

CONFIG_FILENAME = "compliance.yaml"

#: An organisation's code: lower-case letters, digits and hyphens, starting with a letter (`utrecht`).
ORG_CODE_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"

#: Settings that can come from the environment: variable -> (section, key).
ENVIRONMENT_SETTINGS: Mapping[str, tuple[str, str]] = {
    "COMPLIANCE_SMTP_HOST": ("smtp", "host"),
    "COMPLIANCE_SMTP_PORT": ("smtp", "port"),
    "COMPLIANCE_SMTP_STARTTLS": ("smtp", "starttls"),
    "COMPLIANCE_SMTP_USER": ("smtp", "user"),
    "COMPLIANCE_SMTP_PASSWORD": ("smtp", "password"),
    "COMPLIANCE_DIGEST_FROM": ("digest", "from"),
    "COMPLIANCE_DIGEST_TO": ("digest", "to"),
    "COMPLIANCE_SLACK_TOKEN": ("slack", "token"),
    "COMPLIANCE_SLACK_CHANNEL": ("slack", "channel"),
    "COMPLIANCE_SLACK_WEBHOOK_URL": ("slack", "webhook_url"),
}
#: Settings that may only come from the environment.
SECRET_SETTINGS: Mapping[tuple[str, str], str] = {
    ("smtp", "password"): "COMPLIANCE_SMTP_PASSWORD",
    ("slack", "token"): "COMPLIANCE_SLACK_TOKEN",
    ("slack", "webhook_url"): "COMPLIANCE_SLACK_WEBHOOK_URL",
}


class NoConfig(ComplianceError):
    """No config file was named and none was found in the working directory or above it."""

    def __init__(self) -> None:
        super().__init__(f"no {CONFIG_FILENAME} here or above; run `compliance init` or pass --config")


def find_config(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file to use, or None when there is none. An explicitly named file must exist.

    Unless one is named (`--config`, then `COMPLIANCE_CONFIG`), it is the `compliance.yaml` in the working
    directory or the nearest folder above it, so that a command run in a subfolder of a monitor uses that
    monitor's config and database.
    """
    environ = os.environ if environ is None else environ
    named = explicit or environ.get("COMPLIANCE_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            source = "--config" if explicit else "COMPLIANCE_CONFIG"
            what = "does not exist"
            if path.is_symlink():
                what = "is a symbolic link to nothing readable (dangling, or a loop)"
            elif path.exists():
                what = "is not a regular file"
            raise ComplianceError(
                f"config file {display_path(path)} (from {source}) {what}; "
                "create one with `compliance init` or point to an existing file"
            )
        return path
    folder = Path.cwd()
    for candidate in (folder / CONFIG_FILENAME, *(parent / CONFIG_FILENAME for parent in folder.parents)):
        if candidate.is_file():
            return candidate
    return None


# -- what the pydantic models and the views share ------------------------------------------------------


class ScheduleMethods:
    if TYPE_CHECKING:
        default: str | None

    @property
    def default_cron(self) -> str | None:
        """The default as a cron expression, or None (an `every <duration>` interval, or off): reports
        and the digest use it to tell when a control without a schedule of its own was due."""
        from compliance.cron import is_cron

        return self.default if self.default and is_cron(self.default) else None


class SmtpMethods:
    if TYPE_CHECKING:
        port: int | None
        tls: bool

    @property
    def effective_port(self) -> int:
        return self.port or (465 if self.tls else 587)


class SlackMethods:
    if TYPE_CHECKING:
        mode: str | None
        token: Any
        webhook_url: Any

    @property
    def effective_mode(self) -> str | None:
        if self.mode is not None:
            return self.mode
        if self.token is not None:
            return "token"
        return "webhook" if self.webhook_url is not None else None


class SettingsMethods:
    """The whole configuration's methods; `base_dir` is the folder relative paths count from."""

    if TYPE_CHECKING:
        base_dir: Path
        database: Any
        controls: Any
        evidence: Any
        incidents: Any
        targets: dict[str, Any]
        timezone: str
        organisations: dict[str, Any]
        environment: dict[str, frozenset[str]]

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A path from the configuration made absolute against the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute against base_dir."""
        url: str = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix):]
            path, sep, query = rest.partition("?")
            if path and path != ":memory:":
                return prefix + str(self.resolve(path)) + sep + query
        return url

    def for_org(self, code: str, *, name: str = "", first: bool = True) -> Settings:
        """These settings for organisation CODE: its own section (if any) over the shared ones.

        Its registered NAME is the organisation its report, digest and AP form name, unless its section
        sets incidents.organisation (a shared one, from before there were several, names the first). An
        organisation that is not the FIRST keeps copies of its evidence in a folder of its own beside
        evidence.store (`evidence-zeist`), unless its section names a store.
        """
        own = self.organisations.get(code)
        update: dict[str, Any] = {"org_code": code}
        if own is not None:
            for field in own.model_fields_set - {"targets", "controls"}:
                section = getattr(own, field)
                keep = self.environment.get(field, frozenset())
                changes = {key: getattr(section, key) for key in section.model_fields_set if key not in keep}
                update[field] = getattr(self, field).model_copy(update=changes)
            if "targets" in own.model_fields_set:
                update["targets"] = {**self.targets, **own.targets}
            if "controls" in own.model_fields_set:
                changes = {}
                if "paths" in own.controls.model_fields_set:  # not its default ["controls"]: the shared folder again
                    changes["paths"] = [*self.controls.paths, *(str(self.resolve(p)) for p in own.controls.paths)]
                if "bundled" in own.controls.model_fields_set:
                    changes["bundled"] = own.controls.bundled
                update["controls"] = self.controls.model_copy(update=changes)
        if not first and not (own is not None and "store" in own.evidence.model_fields_set):
            update["evidence"] = self.evidence.model_copy(update={"store": f"{Path(self.evidence.store)}-{code}"})
        if name and not (own is not None and "organisation" in own.incidents.model_fields_set):
            incidents = update.get("incidents", self.incidents)
            update["incidents"] = incidents.model_copy(update={"organisation": name})
        copied: Settings = self.model_copy(update=update)  # type: ignore[attr-defined]
        return copied

    @property
    def control_paths(self) -> list[Path]:
        return [self.resolve(p) for p in self.controls.paths]

    @property
    def zone(self) -> Any:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


_METHODS: dict[str, type] = {"ScheduleSettings": ScheduleMethods, "SmtpSettings": SmtpMethods,
                             "SlackSettings": SlackMethods, "Settings": SettingsMethods}


# -- views ---------------------------------------------------------------------------------------------


class Secret:
    """A secret from the environment, shown as stars (pydantic's SecretStr, for the views)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class View:
    """A validated section of the configuration, read back from the cache: frozen, with the pydantic
    model's fields as attributes, `model_fields_set` and `model_copy(update=...)`."""

    _values: dict[str, Any]
    model_fields_set: set[str]

    def __init__(self, values: Mapping[str, Any], fields_set: Iterable[str]) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "model_fields_set", set(fields_set))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_values":
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen")

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Any:
        update = dict(update or {})
        return type(self)({**self._values, **update}, self.model_fields_set | set(update))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, View) and type(other).__name__ == type(self).__name__ and other._values == self._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


_VIEWS: dict[str, type[View]] = {}


def _view_class(name: str) -> type[View]:
    if name not in _VIEWS:
        bases = (View, _METHODS[name]) if name in _METHODS else (View,)
        _VIEWS[name] = type(name, bases, {})
    return _VIEWS[name]


def from_cache(value: Any) -> Any:
    """The configuration (or a value in it) from its cached JSON (`compliance.settings.encoded`)."""
    from compliance.located import LocDict, LocList

    if isinstance(value, list):
        return [from_cache(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "!model" in value:
        return _view_class(str(value["!model"]))({k: from_cache(v) for k, v in value["v"].items()}, value["set"])
    if "!locdict" in value:
        located = LocDict((k, from_cache(v)) for k, v in value["!locdict"].items())
        located.path, located.pos = value["path"], tuple(value["pos"])
        located.key_pos = {k: tuple(p) for k, p in value["key_pos"].items()}
        located.value_pos = {k: tuple(p) for k, p in value["value_pos"].items()}
        return located
    if "!loclist" in value:
        items = LocList(from_cache(v) for v in value["!loclist"])
        items.path, items.pos = value["path"], tuple(value["pos"])
        items.item_pos = [tuple(p) for p in value["item_pos"]]
        return items
    if "!dict" in value:
        return {k: from_cache(v) for k, v in value["!dict"].items()}
    if "!path" in value:
        return Path(value["!path"])
    if "!timedelta" in value:
        return timedelta(seconds=value["!timedelta"])
    if "!frozenset" in value:
        return frozenset(value["!frozenset"])
    raise ValueError(f"unknown entry {sorted(value)}")


def with_secrets(settings: Any, environ: Mapping[str, str]) -> Any:
    """SETTINGS read from the cache with the secrets the environment holds now (the cache holds none)."""
    update: dict[str, Any] = {}
    for (section, key), variable in SECRET_SETTINGS.items():
        if environ.get(variable):
            changed = update.get(section, getattr(settings, section))
            update[section] = changed.model_copy(update={key: Secret(environ[variable])})
    return settings.model_copy(update=update) if update else settings


def environment_key(environ: Mapping[str, str]) -> list[str]:
    """What the environment gives the configuration: the values, but of a secret only whether it is set
    (a secret is never stored, nor a hash of it: it is read from the environment on every run)."""
    secret = set(SECRET_SETTINGS.values())
    return [f"{variable}={'set' if variable in secret else environ.get(variable)}" if environ.get(variable)
            else f"{variable}=" for variable in ("COMPLIANCE_DATABASE_URL", *ENVIRONMENT_SETTINGS)]
