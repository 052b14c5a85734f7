"""log_content: the newest lines of a log carry action, object, result, origin, actor and timestamp."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest

from compliance.api import Context, Result, Status
from compliance.checks.log_content import LogContent, syslog_header, tail_lines
from tests.checks.unprivileged import run_as_nobody

JSON_FIELDS = {"action": "event.action", "object": "object", "result": "event.outcome",
               "origin": ["source.ip", "host.name"], "actor": "user.name", "timestamp": "@timestamp"}


def run(base: Path, **params: Any) -> Result:
    model = LogContent.Params.model_validate(params)
    [result] = LogContent().run(model, Context("LOG", 5, base_dir=str(base)))
    return result


def event(n: int, **drop: bool) -> str:
    record: dict[str, Any] = {"@timestamp": (datetime.now(UTC) - timedelta(minutes=n)).isoformat(),
                              "event": {"action": "login", "outcome": "success"}, "object": f"doc-{n}",
                              "source": {"ip": "10.0.0.7"}, "user": {"name": "j.jansen"}}
    if drop.get("actor"):
        del record["user"]
    if drop.get("origin"):
        del record["source"]
    if drop.get("result"):
        record["event"]["outcome"] = ""
    return json.dumps(record)


def write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def test_jsonl_with_every_field_passes(tmp_path: Path) -> None:
    write(tmp_path / "audit.jsonl", [event(n) for n in range(50)])
    result = run(tmp_path, path="audit.jsonl", format="jsonl", fields=JSON_FIELDS)
    assert result.status == Status.PASS, result.message
    assert result.evidence["lines_checked"] == 50
    assert result.evidence["fields"]["actor"] == {"missing": 0, "percent": 0.0, "examples": []}
    assert "record action, object, result, origin, actor and timestamp" in result.message


def test_jsonl_missing_fields_fail_with_counts_and_line_numbers_only(tmp_path: Path) -> None:
    lines = [event(n, actor=n in (4, 9, 20, 30), result=n == 7) for n in range(40)]
    write(tmp_path / "audit.jsonl", lines)
    result = run(tmp_path, path="audit.jsonl", format="jsonl", fields=JSON_FIELDS)
    assert result.status == Status.FAIL
    assert result.evidence["fields"]["actor"] == {"missing": 4, "percent": 10.0, "examples": [5, 10, 21]}
    assert result.evidence["fields"]["result"]["examples"] == [8]
    assert result.evidence["fields"]["origin"]["missing"] == 0
    assert result.evidence["line_numbers"] == "from the start of the file"
    assert "more than 0 percent lack a field: result (1 lines); actor (4 lines)." in result.message
    assert "j.jansen" not in json.dumps(result.evidence) and "doc-" not in json.dumps(result.evidence)


def test_alternative_keys_and_tolerance(tmp_path: Path) -> None:
    # origin from host.name where source.ip is absent; 1 line of 20 lacks the actor: 5 %
    lines = [event(n, origin=True) for n in range(19)] + [event(99, actor=True)]
    lines = [json.dumps({**json.loads(line), "host": {"name": "web01"}}) for line in lines]
    write(tmp_path / "a.jsonl", lines)
    assert run(tmp_path, path="a.jsonl", format="jsonl", fields=JSON_FIELDS, max_missing=5).status == Status.PASS
    assert run(tmp_path, path="a.jsonl", format="jsonl", fields=JSON_FIELDS, max_missing=4.9).status == Status.FAIL


def test_only_the_newest_lines_of_the_newest_file_count(tmp_path: Path) -> None:
    old = write(tmp_path / "logs" / "audit-1.jsonl", [event(n, actor=True) for n in range(10)])
    then = time.time() - 86400
    os.utime(old, (then, then))
    # 3000 lines without an actor, then 200 complete ones: only the last 200 are read
    write(tmp_path / "logs" / "audit-2.jsonl", [event(n, actor=True) for n in range(3000)]
          + [event(n) for n in range(200)])
    result = run(tmp_path, path="logs/audit-*.jsonl", format="jsonl", fields=JSON_FIELDS, lines=200)
    assert result.status == Status.PASS, result.message
    assert result.evidence["file"] == str(tmp_path / "logs" / "audit-2.jsonl")
    assert result.evidence["lines_checked"] == 200
    result = run(tmp_path, path="logs/audit-*.jsonl", format="jsonl", fields=JSON_FIELDS, lines=201)
    assert result.status == Status.FAIL
    assert result.evidence["fields"]["actor"]["examples"] == [-201]  # counted back from the end
    assert result.evidence["line_numbers"].startswith("counted back from the end")


def test_a_huge_log_is_read_from_its_end(tmp_path: Path) -> None:
    big = tmp_path / "huge.jsonl"
    with open(big, "wb") as handle:  # 4 GiB, sparse: only the tail is ever read
        handle.seek(4 << 30)
        handle.write(b"\n" + "\n".join(event(n) for n in range(300)).encode() + b"\n")
    started = time.monotonic()
    result = run(tmp_path, path="huge.jsonl", format="jsonl", fields=JSON_FIELDS, lines=250)
    assert time.monotonic() - started < 2
    assert result.status == Status.PASS and result.evidence["lines_checked"] == 250


def test_tail_leaves_out_a_line_still_being_written(tmp_path: Path) -> None:
    path = write(tmp_path / "t.log", ["one", "two", "thr"], end="")
    assert tail_lines(str(path), 10) == (["one", "two"], 1)
    assert tail_lines(str(path), 1) == (["two"], 2)
    write(tmp_path / "p.jsonl", [event(1), event(2), '{"@timestamp": "2026-'], end="")
    assert run(tmp_path, path="p.jsonl", format="jsonl", fields=JSON_FIELDS).status == Status.PASS


def test_malformed_json_line_is_an_error_without_its_content(tmp_path: Path) -> None:
    write(tmp_path / "bad.jsonl", [event(1), "user=j.jansen secret stuff", event(2)])
    result = run(tmp_path, path="bad.jsonl", format="jsonl", fields=JSON_FIELDS)
    assert result.status == Status.ERROR
    assert result.message == f"Line 2 of {tmp_path}/bad.jsonl is not a JSON object."
    assert "jansen" not in json.dumps(result.evidence)
    write(tmp_path / "arr.jsonl", ["[1, 2]"])
    assert run(tmp_path, path="arr.jsonl", format="jsonl", fields=JSON_FIELDS).status == Status.ERROR


def test_a_missing_log_fails_and_an_empty_one_is_an_error(tmp_path: Path) -> None:
    # no log at all records nothing: a finding, as a missing backup is for file_age
    result = run(tmp_path, path="none/*.log", format="jsonl", fields=JSON_FIELDS)
    assert result.status == Status.FAIL and result.message == "No log file matches none/*.log."
    (tmp_path / "empty.log").write_text("\n\n")
    result = run(tmp_path, path="empty.log", format="jsonl", fields=JSON_FIELDS)
    assert result.status == Status.ERROR and "holds no complete lines" in result.message


SYSLOG_FIELDS = {"action": r"\b(login|logout|delete|update)\b", "object": r"\bobject=\S+",
                 "result": r"\bresult=(ok|denied)\b", "actor": r"\buser=\S+"}


def test_syslog_header_gives_timestamp_and_origin(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    bsd = now.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1) if now.day < 10 else now.strftime("%b %d %H:%M:%S")
    lines = [
        f"{bsd} web01 app[12]: login object=portal result=ok user=j.jansen",
        f"<165>1 {now.isoformat()} web02 app 12 ID47 - update object=doc-1 result=ok user=p.pietersen",
        f"{now.isoformat()} web03 app[12]: delete object=doc-2 result=denied user=k.klaassen",
        "Foo 99 99:99:99 web04 app: logout object=x result=ok user=a",  # an invalid timestamp
        "<34>1 - - app - - - logout object=y result=ok",  # nil timestamp and host, and no actor
    ]
    write(tmp_path / "syslog", lines)
    result = run(tmp_path, path="syslog", format="syslog", fields=SYSLOG_FIELDS)
    assert result.status == Status.FAIL
    fields = result.evidence["fields"]
    assert fields["timestamp"]["examples"] == [4, 5]
    assert fields["origin"]["examples"] == [5]  # line 4: a host, but no valid timestamp
    assert fields["actor"]["examples"] == [5]
    assert fields["action"]["missing"] == 0 and fields["object"]["missing"] == 0
    write(tmp_path / "syslog", lines[:3])
    assert run(tmp_path, path="syslog", format="syslog", fields=SYSLOG_FIELDS).status == Status.PASS


def test_syslog_header_parser() -> None:
    assert syslog_header("Nov  3 01:02:03 host sshd[1]: x") == ("Nov  3 01:02:03", "host")
    assert syslog_header("<13>Feb 29 01:02:03 host x: y") == ("Feb 29 01:02:03", "host")
    assert syslog_header("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - msg") == (
        "2003-10-11T22:14:15.003Z", "mymachine.example.com")
    assert syslog_header("Feb 30 01:02:03 host x: y") == (None, "host")
    assert syslog_header("just text") == (None, None)


def test_text_format_uses_expressions_for_every_field(tmp_path: Path) -> None:
    fields = {**SYSLOG_FIELDS, "origin": r"\bip=\d+\.\d+\.\d+\.\d+", "timestamp": r"^\d{4}-\d\d-\d\d \d\d:\d\d"}
    lines = [f"2026-01-0{n} 10:00 login object=o{n} result=ok user=u{n} ip=10.0.0.{n}" for n in range(1, 8)]
    write(tmp_path / "app.log", [*lines, "2026-01-09 10:00 login object=o result=ok user=u"])
    result = run(tmp_path, path="app.log", format="text", fields=fields)
    assert result.status == Status.FAIL and result.evidence["fields"]["origin"]["examples"] == [8]
    write(tmp_path / "app.log", lines)
    assert run(tmp_path, path="app.log", format="text", fields=fields).status == Status.PASS


def test_params_are_validated() -> None:
    with pytest.raises(pydantic.ValidationError, match="fields needs origin, timestamp for format jsonl"):
        LogContent.Params.model_validate({"path": "x", "format": "jsonl", "fields": SYSLOG_FIELDS})
    with pytest.raises(pydantic.ValidationError, match="fields needs actor for format syslog"):
        LogContent.Params.model_validate({"path": "x", "format": "syslog",
                                          "fields": {k: v for k, v in SYSLOG_FIELDS.items() if k != "actor"}})
    with pytest.raises(pydantic.ValidationError, match="not a valid regular expression"):
        LogContent.Params.model_validate({"path": "x", "format": "syslog", "fields": {**SYSLOG_FIELDS, "actor": "("}})
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        LogContent.Params.model_validate({"path": "x", "format": "jsonl", "fields": {**JSON_FIELDS, "who": "x"}})
    with pytest.raises(pydantic.ValidationError):
        LogContent.Params.model_validate({"path": "x", "format": "xml", "fields": JSON_FIELDS})
    with pytest.raises(pydantic.ValidationError, match="non-empty"):
        LogContent.Params.model_validate({"path": "x", "format": "jsonl", "fields": {**JSON_FIELDS, "actor": []}})


def test_unreadable_log_is_an_error(tmp_path: Path) -> None:
    # root reads every file, so as root the check runs in a child process that became nobody, in a
    # folder nobody may enter (pytest's tmp_path is private to root)
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="log-content-"))
    try:
        base.chmod(0o755)
        log = write(base / "audit.jsonl", [event(1)])
        log.chmod(0)
        params = LogContent.Params.model_validate({"path": str(log), "format": "jsonl", "fields": JSON_FIELDS})
        status, message = run_as_nobody(LogContent(), params, Context("LOG", 5))
        assert status == "error", message
        assert message == f"Cannot read the log {log}: Permission denied."
    finally:
        shutil.rmtree(base)


def test_the_tail_read_is_bounded_for_a_log_without_line_ends(tmp_path: Path) -> None:
    from compliance.checks import log_content

    path = tmp_path / "one.log"
    path.write_bytes(b"a\n" + b"x" * (3 * log_content.BLOCK) + b"\nlast\n")
    original = log_content.MAX_READ
    log_content.MAX_READ = 2 * log_content.BLOCK
    try:
        assert tail_lines(str(path), 10) == (["last"], None)  # the huge line's start was never reached
    finally:
        log_content.MAX_READ = original
    assert tail_lines(str(path), 10)[0][0] == "a"
