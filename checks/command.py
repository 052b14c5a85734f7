"""`command`: a program exits with the expected code and, optionally, prints matching output.

For anything the other plugins do not cover: a script that checks accounts, a vendor CLI that reports
patch levels. The program runs directly (no shell) with the monitor's own user rights, so only put
`command` checks in control files that you trust as much as the monitor itself: whoever can edit the
controls can run programs as the monitor. It runs in a process group of its own; when it exceeds its
timeout the whole group (the program and whatever it started) is stopped, SIGTERM first and SIGKILL after
a grace, and the check is an error. `expect_output` is a regular expression searched in standard output.

Example::

    id: ACCOUNTS-01
    title: No local accounts without a password
    theme: technological
    references: {bio2: "8.5", iso27002: "8.5"}
    severity: high
    checks:
      - plugin: command
        params:
          run: [/usr/local/bin/check-empty-passwords]
          expect_exit: 0
          expect_output: "^OK"
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

from pydantic import Field

from compliance.api import Check, Context, Message, Params, Regex, Result

OUTPUT_KEPT = 2000
STOP_GRACE = 2.0  # seconds between SIGTERM and SIGKILL to a program's process group

_groups_lock = threading.Lock()
_running_groups: set[int] = set()  # process groups of programs running now, ended when the monitor exits


class CommandParams(Params):
    run: list[str] = Field(min_length=1)
    expect_exit: int = 0
    expect_output: Regex | None = None
    cwd: str | None = None


class Command(Check):
    name = "command"
    Params = CommandParams

    def run(self, params: CommandParams, ctx: Context) -> Iterator[Result]:
        target = shlex.join(params.run)
        cwd = ctx.resolve(params.cwd) if params.cwd else ctx.base_dir
        try:
            done = _run(params.run, cwd=cwd, timeout=max(ctx.remaining(), 0.1))
        except FileNotFoundError:
            yield Result.errored(target, Message("Program %(program)s was not found.", program=params.run[0]))
            return
        except PermissionError:
            yield Result.errored(target, Message("Program %(program)s may not be run (permission denied).",
                                                 program=params.run[0]))
            return
        except subprocess.TimeoutExpired:
            yield Result.errored(target, Message("%(target)s did not finish within %(seconds)s s and was stopped.",
                                                 target=target, seconds=format(ctx.timeout, "g")))
            return
        evidence = {"exit": done.returncode, "stdout": done.stdout[-OUTPUT_KEPT:], "stderr": done.stderr[-OUTPUT_KEPT:]}
        if done.returncode != params.expect_exit:
            yield Result.failed(target,
                                Message("%(target)s exited with %(exit)d, expected %(expected)d.", target=target,
                                                exit=done.returncode, expected=params.expect_exit),
                                **evidence)
        elif params.expect_output is not None and not re.search(params.expect_output, done.stdout, re.MULTILINE):
            yield Result.failed(target, Message("Output of %(target)s does not match %(pattern)s.", target=target,
                                                pattern=repr(params.expect_output)), **evidence)
        else:
            yield Result.passed(target, Message("%(target)s exited with %(exit)d as expected.", target=target,
                                                exit=done.returncode), **evidence)


def _run(argv: list[str], *, cwd: str | None, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run argv in a new session (its own process group); on timeout end the whole group and raise.

    A program's children stay in its group unless they leave it on purpose, so stopping the group also
    stops a grandchild that a script left running (which would otherwise hold the output pipes open).
    """
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               text=True, errors="replace", cwd=cwd, start_new_session=True)
    with _groups_lock:
        _running_groups.add(process.pid)
    try:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(process)
            raise
        except BaseException:  # the scan itself is stopping: leave nothing behind
            _stop_group(process)
            raise
    finally:
        with _groups_lock:
            _running_groups.discard(process.pid)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _stop_group(process: subprocess.Popen[str], grace: float = STOP_GRACE) -> None:
    """SIGTERM to every process of the program's group, SIGKILL to what is left after `grace` seconds;
    then collect the program and close its pipes (a process that left the group may still hold them)."""
    pgid = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the program itself, or as a zombie it keeps the group alive
        if not _group_exists(pgid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    try:
        process.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()


def _group_exists(pgid: int) -> bool:
    """Whether a process of the group still runs. On Linux zombies do not count: they are dead, and are
    collected by whoever inherited them, possibly later."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


@atexit.register
def _stop_running_groups() -> None:
    """When the monitor exits (Ctrl-C, the daemon stopping), end the programs its checks still run."""
    with _groups_lock:
        groups = list(_running_groups)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
