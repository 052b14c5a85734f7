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


# -- mode: oldest (log retention, BIO2 8.15.04) -------------------------------------------------------------


def run_oldest(path: str, min_age: str, base: Path) -> Result:
    params = FileAge.Params.model_validate({"path": path, "mode": "oldest", "min_age": min_age})
    [result] = FileAge().run(params, Context("C", 5, base_dir=str(base)))
    return result


def test_oldest_retained_log_old_enough_passes(tmp_path: Path) -> None:
    make(tmp_path / "log" / "access.log", 0.1)
    make(tmp_path / "log" / "access.log.1.gz", 24 * 100)
    make(tmp_path / "log" / "access.log.9.gz", 24 * 200)
    result = run_oldest("log/access.log*", "180d", tmp_path)
    assert result.status == Status.PASS
    assert result.evidence["oldest"] == str(tmp_path / "log" / "access.log.9.gz")
    assert result.evidence["matches"] == 3
    assert result.message.startswith(f"Oldest match {tmp_path}/log/access.log.9.gz is 200d")
    assert result.message.endswith("retention 180d is kept.")


def test_oldest_too_young_fails_with_age_and_retention(tmp_path: Path) -> None:
    make(tmp_path / "log" / "syslog", 1)
    make(tmp_path / "log" / "syslog.3.gz", 24 * 40 + 1)
    result = run_oldest("log/syslog*", "180d", tmp_path)
    assert result.status == Status.FAIL
    assert result.message == f"Oldest match {tmp_path}/log/syslog.3.gz is only 40d 1h old, retention 180d."
    assert result.evidence["min_age_seconds"] == 180 * 86400


def test_oldest_no_match_fails(tmp_path: Path) -> None:
    result = run_oldest("nothing/*.log", "90d", tmp_path)
    assert result.status == Status.FAIL
    assert result.message == "No file matches nothing/*.log; expected files kept for 90d."


def test_mode_params_are_validated() -> None:
    import pydantic
    import pytest

    for bad, needle in (({"path": "x"}, "mode 'newest' needs max_age"),
                        ({"path": "x", "mode": "oldest"}, "mode 'oldest' needs min_age"),
                        ({"path": "x", "mode": "oldest", "min_age": "1d", "max_age": "1d"}, "max_age belongs"),
                        ({"path": "x", "max_age": "1d", "min_age": "1d"}, "min_age belongs"),
                        ({"path": "x", "mode": "middle", "max_age": "1d"}, "newest")):
        with pytest.raises(pydantic.ValidationError, match=needle):
            FileAge.Params.model_validate(bad)
    assert FileAge.Params.model_validate({"path": "x", "max_age": "1d"}).mode == "newest"
