"""Hand-built TLS ClientHellos and a ServerHello reader: which versions, cipher suites, groups and options a
server accepts, without completing a handshake (no cryptography needed; the technique of internet.nl,
sslyze and testssl.sh).

A probe opens a connection (the caller's `connect`, which may speak SMTP up to STARTTLS first), sends one
ClientHello offering exactly what is asked, and reads the answer up to the ServerHello (and for TLS 1.0-1.2,
when asked, up to the ServerKeyExchange, which carries the key-exchange group or the server's DH prime and
the signature algorithm). An alert, a closed connection or a ServerHello for another version is "not
accepted". A TLS 1.3 HelloRetryRequest names the suite (and group) the server would use: accepted.

Standard library only; the module knows nothing of ratings (checks/tls.py and ncsc_tls.yaml do).
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

SSL2, SSL3, TLS10, TLS11, TLS12, TLS13 = 0x0002, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304
VERSION_NAMES = {SSL2: "SSL 2.0", SSL3: "SSL 3.0", TLS10: "TLS 1.0", TLS11: "TLS 1.1", TLS12: "TLS 1.2",
                 TLS13: "TLS 1.3"}

#: TLS 1.3 cipher suites (RFC 8446 B.4).
TLS13_SUITES = {0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
                0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0x1304: "TLS_AES_128_CCM_SHA256",
                0x1305: "TLS_AES_128_CCM_8_SHA256"}

#: TLS 1.0-1.2 (and SSL 3.0) cipher suites probed: every suite OpenSSL 3 knows (openssl ciphers -stdname
#: 'ALL:COMPLEMENTOFALL:@SECLEVEL=0') plus the old ones it dropped (3DES, RC4, DES, EXPORT, static ECDH/DH,
#: SEED, IDEA). IANA names without the leading "TLS_".
_LEGACY_SUITES = {
    0x0001: "RSA_WITH_NULL_MD5", 0x0002: "RSA_WITH_NULL_SHA", 0x0003: "RSA_EXPORT_WITH_RC4_40_MD5",
    0x0004: "RSA_WITH_RC4_128_MD5", 0x0005: "RSA_WITH_RC4_128_SHA", 0x0007: "RSA_WITH_IDEA_CBC_SHA",
    0x0008: "RSA_EXPORT_WITH_DES40_CBC_SHA", 0x0009: "RSA_WITH_DES_CBC_SHA", 0x000A: "RSA_WITH_3DES_EDE_CBC_SHA",
    0x0013: "DHE_DSS_WITH_3DES_EDE_CBC_SHA", 0x0014: "DHE_RSA_EXPORT_WITH_DES40_CBC_SHA",
    0x0015: "DHE_RSA_WITH_DES_CBC_SHA", 0x0016: "DHE_RSA_WITH_3DES_EDE_CBC_SHA", 0x002C: "PSK_WITH_NULL_SHA",
    0x002D: "DHE_PSK_WITH_NULL_SHA", 0x002E: "RSA_PSK_WITH_NULL_SHA", 0x002F: "RSA_WITH_AES_128_CBC_SHA",
    0x0030: "DH_DSS_WITH_AES_128_CBC_SHA", 0x0031: "DH_RSA_WITH_AES_128_CBC_SHA",
    0x0032: "DHE_DSS_WITH_AES_128_CBC_SHA", 0x0033: "DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0034: "DH_anon_WITH_AES_128_CBC_SHA", 0x0035: "RSA_WITH_AES_256_CBC_SHA",
    0x0038: "DHE_DSS_WITH_AES_256_CBC_SHA", 0x0039: "DHE_RSA_WITH_AES_256_CBC_SHA",
    0x003A: "DH_anon_WITH_AES_256_CBC_SHA", 0x003B: "RSA_WITH_NULL_SHA256", 0x003C: "RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "RSA_WITH_AES_256_CBC_SHA256", 0x0040: "DHE_DSS_WITH_AES_128_CBC_SHA256",
    0x0041: "RSA_WITH_CAMELLIA_128_CBC_SHA", 0x0044: "DHE_DSS_WITH_CAMELLIA_128_CBC_SHA",
    0x0045: "DHE_RSA_WITH_CAMELLIA_128_CBC_SHA", 0x0046: "DH_anon_WITH_CAMELLIA_128_CBC_SHA",
    0x0067: "DHE_RSA_WITH_AES_128_CBC_SHA256", 0x006A: "DHE_DSS_WITH_AES_256_CBC_SHA256",
    0x006B: "DHE_RSA_WITH_AES_256_CBC_SHA256", 0x006C: "DH_anon_WITH_AES_128_CBC_SHA256",
    0x006D: "DH_anon_WITH_AES_256_CBC_SHA256", 0x0084: "RSA_WITH_CAMELLIA_256_CBC_SHA",
    0x0087: "DHE_DSS_WITH_CAMELLIA_256_CBC_SHA", 0x0088: "DHE_RSA_WITH_CAMELLIA_256_CBC_SHA",
    0x0089: "DH_anon_WITH_CAMELLIA_256_CBC_SHA", 0x008C: "PSK_WITH_AES_128_CBC_SHA",
    0x008D: "PSK_WITH_AES_256_CBC_SHA", 0x0090: "DHE_PSK_WITH_AES_128_CBC_SHA",
    0x0091: "DHE_PSK_WITH_AES_256_CBC_SHA", 0x0094: "RSA_PSK_WITH_AES_128_CBC_SHA",
    0x0095: "RSA_PSK_WITH_AES_256_CBC_SHA", 0x0096: "RSA_WITH_SEED_CBC_SHA", 0x009A: "DHE_RSA_WITH_SEED_CBC_SHA",
    0x009C: "RSA_WITH_AES_128_GCM_SHA256", 0x009D: "RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "DHE_RSA_WITH_AES_128_GCM_SHA256", 0x009F: "DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x00A2: "DHE_DSS_WITH_AES_128_GCM_SHA256", 0x00A3: "DHE_DSS_WITH_AES_256_GCM_SHA384",
    0x00A6: "DH_anon_WITH_AES_128_GCM_SHA256", 0x00A7: "DH_anon_WITH_AES_256_GCM_SHA384",
    0x00A8: "PSK_WITH_AES_128_GCM_SHA256", 0x00A9: "PSK_WITH_AES_256_GCM_SHA384",
    0x00AA: "DHE_PSK_WITH_AES_128_GCM_SHA256", 0x00AB: "DHE_PSK_WITH_AES_256_GCM_SHA384",
    0x00AC: "RSA_PSK_WITH_AES_128_GCM_SHA256", 0x00AD: "RSA_PSK_WITH_AES_256_GCM_SHA384",
    0x00AE: "PSK_WITH_AES_128_CBC_SHA256", 0x00AF: "PSK_WITH_AES_256_CBC_SHA384", 0x00B0: "PSK_WITH_NULL_SHA256",
    0x00B1: "PSK_WITH_NULL_SHA384", 0x00B2: "DHE_PSK_WITH_AES_128_CBC_SHA256",
    0x00B3: "DHE_PSK_WITH_AES_256_CBC_SHA384", 0x00B4: "DHE_PSK_WITH_NULL_SHA256",
    0x00B5: "DHE_PSK_WITH_NULL_SHA384", 0x00B6: "RSA_PSK_WITH_AES_128_CBC_SHA256",
    0x00B7: "RSA_PSK_WITH_AES_256_CBC_SHA384", 0x00B8: "RSA_PSK_WITH_NULL_SHA256",
    0x00B9: "RSA_PSK_WITH_NULL_SHA384", 0x00BA: "RSA_WITH_CAMELLIA_128_CBC_SHA256",
    0x00BD: "DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256", 0x00BE: "DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256",
    0x00BF: "DH_anon_WITH_CAMELLIA_128_CBC_SHA256", 0x00C0: "RSA_WITH_CAMELLIA_256_CBC_SHA256",
    0x00C3: "DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256", 0x00C4: "DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256",
    0x00C5: "DH_anon_WITH_CAMELLIA_256_CBC_SHA256", 0xC004: "ECDH_ECDSA_WITH_AES_128_CBC_SHA",
    0xC005: "ECDH_ECDSA_WITH_AES_256_CBC_SHA", 0xC006: "ECDHE_ECDSA_WITH_NULL_SHA",
    0xC007: "ECDHE_ECDSA_WITH_RC4_128_SHA", 0xC008: "ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
    0xC009: "ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xC00A: "ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC00E: "ECDH_RSA_WITH_AES_128_CBC_SHA", 0xC00F: "ECDH_RSA_WITH_AES_256_CBC_SHA",
    0xC010: "ECDHE_RSA_WITH_NULL_SHA", 0xC011: "ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xC013: "ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xC015: "ECDH_anon_WITH_NULL_SHA",
    0xC018: "ECDH_anon_WITH_AES_128_CBC_SHA", 0xC019: "ECDH_anon_WITH_AES_256_CBC_SHA",
    0xC01D: "SRP_SHA_WITH_AES_128_CBC_SHA", 0xC01E: "SRP_SHA_RSA_WITH_AES_128_CBC_SHA",
    0xC01F: "SRP_SHA_DSS_WITH_AES_128_CBC_SHA", 0xC020: "SRP_SHA_WITH_AES_256_CBC_SHA",
    0xC021: "SRP_SHA_RSA_WITH_AES_256_CBC_SHA", 0xC022: "SRP_SHA_DSS_WITH_AES_256_CBC_SHA",
    0xC023: "ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xC024: "ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xC028: "ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC02B: "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xC02C: "ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xC030: "ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC035: "ECDHE_PSK_WITH_AES_128_CBC_SHA", 0xC036: "ECDHE_PSK_WITH_AES_256_CBC_SHA",
    0xC037: "ECDHE_PSK_WITH_AES_128_CBC_SHA256", 0xC038: "ECDHE_PSK_WITH_AES_256_CBC_SHA384",
    0xC039: "ECDHE_PSK_WITH_NULL_SHA", 0xC03A: "ECDHE_PSK_WITH_NULL_SHA256", 0xC03B: "ECDHE_PSK_WITH_NULL_SHA384",
    0xC050: "RSA_WITH_ARIA_128_GCM_SHA256", 0xC051: "RSA_WITH_ARIA_256_GCM_SHA384",
    0xC052: "DHE_RSA_WITH_ARIA_128_GCM_SHA256", 0xC053: "DHE_RSA_WITH_ARIA_256_GCM_SHA384",
    0xC056: "DHE_DSS_WITH_ARIA_128_GCM_SHA256", 0xC057: "DHE_DSS_WITH_ARIA_256_GCM_SHA384",
    0xC05C: "ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256", 0xC05D: "ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384",
    0xC060: "ECDHE_RSA_WITH_ARIA_128_GCM_SHA256", 0xC061: "ECDHE_RSA_WITH_ARIA_256_GCM_SHA384",
    0xC06A: "PSK_WITH_ARIA_128_GCM_SHA256", 0xC06B: "PSK_WITH_ARIA_256_GCM_SHA384",
    0xC06C: "DHE_PSK_WITH_ARIA_128_GCM_SHA256", 0xC06D: "DHE_PSK_WITH_ARIA_256_GCM_SHA384",
    0xC06E: "RSA_PSK_WITH_ARIA_128_GCM_SHA256", 0xC06F: "RSA_PSK_WITH_ARIA_256_GCM_SHA384",
    0xC072: "ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256", 0xC073: "ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384",
    0xC076: "ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256", 0xC077: "ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384",
    0xC094: "PSK_WITH_CAMELLIA_128_CBC_SHA256", 0xC095: "PSK_WITH_CAMELLIA_256_CBC_SHA384",
    0xC096: "DHE_PSK_WITH_CAMELLIA_128_CBC_SHA256", 0xC097: "DHE_PSK_WITH_CAMELLIA_256_CBC_SHA384",
    0xC098: "RSA_PSK_WITH_CAMELLIA_128_CBC_SHA256", 0xC099: "RSA_PSK_WITH_CAMELLIA_256_CBC_SHA384",
    0xC09A: "ECDHE_PSK_WITH_CAMELLIA_128_CBC_SHA256", 0xC09B: "ECDHE_PSK_WITH_CAMELLIA_256_CBC_SHA384",
    0xC09C: "RSA_WITH_AES_128_CCM", 0xC09D: "RSA_WITH_AES_256_CCM", 0xC09E: "DHE_RSA_WITH_AES_128_CCM",
    0xC09F: "DHE_RSA_WITH_AES_256_CCM", 0xC0A0: "RSA_WITH_AES_128_CCM_8", 0xC0A1: "RSA_WITH_AES_256_CCM_8",
    0xC0A2: "DHE_RSA_WITH_AES_128_CCM_8", 0xC0A3: "DHE_RSA_WITH_AES_256_CCM_8", 0xC0A4: "PSK_WITH_AES_128_CCM",
    0xC0A5: "PSK_WITH_AES_256_CCM", 0xC0A6: "DHE_PSK_WITH_AES_128_CCM", 0xC0A7: "DHE_PSK_WITH_AES_256_CCM",
    0xC0A8: "PSK_WITH_AES_128_CCM_8", 0xC0A9: "PSK_WITH_AES_256_CCM_8", 0xC0AA: "PSK_DHE_WITH_AES_128_CCM_8",
    0xC0AB: "PSK_DHE_WITH_AES_256_CCM_8", 0xC0AC: "ECDHE_ECDSA_WITH_AES_128_CCM",
    0xC0AD: "ECDHE_ECDSA_WITH_AES_256_CCM", 0xC0AE: "ECDHE_ECDSA_WITH_AES_128_CCM_8",
    0xC0AF: "ECDHE_ECDSA_WITH_AES_256_CCM_8", 0xCCA8: "ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xCCAA: "DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAB: "PSK_WITH_CHACHA20_POLY1305_SHA256", 0xCCAC: "ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAD: "DHE_PSK_WITH_CHACHA20_POLY1305_SHA256", 0xCCAE: "RSA_PSK_WITH_CHACHA20_POLY1305_SHA256",
}
LEGACY_SUITES = {code: "TLS_" + name for code, name in _LEGACY_SUITES.items()}

#: Named groups (IANA TLS Supported Groups).
GROUPS = {0x0013: "secp192r1", 0x0015: "secp224r1", 0x0017: "secp256r1", 0x0018: "secp384r1",
          0x0019: "secp521r1", 0x001A: "brainpoolP256r1", 0x001B: "brainpoolP384r1", 0x001C: "brainpoolP512r1",
          0x001D: "x25519", 0x001E: "x448", 0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096",
          0x0103: "ffdhe6144", 0x0104: "ffdhe8192", 0x11EB: "SecP256r1MLKEM768", 0x11EC: "X25519MLKEM768",
          0x11ED: "SecP384r1MLKEM1024"}
EC_GROUPS_TLS12 = (0x0013, 0x0015, 0x0017, 0x0018, 0x0019, 0x001A, 0x001B, 0x001C, 0x001D, 0x001E)
GROUPS_TLS13 = (0x0017, 0x0018, 0x0019, 0x001D, 0x001E, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104, 0x11EB,
                0x11EC, 0x11ED)

#: Signature schemes (RFC 8446 4.2.3) and the hash each uses.
SIGNATURE_SCHEMES = {0x0401: "sha256", 0x0501: "sha384", 0x0601: "sha512", 0x0403: "sha256", 0x0503: "sha384",
                     0x0603: "sha512", 0x0804: "sha256", 0x0805: "sha384", 0x0806: "sha512", 0x0807: "none",
                     0x0808: "none", 0x0809: "sha256", 0x080A: "sha384", 0x080B: "sha512", 0x0301: "sha224",
                     0x0303: "sha224", 0x0201: "sha1", 0x0203: "sha1", 0x0202: "sha1", 0x0101: "md5"}
SHA2_SCHEMES = tuple(code for code, name in SIGNATURE_SCHEMES.items() if name in ("sha256", "sha384", "sha512",
                                                                                   "none"))
ALL_SCHEMES = tuple(SIGNATURE_SCHEMES)

_HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
_SCSV_RENEGOTIATION = 0x00FF
_TLS13_DOWNGRADE = (b"DOWNGRD\x01", b"DOWNGRD\x00")


class ProbeError(Exception):
    """The server could not be reached at all (resolution, refusal, time-out before any answer)."""


@dataclass
class Hello:
    """What the server answered to one ClientHello."""

    accepted: bool
    version: int | None = None
    suite: int | None = None
    compression: int | None = None
    extensions: dict[int, bytes] = field(default_factory=dict)
    retry: bool = False  # a TLS 1.3 HelloRetryRequest
    alert: int | None = None
    group: int | None = None  # key_share (TLS 1.3) or the ServerKeyExchange's named curve (TLS 1.2)
    dh_prime: int | None = None  # the ServerKeyExchange's DH prime p (DHE suites)
    signature_scheme: int | None = None  # the ServerKeyExchange's signature algorithm (TLS 1.2)

    @property
    def secure_renegotiation(self) -> bool:
        return 0xFF01 in self.extensions


# --- ClientHello ------------------------------------------------------------------------------


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _u16_list(values: Iterable[int]) -> bytes:
    data = b"".join(struct.pack("!H", v) for v in values)
    return struct.pack("!H", len(data)) + data


def client_hello(version: int, suites: Sequence[int], *, server_name: str | None = None,
                 groups: Sequence[int] | None = None, key_shares: Sequence[int] | None = None,
                 signature_schemes: Sequence[int] = ALL_SCHEMES, compression: Sequence[int] = (0,),
                 renegotiation_info: bool = True) -> bytes:
    """A ClientHello record offering `suites` at `version` (TLS 1.3 through supported_versions).

    `key_shares` (TLS 1.3): the groups to send a key share for; only x25519 gets one (32 random bytes
    are a valid X25519 public value), other groups are left to a HelloRetryRequest.
    """
    if groups is None:
        groups = GROUPS_TLS13 if version == TLS13 else EC_GROUPS_TLS12
    legacy = min(version, TLS12)
    extensions = b""
    if server_name:
        name = server_name.rstrip(".").encode("idna")
        extensions += _ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    if version >= TLS10:
        extensions += _ext(10, _u16_list(groups))
        extensions += _ext(11, b"\x01\x00")  # ec_point_formats: uncompressed
        extensions += _ext(23, b"")  # extended_master_secret
        extensions += _ext(35, b"")  # session_ticket
        if version >= TLS12:
            extensions += _ext(13, _u16_list(signature_schemes))
        if renegotiation_info:
            extensions += _ext(0xFF01, b"\x00")
    if version == TLS13:
        extensions += _ext(43, b"\x02" + struct.pack("!H", TLS13))
        extensions += _ext(45, b"\x01\x01")  # psk_key_exchange_modes: psk_dhe_ke
        shares = b"".join(struct.pack("!HH", group, 32) + os.urandom(32)
                          for group in (key_shares or ()) if group == 0x001D)
        extensions += _ext(51, struct.pack("!H", len(shares)) + shares)
    offered = list(suites)
    if version == SSL3 and renegotiation_info:
        offered.append(_SCSV_RENEGOTIATION)
    body = (struct.pack("!H", legacy) + os.urandom(32) + b"\x20" + os.urandom(32) + _u16_list(offered)
            + bytes([len(compression)]) + bytes(compression))
    if version >= TLS10:
        size = len(body) + 2 + len(extensions) + 4
        if 256 <= size < 512:  # some middleboxes hang on ClientHellos of this size (RFC 7685)
            extensions += _ext(21, bytes(max(0, 512 - size - 4)))
        body += struct.pack("!H", len(extensions)) + extensions
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16" + struct.pack("!HH", TLS10 if version >= TLS10 else SSL3, len(handshake)) + handshake


def sslv2_client_hello() -> bytes:
    """An SSL 2.0 CLIENT-HELLO offering the SSL 2.0 cipher kinds."""
    kinds = bytes.fromhex("010080" "020080" "030080" "040080" "050080" "060040" "0700c0")
    challenge = os.urandom(16)
    body = b"\x01" + struct.pack("!HHHH", SSL2, len(kinds), 0, len(challenge)) + kinds + challenge
    return struct.pack("!H", 0x8000 | len(body)) + body


# --- reading the answer -----------------------------------------------------------------------


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(max(4096, count - len(self.buffer)))
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data


def _records(reader: _Reader) -> Iterable[tuple[int, bytes]]:
    while True:
        kind, _version, length = struct.unpack("!BHH", reader.take(5))
        if length > 18432:
            raise ValueError("record too long")
        yield kind, reader.take(length)


def _handshake_messages(reader: _Reader, hello: Hello) -> Iterable[tuple[int, bytes]]:
    """Handshake messages, reassembled across records; an alert ends the answer."""
    pending = b""
    for kind, payload in _records(reader):
        if kind == 21:  # alert
            hello.alert = payload[1] if len(payload) > 1 else None
            return
        if kind != 22:
            return
        pending += payload
        while len(pending) >= 4:
            length = int.from_bytes(pending[1:4], "big")
            if len(pending) < 4 + length:
                break
            yield pending[0], pending[4:4 + length]
            pending = pending[4 + length:]


def parse_server_hello(body: bytes) -> Hello:
    version, = struct.unpack("!H", body[:2])
    random = body[2:34]
    sid_len = body[34]
    at = 35 + sid_len
    suite, = struct.unpack("!H", body[at:at + 2])
    compression = body[at + 2]
    at += 3
    extensions: dict[int, bytes] = {}
    if at + 2 <= len(body):
        end = at + 2 + struct.unpack("!H", body[at:at + 2])[0]
        at += 2
        while at + 4 <= end:
            kind, length = struct.unpack("!HH", body[at:at + 4])
            extensions[kind] = body[at + 4:at + 4 + length]
            at += 4 + length
    hello = Hello(True, version, suite, compression, extensions, retry=random == _HRR_RANDOM)
    if 43 in extensions and len(extensions[43]) == 2:
        hello.version = struct.unpack("!H", extensions[43])[0]
    if 51 in extensions and len(extensions[51]) >= 2:
        hello.group = struct.unpack("!H", extensions[51][:2])[0]
    return hello


def parse_server_key_exchange(body: bytes, suite_name: str, hello: Hello) -> None:
    """The group (ECDHE), the prime (DHE) and the signature scheme from a TLS 1.0-1.2 ServerKeyExchange."""
    at = 0
    if "_ECDHE_" in suite_name:
        if body[0] != 3:  # not a named curve
            return
        hello.group = struct.unpack("!H", body[1:3])[0]
        at = 4 + body[3]
    elif "_DHE_" in suite_name:
        for index in range(3):  # p, g, Ys
            length, = struct.unpack("!H", body[at:at + 2])
            if index == 0:
                hello.dh_prime = int.from_bytes(body[at + 2:at + 2 + length], "big")
            at += 2 + length
    else:
        return
    if hello.version == TLS12 and at + 2 <= len(body):
        hello.signature_scheme = struct.unpack("!H", body[at:at + 2])[0]


def read_answer(sock: socket.socket, version: int, *, key_exchange: bool = False) -> Hello:
    """Read the server's answer to a ClientHello for `version`."""
    hello = Hello(False)
    reader = _Reader(sock)
    try:
        for kind, body in _handshake_messages(reader, hello):
            if kind == 2 and not hello.accepted:
                alert = hello.alert
                hello = parse_server_hello(body)
                hello.alert = alert
                if hello.version != version or hello.version == TLS13 or not key_exchange:
                    break
            elif kind == 12 and hello.accepted and hello.suite is not None:
                parse_server_key_exchange(body, LEGACY_SUITES.get(hello.suite, ""), hello)
                break
            elif kind == 14 or not hello.accepted:  # ServerHelloDone: no key exchange message
                break
    except (EOFError, ConnectionError, TimeoutError, ValueError, struct.error, IndexError, OSError):
        pass
    if hello.accepted and hello.version != version:
        hello.accepted = False  # answered with another version: this one is not offered
    return hello


