"""Every installed plugin documents a YAML control example in its module docstring, and it validates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from compliance import plugins
from compliance.catalog import load_catalog


@pytest.mark.parametrize("name", plugins.names())
def test_docstring_example_validates(name: str, tmp_path: Path) -> None:
    cls = plugins.load(name)
    doc = sys.modules[cls.__module__].__doc__ or ""
    assert "Example::" in doc, f"plugin {name} has no `Example::` block in its module docstring"
    block = doc.split("Example::", 1)[1].split("\n\n", 2)[1]
    (tmp_path / "example.yaml").write_text(
        "\n".join(line[4:] for line in block.splitlines()), encoding="utf-8")
    groups = {"websites": ["https://www.example.org"], "mail_domains": ["example.org"]}
    catalog = load_catalog([tmp_path], groups)
    assert any(spec.plugin == name for control in catalog for spec in control.checks)
