"""Setting up a monitor in a folder (`compliance init`) and the local demo (`compliance demo`)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from compliance.settings_view import CONFIG_FILENAME

EXAMPLE_CONTROL = """\
# An example control. Copy this file to write your own; `compliance controls validate` checks it.
- id: MON-01
  title: The monitor's own database is readable only by its owner
  description: >
    The database holds findings and the breach register. Nobody but the account that runs the
    monitor may read it.
  theme: technological
  references: {bio2: "8.3", iso27002: "8.3"}
  severity: high
  owner: CISO
  tags: [monitor]
  checks:
    - plugin: file_permissions
      params: {path: compliance.db, max_mode: "0600"}
"""


@dataclass
class InitResult:
    folder: Path
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    database: str = ""


BUNDLED_LINE = "  bundled: [bio2, avg, forum-standaardisatie]\n"


def init_project(folder: Path, *, force: bool = False, database_url: str | None = None,
                 catalog: bool = True) -> InitResult:
    """Write compliance.yaml and controls/ (unless present) and migrate the database.

    With `catalog` the config takes the shipped control catalog (all three frameworks); without it, none.
    """
    from compliance import db
    from compliance.settings import load_settings

    folder.mkdir(parents=True, exist_ok=True)
    result = InitResult(folder)
    config = folder / CONFIG_FILENAME
    example = folder / "controls" / "example.yaml"
    config_text = (files("compliance.config") / "compliance.example.yaml").read_text(encoding="utf-8")
    if not catalog:
        config_text = config_text.replace(BUNDLED_LINE, "  bundled: []   # e.g. [bio2, avg, forum-standaardisatie]\n")
    # the config names the key file that init writes beside it
    config_text = config_text.replace(f"# audit_key_file: {AUDIT_KEY_FILE}\n", f"audit_key_file: {AUDIT_KEY_FILE}\n")
    for path, text in ((config, config_text), (example, EXAMPLE_CONTROL)):
        if path.exists() and not force:
            result.kept.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.written.append(path)
    key = folder / AUDIT_KEY_FILE
    if config in result.written and _write_audit_key(key):
        result.written.append(key)
    settings = load_settings(str(config), environ={} if database_url is None else
                             {"COMPLIANCE_DATABASE_URL": database_url})
    url = settings.database_url
    db.upgrade(url)  # creates a missing SQLite file readable by its owner only
    result.database = db.safe_url(url)
    return result


#: The audit trail's key file that `init` writes beside compliance.yaml and names in it.
AUDIT_KEY_FILE = "audit.key"


def _write_audit_key(path: Path) -> bool:
    """Write a new random audit key readable by its owner only; never replace one (even with --force):
    a keyed trail cannot be verified without its key. True when written."""
    import secrets

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_hex(32) + "\n")
    return True


# -- the demo ----------------------------------------------------------------------------------------

DEMO_CONTROLS = """\
# The demo's own controls, beside a part of the shipped BIO2 catalog (see demo-overrides.yaml).
- id: DEMO-SSH
  title: The management service answers with the expected SSH banner
  theme: technological
  references: {bio2: "8.21", iso27002: "8.21"}
  severity: medium
  owner: IT operations
  tags: [demo, network]
  checks:
    - plugin: tcp_port
      params: {expect: open, banner: "^SSH-2\\\\.0-"}
      targets: demo_services

- id: DEMO-PATCH
  title: The patch report says the servers are up to date
  theme: technological
  references: {bio2: "8.8", iso27002: "8.8"}
  severity: high
  owner: IT operations
  tags: [demo, patching]
  checks:
    - plugin: command
      params:
        run: [%(python)s, -c, "print('patch level: OK')"]
        expect_output: "patch level: OK"