def read_sslv2_answer(sock: socket.socket) -> bool:
    reader = _Reader(sock)
    try:
        header = reader.take(3)
    except (EOFError, ConnectionError, TimeoutError, OSError):
        return False
    return bool(header[0] & 0x80) and header[2] == 4  # SERVER-HELLO


# --- probing ----------------------------------------------------------------------------------

Connect = Callable[[], socket.socket]


def probe(connect: Connect, version: int, suites: Sequence[int], *, key_exchange: bool = False,
          **options: object) -> Hello:
    """One connection, one ClientHello, the answer. `connect` raises ProbeError when unreachable."""
    sock = connect()
    try:
        sock.sendall(client_hello(version, suites, **options))  # type: ignore[arg-type]
        return read_answer(sock, version, key_exchange=key_exchange)
    except OSError:
        return Hello(False)
    finally:
        sock.close()


def probe_sslv2(connect: Connect) -> bool:
    sock = connect()
    try:
        sock.sendall(sslv2_client_hello())
        return read_sslv2_answer(sock)
    except OSError:
        return False
    finally:
        sock.close()


def _ffdhe_prime(bits: int, x: int) -> int:
    """The RFC 7919 prime: 2^b - 2^{b-64} + {[2^{b-130} e] + X} * 2^64 - 1."""
    precision = bits + 64
    e, term, k = 0, 1 << precision, 0  # e = sum 1/k!, in fixed point
    while term:
        e += term
        k += 1
        term //= k
    return (1 << bits) - (1 << (bits - 64)) + (((e >> (precision - (bits - 130))) + x) << 64) - 1


