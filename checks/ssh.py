"""`ssh`: an SSH server offers only sound algorithms and host keys, and no password login.

Secure state (BIO2 / ISO 27002:2022 8.24 use of cryptography, 8.05 secure authentication, 8.09
configuration management, 8.20/8.21 security of network services): remote administration over SSH
uses no key exchange, host key, cipher or MAC that `checks/ncsc_ssh.yaml` rates insufficient (one
profile per guideline version, `ssh_profile: ncsc-2025` by default: the NCSC TLS guideline's ratings of
the same building blocks carried over to SSH, with RFC 9142 and BSI TR-02102-4), RSA host keys have at
least 3072 bits, the server does not offer password login, and (with `sshd_config`) root login is off.

What it looks at, over the network and without an account:

- the server's identification string (`SSH-2.0-OpenSSH_9.6 ...`) and its key exchange offer
  (SSH_MSG_KEXINIT): every key exchange method, host key algorithm, cipher and MAC it offers, each
  rated. MACs are not rated when every offered cipher is an AEAD cipher (they are then never used);
- its host keys, one key exchange per key type (RSA, Ed25519, ECDSA), for their type and size;
- the authentication methods it offers to a made-up user (`probe_user`): the answer to a "none"
  login attempt lists them (RFC 4252, 5.2). `password` and `keyboard-interactive` are forbidden by
  default (`forbidden_auth_methods`); a server that lets the probe user in without authentication fails.
- optionally the output of `sshd -T` that a collector on the server writes to a file (`sshd_config`):
  `PermitRootLogin` must be `no` (or another value in `permit_root_login`), `PasswordAuthentication`
  and `PermitEmptyPasswords` must be `no`. Whether root may log in cannot be seen from outside: without
  this file the check reports root login as not checked. `sshd -T` shows the global settings, not what
  `Match` blocks change.

Verdicts: `fail` names every insufficient algorithm (and, with `phase_out_fails: true`, those to be
phased out), too small or DSA host keys, forbidden authentication methods and wrong sshd settings;
`error` when the server cannot be reached (name does not resolve, connection refused, no answer), does
not speak SSH, the sshd -T file is missing, malformed or too old, or a part that must be proven (the
size of an RSA host key, the authentication methods) could not be determined.

Example::

    id: NET-SSH
    title: SSH servers use sound cryptography and no passwords
    theme: technological
    references: {bio2: "8.24", iso27002: "8.24"}
    severity: high
    checks:
      - plugin: ssh
        params: {ssh_profile: ncsc-2025, phase_out_fails: false}
        targets: [bastion.gemeente.local, {host: sftp.gemeente.nl, port: 2222}]

A target (the `host` parameter) may carry its port: `sftp.gemeente.nl:2222`, or `[2001:db8::1]:2222`.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from importlib.resources import files
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from compliance.api import Check, Context, Duration, Message, Params, Result, Seconds, file_sha256, format_duration
from compliance.checks._net import budget, host_for_url, load_libraries, plain_host, port_in_host

#: What this check sends as its own identification string (RFC 4253, 4.2).
CLIENT_ID = b"SSH-2.0-compliance_monitor\r\n"
_MAX_PACKET = 64 * 1024  # a KEXINIT is a few kB; more is not SSH
_KEXINIT = 20
#: The ten name-lists of SSH_MSG_KEXINIT, in wire order (RFC 4253, 7.1).
KEXINIT_FIELDS = ("kex", "host_key", "ciphers_c2s", "ciphers_s2c", "macs_c2s", "macs_s2c",
                  "compression_c2s", "compression_s2c", "languages_c2s", "languages_s2c")
_AEAD = ("chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
_RANK = {"good": 0, "sufficient": 1, "phase_out": 2, "insufficient": 3}
_SHOWN = {"good": Message("good"), "sufficient": Message("sufficient"), "phase_out": Message("phase out"),
          "insufficient": Message("insufficient")}
_CATEGORY = {"kex": Message("key exchange"), "host_key": Message("host key algorithm"),
             "ciphers": Message("cipher"), "macs": Message("MAC")}
_LIST_CAP = 40
#: Host key types whose size is fetched with a key exchange: the algorithm names that select them.
_KEY_FAMILIES = {
    "rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "ed25519": ("ssh-ed25519",),
    "ecdsa-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-nistp521": ("ecdsa-sha2-nistp521",),
}
_ROOT_LOGIN = Literal["no", "prohibit-password", "without-password", "forced-commands-only", "yes"]


@functools.lru_cache(maxsize=1)
def profiles() -> dict[str, Any]:
    """The rating profiles from ncsc_ssh.yaml (package data)."""
    data = yaml.safe_load((files("compliance.checks") / "ncsc_ssh.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def profile(name: str) -> dict[str, Any]:
    return dict(profiles()["profiles"][name])


class SshParams(Params):
    host: str
    """The SSH server's name or address, optionally with its port (`sftp.gemeente.nl:2222`)."""
    port: int | None = Field(None, ge=1, le=65535)
    """Default 22; may also be given in `host`."""
    ssh_profile: str = "ncsc-2025"
    """Which ratings apply: a profile in checks/ncsc_ssh.yaml."""
    phase_out_fails: bool = False
    """Also fail on what the profile rates "phase out" (by default reported, not failed)."""
    probe_user: str = "compliance-probe"
    """The user name of the "none" login attempt that lists the authentication methods; best one that
    does not exist (OpenSSH answers an unknown user as it would a real one)."""
    forbidden_auth_methods: tuple[str, ...] = ("password", "keyboard-interactive")
    """Authentication methods the server must not offer; `[]` to not test them."""
    sshd_config: str | None = None
    """A file with the output of `sshd -T` on the server (written by a collector), for PermitRootLogin,
    PasswordAuthentication and PermitEmptyPasswords; relative to the config file's folder."""
    sshd_config_max_age: Duration = timedelta(days=2)
    """How old the sshd -T file may be (default 2d)."""
    permit_root_login: tuple[_ROOT_LOGIN, ...] = ("no",)
    """The PermitRootLogin values accepted in the sshd -T output (default only `no`)."""
    timeout: Seconds | None = None
    """Per connection; default the configuration's network timeout."""

    @model_validator(mode="before")
    @classmethod
    def _port_in_host(cls, data: Any) -> Any:
        return port_in_host(data)

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        return plain_host(value)

    @field_validator("ssh_profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        known = sorted(profiles()["profiles"])
        if value not in known:
            raise ValueError(f"unknown SSH profile '{value}'; known: {', '.join(known)}")
        return value

    @field_validator("probe_user")
    @classmethod
    def _plain_user(cls, value: str) -> str:
        if not value or len(value) > 64 or not value.isprintable() or any(c.isspace() for c in value):
            raise ValueError("the probe user must be 1 to 64 printable characters without spaces")
        return value

    @field_validator("forbidden_auth_methods")
    @classmethod
    def _known_methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = {"password", "keyboard-interactive", "publickey", "hostbased", "gssapi-with-mic", "gssapi-keyex"}
        unknown = [m for m in value if m not in known]
        if unknown:
            raise ValueError(f"unknown authentication method {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return value

    @field_validator("permit_root_login")
    @classmethod
    def _some_root_value(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one accepted PermitRootLogin value, e.g. [no]")
        return value


class _Why(Exception):
    """A reason as a `Message`, so that a Dutch output shows it in Dutch; `str()` reads it in English."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass
class ServerOffer:
    """What an SSH server says before any encryption: its identification string and its KEXINIT."""

    banner: str
    protocol: str
    software: str
    lists: dict[str, list[str]] = field(default_factory=dict)


# --- the unencrypted part of the protocol ---------------------------------------------------------

def read_offer(host: str, port: int, timeout: float) -> ServerOffer:
    """Connect, read the server's identification string and its SSH_MSG_KEXINIT, and hang up.

    Everything read here is sent in clear before the key exchange (RFC 4253, 4.2, 6 and 7.1), so no
    cryptography is needed. Raises `_Why` with the reason when the server cannot be reached or does
    not speak SSH.
    """
    seconds = format(round(timeout, 2), "g")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise _Why(Message("cannot resolve %(host)s: %(reason)s", host=host,
                           reason=str(exc.strerror or exc))) from None
    except ConnectionRefusedError:
        raise _Why(Message("connection refused")) from None
    except TimeoutError:
        raise _Why(Message("no answer within %(seconds)s s", seconds=seconds)) from None
    except OSError as exc:
        raise _Why(Message("cannot connect: %(reason)s", reason=str(exc.strerror or exc))) from None
    deadline = time.monotonic() + timeout
    with sock:
        reader = _Reader(sock, deadline)
        try:
            sock.sendall(CLIENT_ID)
            banner = _read_banner(reader, seconds)
            protocol = banner[4:].split("-", 1)[0]
            software = banner[4 + len(protocol) + 1:].split(" ", 1)[0]
            offer = ServerOffer(banner, protocol, software)
            if protocol not in ("2.0", "1.99"):
                return offer  # SSH-1 only: no KEXINIT to read
            offer.lists = parse_kexinit(_read_kexinit(reader, seconds))
            return offer
        except TimeoutError:
            raise _Why(Message("the server stopped answering within %(seconds)s s", seconds=seconds)) from None
        except (ConnectionError, OSError) as exc:
            raise _Why(Message("the connection broke: %(reason)s", reason=str(exc.strerror or exc))) from None


class _Reader:
    """Reads from a socket with one deadline for the whole conversation."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.buffer = sock, deadline, b""

    def more(self) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(4096)
        except ConnectionError:  # reset by the server: it has hung up
            raise EOFError from None
        if not chunk:
            raise EOFError
        self.buffer += chunk
        return chunk

    def take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.more()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def _read_banner(reader: _Reader, seconds: str) -> str:
    """The `SSH-` line; a server may send other lines before it (RFC 4253, 4.2)."""
    first: bytes | None = None  # the first line that was not the identification
    for _ in range(20):
        while b"\n" not in reader.buffer:
            try:
                if len(reader.buffer) > 8192:
                    raise EOFError
                reader.more()
            except (TimeoutError, EOFError) as exc:
                sent = first if first is not None else reader.buffer
                if sent:
                    raise _Why(Message("not an SSH server: it sent %(start)s", start=_shown(sent))) from None
                if isinstance(exc, TimeoutError):
                    raise _Why(Message("no SSH identification within %(seconds)s s", seconds=seconds)) from None
                raise _Why(Message("the server closed the connection without a word")) from None
        line, reader.buffer = reader.buffer.split(b"\n", 1)
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        if text.startswith("SSH-"):
            if len(text) > 255 or text.count("-") < 2:
                raise _Why(Message("malformed SSH identification %(start)s", start=_shown(line)))
            return text
        first = line if first is None else first
        if not text.isprintable():
            break
    raise _Why(Message("not an SSH server: it sent %(start)s", start=_shown(first or b"")))


def _read_kexinit(reader: _Reader, seconds: str) -> bytes:
    """The payload of the first binary packet, which must be SSH_MSG_KEXINIT."""
    try:
        length, padding = struct.unpack(">IB", reader.take(5))
        if not 5 <= length <= _MAX_PACKET or padding >= length:
            raise _Why(Message("malformed key exchange offer: %(reason)s", reason=f"packet length {length}"))
        payload = reader.take(length - 1)[: length - 1 - padding]
    except TimeoutError:
        raise _Why(Message("no key exchange offer within %(seconds)s s", seconds=seconds)) from None
    except EOFError:
        raise _Why(Message("the server closed the connection before its key exchange offer")) from None
    if not payload or payload[0] != _KEXINIT:
        raise _Why(Message("malformed key exchange offer: %(reason)s",
                           reason=f"message type {payload[0] if payload else 'none'}, not KEXINIT (20)"))
    return payload


def parse_kexinit(payload: bytes) -> dict[str, list[str]]:
    """The ten name-lists of an SSH_MSG_KEXINIT payload (message byte, 16-byte cookie, lists, ...)."""
    pos, lists = 17, {}
    for name in KEXINIT_FIELDS:
        if pos + 4 > len(payload):
            raise _Why(Message("malformed key exchange offer: %(reason)s", reason=f"{name} list missing"))
        (size,) = struct.unpack_from(">I", payload, pos)
        raw = payload[pos + 4: pos + 4 + size]
        if len(raw) != size:
            raise _Why(Message("malformed key exchange offer: %(reason)s", reason=f"{name} list cut short"))
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise _Why(Message("malformed key exchange offer: %(reason)s",
                               reason=f"{name} list is not ASCII")) from None
        lists[name] = [n for n in text.split(",") if n]
        pos += 4 + size
    return lists


def _shown(data: bytes) -> str:
    first = data.split(b"\n", 1)[0].rstrip(b"\r")[:60]
    return repr(first.decode("utf-8", "replace"))


# --- host keys and authentication methods, with paramiko ---------------------------------------------

@dataclass
class Probe:
    """What the key exchanges found: host keys per type, the offered authentication methods."""

    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    key_problems: dict[str, str] = field(default_factory=dict)
    methods: list[str] | None = None
    methods_problem: str | None = None


def _transport_class() -> Any:
    """paramiko's Transport, also knowing `curve25519-sha256` (RFC 8731), the same method as the
    `curve25519-sha256@libssh.org` it has, so that servers that offer only the RFC name are reached."""
    import paramiko
    from paramiko.kex_curve25519 import KexCurve25519

    base = vars(paramiko.Transport)  # the class's tables of algorithms, not in its type stubs

    class Transport(paramiko.Transport):
        if KexCurve25519.is_available():
            _preferred_kex = (*base["_preferred_kex"], "curve25519-sha256")
            _kex_info = {**base["_kex_info"], "curve25519-sha256": KexCurve25519}

    return Transport


def probe_server(host: str, port: int, offer: ServerOffer, probe_user: str, want_methods: bool,
                 timeout: Any) -> Probe:
    """One key exchange per host key type the server offers (for the key's type and size); on the
    first that succeeds, a "none" login as `probe_user` for the authentication methods.

    `timeout` is a function giving the seconds one connection may take.
    """
    import paramiko

    logging.getLogger("paramiko").addHandler(logging.NullHandler())  # its tracebacks are ours to report
    transport_class = _transport_class()
    result = Probe()
    offered = set(offer.lists.get("host_key", []))
    common_kex = [k for k in offer.lists.get("kex", []) if k in transport_class._preferred_kex]
    for family, names in _KEY_FAMILIES.items():
        wanted = [n for n in names if n in offered]
        if not wanted:
            continue
        if not common_kex:
            result.key_problems[family] = "no key exchange method in common with this check"
            continue
        disabled = [k for k in transport_class._preferred_keys if k not in wanted]
        transport = None
        try:
            seconds = timeout()
            sock = socket.create_connection((host, port), timeout=seconds)
            transport = transport_class(sock, disabled_algorithms={"keys": disabled})
            transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = seconds
            transport.start_client(timeout=seconds)
            key = transport.get_remote_server_key()
            result.keys[family] = {"type": key.get_name(), "bits": key.get_bits(),
                                   "fingerprint": key.fingerprint}
            if want_methods and result.methods is None:
                try:
                    transport.auth_none(probe_user)
                    result.methods = ["none"]  # let in without any authentication
                except paramiko.BadAuthenticationType as exc:
                    result.methods = [str(m) for m in exc.allowed_types]
                except (paramiko.SSHException, EOFError, OSError) as exc:
                    result.methods_problem = f"{type(exc).__name__}: {exc}"[:200]
        except (paramiko.SSHException, EOFError, OSError) as exc:
            result.key_problems[family] = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            if transport is not None:
                transport.close()
    if want_methods and result.methods is None and result.methods_problem is None:
        result.methods_problem = ("no key exchange succeeded" if result.key_problems
                                  else "no host key type in common with this check")
    return result


# --- ratings --------------------------------------------------------------------------------------

def rate(rules: dict[str, Any], category: str, name: str) -> str:
    """The rating of one algorithm name in a category (kex, host_key, ciphers, macs)."""
    for rating in ("good", "sufficient", "phase_out"):
        if any(fnmatchcase(name, pattern) for pattern in rules[category].get(rating) or []):
            return rating
    return "insufficient"


def rate_key_size(rules: dict[str, Any], family: str, bits: int) -> str | None:
    """The rating of a host key's size, or None when the type has no size rule (Ed25519, ECDSA)."""
    kind = "rsa" if family == "rsa" else "dsa" if family == "dsa" else None
    if kind is None:
        return None
    limits = rules.get("host_key_size", {}).get(kind) or {}
    for rating in ("good", "sufficient", "phase_out"):
        if rating in limits and bits >= limits[rating]:
            return rating
    return "insufficient"


def offered_algorithms(offer: ServerOffer) -> dict[str, list[str]]:
    """Per category the algorithms offered (both directions joined, in the server's order), markers left out."""
    markers = set(profiles().get("markers") or [])

    def joined(*names: str) -> list[str]:
        seen: dict[str, None] = {}
        for name in names:
            for algorithm in offer.lists.get(name, []):
                if algorithm not in markers:
                    seen[algorithm] = None
        return list(seen)

    return {"kex": joined("kex"), "host_key": joined("host_key"),
            "ciphers": joined("ciphers_c2s", "ciphers_s2c"), "macs": joined("macs_c2s", "macs_s2c")}


def read_sshd_dump(path: str) -> dict[str, str]:
    """`sshd -T` output as {lower-case keyword: value}; the first line of a keyword counts."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read(1 << 20)
    settings: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and not parts[0].startswith("#"):
            settings.setdefault(parts[0].lower(), parts[1].strip().lower())
    return settings


class Ssh(Check):
    """Algorithms, host keys and authentication methods of an SSH server, rated per ncsc_ssh.yaml."""

    name = "ssh"
    Params = SshParams
    target_param = "host"

    def run(self, params: SshParams, ctx: Context) -> Iterator[Result]:
        load_libraries("paramiko")
        port = params.port or 22
        target = f"{host_for_url(params.host)}:{port}"
        rules = profile(params.ssh_profile)
        title = {str(k): str(v) for k, v in rules["title"].items()}

        # the sshd -T file first: a missing or stale file is an error whatever the server offers
        dump: dict[str, str] | None = None
        dump_evidence: dict[str, Any] | None = None
        if params.sshd_config is not None:
            path = ctx.resolve(params.sshd_config)
            try:
                age = timedelta(seconds=max(0.0, time.time() - os.stat(path).st_mtime))
                dump = read_sshd_dump(path)
                digest = file_sha256(path)
            except OSError as exc:
                yield Result.errored(target, Message("Could not check SSH of %(target)s: the sshd -T output %(path)s "
                                                     "cannot be read (%(reason)s).", target=target, path=path,
                                                     reason=str(exc.strerror or exc)))
                return
            missing = [k for k in ("permitrootlogin", "passwordauthentication") if k not in dump]
            if missing:
                yield Result.errored(target, Message("Could not check SSH of %(target)s: %(path)s is not sshd -T "
                                                     "output (no %(setting)s line).", target=target, path=path,
                                                     setting=missing[0]))
                return
            if age > params.sshd_config_max_age:
                yield Result.errored(target, Message("Could not check SSH of %(target)s: the sshd -T output %(path)s "
                                                     "is %(age)s old (maximum %(maximum)s).", target=target,
                                                     path=path, age=format_duration(age),
                                                     maximum=format_duration(params.sshd_config_max_age)))
                return
            dump_evidence = {"path": path, "sha256": digest, "age": format_duration(age),
                             **{k: dump.get(k) for k in ("permitrootlogin", "passwordauthentication",
                                                          "permitemptypasswords", "kbdinteractiveauthentication",
                                                          "pubkeyauthentication", "usepam")}}

        try:
            offer = read_offer(params.host, port, budget(params.timeout, ctx))
        except _Why as exc:
            yield Result.errored(target, Message("Could not check SSH of %(target)s: %(reason)s.", target=target,
                                                 reason=exc.message), reachable=False)
            return

        evidence: dict[str, Any] = {"profile": params.ssh_profile, "banner": offer.banner[:200],
                                    "protocol": offer.protocol, "software": offer.software[:100]}
        problems: list[tuple[str, Message]] = []  # (rating, text)
        protocol_rating = rules["protocol"].get(offer.protocol, "insufficient")
        evidence["protocol_rating"] = protocol_rating
        if protocol_rating in ("phase_out", "insufficient"):
            problems.append((protocol_rating, Message("SSH protocol %(version)s (%(rating)s)",
                                                      version=offer.protocol, rating=_SHOWN[protocol_rating])))
        if not offer.lists:  # SSH-1 only: nothing more to see
            yield Result.failed(target, Message("SSH of %(target)s falls short of %(guideline)s: %(problems)s.",
                                                target=target, guideline=title, problems=[t for _, t in problems]),
                                **evidence)
            return

        algorithms = offered_algorithms(offer)
        aead_only = bool(algorithms["ciphers"]) and all(c in _AEAD for c in algorithms["ciphers"])
        for category, names in algorithms.items():
            if category == "macs" and aead_only:
                evidence["macs"] = {"not rated": "only AEAD ciphers are offered, so no MAC is ever used",
                                    "offered": names[:_LIST_CAP]}
                continue
            ratings = {name: rate(rules, category, name) for name in names}
            evidence[category] = dict(list(ratings.items())[:_LIST_CAP])
            for name, rating in ratings.items():
                if rating in ("phase_out", "insufficient"):
                    problems.append((rating, Message("%(category)s %(algorithm)s (%(rating)s)",
                                                     category=_CATEGORY[category], algorithm=name,
                                                     rating=_SHOWN[rating])))
            if not names:
                problems.append(("insufficient", Message("no %(category)s offered", category=_CATEGORY[category])))
        evidence["compression"] = sorted(set(offer.lists.get("compression_s2c", [])))[:10]

        # host keys (type, size) and authentication methods: key exchanges with paramiko
        want_methods = bool(params.forbidden_auth_methods)
        probe = probe_server(params.host, port, offer, params.probe_user, want_methods,
                             lambda: budget(params.timeout, ctx))
        unproven: list[Message | str] = []
        host_keys: list[dict[str, Any]] = []
        for family, key in probe.keys.items():
            info = dict(key)
            size_rating = rate_key_size(rules, family, int(key["bits"]))
            if size_rating is not None:
                info["size_rating"] = size_rating
                if size_rating in ("phase_out", "insufficient"):
                    minimum = (rules.get("host_key_size", {}).get(family) or {}).get("sufficient")
                    problems.append((size_rating, Message("RSA host key of %(bits)d bits (%(rating)s; minimum "
                                                          "%(minimum)s)", bits=int(key["bits"]),
                                                          rating=_SHOWN[size_rating], minimum=str(minimum or "-"))))
            host_keys.append(info)
        evidence["host_keys"] = host_keys
        if probe.key_problems:
            evidence["host_keys_not_determined"] = probe.key_problems
        # an RSA host key must be proven large enough: its size is only known after a key exchange
        if "rsa" not in probe.keys and any(n.startswith(("rsa-", "ssh-rsa", "x509v3-ssh-rsa", "x509v3-rsa"))
                                           for n in algorithms["host_key"]):
            why = probe.key_problems.get("rsa") or "no RSA host key algorithm this check can use (rsa-sha2-256/512)"
            unproven.append(Message("size of the RSA host key not determined (%(reason)s)", reason=why))

        if want_methods:
            auth: dict[str, Any] = {"probe_user": params.probe_user, "methods": probe.methods}
            if probe.methods is None:
                auth["problem"] = probe.methods_problem
                unproven.append(Message("authentication methods not determined (%(reason)s)",
                                        reason=probe.methods_problem or "?"))
            elif probe.methods == ["none"]:
                problems.append(("insufficient", Message("lets %(user)s in without any authentication",
                                                         user=params.probe_user)))
            else:
                bad = [m for m in probe.methods if m in params.forbidden_auth_methods]
                auth["forbidden_offered"] = bad
                if bad:
                    problems.append(("insufficient", Message("offers %(methods)s authentication",
                                                             methods=", ".join(bad))))
            evidence["authentication"] = auth

        if dump is not None and dump_evidence is not None:
            evidence["sshd_config"] = dump_evidence
            root = dump["permitrootlogin"]
            if root not in params.permit_root_login:
                problems.append(("insufficient", Message("root login allowed (PermitRootLogin %(value)s)",
                                                         value=root)))
            if dump["passwordauthentication"] != "no":
                problems.append(("insufficient", Message("password login on (PasswordAuthentication %(value)s)",
                                                         value=dump["passwordauthentication"])))
            if dump.get("permitemptypasswords", "no") != "no":
                problems.append(("insufficient", Message("empty passwords allowed (PermitEmptyPasswords %(value)s)",
                                                         value=dump["permitemptypasswords"])))

        failing: list[Message | str] = [t for r, t in problems if r == "insufficient" or params.phase_out_fails]
        notes: list[Message | str] = [t for r, t in problems if r == "phase_out" and not params.phase_out_fails]
        if failing:
            yield Result.failed(target, Message("SSH of %(target)s falls short of %(guideline)s: %(problems)s.",
                                                target=target, guideline=title, problems=failing), **evidence)
            return
        if unproven:
            yield Result.errored(target, Message("Could not fully check SSH of %(target)s: %(reasons)s.",
                                                 target=target, reasons=unproven), **evidence)
            return
        keys = ", ".join(f"{k['type']} {k['bits']}" for k in host_keys) or "-"
        findings: list[Message | str] = [Message("no insufficient algorithm offered"),
                                         Message("host keys %(keys)s", keys=keys)]
        if want_methods:
            findings.append(Message("authentication methods %(methods)s",
                                    methods=", ".join(probe.methods or []) or "-"))
        findings.append(Message("PermitRootLogin %(value)s (sshd -T)", value=dump["permitrootlogin"])
                        if dump is not None else Message("root login not checked (no sshd -T output)"))
        if notes:
            findings.append(Message("to be phased out: %(items)s", items=notes))
        yield Result.passed(target, Message("SSH of %(target)s meets %(guideline)s: %(findings)s.", target=target,
                                            guideline=title, findings=findings), **evidence)
