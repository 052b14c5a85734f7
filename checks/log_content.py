"""`log_content`: every recent log line records who did what, to which object, with what result, from where and when.

Secure state: event logs carry the information BIO2 8.15.01 asks of them (ISO 27002:2022 8.15
logging): the action, the object acted upon, the result, the origin (system or address), the actor
(user or process) and the timestamp. The check reads the newest `lines` lines of a log (read from the
end of the file, so a log of gigabytes costs no more than its tail) and looks for each of the six
fields in every line:

- `format: jsonl` - one JSON object per line; a field is a (dotted) key such as `user.name`, present
  when its value is neither null nor empty.
- `format: syslog` - RFC 3164 (`Nov 30 01:23:03 host tag: ...`, also with an ISO timestamp as rsyslog
  writes it) or RFC 5424 (`<165>1 2026-11-30T01:23:03Z host app ...`). The header's timestamp and host
  give `timestamp` and `origin` unless those fields are set; the others are regular expressions.
- `format: text` - every field is a regular expression, searched in the whole line.

A field may list alternatives (`actor: [user.name, client.user]`): any one of them counts. The check
fails when more than `max_missing` percent of the lines lack a field (default 0: every line). The
evidence gives per field the number of lines that lack it and up to three line numbers, never the
lines themselves (logs hold personal data). When `path` is a glob the newest matching file is read.
A line that is still being written (no line end yet) is left out. When no file matches `path` the check
fails, as `file_age` does: a log that is not there records nothing. An unreadable log, an empty log and,
for `jsonl`, a line that is not a JSON object are errors: the check could not judge.
The monitor needs read access to the log file only (e.g. membership of group `adm`).

Example::

    id: LOG-CONTENT
    title: Application audit log lines name action, object, result, origin, actor and time
    theme: technological
    references: {bio2: "8.15.01", iso27002: "8.15"}
    severity: medium
    checks:
      - plugin: log_content
        params:
          path: /var/log/app/audit-*.jsonl
          format: jsonl
          lines: 500
          fields: {action: event.action, object: object.id, result: event.outcome,
                   origin: [source.ip, host.name], actor: user.name, timestamp: "@timestamp"}
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from compliance.api import Check, Context, Message, Params, Result

FIELDS = ("action", "object", "result", "origin", "actor", "timestamp")
FIELD_NL = {"action": "actie", "object": "object", "result": "resultaat", "origin": "herkomst", "actor": "actor",
            "timestamp": "tijdstip"}
EXAMPLES = 3
BLOCK = 64 * 1024
MAX_READ = 64 * 1024 * 1024  # a log without line ends is not read whole: the tail stops here


class LogFields(Params):
    """Where each field is found: a JSON key (dotted path) for jsonl, a regular expression otherwise."""

    action: str | list[str] | None = None
    object: str | list[str] | None = None
    result: str | list[str] | None = None
    origin: str | list[str] | None = None
    actor: str | list[str] | None = None
    timestamp: str | list[str] | None = None

    @field_validator("*", mode="after")
    @classmethod
    def _not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and (not value or any(not item for item in value if isinstance(value, list))):
            raise ValueError("give a non-empty key or expression (or a list of them)")
        return value

    def alternatives(self, name: str) -> list[str] | None:
        value = getattr(self, name)
        if value is None:
            return None
        return [value] if isinstance(value, str) else list(value)


class LogContentParams(Params):
    path: str
    """The log file, or a glob whose newest match is read; relative paths count from the config file."""
    format: Literal["jsonl", "syslog", "text"]
    """`jsonl` (one JSON object a line), `syslog` (RFC 3164 or 5424) or `text`."""
    fields: LogFields
    """Per field (action, object, result, origin, actor, timestamp) a JSON key or a regular expression;
    for syslog, timestamp and origin default to the header's timestamp and host."""
    lines: int = Field(200, ge=1, le=100_000)
    """How many of the newest lines to read."""
    max_missing: float = Field(0.0, ge=0, le=100)
    """The percentage of lines that may lack a field."""

    @model_validator(mode="after")
    def _complete(self) -> LogContentParams:
        header = {"timestamp", "origin"} if self.format == "syslog" else set()
        missing = [name for name in FIELDS if self.fields.alternatives(name) is None and name not in header]
        if missing:
            raise ValueError(f"fields needs {', '.join(missing)} for format {self.format}"
                             + (" (timestamp and origin may come from the syslog header)" if header else ""))
        if self.format != "jsonl":
            for name in FIELDS:
                for expression in self.fields.alternatives(name) or []:
                    try:
                        re.compile(expression)
                    except re.error as exc:
                        raise ValueError(f"fields.{name}: {expression!r} is not a valid regular expression: "
                                         f"{exc}") from None
        return self


# RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID ...; in files the <PRI> is often left out.
_RFC5424 = re.compile(r"^(?:<\d{1,3}>)?1 (?P<ts>\S+) (?P<host>\S+) ")
# RFC 3164 as syslog daemons write it: "Nov 30 01:23:03 host tag: msg", or with an ISO timestamp.
_RFC3164 = re.compile(r"^(?:<\d{1,3}>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) (?P<host>\S+) ")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _valid_timestamp(text: str) -> bool:
    if text[:3] in _MONTHS and len(text) == 15:
        try:
            datetime.strptime("2000 " + text.replace("  ", " 0"), "%Y %b %d %H:%M:%S")  # 2000: a leap year
        except ValueError:
            return False
        return True
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def syslog_header(line: str) -> tuple[str | None, str | None]:
    """The timestamp and host of a syslog line (None where the header lacks them or does not parse)."""
    match = _RFC5424.match(line) or _RFC3164.match(line)
    if match is None:
        return None, None
    ts, host = match.group("ts"), match.group("host")
    return (ts if ts != "-" and _valid_timestamp(ts) else None), (host if host != "-" else None)


def tail_lines(path: str, count: int) -> tuple[list[str], int | None]:
    """The last `count` complete lines of a file, read backwards in blocks, and the number of the first
    one (1-based) when the read reached the start of the file (else None). An unterminated last line
    (still being written) is left out; blank lines are kept (the caller skips them)."""
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= count and end - pos < MAX_READ:
            step = min(BLOCK, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
    if not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]  # the last line is not complete yet
    parts = data.split(b"\n")[:-1]
    if pos > 0:
        parts = parts[1:]  # the first part may be the tail of an earlier line
    chosen = parts[-count:]
    first = len(parts) - len(chosen) + 1 if pos == 0 else None
    return [part.decode("utf-8", "replace") for part in chosen], first


def _json_value(record: dict[str, Any], key: str) -> Any:
    if key in record:
        return record[key]
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


class LogContent(Check):
    name = "log_content"
    Params = LogContentParams
    target_param = "path"

    def run(self, params: LogContentParams, ctx: Context) -> Iterator[Result]:
        target = params.path
        pattern = ctx.resolve(params.path)
        files = [p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
        if not files:
            yield Result.failed(target, Message("No log file matches %(path)s.", path=params.path), pattern=pattern)
            return
        newest = files[0]
        try:
            newest = max(files, key=lambda p: (os.stat(p).st_mtime, p))
            lines, first = tail_lines(newest, params.lines)
        except OSError as exc:
            yield Result.errored(target, Message("Cannot read the log %(path)s: %(reason)s.", path=newest,
                                                 reason=exc.strerror or str(exc)), file=newest)
            return
        numbered = [(first + i if first is not None else i - len(lines), line) for i, line in enumerate(lines)]
        numbered = [(number, line) for number, line in numbered if line.strip()]
        if not numbered:
            yield Result.errored(target, Message("The log %(path)s holds no complete lines.", path=newest),
                                 file=newest)
            return
        regexes = {name: [re.compile(e) for e in params.fields.alternatives(name) or []] for name in FIELDS}
        missing: dict[str, list[int]] = {name: [] for name in FIELDS}
        for number, line in numbered:
            if params.format == "jsonl":
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    yield Result.errored(target, Message("Line %(line)s of %(path)s is not a JSON object.",
                                                         line=number, path=newest), file=newest, line=number)
                    return
                for name in FIELDS:
                    keys = params.fields.alternatives(name) or []
                    if not any(_present(_json_value(record, key)) for key in keys):
                        missing[name].append(number)
                continue
            header: tuple[str | None, str | None] = (None, None)
            if params.format == "syslog":
                header = syslog_header(line)
            for name in FIELDS:
                if regexes[name]:
                    found = any(r.search(line) for r in regexes[name])
                elif name == "timestamp":
                    found = header[0] is not None
                else:  # origin from the syslog header
                    found = header[1] is not None
                if not found:
                    missing[name].append(number)
        total = len(numbered)
        per_field = {name: {"missing": len(numbers), "percent": round(100 * len(numbers) / total, 1),
                            "examples": numbers[:EXAMPLES]} for name, numbers in missing.items()}
        failing = [name for name, numbers in missing.items() if 100 * len(numbers) / total > params.max_missing]
        evidence = {"file": newest, "format": params.format, "lines_checked": total, "fields": per_field,
                    "max_missing_percent": params.max_missing,
                    "line_numbers": "from the start of the file" if first is not None
                    else "counted back from the end of the file: -1 is the last complete line"}
        if failing:
            worst: list[Message | str] = [
                Message("%(field)s (%(count)s lines)", field={"en": name, "nl": FIELD_NL[name]},
                        count=len(missing[name])) for name in failing]
            yield Result.failed(target, Message(
                "Of the last %(lines)s lines of %(path)s, more than %(maximum)s percent lack a field: %(fields)s.",
                lines=total, path=newest, maximum=f"{params.max_missing:g}", fields=worst), **evidence)
        else:
            yield Result.passed(target, Message(
                "The last %(lines)s lines of %(path)s record action, object, result, origin, actor and timestamp.",
                lines=total, path=newest), **evidence)
