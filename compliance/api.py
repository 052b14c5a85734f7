"""The whole surface a check plugin may use.

A check plugin is a subclass of `Check` with a `name`, a `Params` model (a frozen pydantic model that
forbids unknown keys) and a `run(params, ctx)` method that returns `Result`s. Plugins are found through
the entry-point group `compliance.checks`, built-ins and third-party ones alike::

    [project.entry-points."compliance.checks"]
    my_check = "my_package.my_module:MyCheck"

A plugin does no database access and keeps no state between runs: it gets parameters and a `Context`
(time budget, network defaults from the configuration) and returns results; the engine stores them.
"""

from __future__ import annotations

import enum
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, TypeAlias

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "EVIDENCE_LIMIT",
    "MESSAGE_KEY",
    "Check",
    "Context",
    "Duration",
    "Message",
    "Params",
    "Regex",
    "Result",
    "Seconds",
    "Status",
    "file_sha256",
    "format_duration",
    "parse_duration",
    "render_message",
]

#: The largest evidence a result may carry, in bytes of JSON. Larger evidence is cut by the engine.
EVIDENCE_LIMIT = 16 * 1024


class Status(enum.StrEnum):
    """The outcome of one check on one target."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # the check could not decide: it crashed, timed out or could not reach the target
    SKIPPED = "skipped"  # the check does not apply here (e.g. nothing matched a glob that may be empty)


#: The evidence key under which a result keeps its message template (see `Message`).
MESSAGE_KEY = "message_template"

#: What a message parameter may be: plain JSON values, a message (or list of messages) of its own, or a
#: text per language ({"en": ..., "nl": ...}; English when the language is missing).
Param: TypeAlias = "str | int | float | Message | list[Message | str] | dict[str, str] | None"


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """A message as a template and its parameters, so that outputs can show it in another language.

    The template is English with `%(name)s` placeholders, and it is the msgid in the gettext domain
    `checks` (compliance/report/locale/<lang>/LC_MESSAGES/checks.po): a Dutch report shows the Dutch
    template filled in with the same parameters. A parameter may itself be a `Message`, or a list of
    messages and texts (shown joined by "; "), for sentences built from parts, or a text per language
    (`{"en": ..., "nl": ...}`) for words the catalog cannot know, such as a control's own phrase::

        Result.failed(target, Message("Certificate of %(target)s expires in %(days)d days (minimum %(minimum)d).",
                                      target=target, days=9, minimum=21))

    A plugin that gives a plain string keeps working; its message is then shown as written in every
    language.
    """

    template: str
    params: Mapping[str, Param]

    def __init__(self, template: str, /, **params: Param) -> None:
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "params", params)
        str(self)  # a template that does not fit its parameters fails here, in the plugin, not in a report

    def __str__(self) -> str:
        return render_message(self.as_json(), lambda template: template)

    def as_json(self) -> dict[str, Any]:
        """The template and its parameters as JSON (nested messages as nested objects)."""

        def encode(value: Param) -> Any:
            if isinstance(value, Message):
                return value.as_json()
            if isinstance(value, list):
                return [encode(v) for v in value]
            return value

        return {"template": self.template, "params": {k: encode(v) for k, v in self.params.items()}}


def render_message(stored: Mapping[str, Any], translate: Callable[[str], str], lang: str = "en") -> str:
    """A stored message (`Message.as_json()`) filled in, each template translated by `translate`.

    A parameter given as a text per language is shown in `lang` (in English when `lang` is missing).
    """

    def fill(value: Any) -> Any:
        if isinstance(value, Mapping) and "template" in value:
            return render_message(value, translate, lang)
        if isinstance(value, Mapping):
            return value.get(lang) or value.get("en", "")
        if isinstance(value, list):
            return "; ".join(str(fill(v)) for v in value)
        return value

    template = str(stored["template"])
    params = {k: fill(v) for k, v in (stored.get("params") or {}).items()}
    try:
        return translate(template) % params
    except (KeyError, TypeError, ValueError):  # a translation that does not fit its parameters
        return template % params


@dataclass(frozen=True, slots=True)
class Result:
    """One verdict: the status, a one-sentence message that names the target, and JSON evidence.

    Build one with `passed`, `failed`, `errored` or `skipped`; the message may be a `Message`, whose
    template the result keeps in its evidence under `MESSAGE_KEY` (see `template`).
    """

    status: Status
    message: str
    target: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _made(cls, status: Status, target: str, message: str | Message, evidence: dict[str, Any]) -> Result:
        if isinstance(message, Message):
            return cls(status, str(message), target, {**evidence, MESSAGE_KEY: message.as_json()})
        return cls(status, message, target, evidence)

    @classmethod
    def passed(cls, target: str, message: str | Message, **evidence: Any) -> Result:
        return cls._made(Status.PASS, target, message, evidence)

    @classmethod
    def failed(cls, target: str, message: str | Message, **evidence: Any) -> Result:
        return cls._made(Status.FAIL, target, message, evidence)

    @classmethod
    def errored(cls, target: str, message: str | Message, **evidence: Any) -> Result:
        return cls._made(Status.ERROR, target, message, evidence)

    @classmethod
    def skipped(cls, target: str, message: str | Message, **evidence: Any) -> Result:
        return cls._made(Status.SKIPPED, target, message, evidence)

    @property
    def template(self) -> dict[str, Any] | None:
        """The message's template and parameters (`Message.as_json()`), or None for a plain message."""
        stored = self.evidence.get(MESSAGE_KEY)
        return stored if isinstance(stored, dict) and isinstance(stored.get("template"), str) else None


