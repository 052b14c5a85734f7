"""`compliance report`: formats, files, languages and the errors a user can make."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.metadata import metadata, requires
from types import ModuleType
from typing import Any

import pytest

from tests.compliance.report.conftest import Seeded
from tests.conftest import Project


def test_json_on_standard_output(project: Project, seeded: Seeded) -> None:
    result = project.run("report", "--as-of", "2026-03-08", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["period"]["label"], report["compliance"]["score"], report["compliance"]["previous"]) == (
        "2026-W10", 41.2, 31.6)
    assert [r["control"] for r in report["top_risks"]] == ["A", "G"]
    assert report["incidents"]["overdue"] == 1


@pytest.mark.parametrize(("fmt", "lang", "start", "text"), [
    ("html", "nl", b"<!DOCTYPE html>", "Risico-overzicht"),
    ("html", "en", b"<!DOCTYPE html>", "Risk overview"),
    ("md", "en", b"# Risk overview", "Top risks"),
    ("pdf", "nl", b"%PDF-", None),
])
def test_each_format_to_a_file(project: Project, seeded: Seeded, fmt: str, lang: str, start: bytes,
                               text: str | None) -> None:
    target = project.root / f"report.{fmt}"
    result = project.run("report", "--period", "month", "--as-of", "2026-03-08", "--format", fmt, "--lang", lang,
                         "--output", str(target))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"wrote {target}\n")
    data = target.read_bytes()
    assert data.startswith(start)
    if text is not None:
        assert text in data.decode("utf-8")


def test_the_default_is_html_in_dutch_for_today(project: Project) -> None:
    result = project.run("report")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("<!DOCTYPE html>") and '<html lang="nl">' in result.stdout


def test_the_plain_install_brings_weasyprint_for_pdf() -> None:
    from packaging.requirements import Requirement

    requirements = [Requirement(line) for line in requires("compliance-monitor") or []]
    assert "weasyprint" in {r.name for r in requirements if r.marker is None}  # not behind an extra
    # the only extras: the test tools and Celery for checks in other network zones (docs/scale-out.md)
    assert metadata("compliance-monitor").get_all("Provides-Extra") == ["scale", "test"]


def test_pdf_without_weasyprint_says_how_to_install_it(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if installed without its dependencies
    result = project.run("report", "--format", "pdf", "--output", "report.pdf")
    assert result.exit_code == 2
    assert result.stderr == ("error: PDF output needs WeasyPrint, which is missing from this Python environment; "
                             "install it: pip install weasyprint\n")
    assert not (project.root / "report.pdf").exists()


class PangoMissing(MetaPathFinder):
    """Importing WeasyPrint fails as it does on a system without Pango: with an OSError from dlopen."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        if fullname == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file")


def test_pdf_without_pango_names_the_debian_packages(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    monkeypatch.setattr(sys, "meta_path", [PangoMissing(), *sys.meta_path])
    result = project.run("report", "--format", "pdf", "--output", "report.pdf")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: PDF output needs the system libraries Pango and HarfBuzz, which WeasyPrint could not load "
        "(cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file); on Debian or "
        "Ubuntu install them: apt-get install -y libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0\n")
    assert not (project.root / "report.pdf").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--as-of", "2999-01-01"), "error: --as-of 2999-01-01 lies in the future; give today"),
    (("--as-of", "8-3-2026"), "Invalid value for '--as-of': '8-3-2026' does not match the format '%Y-%m-%d'."),
    (("--period", "fortnight"), "Invalid value for '--period': 'fortnight' is not one of"),
    (("--lang", "de"), "Invalid value for '--lang': 'de' is not one of 'nl', 'en'."),
])
def test_wrong_options_exit_2_with_the_reason(project: Project, args: tuple[str, ...], message: str) -> None:
    result = project.run("report", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_the_command_imports_nothing_heavy_at_start_up() -> None:
    import subprocess

    code = "import compliance.cli, sys; print(sorted(m for m in ('sqlalchemy', 'jinja2', 'babel', 'matplotlib', " \
           "'weasyprint', 'compliance.report') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_help_names_the_options(run_cli: Any) -> None:
    result = run_cli("report", "--help")
    assert result.exit_code == 0
    for option in ("--period [week|month|quarter|year]", "--as-of YYYY-MM-DD", "--format [html|pdf|md|json]",
                   "--lang [nl|en]", "--output FILE"):
        assert option in result.stdout
