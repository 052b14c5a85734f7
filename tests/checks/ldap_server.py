"""A real OpenLDAP slapd for the `directory` check tests: its own slapd.conf, mdb database and TLS.

`LdapServer(folder, ca, ldif)` writes a slapd.conf (core, cosine, inetorgperson and a small AD-like schema
whose attributes are INTEGERs as in Active Directory, so that the AD logic runs for real), loads the LDIF
offline with slapadd (which accepts operational attributes such as `authTimestamp` and `createTimestamp`,
so accounts can be made stale without waiting), and starts slapd on two free loopback ports: `ldap://`
(StartTLS available) and `ldaps://`, with a certificate from the test CA. The modules back_mdb, ppolicy
(password policy entries, `pwdAccountLockedTime`) and lastbind (`authTimestamp` on every bind) are loaded.

The reader `cn=reader,dc=test` (password `READER_PASSWORD`) reads everything but passwords, and is held
to 10 entries per plain search while paged searches are unlimited, so a result of more than 10 accounts
proves the check pages.
"""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import trustme

from tests.servers import free_port, stop_process

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
MODULES = "/usr/lib/ldap"
SCHEMAS = "/etc/ldap/schema"
READER_DN = "cn=reader,dc=test"
READER_PASSWORD = "reader-secret-7"  # a test server's password
ROOT_DN = "cn=admin,dc=test"

#: Active Directory's attributes as OpenLDAP can hold them: the same names and INTEGER syntax.
AD_SCHEMA = """\
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'userAccountControl' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'lastLogonTimestamp' EQUALITY integerMatch
  ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.4 NAME 'objectCategory' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.1.5 NAME 'whenCreated' EQUALITY generalizedTimeMatch
  ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.6 NAME 'minPwdLength' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.7 NAME 'pwdHistoryLength' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.8 NAME 'lockoutThreshold' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.9 NAME 'maxPwdAge' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.10 NAME 'customLastLogin' EQUALITY generalizedTimeMatch
  ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.11 NAME 'objectSid' EQUALITY octetStringMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.12 NAME 'primaryGroupID' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'user' SUP top AUXILIARY
  MAY ( userAccountControl $ lastLogonTimestamp $ sAMAccountName $ objectCategory $ whenCreated $
        primaryGroupID $ objectSid ) )
objectclass ( 1.3.6.1.4.1.99999.2.2 NAME 'group' SUP top STRUCTURAL MUST cn
  MAY ( member $ sAMAccountName $ objectCategory $ description $ objectSid ) )
objectclass ( 1.3.6.1.4.1.99999.2.3 NAME 'domainPolicy' SUP top AUXILIARY
  MAY ( minPwdLength $ pwdHistoryLength $ lockoutThreshold $ maxPwdAge ) )
objectclass ( 1.3.6.1.4.1.99999.2.4 NAME 'customLogin' SUP top AUXILIARY MAY customLastLogin )
"""

CONFIG = """\
include {schemas}/core.schema
include {schemas}/cosine.schema
include {schemas}/inetorgperson.schema
include {root}/ad.schema
modulepath {modules}
moduleload back_mdb
moduleload ppolicy
moduleload lastbind
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
TLSCACertificateFile {root}/ca.pem
TLSCertificateFile {root}/server.pem
TLSCertificateKeyFile {root}/server.key

database mdb
suffix "dc=test"
rootdn "{rootdn}"
rootpw {rootpw}
directory {root}/db
maxsize 16777216
overlay ppolicy
overlay lastbind
lastbind-precision 0
limits dn.exact="{reader}" size.soft=10 size.hard=10 size.prtotal=unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="{reader}" read by self read by * none
"""



def generalized(moment: datetime) -> str:
    """LDAP GeneralizedTime: 20261130121500Z."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def sid(*parts: int) -> str:
    """A binary SID for LDIF (base64), e.g. sid(5, 21, 1, 2, 3, 512) is S-1-5-21-1-2-3-512."""
    import base64

    authority, *subs = parts
    raw = bytes([1, len(subs)]) + authority.to_bytes(6, "big") + b"".join(s.to_bytes(4, "little") for s in subs)
    return base64.b64encode(raw).decode()


def filetime(moment: datetime) -> int:
    """A Windows FILETIME (100 ns since 1601-01-01 UTC), as AD's lastLogonTimestamp."""
    return (int(moment.timestamp()) + 11644473600) * 10_000_000


class LdapServer:
    """slapd on loopback, started by `start()` and stopped by `stop()` (or as a context manager)."""

    def __init__(self, root: Path, ca: trustme.CA, ldif: str, root_password: str = "root-secret-3") -> None:
        self.root, self.ca, self.ldif, self.root_password = root, ca, ldif, root_password
        self.port = free_port()
        self.tls_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def _write(self) -> Path:
        root = self.root
        (root / "db").mkdir(parents=True, exist_ok=True)
        (root / "ad.schema").write_text(AD_SCHEMA)
        self.ca.cert_pem.write_to_path(str(root / "ca.pem"))
        leaf = self.ca.issue_cert("127.0.0.1", "localhost")
        leaf.cert_chain_pems[0].write_to_path(str(root / "server.pem"))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(root / "server.pem"), append=True)
        leaf.private_key_pem.write_to_path(str(root / "server.key"))
        conf = root / "slapd.conf"
        conf.write_text(CONFIG.format(schemas=SCHEMAS, modules=MODULES, root=root, rootdn=ROOT_DN,
                                      rootpw=self.root_password, reader=READER_DN))
        (root / "seed.ldif").write_text(self.ldif)
        return conf

    def start(self) -> LdapServer:
        conf = self._write()
        loaded = subprocess.run([SLAPADD, "-q", "-f", str(conf), "-l", str(self.root / "seed.ldif")],
                                capture_output=True, text=True, timeout=30, check=False)
        if loaded.returncode != 0:
            raise RuntimeError(f"slapadd failed: {loaded.stderr}")
        log = open(self.root / "slapd.log", "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", str(conf), "-h", f"{self.url}/ {self.ldaps_url}/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd stopped: {(self.root / 'slapd.log').read_text(errors='replace')}")
            if all(_accepts(port) for port in (self.port, self.tls_port)):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("slapd did not start within 10 s")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> LdapServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
