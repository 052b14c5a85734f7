"""Real servers on loopback for tests, demos and benchmarks: TLS (optionally SMTP STARTTLS), HTTP(S), DNS.

Every server binds 127.0.0.1 on a port the system chooses, runs in daemon threads, and is a context
manager: `with HttpServer(routes) as web: fetch(web.url + "/")`. Each can delay its answers to
imitate the internet (`delay=0.05`). Nothing here talks to anything but loopback.

- `TlsServer(context)`: completes TLS handshakes (after an SMTP EHLO/STARTTLS exchange with
  `smtp=True`) and then closes. `server_context(cert, versions=..., legacy=...)` builds its context.
- `HttpServer(routes, context=None)`: answers GET from a table `path -> Reply` (or a function),
  over HTTPS when given a context.
- `DnsServer(zone_text)`: answers UDP queries from a zone in master-file format, with RRSIGs when
  the query sets DO, optionally the AD flag (imitating a validating resolver) or SERVFAIL for bogus
  names.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

LOOPBACK = "127.0.0.1"


def server_context(cert: Any, versions: Iterable[ssl.TLSVersion] | None = None, *, legacy: bool = False,
                   ciphers: str | None = None) -> ssl.SSLContext:
    """A server context for a trustme `LeafCert`, limited to `versions` (lowest to highest).

    `legacy=True` lowers OpenSSL's security level so that TLS 1.0/1.1 can be negotiated; Python warns
    that these versions are deprecated, which is filtered here, narrowly, because that is the point.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"ssl\.TLSVersion\.TLSv1", category=DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        if legacy or ciphers:
            context.set_ciphers(ciphers or "DEFAULT:@SECLEVEL=0")
        if versions is not None:
            chosen = sorted(versions)
            context.minimum_version, context.maximum_version = chosen[0], chosen[-1]
    return context


