"""backup_copies: the newest backup is within the RPO and has an identical copy on another filesystem.

"Another filesystem" is real: a tmpfs mounted by the test (CI runs as root), or else a folder in
/dev/shm when that is another device than the temporary folder. Where neither is possible the tests
fail with the reason rather than skip: the device check is the heart of the plugin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from compliance.api import Context, Result, Status
from compliance.checks.backups import BackupCopies
from tests.checks.unprivileged import run_as_nobody


@pytest.fixture
def offsite(tmp_path: Path) -> Iterator[Path]:
    """A folder on another filesystem than tmp_path."""
    folder = tmp_path / "offsite"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode == 0:
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=True)
        return
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(tmp_path).st_dev:
        shm = Path(tempfile.mkdtemp(prefix="backup-copies-", dir="/dev/shm"))
        try:
            yield shm
        finally:
            shutil.rmtree(shm, ignore_errors=True)
        return
    pytest.fail(f"no second filesystem for the test: mounting a tmpfs failed ({mounted.stderr.strip()}) and "
                "/dev/shm is missing or on the same device as the temporary folder")


def run(base: Path, **params: Any) -> Result:
    model = BackupCopies.Params.model_validate(params)
    [result] = BackupCopies().run(model, Context("BACKUP", 10, base_dir=str(base)))
    return result


def make(path: Path, hours_old: float, content: bytes = b"backup data\n" * 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    t = time.time() - hours_old * 3600
    os.utime(path, (t, t))
    return path


def test_fresh_backup_with_a_copy_on_another_filesystem_passes(tmp_path: Path, offsite: Path) -> None:
    make(tmp_path / "db" / "db-1.sql.gz", 30)
    make(tmp_path / "db" / "db-2.sql.gz", 2)
    shutil.copy(tmp_path / "db" / "db-2.sql.gz", offsite / "db-2.sql.gz")
    result = run(tmp_path, primary="db/*.sql.gz", max_age="26h", copies=str(offsite), verify="hash")
    assert result.status == Status.PASS, result.message
    assert result.evidence["backup"] == str(tmp_path / "db" / "db-2.sql.gz")
    assert result.evidence["copies"] == [str(offsite / "db-2.sql.gz")]
    assert len(result.evidence["sha256"]) == 64
    assert "is 2h" in result.message and "(RPO 1d 2h)" in result.message


def test_copy_found_through_a_glob(tmp_path: Path, offsite: Path) -> None:
    make(tmp_path / "db" / "db-2.sql.gz", 1)
    make(offsite / "2026" / "db-2.sql.gz", 1)
    make(offsite / "2026" / "db-1.sql.gz", 1)
    result = run(tmp_path, primary="db/*.sql.gz", max_age="26h", copies=[f"{offsite}/**/*.sql.gz"])
    assert result.status == Status.PASS, result.message
    assert result.evidence["copies"] == [str(offsite / "2026" / "db-2.sql.gz")]


def test_copy_on_the_same_filesystem_fails_unless_allowed(tmp_path: Path) -> None:
    make(tmp_path / "db" / "db.gz", 1)
    make(tmp_path / "mnt" / "offsite" / "db.gz", 1)  # the mount was down: the copy landed on the local disk
    result = run(tmp_path, primary="db/*.gz", max_age="1d", copies=["mnt/offsite"])
    assert result.status == Status.FAIL
    assert "is on the same filesystem as the backup" in result.message
    assert result.evidence["rejected"][0]["copy"] == str(tmp_path / "mnt" / "offsite" / "db.gz")
    assert run(tmp_path, primary="db/*.gz", max_age="1d", copies=["mnt/offsite"],
               same_device_ok=True).status == Status.PASS


def test_stale_backup_fails_with_the_rpo(tmp_path: Path, offsite: Path) -> None:
    make(tmp_path / "db" / "db.gz", 30)
    shutil.copy(tmp_path / "db" / "db.gz", offsite / "db.gz")
    result = run(tmp_path, primary="db/*.gz", max_age="26h", copies=[str(offsite)])
    assert result.status == Status.FAIL
    assert result.message == f"Backup {tmp_path}/db/db.gz: it is 1d 6h old, older than the RPO of 1d 2h."


def test_missing_copy_fails(tmp_path: Path, offsite: Path) -> None:
    make(tmp_path / "db" / "db-2.gz", 1)
    make(offsite / "db-1.gz", 25)  # only yesterday's backup reached the second site
    result = run(tmp_path, primary="db/*.gz", max_age="26h", copies=[str(offsite), "usb/*.gz"])
    assert result.status == Status.FAIL
    assert f"no copy named db-2.gz under {offsite}, usb/*.gz" in result.message


def test_copy_of_another_size_or_content_fails(tmp_path: Path, offsite: Path) -> None:
    make(tmp_path / "db" / "db.gz", 1, b"A" * 1000)
    make(offsite / "db.gz", 1, b"A" * 600)  # an interrupted transfer
    result = run(tmp_path, primary="db/*.gz", max_age="1d", copies=[str(offsite)])
    assert result.status == Status.FAIL
    assert f"copy {offsite}/db.gz has 600 bytes, the backup 1000" in result.message
    make(offsite / "db.gz", 1, b"A" * 999 + b"B")  # same size, other content
    assert run(tmp_path, primary="db/*.gz", max_age="1d", copies=[str(offsite)]).status == Status.PASS
    result = run(tmp_path, primary="db/*.gz", max_age="1d", copies=[str(offsite)], verify="hash")
    assert result.status == Status.FAIL
    assert "differs from the backup (SHA-256)" in result.message


def test_min_copies(tmp_path: Path, offsite: Path) -> None:
    make(tmp_path / "db" / "db.gz", 1)
    shutil.copy(tmp_path / "db" / "db.gz", offsite / "db.gz")
    result = run(tmp_path, primary="db/*.gz", max_age="1d", copies=[str(offsite)], min_copies=2)
    assert result.status == Status.FAIL and "1 good copies, 2 required" in result.message


def test_no_backup_fails(tmp_path: Path) -> None:
    result = run(tmp_path, primary="db/*.gz", max_age="26h", copies=["elsewhere"])
    assert result.status == Status.FAIL
    assert result.message == "No backup matches db/*.gz; expected one younger than 1d 2h."


def test_unreadable_copy_location_is_an_error(tmp_path: Path) -> None:
    # root reads every folder, so as root the check runs in a child process that became nobody, on files
    # in a folder nobody may enter (pytest's tmp_path is private to root)
    base = Path(tempfile.mkdtemp(prefix="backup-copies-"))
    try:
        base.chmod(0o755)
        make(base / "db" / "db.gz", 1).chmod(0o644)
        (base / "db").chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o700)
        (locked / "db.gz").write_bytes(b"x")
        locked.chmod(0)
        params = BackupCopies.Params.model_validate({"primary": "db/*.gz", "max_age": "1d", "copies": [str(locked)]})
        status, message = run_as_nobody(BackupCopies(), params, Context("B", 5, base_dir=str(base)))
        assert status == "error", message
        assert message == f"Cannot read the copy location {locked}: Permission denied."
    finally:
        (base / "locked").chmod(0o700)
        shutil.rmtree(base)


def test_params_are_validated() -> None:
    with pytest.raises(pydantic.ValidationError, match="at least 1 item"):
        BackupCopies.Params.model_validate({"primary": "x", "max_age": "1d", "copies": []})
    with pytest.raises(pydantic.ValidationError, match="not a duration"):
        BackupCopies.Params.model_validate({"primary": "x", "max_age": "soon", "copies": ["y"]})
    with pytest.raises(pydantic.ValidationError):
        BackupCopies.Params.model_validate({"primary": "x", "max_age": "1d", "copies": ["y"], "verify": "md5"})
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        BackupCopies.Params.model_validate({"primary": "x", "max_age": "1d", "copies": ["y"], "copy": "z"})
