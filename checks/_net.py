"""Shared plumbing of the network checks: time budgets, TLS contexts, an HTTP client, DNS resolvers.

Not a plugin. Every network check takes `timeout`, and the TLS and DNS ones `ca_file` and
`nameserver`; a parameter overrides the configuration's default from the `Context`.
"""

from __future__ import annotations

import functools
import importlib
import socket
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from compliance.api import Context, Message

if TYPE_CHECKING:  # imported where used: loading a plugin to read its parameters stays cheap
    import ssl
    from email.message import Message as Headers

    import dns.resolver

#: Sent with every HTTP request, so that web masters can recognise the monitor in their logs.
USER_AGENT = "compliance-monitor (internet standards check)"

#: The modules the checks run with, by library; imported by `load_libraries`, not when a plugin is loaded.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "http": ("http.client", "ssl"),
    "dns": ("dns.dnssec", "dns.exception", "dns.flags", "dns.message", "dns.name", "dns.query", "dns.rdataclass",
            "dns.rdatatype", "dns.resolver", "dns.rrset"),
    "cryptography": ("cryptography.exceptions", "cryptography.x509", "cryptography.hazmat.primitives.asymmetric.dsa",
                     "cryptography.hazmat.primitives.asymmetric.ec", "cryptography.hazmat.primitives.asymmetric.ed448",
                     "cryptography.hazmat.primitives.asymmetric.ed25519",
                     "cryptography.hazmat.primitives.asymmetric.rsa", "cryptography.hazmat.primitives.serialization"),
    "paramiko": ("paramiko", "paramiko.kex_curve25519"),
    "ldap3": ("ldap3",),
}
#: Warnings silenced while a library is imported (`warnings.filterwarnings("ignore", **f)`): pyasn1 >= 0.6
#: warns about names ldap3 2.9 still uses.
HUSHED: dict[str, tuple[dict[str, Any], ...]] = {
    "ldap3": ({"category": DeprecationWarning, "module": r"ldap3\..*|pyasn1\..*"},
              {"category": DeprecationWarning, "message": r".*(tagMap|typeMap) is deprecated"}),
}
_libraries_lock = threading.Lock()
_libraries_loaded: set[str] = set()


def load_libraries(*libraries: str) -> None:
    """Import the modules of `libraries` (keys of LIBRARIES) once per process, one thread at a time.

    Plugins import dnspython, cryptography and paramiko where a check runs, so that loading a plugin to
    read its parameters (`controls list`) stays fast. Checks run in threads, and two threads importing
    parts of one package at the same time can see it half initialised; a check calls this first.
    """
    if _libraries_loaded.issuperset(libraries):
        return
    with _libraries_lock:
        for library in libraries:
            if library not in _libraries_loaded:
                with warnings.catch_warnings():  # under the lock: catch_warnings is not thread-safe
                    for hushed in HUSHED.get(library, ()):
                        warnings.filterwarnings("ignore", **hushed)
                    for module in LIBRARIES[library]:
                        importlib.import_module(module)
                _libraries_loaded.add(library)


def budget(timeout: float | None, ctx: Context) -> float:
    """Seconds one network operation may take: the parameter, else the config, within the check's budget."""
    wanted = timeout if timeout is not None else ctx.net_timeout
    left = ctx.remaining()
    return max(0.05, min(wanted, left) if left > 0 else wanted)


@functools.lru_cache(maxsize=32)
def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context that trusts the system store plus `ca_file`, shared between threads.

    Loading the system store costs milliseconds; a scan of hundreds of sites reuses one context.
    """
    load_libraries("http")
    import ssl

    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def ca_file_of(param: str | None, ctx: Context) -> str | None:
    """The CA bundle to trust besides the system store: the parameter, else the config's."""
    return ctx.resolve(param) if param else ctx.ca_file


def host_for_url(host: str) -> str:
    """A host as it is written in a URL: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True)
class Response:
    """One HTTP response: where it came from, its status, headers and (the start of) its body."""

    url: str
    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, or None when absent."""
        value = self.headers.get(name)
        return None if value is None else str(value)

    def location(self) -> str | None:
        """The absolute URL a redirect points to, or None when this is not a redirect."""
        target = self.header("Location")
        if self.status in (301, 302, 303, 307, 308) and target:
            return urljoin(self.url, target.strip())
        return None


