"""Private by default: what the monitor writes (database, evidence copies, reports, exports) is readable
by its own user only, whatever the umask, and a command never leaves a database behind by accident."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project

pytestmark = pytest.mark.faults

POLICY = """\
- id: POL-1
  title: Policy
  theme: organizational
  severity: low
  checks:
    - plugin: evidence
      params: {requirement: An approved policy}
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The common default umask (022), under which files are world-readable unless the monitor says otherwise."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def sqlite_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "compliance.db") -> Project:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPLIANCE_DATABASE_URL", raising=False)
    monkeypatch.delenv("COMPLIANCE_CONFIG", raising=False)
    return Project(tmp_path, f"sqlite:///{tmp_path / name}")


def test_db_upgrade_creates_a_private_database_and_its_wal_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = sqlite_project(tmp_path, monkeypatch)
    assert project.run("db", "upgrade").exit_code == 0
    project.control("c.yaml", POLICY)
    from compliance.db import Database

    db = Database(project.db_url)  # keeps the WAL and shared-memory files while the scan writes
    try:
        with db.sessions() as session:
            session.connection().exec_driver_sql("SELECT 1")
            assert project.run("scan").exit_code == 1
            written = sorted(p.name for p in tmp_path.glob("compliance.db*"))
            assert written == ["compliance.db", "compliance.db-shm", "compliance.db-wal"]
            assert {name: mode(tmp_path / name) for name in written} == dict.fromkeys(written, 0o600)
    finally:
        db.close()


@pytest.mark.parametrize("args", [("findings",), ("scan",), ("incident", "list"), ("report",)])
def test_a_command_against_a_missing_database_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    project = sqlite_project(tmp_path, monkeypatch)
    project.control("c.yaml", POLICY)
    result = project.run(*args)
    assert result.exit_code == 2
    assert "create it with `compliance db upgrade`" in result.stderr
    assert not list(tmp_path.glob("compliance.db*"))


def test_an_evidence_copy_is_private_in_a_private_folder(project: Project, tmp_path: Path) -> None:
    project.control("c.yaml", POLICY)
    source = tmp_path / "processor-agreement.pdf"
    source.write_bytes(b"%PDF-1.4 agreement")
    source.chmod(0o644)
    (tmp_path / "evidence").mkdir(mode=0o755)  # made by hand earlier, world-readable
    result = project.run(
        "attest",
        "POL-1",
        "--by",
        "A. de Vries",
        "--evidence",
        str(source),
        "--valid-until",
        "2099-12-31",
        "--copy",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    [copy] = (tmp_path / "evidence").iterdir()
    assert (mode(tmp_path / "evidence"), mode(copy)) == (0o700, 0o600)
    assert copy.read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ("report", "--format", "md"),
        ("report", "--format", "json"),
        ("controls", "soa", "--format", "csv"),
        ("ensia", "export", "--year", "2026", "--format", "csv"),
        ("ensia", "export", "--year", "2026", "--format", "xlsx"),
    ],
)
@pytest.mark.parametrize("existing", [False, True])
def test_reports_and_exports_are_private(
    project: Project, tmp_path: Path, args: tuple[str, ...], existing: bool
) -> None:
    output = tmp_path / "out" / "written"
    output.parent.mkdir()
    if existing:  # a report of last month, world-readable: overwriting it makes it private
        output.write_text("old report")
        output.chmod(0o644)
    result = project.run(*args, "--output", str(output))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote {output}\n"
    assert mode(output) == 0o600
    assert output.stat().st_size > 100 and b"old report" not in output.read_bytes()


def test_a_report_to_a_device_is_written_as_it_is(project: Project) -> None:
    result = project.run("report", "--format", "json", "--output", os.devnull)
    assert result.exit_code == 0, result.output
    assert mode(Path(os.devnull)) == 0o666


def test_write_private_never_leaves_the_file_readable_by_others(tmp_path: Path) -> None:
    from compliance.safe_output import private_dir, write_private

    folder = tmp_path / "a" / "b"
    private_dir(folder)
    write_private(folder / "x", b"personal data")
    assert (mode(folder), mode(folder / "x"), (folder / "x").read_bytes()) == (0o700, 0o600, b"personal data")


@pytest.mark.parametrize(
    "args",
    [
        ("report", "--format", "md"),
        ("controls", "soa", "--format", "csv"),
        ("ensia", "export", "--year", "2026", "--format", "csv"),
    ],
)
def test_an_output_in_a_missing_folder_is_a_usage_error(project: Project, args: tuple[str, ...]) -> None:
    result = project.run(*args, "--output", "missing/report")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: cannot write missing/report: No such file or directory; choose a path in a "
        "folder that exists and that you may write to\n"
    )


def test_a_saved_checkpoint_is_private(project: Project, tmp_path: Path) -> None:
    from tests.incidents.conftest import INCIDENT_SETTINGS, new_letter

    project.write_config(INCIDENT_SETTINGS)
    new_letter(project)
    result = project.run("incident", "verify", "--save-checkpoint", str(tmp_path / "checkpoint.json"))
    assert result.exit_code == 0, result.output
    assert mode(tmp_path / "checkpoint.json") == 0o600
