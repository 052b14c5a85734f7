"""file_age: the newest match of a glob must be younger than max_age."""

from __future__ import annotations

import os
import time
from pathlib import Path

from compliance.api import Context, Result, Status
from compliance.checks.file_age import FileAge


def run(path: str, max_age: str, base: Path) -> Result:
    params = FileAge.Params.model_validate({"path": path, "max_age": max_age})
    [result] = FileAge().run(params, Context("C", 5, base_dir=str(base)))
    return result


def make(path: Path, hours_old: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    t = time.time() - hours_old * 3600
    os.utime(path, (t, t))


def test_newest_match_counts(tmp_path: Path) -> None:
    make(tmp_path / "b" / "old.tar.gz", 50)
    make(tmp_path / "b" / "new.tar.gz", 2)
    result = run("b/*.tar.gz", "26h", tmp_path)
    assert result.status == Status.PASS
    assert result.evidence["newest"] == str(tmp_path / "b" / "new.tar.gz")
    assert result.evidence["matches"] == 2
    assert result.message.startswith(f"Newest match {tmp_path}/b/new.tar.gz is 2h")


def test_too_old_fails_with_age_and_maximum(tmp_path: Path) -> None:
    make(tmp_path / "b" / "x.gz", 30)
    result = run(str(tmp_path / "b" / "*.gz"), "1d", tmp_path)
    assert result.status == Status.FAIL
    assert "is 1d 6h old, older than the maximum of 1d" in result.message


def test_no_match_fails(tmp_path: Path) -> None:
    result = run("nothing/*.gz", "1d", tmp_path)
    assert result.status == Status.FAIL
    assert result.message == "No file matches nothing/*.gz; expected one younger than 1d."


def test_recursive_glob_and_folders_ignored(tmp_path: Path) -> None:
    make(tmp_path / "logs" / "2026" / "11" / "a.log", 0.5)
    (tmp_path / "logs" / "new.log").mkdir()  # a folder that matches is not a file
    assert run("logs/**/*.log", "1h", tmp_path).status == Status.PASS
