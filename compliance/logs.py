"""Log lines on stderr: text for people and journald, JSON lines for log shippers; secrets scrubbed.

The CLI configures logging once per command from `--log-level` and `--log-format`:

- `text`: `2026-03-09 08:00:00,123 INFO compliance.scheduler: leader (...)`;
- `auto` (the default): text, without our timestamp when stderr is not a terminal, because journald
  (or whatever collects the stream) stamps every line itself;
- `json`: one object per line with `time` (UTC, ISO 8601), `level`, `logger`, `message`, the fields a
  caller passed as `extra=`, and `exception` when there is a traceback.

The level applies to the monitor's own loggers (`compliance.*`); libraries log their warnings and
errors only, so their chatter never mixes into a command's output.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["FORMATS", "LEVELS", "REDACTED", "configure_logging", "hide_secrets", "reset_logging", "scrub"]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("auto", "text", "json")
#: The loggers --log-level applies to; every module of the monitor logs below this one.
OWN_LOGGER = "compliance"
HANDLER_NAME = "compliance"
_TEXT = "%(levelname)s %(name)s: %(message)s"
#: What every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
REDACTED = "***"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class _Scrubbing(logging.Formatter):
    """A formatter that replaces the secrets it knows with *** in every line."""

    secrets: Sequence[str] = ()

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(self.render(record))

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets) if self.secrets else text

    def render(self, record: logging.LogRecord) -> str:
        return super().format(record)


class TextFormatter(_Scrubbing):
    """`LEVEL logger: message`, after our own timestamp when asked for one."""

    def __init__(self, *, timestamp: bool) -> None:
        super().__init__("%(asctime)s " + _TEXT if timestamp else _TEXT)


class JsonFormatter(_Scrubbing):
    """One JSON object per line: time, level, logger, message, the extra fields, and the exception if any."""

    def render(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((key, value) for key, value in vars(record).items()
                    if key not in _STANDARD and not key.startswith("_") and key not in line)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        # each text scrubbed before encoding: a JSON escape inside a secret would hide it from scrubbing the line
        return json.dumps({key: self.scrub(value) if isinstance(value, str) else value
                           for key, value in line.items()}, ensure_ascii=False, default=str)


def _handler() -> logging.Handler | None:
    return next((h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME), None)


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *,
                      secrets: Sequence[str] = ()) -> logging.Handler:
    """Send log lines to stream (default stderr) in fmt, the monitor's own from level up; replaces an earlier set-up."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level '{level}'; use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format '{fmt}'; use one of {', '.join(FORMATS)}")
    stream = stream if stream is not None else sys.stderr
    if fmt == "json":
        formatter: _Scrubbing = JsonFormatter()
    else:
        formatter = TextFormatter(timestamp=fmt == "text" or _is_terminal(stream))
    formatter.secrets = tuple(secrets)
    reset_logging()
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    logging.getLogger(OWN_LOGGER).setLevel(level.upper())
    return handler


def hide_secrets(secrets: Sequence[str]) -> None:
    """From now on, replace these secrets with *** in every line (once the settings that hold them are known)."""
    handler = _handler()
    if handler is not None and isinstance(handler.formatter, _Scrubbing):
        handler.formatter.secrets = tuple(sorted({*handler.formatter.secrets, *secrets}, key=len, reverse=True))


def reset_logging() -> None:
    """Undo configure_logging: remove its handler and the level of the monitor's loggers."""
    handler = _handler()
    if handler is not None:
        logging.getLogger().removeHandler(handler)
    logging.getLogger(OWN_LOGGER).setLevel(logging.NOTSET)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
