"""file_permissions: nothing under a path may be more open than max_mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from compliance.api import Context, Result, Status
from compliance.checks.file_permissions import FilePermissions, dir_mode_for


def run(path: Path, **params: object) -> Result:
    p = FilePermissions.Params.model_validate({"path": str(path), **params})
    [result] = FilePermissions().run(p, Context("C", 5))
    return result


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "secrets"
    (root / "sub").mkdir(parents=True)
    for f in (root / "a.key", root / "sub" / "b.key"):
        f.write_text("k")
        os.chmod(f, 0o600)
    os.chmod(root, 0o700)
    os.chmod(root / "sub", 0o700)
    return root


def test_private_tree_passes(tree: Path) -> None:
    result = run(tree, max_mode="0600")
    assert result.status == Status.PASS and result.evidence["checked"] == 4


def test_one_open_file_deep_down_fails_and_is_named(tree: Path) -> None:
    os.chmod(tree / "sub" / "b.key", 0o644)
    result = run(tree, max_mode="0640")
    assert result.status == Status.FAIL
    assert result.message == (f"1 of 4 entries under {tree} are more open than allowed, e.g. "
                              f"{tree}/sub/b.key has mode 0644 (maximum 0640).")


def test_folders_get_search_bit_where_read_is_allowed(tree: Path) -> None:
    assert dir_mode_for(0o640) == 0o750 and dir_mode_for(0o600) == 0o700 and dir_mode_for(0o644) == 0o755
    os.chmod(tree, 0o755)
    assert run(tree, max_mode="0600").status == Status.FAIL
    assert run(tree, max_mode="0600", max_dir_mode="0755").status == Status.PASS


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path / "nope", max_mode="0600")
    assert result.status == Status.ERROR and "does not exist" in result.message


@pytest.mark.parametrize("mode", [640, "0999", "rw-r-----", ""])
def test_mode_must_be_a_quoted_octal_string(mode: object) -> None:
    with pytest.raises(ValidationError):
        FilePermissions.Params.model_validate({"path": "/x", "max_mode": mode})
