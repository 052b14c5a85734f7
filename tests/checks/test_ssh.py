"""ssh against real OpenSSH servers (sshd) on loopback, one hardened and one weak, and fake servers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from compliance.api import Context, Result, Status
from compliance.checks.ssh import KEXINIT_FIELDS, Ssh, read_offer
from compliance.project import BannerServer, free_port
from tests.servers import stop_process

SSHD = "/usr/sbin/sshd"

STRONG = """\
HostKey {dir}/strong_ed25519
HostKey {dir}/strong_rsa
HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
"""

# What this sshd still accepts that the profile rates insufficient: an RSA key of 2048 bits (1024 is
# refused), SHA-1 key exchange and signatures, CBC, HMAC-SHA1, passwords. curve25519 stays offered, as
# on a real server that was never cleaned up, so that the RSA key size can be read with paramiko.
WEAK = """\
HostKey {dir}/weak_rsa
HostKeyAlgorithms rsa-sha2-512,ssh-rsa
KexAlgorithms curve25519-sha256,diffie-hellman-group14-sha1
Ciphers aes128-cbc,aes256-ctr
MACs hmac-sha1,hmac-sha2-256
PasswordAuthentication yes
PermitRootLogin yes
"""


def keygen(path: Path, kind: str, bits: int | None = None) -> None:
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "test", "-f", str(path)]
    if bits:
        args[4:4] = ["-b", str(bits)]
    subprocess.run(args, check=True, capture_output=True, timeout=60)


class Sshd:
    """A real sshd in the foreground on a free loopback port with its own config and host keys."""

    def __init__(self, folder: Path, name: str, settings: str) -> None:
        self.port = free_port()
        self.config = folder / f"{name}.conf"
        self.config.write_text(f"Port {self.port}\nListenAddress 127.0.0.1\nPidFile none\nUsePAM no\n"
                               f"LogLevel ERROR\nAuthorizedKeysFile none\n" + settings.format(dir=folder))
        self.log = folder / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd {name} stopped: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"sshd {name} does not listen: {self.log.read_text()}") from None
                time.sleep(0.05)

    def dump(self, path: Path) -> Path:
        """`sshd -T` of this server's config, as a collector on the server would write it."""
        out = subprocess.run([SSHD, "-T", "-f", str(self.config)], check=True, capture_output=True, timeout=30)
        path.write_bytes(out.stdout)
        return path

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Sshd]]:
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server (sshd, ssh-keygen) not installed")
    try:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
    except PermissionError:
        pytest.skip("sshd needs /run/sshd, which only root can make")
    folder = tmp_path_factory.mktemp("sshd")
    keygen(folder / "strong_ed25519", "ed25519")
    keygen(folder / "strong_rsa", "rsa", 4096)
    keygen(folder / "weak_rsa", "rsa", 2048)
    started: dict[str, Sshd] = {}
    try:
        started["strong"] = Sshd(folder, "strong", STRONG)
        started["weak"] = Sshd(folder, "weak", WEAK)
        yield started
    finally:
        for server in started.values():
            server.stop()


def run(**params: Any) -> Result:
    p = Ssh.Params.model_validate(params)
    [result] = Ssh().run(p, Context("C", 30, net_timeout=5))
    return result


def test_hardened_server_passes(servers: dict[str, Sshd]) -> None:
    result = run(host=f"127.0.0.1:{servers['strong'].port}")
    assert result.status == Status.PASS, result.message
    assert "meets NCSC-based SSH algorithm ratings 2025" in result.message
    assert "root login not checked (no sshd -T output)" in result.message
    ev = result.evidence
    assert ev["protocol"] == "2.0" and ev["software"].startswith("OpenSSH_")
    assert ev["kex"] == {"sntrup761x25519-sha512@openssh.com": "good", "curve25519-sha256": "good",
                         "curve25519-sha256@libssh.org": "good"}
    assert ev["ciphers"]["chacha20-poly1305@openssh.com"] == "good"
    assert "not rated" in ev["macs"]  # only AEAD ciphers: no MAC is ever used
    keys = {k["type"]: k["bits"] for k in ev["host_keys"]}
    assert keys == {"ssh-rsa": 4096, "ssh-ed25519": 256}
    assert ev["authentication"]["methods"] == ["publickey"]
    assert ev["authentication"]["forbidden_offered"] == []


