"""Run a check as an unprivileged user: root reads every file, so a test of "cannot read" needs one.

As root the check runs in a forked child that became nobody (uid and gid 65534); otherwise in this
process, which is unprivileged already.
"""

from __future__ import annotations

import os
from typing import Any

from compliance.api import Context


def run_as_nobody(check: Any, params: Any, ctx: Context) -> tuple[str, str]:
    """The status and message of the check's only result, run without root's rights."""
    if os.geteuid() != 0:
        [result] = check.run(params, ctx)
        return str(result.status), result.message
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(reader)
            os.setgid(65534)
            os.setuid(65534)
            [result] = check.run(params, ctx)
            os.write(writer, f"{result.status}|{result.message}".encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as answer:
        status, message = answer.read().split("|", 1)
    os.waitpid(pid, 0)
    return status, message