class Params(BaseModel):
    """Base class of a plugin's parameters: frozen, unknown keys are errors.

    A string literal under a field documents it (`compliance checks show PLUGIN` prints it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


@dataclass(frozen=True, slots=True)
class Context:
    """What the engine gives a check besides its parameters.

    Plain data only, so that the same context can travel to a worker in another network zone.
    `nameserver`, `ca_file` and `net_timeout` are the configuration's network defaults; a plugin
    parameter of the same meaning overrides them. `base_dir` is the folder of the config file.
    `facts` holds the data the core gathered for a plugin that asked for it in `Check.facts` (for
    example the control's latest attestation), so that no plugin needs the database.
    """

    control_id: str
    timeout: float
    started: float = field(default_factory=time.monotonic)
    nameserver: str | None = None
    ca_file: str | None = None
    net_timeout: float = 10.0
    base_dir: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, path: str) -> str:
        """A path from a control made absolute: relative paths count from the config file's folder."""
        import os.path

        path = os.path.expanduser(path)
        if os.path.isabs(path) or self.base_dir is None:
            return path
        return os.path.join(self.base_dir, path)

    def remaining(self) -> float:
        """Seconds left of this check's time budget (never negative)."""
        return max(0.0, self.timeout - (time.monotonic() - self.started))

    @staticmethod
    def now() -> datetime:
        """The current time, timezone-aware in UTC."""
        return datetime.now(UTC)


class Check(ABC):
    """A check plugin. Subclass it, set `name` and `Params`, implement `run`.

    `target_param` names the parameter that a plain string in a control's `targets:` list fills in
    (for example `path` for `file_age`); a mapping in `targets:` sets several parameters at once.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]]
    target_param: ClassVar[str | None] = None
    #: Facts the core gathers for this plugin before it runs, found in `ctx.facts` (see compliance.facts).
    facts: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def run(self, params: Any, ctx: Context) -> Iterable[Result]:
        """Test the secure state and return one or more results."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(y|w|d|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"y": 365 * 86400, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str | int | float) -> timedelta:
    """Parse `26h`, `7d`, `1h30m`, `45s`, `2w`, `1y` (or a number of seconds) into a timedelta.

    `m` is minutes; a year is 365 days.

    Raises ValueError with a message that shows the accepted form.
    """
    if isinstance(text, bool):
        raise ValueError("expected a duration such as '26h' or '7d'")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    cleaned = text.strip().replace(" ", "")
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(cleaned):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if not cleaned or pos != len(cleaned):
        raise ValueError(f"'{text}' is not a duration; write a number and a unit, e.g. '26h', '7d' or '1h30m'")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """A short human form of a duration: '2d 3h', '5m 10s', '0s'."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-delta)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def _to_timedelta(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration such as '26h' or '7d'")


def _to_seconds(value: Any) -> float:
    return _to_timedelta(value).total_seconds()


def _valid_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


#: A parameter type for regular expressions, checked when the control is validated.
Regex = Annotated[str, AfterValidator(_valid_regex)]

#: A parameter type for durations: '26h', '7d', '1h30m' or a number of seconds, as a timedelta.
Duration = Annotated[timedelta, BeforeValidator(_to_timedelta)]

#: A positive number of seconds, written as a number or as '30s', '2m', ...
Seconds = Annotated[float, BeforeValidator(_to_seconds), Field(gt=0)]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's content, read in blocks (for evidence files)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