def test_hardened_server_with_sshd_dump_passes(servers: dict[str, Sshd], tmp_path: Path) -> None:
    dump = servers["strong"].dump(tmp_path / "sshd-T.txt")
    result = run(host="127.0.0.1", port=servers["strong"].port, sshd_config=str(dump))
    assert result.status == Status.PASS, result.message
    assert "PermitRootLogin no (sshd -T)" in result.message
    assert result.evidence["sshd_config"]["passwordauthentication"] == "no"
    assert len(result.evidence["sshd_config"]["sha256"]) == 64


def test_weak_server_fails_naming_each_insufficient_algorithm(servers: dict[str, Sshd]) -> None:
    result = run(host="127.0.0.1", port=servers["weak"].port)
    assert result.status == Status.FAIL
    message = result.message
    for named in ("key exchange diffie-hellman-group14-sha1 (insufficient)",
                  "host key algorithm ssh-rsa (insufficient)", "cipher aes128-cbc (insufficient)",
                  "MAC hmac-sha1 (insufficient)", "RSA host key of 2048 bits (insufficient; minimum 3072)",
                  "offers password"):
        assert named in message, named
    for sound in ("curve25519-sha256", "aes256-ctr", "rsa-sha2-512"):
        assert sound not in message, sound
    ev = result.evidence
    assert ev["kex"] == {"curve25519-sha256": "good", "diffie-hellman-group14-sha1": "insufficient"}
    assert ev["macs"] == {"hmac-sha1": "insufficient", "hmac-sha2-256": "phase_out"}
    assert ev["host_keys"][0]["bits"] == 2048 and ev["host_keys"][0]["size_rating"] == "insufficient"
    assert "password" in ev["authentication"]["forbidden_offered"]
    assert "hmac-sha2-256" not in message  # phase out: reported in the evidence, failed only on request
    strict = run(host="127.0.0.1", port=servers["weak"].port, phase_out_fails=True)
    assert "MAC hmac-sha2-256 (phase out)" in strict.message


def test_weak_server_dump_names_root_and_password_login(servers: dict[str, Sshd], tmp_path: Path) -> None:
    dump = servers["weak"].dump(tmp_path / "sshd-T.txt")
    result = run(host="127.0.0.1", port=servers["weak"].port, sshd_config=str(dump), forbidden_auth_methods=[])
    assert result.status == Status.FAIL
    assert "root login allowed (PermitRootLogin yes)" in result.message
    assert "password login on (PasswordAuthentication yes)" in result.message
    assert "authentication" not in result.evidence  # the protocol probe was switched off
    accepted = run(host="127.0.0.1", port=servers["weak"].port, sshd_config=str(dump),
                   permit_root_login=["no", "yes"])
    assert "root login allowed" not in accepted.message


def test_own_kexinit_reader_agrees_with_ssh_audit(servers: dict[str, Sshd]) -> None:
    """The hand-written reader of the unencrypted KEXINIT sees the same lists as ssh-audit (test-only)."""
    pytest.importorskip("ssh_audit")
    for server in servers.values():
        out = subprocess.run([sys.executable, "-m", "ssh_audit", "-j", "--skip-rate-test", "-t", "10",
                              "-p", str(server.port), "127.0.0.1"], capture_output=True, timeout=60, text=True)
        audit = json.loads(out.stdout)
        offer = read_offer("127.0.0.1", server.port, 5)
        assert offer.banner == audit["banner"]["raw"]
        assert offer.lists["kex"] == [k["algorithm"] for k in audit["kex"]]
        assert offer.lists["ciphers_s2c"] == [k["algorithm"] for k in audit["enc"]]
        assert offer.lists["macs_s2c"] == [k["algorithm"] for k in audit["mac"]]
        assert offer.lists["host_key"] == [k["algorithm"] for k in audit["key"]]
        # and the RSA key size read with paramiko is the one ssh-audit finds
        rsa_bits = {k["keysize"] for k in audit["key"] if k["algorithm"].startswith("rsa-")}
        ours = run(host="127.0.0.1", port=server.port)
        assert {k["bits"] for k in ours.evidence["host_keys"] if k["type"] == "ssh-rsa"} == rsa_bits


def test_refused_port_is_an_error() -> None:
    result = run(host="127.0.0.1", port=free_port())
    assert result.status == Status.ERROR
    assert result.message.endswith(": connection refused.") and result.evidence["reachable"] is False


def test_unresolvable_host_is_an_error() -> None:
    result = run(host="no-such-host.invalid")
    assert result.status == Status.ERROR and "cannot resolve no-such-host.invalid" in result.message


def test_non_ssh_server_is_an_error() -> None:
    with BannerServer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as server:
        result = run(host="127.0.0.1", port=server.port)
    assert result.status == Status.ERROR
    assert "not an SSH server: it sent 'HTTP/1.1 400 Bad Request'" in result.message


