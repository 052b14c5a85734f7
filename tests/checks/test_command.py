"""command: exit code and output of a program, with a timeout that stops it."""

from __future__ import annotations

import sys

from compliance.api import Context, Result, Status
from compliance.checks.command import Command


def run(timeout: float = 5, **params: object) -> Result:
    p = Command.Params.model_validate(params)
    [result] = Command().run(p, Context("C", timeout))
    return result


def test_exit_code_and_output_match() -> None:
    result = run(run=[sys.executable, "-c", "print('patch level OK')"], expect_output="^patch level OK$")
    assert result.status == Status.PASS and result.evidence["stdout"] == "patch level OK\n"


def test_wrong_exit_code_fails() -> None:
    result = run(run=[sys.executable, "-c", "raise SystemExit(3)"])
    assert result.status == Status.FAIL and "exited with 3, expected 0" in result.message


def test_expected_nonzero_exit() -> None:
    assert run(run=[sys.executable, "-c", "raise SystemExit(3)"], expect_exit=3).status == Status.PASS


def test_output_mismatch_fails() -> None:
    result = run(run=[sys.executable, "-c", "print('2 accounts without password')"], expect_output="^OK")
    assert result.status == Status.FAIL and "does not match '^OK'" in result.message


def test_missing_program_is_an_error() -> None:
    result = run(run=["/nonexistent/check-tool"])
    assert result.status == Status.ERROR and result.message == "Program /nonexistent/check-tool was not found."


def test_timeout_stops_the_program() -> None:
    result = run(timeout=0.3, run=[sys.executable, "-c", "import time; time.sleep(10)"])
    assert result.status == Status.ERROR and "did not finish within 0.3 s and was stopped" in result.message


def test_no_shell_is_involved() -> None:
    result = run(run=["echo", "$HOME; rm -rf /"], expect_output=r"^\$HOME; rm -rf /$")
    assert result.status == Status.PASS