class FetchError(Exception):
    """The HTTP request did not get a response. `kind`: resolve, refused, timeout, tls, protocol.

    `message` says why, as a `Message` where the words are ours (so a Dutch output shows it in Dutch);
    `str()` of the error is its English text.
    """

    def __init__(self, kind: str, message: Message | str) -> None:
        super().__init__(str(message))
        self.kind = kind
        self.message = message


def fetch(url: str, *, timeout: float, context: ssl.SSLContext | None, max_body: int = 64 * 1024) -> Response:
    """GET `url` once, without following redirects. Raises FetchError when there is no response."""
    load_libraries("http")
    import http.client
    import ssl

    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    try:
        port = parts.port
    except ValueError:
        raise FetchError("protocol", Message("%(url)s has an invalid port", url=url)) from None
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"})
        response = conn.getresponse()
        body = response.read(max_body)
        return Response(url, response.status, response.msg, body)
    except socket.gaierror as exc:
        raise FetchError("resolve", Message("cannot resolve %(host)s: %(reason)s", host=host,
                                            reason=str(exc.strerror or exc))) from None
    except ssl.SSLCertVerificationError as exc:
        raise FetchError("tls", Message("certificate not accepted: %(reason)s",
                                        reason=str(exc.verify_message or exc.reason))) from None
    except ssl.SSLError as exc:
        raise FetchError("tls", Message("TLS handshake failed: %(reason)s", reason=str(exc.reason or exc))) from None
    except ConnectionRefusedError:
        raise FetchError("refused", Message("connection refused")) from None
    except TimeoutError:
        raise FetchError("timeout", Message("no answer within %(seconds)s s", seconds=format(timeout, "g"))) from None
    except (http.client.HTTPException, OSError) as exc:
        raise FetchError("protocol", f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    finally:
        conn.close()


def nameserver_of(param: str | None, ctx: Context) -> str | None:
    """The resolver to ask: the parameter, else the config's, else None for the system's."""
    return param or ctx.nameserver


def host_and_port(value: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address into (host, port or None).

    Raises ValueError when the brackets or the port are wrong, with how to write it instead.
    """
    port: str | None = None
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise ValueError(f"'{value}' is not a host; write an IPv6 address with a port as [2001:db8::1]:8443")
        port = rest[1:] if rest else None
    elif value.count(":") == 1:
        host, port = value.split(":")
        if not host:
            raise ValueError(f"'{value}' has a port but no host; write it as vpn.gemeente.nl:8443")
    else:
        return value, None
    if port is None:
        return host, None
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"port '{port}' in '{value}' is not a number from 1 to 65535")
    return host, int(port)


def port_in_host(data: Any) -> Any:
    """Parameters with `host: name:port` split into `host` and `port` (a model validator's "before" step).

    `host: 127.0.0.1:8443` is natural to write in a target list. What cannot be split cleanly (a port that
    differs from the `port` parameter, a malformed host) is left for the host's own validator to report.
    """
    if not isinstance(data, dict) or not isinstance(data.get("host"), str):
        return data
    try:
        host, port = host_and_port(data["host"])
    except ValueError:
        return data
    if port is None:
        return {**data, "host": host}
    if data.get("port") is None or str(data["port"]) == str(port):
        return {**data, "host": host, "port": port}
    return data


def plain_host(value: str) -> str:
    """The host of a `host` parameter that still carries a port (one the `port` parameter contradicts)."""
    host, port = host_and_port(value.strip())
    if port is not None:
        raise ValueError(f"'{value}' gives port {port} and the port parameter another; give the port once")
    if not host:
        raise ValueError("the host is empty")
    return host


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address into (host, port)."""
    host, port = host_and_port(value)
    return host, default_port if port is None else port


def resolver(nameserver: str | None, timeout: float) -> dns.resolver.Resolver:
    """A dnspython resolver: the given `host[:port]`, or the system's when None."""
    load_libraries("dns")
    import dns.resolver

    if nameserver is None:
        res = dns.resolver.Resolver()
    else:
        host, port = split_hostport(nameserver, 53)
        res = dns.resolver.Resolver(configure=False)
        if not is_address(host):
            host = str(socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)[0][4][0])
        res.nameservers = [host]
        res.port = port
    res.timeout = timeout
    res.lifetime = timeout
    return res


def is_address(host: str) -> bool:
    """Whether host is an IP address rather than a name."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