def test_silent_listener_times_out_as_an_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog) but never speaks
        started = time.monotonic()
        result = run(host="127.0.0.1", port=listener.getsockname()[1], timeout=0.5)
    assert time.monotonic() - started < 3
    assert result.status == Status.ERROR and "no SSH identification within 0.5 s" in result.message


def kexinit_packet(lists: dict[str, str], message_type: int = 20) -> bytes:
    payload = bytes([message_type]) + b"\0" * 16
    for name in KEXINIT_FIELDS:
        value = lists.get(name, "none" if name.startswith("compression") else "").encode()
        payload += struct.pack(">I", len(value)) + value
    payload += b"\0" + b"\0\0\0\0"
    padding = 8 - (len(payload) + 5) % 8 + 8
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + b"\0" * padding


def test_malformed_kexinit_is_an_error() -> None:
    with BannerServer(b"SSH-2.0-Fake_1.0\r\n" + kexinit_packet({}, message_type=21)) as server:
        result = run(host="127.0.0.1", port=server.port)
    assert result.status == Status.ERROR and "malformed key exchange offer" in result.message
    with BannerServer(b"SSH-2.0-Fake_1.0\r\n" + struct.pack(">IB", 10_000_000, 4)) as server:
        result = run(host="127.0.0.1", port=server.port)
    assert result.status == Status.ERROR and "packet length 10000000" in result.message


def test_unproven_rsa_size_and_methods_are_an_error_not_a_pass() -> None:
    # sound lists, but no key exchange this check can complete: the RSA key size stays unknown
    offer = kexinit_packet({"kex": "sntrup761x25519-sha512@openssh.com", "host_key": "rsa-sha2-512",
                            "ciphers_c2s": "chacha20-poly1305@openssh.com",
                            "ciphers_s2c": "chacha20-poly1305@openssh.com"})
    with BannerServer(b"pre-banner text is allowed\r\nSSH-2.0-Fake_1.0\r\n" + offer) as server:
        result = run(host="127.0.0.1", port=server.port)
    assert result.status == Status.ERROR, result.message
    assert "size of the RSA host key not determined" in result.message
    assert "authentication methods not determined" in result.message
    assert result.evidence["kex"] == {"sntrup761x25519-sha512@openssh.com": "good"}


def test_ssh1_server_fails() -> None:
    with BannerServer(b"SSH-1.5-OldSSH\r\n") as server:
        result = run(host="127.0.0.1", port=server.port)
    assert result.status == Status.FAIL and "SSH protocol 1.5 (insufficient)" in result.message


def test_sshd_dump_missing_malformed_or_stale_is_an_error(servers: dict[str, Sshd], tmp_path: Path) -> None:
    port = servers["strong"].port
    missing = run(host="127.0.0.1", port=port, sshd_config=str(tmp_path / "absent.txt"))
    assert missing.status == Status.ERROR and "cannot be read" in missing.message
    other = tmp_path / "other.txt"
    other.write_text("port 22\nsomething else\n")
    malformed = run(host="127.0.0.1", port=port, sshd_config=str(other))
    assert malformed.status == Status.ERROR and "is not sshd -T output (no permitrootlogin line)" in malformed.message
    stale = servers["strong"].dump(tmp_path / "stale.txt")
    three_days_ago = time.time() - 3 * 86400
    os.utime(stale, (three_days_ago, three_days_ago))
    old = run(host="127.0.0.1", port=port, sshd_config=str(stale))
    assert old.status == Status.ERROR and "is 3d old (maximum 2d)" in old.message
    assert run(host="127.0.0.1", port=port, sshd_config=str(stale), sshd_config_max_age="4d").status == Status.PASS


@pytest.mark.parametrize("params, error", [
    ({"host": "a.example", "ssh_profile": "nope"}, "unknown SSH profile 'nope'"),
    ({"host": "a.example", "probe_user": "two words"}, "probe user"),
    ({"host": "a.example:2222", "port": 22}, "give the port once"),
    ({"host": "a.example", "forbidden_auth_methods": ["pasword"]}, "unknown authentication method pasword"),
    ({"host": "a.example", "permit_root_login": ["maybe"]}, "permit_root_login"),
    ({"host": "a.example", "colour": "red"}, "colour"),
])
def test_invalid_params_are_rejected(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        Ssh.Params.model_validate(params)


def test_port_in_host_is_split() -> None:
    p = Ssh.Params.model_validate({"host": "[2001:db8::1]:2222"})
    assert (p.host, p.port) == ("2001:db8::1", 2222)