@functools.lru_cache(maxsize=1)
def ffdhe_primes() -> dict[int, str]:
    return {_ffdhe_prime(bits, x): f"ffdhe{bits}" for bits, x in
            ((2048, 560316), (3072, 2625351), (4096, 5736041), (6144, 15705602), (8192, 10965728))}


def dh_group_name(prime: int) -> str:
    """"ffdhe3072" for an RFC 7919 prime, else "DH-<bits>" (the server's own group)."""
    return ffdhe_primes().get(prime) or f"DH-{prime.bit_length()}"


# --- a whole server -------------------------------------------------------------------------------

LEGACY_VERSIONS = (TLS12, TLS11, TLS10, SSL3)
#: The groups a common client (OpenSSL 3) offers: the group the server picks from these is the one rated,
#: as internet.nl rates the ephemeral key of each accepted suite.
CLIENT_GROUPS_TLS12 = (0x001D, 0x0017, 0x001E, 0x0019, 0x0018)
CLIENT_GROUPS_TLS13 = (*CLIENT_GROUPS_TLS12, 256, 257, 258, 259, 260)
#: Suites per ClientHello: some servers ignore suites past the 64th, others reject long hellos (internet.nl).
CHUNK = 64
#: The suites offered to find out whether a version is offered at all (fewer than CHUNK): the usual ones.
COMMON_SUITES = [code for code, name in LEGACY_SUITES.items()
                 if not any(word in name for word in ("PSK", "SRP", "anon", "NULL", "EXPORT", "ARIA", "CAMELLIA",
                                                      "SEED", "IDEA", "_DSS_", "ECDH_", "DH_", "CCM"))]
