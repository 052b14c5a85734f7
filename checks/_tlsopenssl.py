"""What needs a full TLS handshake, through the system's `openssl s_client`: client-initiated renegotiation
and TLS 1.3 early data (0-RTT). Each run is bounded in time; without an `openssl` program, or when the run
fails in an unexpected way, the answer is "not tested (...)", never a verdict.

- Client-initiated renegotiation (TLS 1.0-1.2): `s_client -msg` with `R` on its input asks for a new
  handshake; the server accepted when a second ServerHello arrives (`-msg` traces the handshake messages,
  also the encrypted ones of the renegotiation). internet.nl shows this as information.
- 0-RTT (TLS 1.3, web servers): a first connection sends an HTTP request and keeps the session ticket
  (`-sess_out`); a second resumes it and sends the request again as early data (`-sess_in -early_data`).
  s_client says "Early data was accepted", "rejected" or "not sent" (the ticket allows none).
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable


def _openssl() -> str | None:
    return shutil.which("openssl")


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _run(args: list[str], data: bytes, timeout: float, done: Callable[[str], bool]) -> str:
    """Run s_client with `data` on its input until `done(output so far)`, it exits or the time is up; then
    stop it (s_client sleeps half a second before it exits, which a scan need not wait for; what it prints at
    the end comes only then, as its output to a pipe is buffered)."""
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdin is not None and process.stdout is not None
    output = b""
    deadline = time.monotonic() + timeout
    try:
        try:
            process.stdin.write(data)
            process.stdin.close()
        except OSError:
            pass
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not selector.select(min(left, 0.02)):
                    if done(output.decode("utf-8", "replace")):  # e.g. a file s_client writes
                        break
                    continue
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
                if done(output.decode("utf-8", "replace")):
                    break
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
    return output.decode("utf-8", "replace")


def client_renegotiation(host: str, port: int, *, server_name: str | None, starttls: str | None,
                         timeout: float) -> str:
    """"accepted", "refused" or "not tested (why)"."""
    openssl = _openssl()
    if openssl is None:
        return "not tested (no openssl program)"
    args = [openssl, "s_client", "-connect", _target(host, port), "-no_tls1_3", "-msg", "-no_ign_eof",
            "-legacy_renegotiation", "-cipher", "ALL:@SECLEVEL=0"]
    if server_name:
        args += ["-servername", server_name]
    if starttls:
        args += ["-starttls", starttls]
    def finished(text: str) -> bool:
        after = text.split("RENEGOTIATING", 1)[1] if "RENEGOTIATING" in text else ""
        return "ServerHello" in after or ":error:" in after or "DONE" in after

    output = _run(args, b"R\n", timeout, finished)
    if "RENEGOTIATING" not in output:
        return "not tested (no TLS 1.0-1.2 session)"
    # a ServerHello (or ServerHelloDone) after the request: the server went along with the new handshake
    return "accepted" if "ServerHello" in output.split("RENEGOTIATING", 1)[1] else "refused"


def zero_rtt(host: str, port: int, *, server_name: str | None, timeout: float) -> str:
    """"accepted", "rejected", "not offered" (the ticket allows no early data), or "not tested (why)"."""
    openssl = _openssl()
    if openssl is None:
        return "not tested (no openssl program)"
    request = (f"GET / HTTP/1.1\r\nHost: {server_name or host}\r\nConnection: close\r\n\r\n").encode()
    base = [openssl, "s_client", "-connect", _target(host, port), "-tls1_3"]
    if server_name:
        base += ["-servername", server_name]
    with tempfile.TemporaryDirectory(prefix="tls-0rtt-") as folder:
        session, early = os.path.join(folder, "session.pem"), os.path.join(folder, "request")
        with open(early, "wb") as file:
            file.write(request)
        _run([*base, "-sess_out", session, "-ign_eof", "-quiet"], request, timeout / 2,
             lambda _text: os.path.exists(session) and os.path.getsize(session) > 0)
        if not os.path.exists(session) or os.path.getsize(session) == 0:
            return "not tested (no TLS 1.3 session ticket)"
        output = _run([*base, "-sess_in", session, "-early_data", early], b"", timeout / 2,
                      lambda text: "Early data was" in text)
    if "Early data was accepted" in output:
        return "accepted"
    if "Early data was rejected" in output:
        return "rejected"
    if "Early data was not sent" in output:
        return "not offered"
    return "not tested (the resumption failed)"
