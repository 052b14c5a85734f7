"""`command`: a program exits with the expected code and, optionally, prints matching output.

For anything the other plugins do not cover: a script that checks accounts, a vendor CLI that reports
patch levels. The program runs directly (no shell) with the monitor's own user rights, so only put
`command` checks in control files that you trust as much as the monitor itself: whoever can edit the
controls can run programs as the monitor. It is stopped when it exceeds its timeout, which is then an
error. `expect_output` is a regular expression searched in standard output.

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

import re
import shlex
import subprocess
from collections.abc import Iterator

from pydantic import Field

from compliance.api import Check, Context, Message, Params, Regex, Result

OUTPUT_KEPT = 2000


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
            done = subprocess.run(params.run, capture_output=True, text=True, errors="replace",
                                  timeout=max(ctx.remaining(), 0.1), cwd=cwd, stdin=subprocess.DEVNULL)
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