class _Listener:
    """A TCP listener on loopback that hands each connection to `handle` in a thread of its own."""

    def __init__(self) -> None:
        self._sock = socket.create_server((LOOPBACK, 0), backlog=1024)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"{type(self).__name__}-{self.port}")

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        self._sock.settimeout(0.05)  # look at the stop flag now and then
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=self._guarded, args=(conn,), daemon=True).start()

    def _guarded(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            with contextlib.suppress(OSError, ssl.SSLError, ValueError):  # scanners give up half-way
                self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class TlsServer(_Listener):
    """Completes a TLS handshake on every connection, optionally after SMTP's EHLO and STARTTLS.

    `smtp=True` greets with 220, answers EHLO (offering STARTTLS unless `offer_starttls=False`) and
    STARTTLS, like a mail server on port 25. `handshakes` counts the completed handshakes.
    """

    def __init__(self, context: ssl.SSLContext, *, smtp: bool = False, offer_starttls: bool = True,
                 delay: float = 0.0) -> None:
        super().__init__()
        self.context = context
        self.smtp = smtp
        self.offer_starttls = offer_starttls
        self.delay = delay
        self.handshakes = 0

    def handle(self, conn: socket.socket) -> None:
        if self.delay:
            time.sleep(self.delay)
        if self.smtp:
            reader = conn.makefile("rb")
            conn.sendall(b"220 mail.test ESMTP ready\r\n")
            while True:
                line = reader.readline(1024).strip().upper()
                if not line or line == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                if line.startswith((b"EHLO", b"HELO")):
                    extensions = [b"SIZE 10240000", *([b"STARTTLS"] if self.offer_starttls else []), b"8BITMIME"]
                    reply = b"250-mail.test\r\n" + b"".join(
                        (b"250 " if i == len(extensions) - 1 else b"250-") + ext + b"\r\n"
                        for i, ext in enumerate(extensions))
                    conn.sendall(reply)
                elif line == b"STARTTLS" and self.offer_starttls:
                    conn.sendall(b"220 go ahead\r\n")
                    break
                else:
                    conn.sendall(b"502 command not implemented\r\n")
        with self.context.wrap_socket(conn, server_side=True) as tls:
            self.handshakes += 1
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.recv(1)  # wait for the client to close


@dataclass(frozen=True)
class Reply:
    """What an `HttpServer` answers for a path."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


Routes = Mapping[str, Reply] | Callable[[str, str], Reply | None]


class HttpServer:
    """HTTP/1.1 (HTTPS with `context`) on loopback answering GET from `routes`; unknown paths get 404.

    `routes` maps a path to a `Reply`, or is a function `(path, host header) -> Reply | None`.
    `requests` records (path, host) of every request.
    """

    def __init__(self, routes: Routes, *, context: ssl.SSLContext | None = None, delay: float = 0.0) -> None:
        self.routes = routes
        self.delay = delay
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                if server.delay:
                    time.sleep(server.delay)
                reply = server.reply(self.path, self.headers.get("Host", ""))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *_: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that hang up (scanners do) are not errors of the test

        self._httpd = Server((LOOPBACK, 0), Handler)
        if context is not None:
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True,
                                                     do_handshake_on_connect=False)
        self.port: int = self._httpd.server_address[1]
        self.scheme = "https" if context is not None else "http"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"HttpServer-{self.port}")

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: `https://127.0.0.1:PORT`."""
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    def reply(self, path: str, host: str) -> Reply:
        found = self.routes(path, host) if callable(self.routes) else self.routes.get(path.split("?")[0])
        return found or Reply(404, {"Content-Type": "text/plain"}, b"not found\n")

    def __enter__(self) -> HttpServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class DnsServer:
    """An authoritative-style DNS server on loopback (UDP) serving one or more zones from text.

    Answers from the zone data: records of the asked type (with their RRSIGs when the query sets the
    DO bit), NOERROR without records for names that exist with other types or only have names below
    them (empty non-terminals), NXDOMAIN otherwise, REFUSED outside its zones. To imitate a
    validating resolver it sets the AD flag on answers under `validated` zones and answers SERVFAIL
    for names under `bogus` zones unless the query sets CD. `queries` counts the questions answered.
    """

    def __init__(self, zones: Mapping[str, str] | str, *, origin: str | None = None, delay: float = 0.0,
                 validated: Iterable[str] = (), bogus: Iterable[str] = ()) -> None:
        if isinstance(zones, str):
            zones = {origin or _origin_of(zones): zones}
        self.zones = {dns.name.from_text(o): dns.zone.from_text(text, origin=o, relativize=False, check_origin=False)
                      for o, text in zones.items()}
        self.delay = delay
        self.validated = [dns.name.from_text(z) for z in validated]
        self.bogus = [dns.name.from_text(z) for z in bogus]
        self.queries = 0
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                try:
                    answer = server.answer(dns.message.from_wire(data))
                except Exception:
                    return
                if server.delay:
                    time.sleep(server.delay)
                sock.sendto(answer.to_wire(max_size=65535), self.client_address)

        class Server(socketserver.ThreadingUDPServer):
            daemon_threads = True

        self._udp = Server((LOOPBACK, 0), Handler)
        self.port: int = self._udp.server_address[1]
        self._thread = threading.Thread(target=self._udp.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"DnsServer-{self.port}")

    @property
    def nameserver(self) -> str:
        """`127.0.0.1:PORT`, as a check's `nameserver` parameter takes it."""
        return f"{LOOPBACK}:{self.port}"

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._udp.shutdown()
        self._udp.server_close()
        self._thread.join(5)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        self.queries += 1
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        # DS records live in the parent zone (RFC 4035 3.1.4.1)
        candidates = [o for o in self.zones if qname.is_subdomain(o) and not (qtype == dns.rdatatype.DS and o == qname)]
        origin = max(candidates, key=len, default=None)
        if origin is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if any(qname.is_subdomain(z) for z in self.bogus) and not query.flags & dns.flags.CD:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        zone = self.zones[origin]
        want_dnssec = bool(query.ednsflags & dns.flags.DO)
        node = zone.get_node(qname)
        if node is not None:
            for rdataset in node.rdatasets:
                covers_wanted = rdataset.rdtype == dns.rdatatype.RRSIG and rdataset.covers == qtype
                if rdataset.rdtype == qtype or qtype == dns.rdatatype.ANY or (covers_wanted and want_dnssec):
                    rrset = dns.rrset.RRset(qname, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
                    rrset.update(rdataset)
                    response.answer.append(rrset)
        elif not any(name.is_subdomain(qname) for name in zone.nodes):
            response.set_rcode(dns.rcode.NXDOMAIN)
        if not response.answer and response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            soa = zone.get_rdataset(origin, dns.rdatatype.SOA)
            if soa is not None:  # the SOA in the authority section tells where the zone starts
                rrset = dns.rrset.RRset(origin, soa.rdclass, soa.rdtype)
                rrset.update(soa)
                response.authority.append(rrset)
        if any(qname.is_subdomain(z) for z in self.validated):
            response.flags |= dns.flags.AD
        return response


def _origin_of(zone_text: str) -> str:
    for line in zone_text.splitlines():
        if line.strip().upper().startswith("$ORIGIN"):
            return line.split()[1]
    raise ValueError("give the zone's origin: a $ORIGIN line or origin=")


def txt_record(value: str) -> str:
    """A TXT value in master-file form, split into quoted strings of at most 255 characters."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255)) or '""'


def signed_zone(origin: str, zone_text: str, *, lifetime: int = 86400) -> tuple[str, str]:
    """Sign a zone with a fresh ECDSA P-256 key (flags 257, algorithm 13): (signed zone text, DS record).

    The DS line (`<name> DS ...`) goes into the parent zone to complete the chain of trust.
    """
    import dns.dnssec
    from cryptography.hazmat.primitives.asymmetric import ec

    zone = dns.zone.from_text(zone_text, origin=origin, relativize=False, check_origin=False)
    key = ec.generate_private_key(ec.SECP256R1())
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257)
    dns.dnssec.sign_zone(zone, keys=[(key, dnskey)], lifetime=lifetime)
    ds = dns.dnssec.make_ds(origin, dnskey, "SHA256")
    return zone.to_text(relativize=False), f"{origin} DS {ds.to_text()}"


# --- IPv6 loopback (::1) helpers, for the ipv6, rpki and dane checks ------------------------------

LOOPBACK6 = "::1"


class DnsServerV6(DnsServer):
    """A `DnsServer` that listens on the IPv6 loopback `::1` (UDP) instead of 127.0.0.1.

    Same zones and options as `DnsServer`; `nameserver` is `[::1]:PORT`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handler: Any = self._udp.RequestHandlerClass
        self._udp.server_close()

        class Server6(socketserver.ThreadingUDPServer):
            daemon_threads = True
            address_family = socket.AF_INET6

        server6: Any = Server6((LOOPBACK6, 0), handler)
        self._udp = server6
        self.port = server6.server_address[1]
        self._thread = threading.Thread(target=self._udp.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"DnsServerV6-{self.port}")

    @property
    def nameserver(self) -> str:
        return f"[{LOOPBACK6}]:{self.port}"

    def __enter__(self) -> DnsServerV6:
        super().__enter__()
        return self


class TcpListenerV6(_Listener):
    """Accepts TCP connections on `::1` (a free port) and closes them: a service reachable over IPv6.

    `connections` counts the connections accepted.
    """

    def __init__(self) -> None:
        self._sock = socket.create_server((LOOPBACK6, 0), family=socket.AF_INET6, backlog=128)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"TcpListenerV6-{self.port}")
        self.connections = 0

    def handle(self, conn: socket.socket) -> None:
        self.connections += 1


def free_port(family: socket.AddressFamily = socket.AF_INET, kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on loopback that nothing listens on (bound once, then released)."""
    with socket.socket(family, kind) as sock:
        sock.bind((LOOPBACK6 if family == socket.AF_INET6 else LOOPBACK, 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any] | None, seconds: float = 5.0) -> None:
    """End a server process a test started: SIGTERM, and SIGKILL when it has not exited within `seconds`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(seconds)
