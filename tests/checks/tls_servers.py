"""Real TLS servers for the tls tests and bench: `openssl s_server` (the system's OpenSSL) on loopback.

`OpenSslServer(cert, *args)` starts `openssl s_server -www` (with `www=False` an echo server) on 127.0.0.1
at a free port with a trustme certificate and the given options (`-cipher`, `-ciphersuites`, `-groups`,
`-dhparam`, `-no_tls1_3`, ...), waits until it accepts connections and stops it (and removes its files) on
exit. `GnuTlsServer` is `gnutls-serv` without secure renegotiation. `FakeHelloServer` is a tiny server
written here that answers a ClientHello with a chosen ServerHello (SSL 3.0, SSL 2.0, compression, no
renegotiation_info (RFC 5746)), which this machine's OpenSSL 3 cannot be made to do (SSL 3.0 and zlib are
compiled out, RFC 5746 is always on); it completes no handshake (an alert follows the ServerHello), which
is enough for the probes.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.servers import free_port, stop_process

OPENSSL = shutil.which("openssl") or "openssl"
LOOPBACK = "127.0.0.1"

#: The five servers of the tests and the bench (issue 16): name -> s_server options.
PROFILES: dict[str, list[str]] = {
    "good": ["-cipher", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305",
             "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
             "-groups", "X25519:P-256:P-384", "-no_tls1_1", "-no_tls1", "-serverpref"],
    "rsa_kex": ["-cipher", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256",
                "-groups", "X25519:P-256", "-no_tls1_1", "-no_tls1", "-serverpref"],
    "tls10_only": ["-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0"],
    "weak_dh": ["-cipher", "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256", "-no_tls1_3",
                "-no_tls1_1", "-no_tls1", "-serverpref", "-dhparam", "{ffdhe2048}"],
}



def _wait_for(port: int, process: subprocess.Popen[bytes] | None, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"openssl s_server exited: {process.stderr.read().decode()[-500:]}"
                               if process.stderr else "openssl s_server exited")
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class OpenSslServer:
    """`openssl s_server -www` with a trustme certificate on a free loopback port."""

    def __init__(self, cert: Any, *args: str, www: bool = True) -> None:
        self.cert, self.args, self.www = cert, list(args), www
        self.port = 0
        self.folder = ""
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OpenSslServer:
        self.folder = tempfile.mkdtemp(prefix="tls-sserver-")
        cert_file, key_file = Path(self.folder) / "cert.pem", Path(self.folder) / "key.pem"
        self.cert.cert_chain_pems[0].write_to_path(str(cert_file))
        self.cert.private_key_pem.write_to_path(str(key_file))
        args = []
        for arg in self.args:
            if arg.startswith("{") and arg.endswith("}"):  # a DH group or size: a -dhparam file made here
                arg = self._dhparam(arg[1:-1])
            args.append(arg)
        for _attempt in range(3):
            self.port = free_port()
            self.process = subprocess.Popen(
                [OPENSSL, "s_server", "-accept", f"{LOOPBACK}:{self.port}", "-cert", str(cert_file), "-key",
                 str(key_file), *(["-www"] if self.www else []), "-quiet", "-naccept", "100000", *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                _wait_for(self.port, self.process)
                return self
            except RuntimeError:
                self._stop()
        raise RuntimeError(f"could not start openssl s_server {' '.join(self.args)}")

    def _dhparam(self, spec: str) -> str:
        path = str(Path(self.folder) / f"{spec}.pem")
        if spec.startswith("ffdhe"):
            command = [OPENSSL, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", f"group:{spec}", "-out", path]
        else:  # a size: an own group (1024 bits takes well under a second)
            command = [OPENSSL, "dhparam", "-out", path, spec]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        return path

    def _stop(self) -> None:
        stop_process(self.process)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def __exit__(self, *_: object) -> None:
        self._stop()
        shutil.rmtree(self.folder, ignore_errors=True)


GNUTLS_SERV = shutil.which("gnutls-serv")
#: A TLS 1.2 server without secure renegotiation (RFC 5746): GnuTLS can still be told so.
NO_SECURE_RENEGOTIATION = ("NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:-KX-ALL:+ECDHE-RSA:"
                           "%DISABLE_SAFE_RENEGOTIATION:%SERVER_PRECEDENCE")


class GnuTlsServer:
    """`gnutls-serv --http` (package gnutls-bin) with a trustme certificate and a GnuTLS priority string.

    gnutls-serv has no option to bind loopback only: it listens on all addresses at a free port, for the
    few seconds of a test."""

    def __init__(self, cert: Any, priority: str = NO_SECURE_RENEGOTIATION) -> None:
        self.cert, self.priority = cert, priority
        self.port = 0
        self.folder = ""
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GnuTlsServer:
        if GNUTLS_SERV is None:
            raise RuntimeError("gnutls-serv is not installed (Debian package gnutls-bin)")
        self.folder = tempfile.mkdtemp(prefix="tls-gnutls-")
        cert_file, key_file = Path(self.folder) / "cert.pem", Path(self.folder) / "key.pem"
        self.cert.cert_chain_pems[0].write_to_path(str(cert_file))
        self.cert.private_key_pem.write_to_path(str(key_file))
        for _attempt in range(3):
            self.port = free_port()
            self.process = subprocess.Popen(
                [GNUTLS_SERV, "--http", "-p", str(self.port), "--x509certfile", str(cert_file), "--x509keyfile",
                 str(key_file), "--priority", self.priority],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _wait_for(self.port, self.process)
                return self
            except RuntimeError:
                self.__exit__()
                self.folder = tempfile.mkdtemp(prefix="tls-gnutls-")
                self.cert.cert_chain_pems[0].write_to_path(str(cert_file := Path(self.folder) / "cert.pem"))
                self.cert.private_key_pem.write_to_path(str(key_file := Path(self.folder) / "key.pem"))
        raise RuntimeError("could not start gnutls-serv")

    def __exit__(self, *_: object) -> None:
        stop_process(self.process)
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)


class FakeHelloServer:
    """Answers a ClientHello for exactly `version` that offers `suite` with a ServerHello (no extensions
    unless given: so no renegotiation_info, no extended master secret) and then a handshake_failure alert;
    anything else with the alert. `compression` is picked when the client offers it; `sslv2=True` also
    answers an SSL 2.0 CLIENT-HELLO with a SERVER-HELLO. What no OpenSSL 3 server can be made to do (SSL 2.0
    and 3.0, compression and no RFC 5746 are compiled out or always on); enough for the probes, no handshake
    completes."""

    ALERT = b"\x15\x03\x03\x00\x02\x02\x28"

    def __init__(self, *, version: int = 0x0303, suite: int = 0xC02F, compression: int = 0,
                 extensions: bytes = b"", sslv2: bool = False) -> None:
        self.version, self.suite, self.compression, self.extensions = version, suite, compression, extensions
        self.sslv2 = sslv2
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeHelloServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                data = conn.recv(2)
                if len(data) == 2 and data[0] & 0x80:  # SSL 2.0
                    if self.sslv2:
                        body = b"\x04\x00\x01\x00\x02" + bytes(6)
                        conn.sendall(struct.pack("!H", 0x8000 | len(body)) + body)
                    return
                while len(data) < 5 or len(data) < 5 + struct.unpack("!H", data[3:5])[0]:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                hello = _client_hello_fields(data[5:])
                if hello["version"] != self.version or self.suite not in hello["suites"] or hello["tls13"]:
                    conn.sendall(self.ALERT)
                    return
                compression = self.compression if self.compression in hello["compression"] else 0
                body = (struct.pack("!H", self.version) + os.urandom(32) + b"\x00"
                        + struct.pack("!HB", self.suite, compression))
                if self.version > 0x0300:
                    body += struct.pack("!H", len(self.extensions)) + self.extensions
                message = b"\x02" + struct.pack("!I", len(body))[1:] + body
                conn.sendall(b"\x16" + struct.pack("!HH", self.version, len(message)) + message + self.ALERT)
            except OSError:
                return


def _client_hello_fields(handshake: bytes) -> dict[str, Any]:
    version = struct.unpack("!H", handshake[4:6])[0]
    at = 4 + 2 + 32
    at += 1 + handshake[at]
    length = struct.unpack("!H", handshake[at:at + 2])[0]
    suites = [struct.unpack("!H", handshake[i:i + 2])[0] for i in range(at + 2, at + 2 + length, 2)]
    at += 2 + length
    compression = list(handshake[at + 1:at + 1 + handshake[at]])
    at += 1 + handshake[at]
    tls13 = False
    if at + 2 <= len(handshake):
        end = at + 2 + struct.unpack("!H", handshake[at:at + 2])[0]
        at += 2
        while at + 4 <= end:
            kind, size = struct.unpack("!HH", handshake[at:at + 4])
            tls13 = tls13 or kind == 43
            at += 4 + size
    return {"version": version, "suites": suites, "compression": compression, "tls13": tls13}
