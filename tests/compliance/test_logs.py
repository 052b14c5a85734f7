"""Log lines: text with or without our timestamp, JSON lines for log shippers, levels, secrets scrubbed."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from compliance.logs import configure_logging, hide_secrets, reset_logging

log = logging.getLogger("compliance.scheduler")
TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    yield
    reset_logging()


@pytest.mark.parametrize(("fmt", "stream", "timestamp"), [
    ("auto", io.StringIO, False),  # under systemd: journald stamps the line itself
    ("auto", Terminal, True),
    ("text", io.StringIO, True),
])
def test_text_lines_carry_our_timestamp_only_when_asked_or_on_a_terminal(fmt: str, stream: type[io.StringIO],
                                                                         timestamp: bool) -> None:
    out = stream()
    configure_logging("info", fmt, out)
    log.warning("job %s is off", "digest")
    assert re.fullmatch((TIMESTAMP if timestamp else "") + "WARNING compliance.scheduler: job digest is off\n",
                        out.getvalue())


def test_json_lines_parse_and_carry_the_extra_fields_and_the_exception() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    log.info("scan %d completed", 7, extra={"job": "controls:default", "failed": 2})
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        log.exception("scan failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert datetime.fromisoformat(first.pop("time")).utcoffset() is not None
    assert first == {"level": "info", "logger": "compliance.scheduler", "message": "scan 7 completed",
                     "job": "controls:default", "failed": 2}
    assert (second["level"], second["message"]) == ("error", "scan failed")
    assert second["exception"].startswith("Traceback") and second["exception"].endswith("RuntimeError: disk on fire")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_level_applies_to_the_monitors_loggers_and_libraries_only_warn(fmt: str) -> None:
    out = io.StringIO()
    configure_logging("warning", fmt, out)
    log.info("not shown")
    log.warning("shown")
    logging.getLogger("apscheduler.scheduler").info("library chatter")
    logging.getLogger("apscheduler.scheduler").warning("library warning")
    lines = out.getvalue().splitlines()
    messages = [json.loads(line)["message"] for line in lines] if fmt == "json" else \
        [line.split(": ", 1)[1] for line in lines]
    assert messages == ["shown", "library warning"]
    configure_logging("debug", fmt, out)  # configuring again replaces the handler: every line once
    log.debug("debug")
    assert len(out.getvalue().splitlines()) == 3


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_scrubbed_from_every_line(fmt: str) -> None:
    out = io.StringIO()
    configure_logging("info", fmt, out)
    hide_secrets(["xoxb-secret-token", 'pass"word'])
    log.warning("Slack answered invalid_auth for %s", "xoxb-secret-token", extra={"detail": 'pass"word'})
    assert "xoxb-secret-token" not in out.getvalue() and "pass" not in out.getvalue()
    assert "invalid_auth for ***" in out.getvalue()


def test_reset_removes_the_handler() -> None:
    out = io.StringIO()
    configure_logging("info", "text", out)
    reset_logging()
    log.warning("after reset")
    assert out.getvalue() == ""
    assert not [h for h in logging.getLogger().handlers if h.get_name() == "compliance"]
