"""The frameworks from the cache (issue 18): the same data as a fresh parse, never stale, never a mistake."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from compliance import frameworks
from compliance.frameworks import FRAMEWORKS, Framework

ROOT = Path(__file__).resolve().parents[2]


def shipped(name: str) -> str:
    return (files("compliance.frameworks") / f"{name}.yaml").read_text("utf-8")


def load(name: str) -> Framework:
    """`frameworks.load` as a new process runs it: without the per-process memo."""
    framework: Framework = frameworks.load.__wrapped__(name)  # type: ignore[attr-defined]
    return framework


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("COMPLIANCE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped framework files that `load` reads instead (a user's edit of an installed file)."""
    folder = tmp_path / "frameworks"
    folder.mkdir()
    for name in FRAMEWORKS:
        (folder / f"{name}.yaml").write_text(shipped(name), encoding="utf-8")
    monkeypatch.setattr(frameworks, "files", lambda package: folder)
    return folder


def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names `load` parses from YAML from now on (a hit parses nothing)."""
    parsed: list[str] = []
    real = frameworks._parsed

    def counting(name: str, text: str) -> Framework:
        parsed.append(name)
        return real(name, text)

    monkeypatch.setattr(frameworks, "_parsed", counting)
    return parsed


def assert_same(cached: Framework, fresh: Framework) -> None:
    """Field by field, with the types: a tuple stays a tuple, a number a string."""
    for field in dataclasses.fields(Framework):
        if field.name == "_by_number":
            continue
        got, want = getattr(cached, field.name), getattr(fresh, field.name)
        assert got == want, field.name
        assert type(got) is type(want), field.name
    for got_r, want_r in zip(cached.requirements, fresh.requirements, strict=True):
        assert [(type(getattr(got_r, f.name)), getattr(got_r, f.name)) for f in dataclasses.fields(got_r)] == \
               [(type(getattr(want_r, f.name)), getattr(want_r, f.name)) for f in dataclasses.fields(want_r)]
    for got_m, want_m in zip(cached.measures, fresh.measures, strict=True):
        assert [(type(getattr(got_m, f.name)), getattr(got_m, f.name)) for f in dataclasses.fields(got_m)] == \
               [(type(getattr(want_m, f.name)), getattr(want_m, f.name)) for f in dataclasses.fields(want_m)]
        assert cached.measure(want_m.number) == want_m
    assert all(type(v) is tuple for v in cached.earlier.values())
    assert cached.groups == fresh.groups


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_a_hit_equals_a_fresh_parse_field_by_field(name: str, cache_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = frameworks._parsed(name, shipped(name))
    parsed = parses(monkeypatch)
    first = load(name)
    assert parsed == [name]
    assert (cache_dir / f"framework-{name}.json").is_file()
    second = load(name)
    assert parsed == [name], "the second run parsed the YAML again"
    assert_same(first, fresh)
    assert_same(second, fresh)


def test_an_edited_file_is_seen_at_once(cache_dir: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load("bio2").get("8.13") is not None
    file = data_dir / "bio2.yaml"
    text = file.read_text(encoding="utf-8")
    old = next(r for r in frameworks._parsed("bio2", text).requirements if r.number == "8.13").title["en"]
    new = old[::-1]  # the same size: an edit that keeps size (and time) is seen too
    stat = file.stat()
    file.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file.stat().st_size == stat.st_size
    parsed = parses(monkeypatch)
    edited = load("bio2")
    assert parsed == ["bio2"]
    requirement = edited.get("8.13")
    assert requirement is not None and requirement.title["en"] == new
    assert_same(load("bio2"), frameworks._parsed("bio2", file.read_text(encoding="utf-8")))


@pytest.mark.parametrize(("broken", "error"), [
    (lambda text: text.replace("hygiene: [basishygiene", "hygiene: [basis-hygiene", 1),
     "has unknown hygiene ['basis-hygiene']"),
    (lambda text: text.replace('{en: "Information security policy set and reviewed",',
                               '{en: "Information security policy set and reviewed", de: "x",', 1),
     "requirement 5.1 needs exactly an en and a nl title, got ['de', 'en', 'nl']"),
    (lambda text: text.replace("requirements:", "requirements: [", 1), ""),
])
def test_a_broken_file_fails_on_every_run_and_is_never_cached(broken: Any, error: str, cache_dir: Path,
                                                              data_dir: Path) -> None:
    assert load("bio2").measures  # the good file, cached
    file = data_dir / "bio2.yaml"
    file.write_text(broken(file.read_text(encoding="utf-8")), encoding="utf-8")
    entry = (cache_dir / "framework-bio2.json").read_bytes()
    messages = []
    for _ in range(3):
        with pytest.raises(Exception) as failed:
            load("bio2")
        messages.append(str(failed.value))
    assert messages[0] == messages[1] == messages[2]
    assert error in messages[0]
    assert (cache_dir / "framework-bio2.json").read_bytes() == entry  # still the good file's entry


def test_a_broken_file_is_never_cached_even_first(cache_dir: Path, data_dir: Path) -> None:
    file = data_dir / "bio2.yaml"
    text = file.read_text(encoding="utf-8")
    file.write_text(text.replace('{number: "5.01.01",', '{number: "5.01.01", cbw: nee,', 1), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ValueError, match="has cbw 'nee'; use true, false or null"):
            load("bio2")
    assert not (cache_dir / "framework-bio2.json").exists()


def test_the_cache_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COMPLIANCE_CACHE_DIR", "off")
    monkeypatch.chdir(tmp_path)
    parsed = parses(monkeypatch)
    for name in FRAMEWORKS:
        assert_same(load(name), load(name))
    assert parsed == [name for name in FRAMEWORKS for _ in range(2)]
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_entry_is_parsed_again_and_replaced(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = load("avg")
    entry = cache_dir / "framework-avg.json"
    stored = json.loads(entry.read_text(encoding="utf-8"))
    stored["data"]["requirements"] = [["only", "two"]]
    entry.write_text(json.dumps(stored), encoding="utf-8")
    parsed = parses(monkeypatch)
    assert_same(load("avg"), fresh)
    assert parsed == ["avg"]
    assert_same(load("avg"), fresh)
    assert parsed == ["avg"]


_SCRIPT = """\
import json, sys
from compliance.frameworks import FRAMEWORKS, load, reference_error
result = [[(r.number, r.group, r.title, r.measures) for r in load(name).requirements] for name in FRAMEWORKS]
result.append([(m.number, m.control, m.title, m.hygiene, m.cbw) for m in load("bio2").measures])
result.append([load("bio2").earlier, load("bio2").moves, reference_error("bio2", "5.04.02")])
print(json.dumps({"yaml": "yaml" in sys.modules, "result": result}))
"""


def test_a_cached_run_does_not_import_yaml(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env["COMPLIANCE_CACHE_DIR"] = str(tmp_path / "cache")
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    assert [run["yaml"] for run in runs] == [True, False]
    assert runs[0]["result"] == runs[1]["result"]