"""

#: The shipped controls the demo keeps; it switches every other shipped control off, to keep its table
#: short: an example of `override: true` with `enabled: false`.
DEMO_KEPT = ("BIO-BACKUP", "BIO-LOGSHIP", "BIO-FILE-PERMISSIONS", "BIO-EXPOSED-SERVICES", "BIO-POLICY",
             "BIO-PATCHING", "AVG-BREACHES")


def demo_disabled(frameworks: Sequence[str] = ("bio2", "avg")) -> list[str]:
    """The ids of the shipped controls of `frameworks` that the demo switches off (all but DEMO_KEPT)."""
    from compliance.catalog import bundled_folder
    from compliance.frameworks import frameworks_of
    from compliance.yamlfile import load_yaml

    found: list[str] = []
    for file in sorted(bundled_folder().glob("*.yaml")):
        raw, _ = load_yaml(file)
        for entry in raw if isinstance(raw, list) else [raw]:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            wanted = set(frameworks_of(dict(entry.get("references") or {}))) & set(frameworks)
            if wanted and entry["id"] not in DEMO_KEPT:
                found.append(entry["id"])
    return found


class BannerServer:
    """A TCP server on loopback that greets every connection with a line, like an SSH server."""

    def __init__(self, banner: bytes = b"SSH-2.0-DemoSSH_1.0\r\n", delay: float = 0.0) -> None:
        self.banner, self.delay = banner, delay
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="banner-server")

    def __enter__(self) -> BannerServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._greet, args=(conn,), daemon=True).start()

    def _greet(self, conn: socket.socket) -> None:
        with conn:
            if self.delay:
                time.sleep(self.delay)
            try:
                conn.sendall(self.banner)
                conn.recv(16)  # wait for the client to hang up
            except OSError:
                pass


def free_port() -> int:
    """A loopback port that nothing listens on (nothing will, for the demo's short life)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEMO_CONFIG = """\
# Configuration of the demo made by `compliance demo` (rewritten on every run).
database:
  url: sqlite:///compliance.db
controls:
  paths: [controls]
  bundled: [bio2, avg]
scan:
  timeout: 10s
targets:
  backups: [{path: "targets/backups/*.tar.gz", max_age: 26h}]
  log_exports: [{path: "targets/logship/*.log", max_age: 1h}]
  sensitive_paths: [{path: targets/secrets, max_mode: "0640"}]
  exposed_hosts: [127.0.0.1]
  demo_services:
    - {host: 127.0.0.1, port: %(port)d}
"""


def prepare_demo(folder: Path, service_port: int) -> Path:
    """Create the demo folder: config, controls, targets (a fresh backup, stale logs, an open key file,
    a local service) and one attestation, so that the scan shows passing and failing controls."""
    from datetime import timedelta

    from compliance import evidence
    from compliance.db import Database
    from compliance.settings import load_settings

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / CONFIG_FILENAME
    config.write_text(DEMO_CONFIG % {"port": service_port}, encoding="utf-8")
    init_project(folder)
    (folder / "controls" / "demo.yaml").write_text(DEMO_CONTROLS % {"python": _yaml_str(sys.executable)},
                                                   encoding="utf-8")
    (folder / "controls" / "demo-overrides.yaml").write_text(
        "# Shipped controls switched off for the demo, by id, without copying the catalog.\n"
        + "".join(f"- {{id: {cid}, override: true, enabled: false}}\n" for cid in demo_disabled()), encoding="utf-8")
    targets = folder / "targets"
    now = time.time()
    _touch(targets / "backups" / "db-nightly.tar.gz", now - 3 * 3600)  # 3 hours old: fine
    _touch(targets / "logship" / "shipped.log", now - 5 * 3600)  # 5 hours old: the shipping stopped
    key = targets / "secrets" / "app.key"
    _touch(key, now)
    os.chmod(key.parent, 0o750)
    os.chmod(key, 0o644)  # readable by everyone: a finding
    policy = folder / "evidence" / "informatiebeveiligingsbeleid-2026.pdf"
    _touch(policy, now)
    settings = load_settings(str(config), environ={})
    db = Database(settings.database_url)
    try:
        if "BIO-POLICY" not in evidence.latest(db):
            today = evidence.local_today(settings.zone)
            evidence.record(db, "BIO-POLICY", by="Demo CISO", evidence=str(policy),
                            valid_until=today + timedelta(days=365), recorded_by="compliance demo")
    finally:
        db.close()
    return config


def _touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("demo\n", encoding="utf-8")
    os.utime(path, (mtime, mtime))


def _yaml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
