"""`python -m compliance` works like the `compliance` command."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest


@pytest.mark.parametrize(("option", "start"), [
    ("--version", f"compliance, version {version('compliance-monitor')}\n"),
    ("--help", "Usage: compliance [OPTIONS] COMMAND [ARGS]...\n"),
])
def test_python_m_compliance_runs_the_cli(tmp_path: Path, option: str, start: str) -> None:
    result = subprocess.run([sys.executable, "-m", "compliance", option], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(start)