SHA1_SCHEMES = (0x0201, 0x0203, 0x0202)
SHA224_SCHEMES = (0x0301, 0x0303, 0x0302)


@dataclass
class ServerScan:
    """Everything the probes saw of one server; `incomplete` names what could not be tried in time."""

    versions: dict[int, bool] = field(default_factory=dict)  # incl. SSL2
    suites: dict[int, list[int]] = field(default_factory=dict)  # accepted, per version
    kex: dict[int, dict[int, str]] = field(default_factory=dict)  # version -> suite -> group it used
    order_enforced: bool | None = None  # highest TLS 1.0-1.2 version, >= 2 suites
    order_version: int | None = None
    order_violation: tuple[int, int] | None = None  # (picked, expected): a phase-out suite before a better one
    good_order_violation: tuple[int, int] | None = None  # a sufficient suite before a good one
    groups_supported: dict[int, bool] = field(default_factory=dict)  # each group offered alone
    secure_renegotiation: bool | None = None  # None: no TLS 1.0-1.2
    extended_master_secret: bool | None = None  # the highest TLS 1.0-1.2 version
    compression: int | None = None  # what the ServerHello picked when DEFLATE was offered
    kex_hash: str | None = None  # "sha1" or "sha224" when the server signs its key exchange with it (TLS 1.2)
    incomplete: list[str] = field(default_factory=list)


