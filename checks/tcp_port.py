"""`tcp_port`: a TCP port is open or closed as it must be, optionally with the expected banner.

Secure state: remote-access and file-sharing services (RDP 3389, SMB 445, telnet 23) are not
reachable from where they must not be, and required services answer (BIO2 / ISO 27002:2022 8.20
network security, 8.21 security of network services). A port that refuses the connection or does not
answer within the timeout counts as closed. With `banner`, an open port must also send a first line
that matches the regular expression (e.g. an SSH version), read until the first line ends, the
expression matches, or the time is up.

Example::

    id: NET-RDP
    title: RDP is not reachable on the file server
    theme: technological
    references: {bio2: "8.20", iso27002: "8.20"}
    severity: critical
    checks:
      - plugin: tcp_port
        params: {port: 3389, expect: closed}
        targets: [fileserver.gemeente.local]
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from compliance.api import Check, Context, Message, Params, Regex, Result


class TcpPortParams(Params):
    host: str
    port: int = Field(ge=1, le=65535)
    expect: Literal["open", "closed"] = "open"
    timeout: float = Field(3.0, gt=0)
    banner: Regex | None = None


class TcpPort(Check):
    name = "tcp_port"
    Params = TcpPortParams
    target_param = "host"

    def run(self, params: TcpPortParams, ctx: Context) -> Iterator[Result]:
        target = f"{params.host}:{params.port}"
        timeout = min(params.timeout, ctx.remaining() or params.timeout)
        try:
            sock = socket.create_connection((params.host, params.port), timeout=timeout)
        except socket.gaierror as exc:
            yield Result.errored(target, Message("Cannot resolve %(host)s: %(reason)s.", host=params.host,
                                                 reason=str(exc.strerror or exc)))
            return
        except (ConnectionRefusedError, TimeoutError, OSError) as exc:
            reason = Message("refused") if isinstance(exc, ConnectionRefusedError) else Message("no answer")
            evidence = {"open": False, "reason": str(reason)}
            if params.expect == "closed":
                yield Result.passed(target, Message("Port %(target)s is closed (%(reason)s), as required.",
                                                    target=target, reason=reason), **evidence)
            else:
                yield Result.failed(target, Message("Port %(target)s is closed (%(reason)s); it must be open.",
                                                    target=target, reason=reason), **evidence)
            return
        with sock:
            if params.expect == "closed":
                yield Result.failed(target,
                                    Message("Port %(target)s is open; it must be closed.", target=target), open=True)
                return
            if params.banner is None:
                yield Result.passed(target, Message("Port %(target)s is open, as required.", target=target), open=True)
                return
            banner = self._read_banner(sock, re.compile(params.banner), timeout)
            evidence = {"open": True, "banner": banner[:200]}
            if re.search(params.banner, banner):
                yield Result.passed(target,
                                    Message("Port %(target)s is open and its banner matches.", target=target),
                                        **evidence)
            else:
                shown = banner.splitlines()[0][:80] if banner else "nothing"
                yield Result.failed(target,
                            Message("Port %(target)s is open but sent %(banner)s, which does not match %(expected)s.",
                                            target=target, banner=repr(shown), expected=repr(params.banner)),
                                                **evidence)

    @staticmethod
    def _read_banner(sock: socket.socket, pattern: re.Pattern[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) < 4096:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(1024)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            data += chunk
            if b"\n" in data or pattern.search(data.decode("utf-8", "replace")):
                break  # the first line is complete, or already matches
        return data.decode("utf-8", "replace")
