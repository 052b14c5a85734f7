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

import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeAlias

from pydantic import AfterValidator, BaseModel, ConfigDict

from compliance.durations import Duration, Seconds, format_duration, parse_duration
from compliance.status import EVIDENCE_LIMIT, MESSAGE_KEY, Status, render_message

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

    model_config = ConfigDict(extra="forbid", frozen=True)


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


def _valid_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


#: A parameter type for regular expressions, checked when the control is validated.
Regex = Annotated[str, AfterValidator(_valid_regex)]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's content, read in blocks (for evidence files)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