class _Deadline(Exception):
    pass


def chunks(items: Sequence[int], size: int = CHUNK) -> list[list[int]]:
    """At most `size` each, interleaved so that accepted suites spread over the chunks."""
    if not items:
        return []
    count = -(-len(items) // size)
    return [list(items[i::count]) for i in range(count)]


def group_name(hello: Hello) -> str | None:
    if hello.dh_prime is not None:
        return dh_group_name(hello.dh_prime)
    return GROUPS.get(hello.group, f"0x{hello.group:04x}") if hello.group is not None else None


def scan(connect: Connect, *, deadline: float, rate: Callable[[str], str], workers: int = 8,
         server_name: str | None = None, groups: bool = True) -> ServerScan:
    """Probe versions, every suite (with the group each uses), cipher order, supported groups, secure
    renegotiation, extended master secret, compression and the key exchange's hash; up to `workers`
    connections at a time; no probe starts after `deadline` (time.monotonic()). `rate` rates a suite
    name (good, sufficient, phase_out, insufficient) for the order tests. Raises ProbeError when no probe
    of the first round could connect."""
    import time
    from concurrent.futures import Future, ThreadPoolExecutor

    result = ServerScan()

    def guarded(what: str, function: Callable[..., object], *args: object, **kwargs: object) -> object:
        def connect_in_time() -> socket.socket:
            if time.monotonic() > deadline:
                raise _Deadline
            return connect()

        try:
            return function(connect_in_time, *args, **kwargs)
        except (_Deadline, ProbeError):
            if what not in result.incomplete:
                result.incomplete.append(what)
            return None

    def hello(what: str, version: int, suites: Sequence[int], **options: object) -> Hello | None:
        options.setdefault("groups", CLIENT_GROUPS_TLS13 if version == TLS13 else CLIENT_GROUPS_TLS12)
        answer = guarded(what, probe, version, suites, server_name=server_name, **options)
        return answer if isinstance(answer, Hello) else None

    def pick(answer: Hello | None) -> int | None:
        return answer.suite if answer is not None and answer.accepted else None

    def shrink(version: int, chunk: list[int]) -> list[tuple[int, str | None]]:
        """Offer the chunk, remove the server's pick, repeat (internet.nl's iterative removal)."""
        found: list[tuple[int, str | None]] = []
        remaining = list(chunk)
        while remaining:
            answer = hello(VERSION_NAMES[version] + " suites", version, remaining, key_exchange=True)
            if answer is None or not answer.accepted or answer.suite not in remaining:
                break
            found.append((answer.suite, group_name(answer)))
            remaining.remove(answer.suite)
        return found

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tlsprobe") as pool:
        # 1: which versions (offering everything), and SSL 2.0
        def version_probe(version: int) -> Hello | None:
            if version == TLS13:
                return hello("TLS 1.3", version, list(TLS13_SUITES), key_shares=(0x001D,))
            answer = hello(VERSION_NAMES[version], version, COMMON_SUITES)
            if answer is not None and not answer.accepted:  # perhaps only unusual suites
                rest = [code for code in LEGACY_SUITES if code not in COMMON_SUITES]
                for chunk in chunks(rest):
                    other = hello(VERSION_NAMES[version], version, chunk)
                    if other is not None and other.accepted:
                        return other
            return answer

        first = {version: pool.submit(version_probe, version) for version in (TLS13, *LEGACY_VERSIONS)}
        ssl2 = pool.submit(guarded, "SSL 2.0", probe_sslv2)
        answers = {version: future.result() for version, future in first.items()}
        if all(answer is None for answer in answers.values()):
            raise ProbeError("no probe could connect")
        result.versions = {version: bool(answer and answer.accepted) for version, answer in answers.items()}
        result.versions[SSL2] = bool(ssl2.result())
        legacy = [version for version in LEGACY_VERSIONS if result.versions[version]]

        # 2: every suite per version (and the group it uses), supported groups, renegotiation, EMS,
        # compression, key-exchange hash
        shrinking = {version: [pool.submit(shrink, version, chunk) for chunk in chunks(list(LEGACY_SUITES))]
                     for version in legacy}
        tls13: dict[int, Future[Hello | None]] = {}
        supported: dict[int, Future[Hello | None]] = {}
        if result.versions[TLS13]:
            tls13 = {code: pool.submit(hello, "TLS 1.3 " + name, TLS13, [code], key_shares=(0x001D,))
                     for code, name in TLS13_SUITES.items()}
            if groups:
                supported = {group: pool.submit(hello, "TLS 1.3 " + GROUPS[group], TLS13, list(TLS13_SUITES),
                                                groups=[group], key_shares=())
                             for group in GROUPS_TLS13}
        supported12: dict[int, Future[Hello | None]] = {}
        compression: Future[Hello | None] | None = None
        sha1: Future[Hello | None] | None = None
        sha224: Future[Hello | None] | None = None
        fs = [code for code, name in LEGACY_SUITES.items()
              if ("_ECDHE_" in name or "_DHE_" in name) and "PSK" not in name]
        if legacy:
            top = legacy[0]
            answer = answers[top]
            result.secure_renegotiation = bool(answer and answer.secure_renegotiation)
            if answer is not None:  # RFC 7627 applies to TLS 1.0-1.2; rated for TLS 1.2 only
                result.extended_master_secret = 23 in answer.extensions
            if groups:
                ecdhe = [code for code in fs if "_ECDHE_" in LEGACY_SUITES[code]]
                supported12 = {group: pool.submit(hello, "TLS group " + GROUPS[group], top, ecdhe[:CHUNK],
                                                  groups=[group], key_exchange=True) for group in EC_GROUPS_TLS12}
            compression = pool.submit(hello, "compression", top, COMMON_SUITES, compression=(1, 0))
            if top == TLS12:
                sha1 = pool.submit(hello, "key exchange hash", TLS12, fs[:CHUNK * 2], key_exchange=True,
                                   signature_schemes=SHA1_SCHEMES)
                sha224 = pool.submit(hello, "key exchange hash", TLS12, fs[:CHUNK * 2], key_exchange=True,
                                     signature_schemes=SHA224_SCHEMES)
        for version, futures in shrinking.items():
            found = [entry for future in futures for entry in future.result()]
            result.suites[version] = [code for code, _ in found]
            result.kex[version] = {code: group for code, group in found if group}
        if result.versions[TLS13]:
            result.suites[TLS13], result.kex[TLS13] = [], {}
            for code, future in tls13.items():
                answer = future.result()
                if answer is not None and answer.accepted and answer.suite == code:
                    result.suites[TLS13].append(code)
                    if answer.group is not None:
                        result.kex[TLS13][code] = GROUPS.get(answer.group, f"0x{answer.group:04x}")
        for group, future in supported.items():
            answer = future.result()
            if answer is not None:
                result.groups_supported[group] = answer.accepted and answer.group == group
        for group, future in supported12.items():
            answer = future.result()
            if answer is not None:
                result.groups_supported[group] = result.groups_supported.get(group, False) or (
                    answer.accepted and answer.group == group)
        if compression is not None and (answer := compression.result()) is not None and answer.accepted:
            result.compression = answer.compression
        for name, maybe in (("sha1", sha1), ("sha224", sha224)):
            if maybe is None or result.kex_hash is not None:
                continue
            answer = maybe.result()
            wanted = SHA1_SCHEMES if name == "sha1" else SHA224_SCHEMES
            if answer is not None and answer.accepted and answer.signature_scheme in wanted:
                result.kex_hash = name

        # 3: cipher order on the highest TLS 1.0-1.2 version (internet.nl: every better suite is preferred
        # to all phase-out suites; NCSC 2025-05 also: good before sufficient)
        if legacy and len(result.suites.get(legacy[0], [])) >= 2:
            top = legacy[0]
            accepted = result.suites[top]
            result.order_version = top
            forward = pool.submit(hello, "cipher order", top, accepted)
            backward = pool.submit(hello, "cipher order", top, accepted[::-1])
            ratings = {code: rate(LEGACY_SUITES[code]) for code in accepted}
            worse = sorted((c for c in accepted if ratings[c] == "phase_out"), key=lambda c: "CHACHA" in
                           LEGACY_SUITES[c])
            better = [c for c in accepted if ratings[c] in ("good", "sufficient")]
            sufficient = [c for c in accepted if ratings[c] == "sufficient"]
            good = [c for c in accepted if ratings[c] == "good"]
            tests = [(code, pool.submit(hello, "cipher order", top, [*worse, code])) for code in better if worse]
            good_tests = [(code, pool.submit(hello, "cipher order", top, [*sufficient, code]))
                          for code in good if sufficient]
            if pick(forward.result()) is not None and pick(backward.result()) is not None:
                result.order_enforced = pick(forward.result()) == pick(backward.result())
            for code, future in tests:
                chosen = pick(future.result())
                if chosen is not None and chosen != code and result.order_violation is None:
                    result.order_violation = (chosen, code)
            for code, future in good_tests:
                chosen = pick(future.result())
                if chosen is not None and chosen != code and result.good_order_violation is None:
                    result.good_order_violation = (chosen, code)
    return result


def suite_name(code: int) -> str:
    return TLS13_SUITES.get(code) or LEGACY_SUITES.get(code) or f"0x{code:04X}"
