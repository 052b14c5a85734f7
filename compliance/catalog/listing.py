"""The controls as `compliance controls list` shows them, kept in the cache between runs (issue 18).

Loading the catalog parses every control file (PyYAML), validates it (pydantic) and imports each check
plugin it names to validate the parameters: most of the time of `controls list`. What the list shows only
changes when what it was made from changes, so it is kept in the cache (`compliance.cache`) under all of
it: the path and bytes of every control file (the shipped catalog's too, when bundled frameworks are
asked for), the settings that decide the catalog (the target groups, `controls.bundled`, the paths), the
code that validates (this package, the plugin API, the frameworks' data) and the installed distributions
(whose entry points name the plugins). The entry also names the files of each plugin it validated
against, and is used only while they are unchanged. On a hit the controls come back as views (`Listed`)
without PyYAML, pydantic or any plugin; `controls validate`, scans and the other commands validate as
before.

A catalog with a problem is never stored: its problems are reported at file:line on every run.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance.catalog.files import bundled_folder, discover
from compliance.severity import Severity

if TYPE_CHECKING:
    from compliance.catalog.model import Catalog

#: The modules whose code decides what a valid catalog is (see `cache.code_stamp`).
_CODE = ("catalog.model", "catalog.files", "catalog.listing", "plugins", "api", "frameworks.__init__", "yamlfile",
         "located", "cron", "errors", "severity", "durations")


@dataclass(frozen=True, slots=True)
class ListedCheck:
    """A check of a listed control: what `CheckSpec` says about which plugin runs on which targets."""

    plugin: str
    targets: str | list[Any] | None


@dataclass(frozen=True, slots=True)
class Listed:
    """A validated control as the list shows it: its definition (as `Control.model_dump(mode="json")` gives
    it) and where it was read from, with the attributes of `Control` that the list reads."""

    definition: dict[str, Any]
    source: str
    line: int
    bundled: bool
    override_source: str
    frameworks: list[str]

    @property
    def id(self) -> str:
        return str(self.definition["id"])

    @property
    def title(self) -> str:
        return str(self.definition["title"])

    @property
    def theme(self) -> str:
        return str(self.definition["theme"])

    @property
    def severity(self) -> Severity:
        return Severity(self.definition["severity"])

    @property
    def enabled(self) -> bool:
        return bool(self.definition["enabled"])

    @property
    def tags(self) -> list[str]:
        return list(self.definition["tags"])

    @property
    def checks(self) -> list[ListedCheck]:
        return [ListedCheck(spec["plugin"], spec["targets"]) for spec in self.definition["checks"]]

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return json.loads(json.dumps(self.definition))  # type: ignore[no-any-return]  # a deep copy


def listed(paths: Sequence[Path], target_groups: Mapping[str, list[Any]], *, bundled: Sequence[str] = (),
           environ: Mapping[str, str] | None = None) -> list[Listed]:
    """The controls that `load_catalog(paths, target_groups, bundled=bundled)` gives, from the cache when
    nothing they are made from has changed; raises what `load_catalog` raises, on every run."""
    from compliance import cache

    environ = os.environ if environ is None else environ
    entry = _entry_key(paths, target_groups, bundled, environ)
    if entry is None:
        return _decoded(_encoded(_validated(paths, target_groups, bundled)))
    name, entry_key = entry
    stored = cache.read(name, entry_key, environ)
    if isinstance(stored, dict) and _unchanged(stored.get("depends")):
        try:
            return _decoded(stored)
        except (KeyError, TypeError, ValueError):
            pass  # an entry this code cannot read: validate again and replace it
    catalog = _validated(paths, target_groups, bundled)
    data = _encoded(catalog)
    depends = _plugin_files(catalog)
    # stored only when no file changed while it was validated: the entry holds what its key describes
    if depends is not None and _entry_key(paths, target_groups, bundled, environ) == entry:
        cache.write(name, entry_key, {**data, "depends": depends}, environ)
    return _decoded(data)


def _validated(paths: Sequence[Path], target_groups: Mapping[str, list[Any]], bundled: Sequence[str]) -> Catalog:
    from compliance.catalog.model import load_catalog

    return load_catalog(paths, target_groups, bundled=bundled)


def _entry_key(paths: Sequence[Path], target_groups: Mapping[str, list[Any]], bundled: Sequence[str],
               environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The cache entry's name and key, or None when the catalog is not to be cached: the cache is off, a
    plugin is registered in this process, a file is missing or unreadable (validation reports it)."""
    from compliance import cache

    if cache.folder(environ) is None or _registered_plugins():
        return None
    stamp = cache.code_stamp(*_CODE)
    if not stamp:
        return None
    try:
        settings = json.dumps({"paths": [str(p) for p in paths], "bundled": list(bundled),
                               "targets": target_groups}, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    files, problems = discover(paths)
    shipped: list[Path] = []
    if bundled:
        shipped, shipped_problems = discover([bundled_folder()])
        problems += shipped_problems
    if problems:
        return None
    parts: list[str | bytes] = [stamp, settings]
    try:
        for file in (*shipped, *files):
            parts += [str(file), file.read_bytes()]
        parts += _distributions()
        parts += [f"{file}:{_file_stamp(str(file))}" for file in _framework_data()]
    except OSError:
        return None
    name = "controls-" + cache.key(os.getcwd(), *(str(p) for p in paths))[:24]
    return name, cache.key(*parts)


def _registered_plugins() -> bool:
    """Whether plugins are registered in this process (tests, embedding): their code is not in any key."""
    plugins = sys.modules.get("compliance.plugins")
    return plugins is not None and bool(plugins.registered())


def _distributions() -> list[str]:
    """The installed distributions' metadata folders on the import path, with their times: where entry
    points (and so plugins) come from. Installing, upgrading or removing one adds or replaces a folder."""
    found = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as listing:
                found += [f"{entry}/{item.name}:{item.stat().st_mtime_ns}" for item in listing
                          if item.name.endswith((".dist-info", ".egg-info", ".egg-link"))]
        except OSError:
            continue  # not a folder (a zip file holds no installed plugin) or gone
    return sorted(found)


def _framework_data() -> list[Path]:
    """The frameworks' data that references are validated against (`compliance.frameworks`)."""
    import compliance

    folder = Path(compliance.__file__).parent / "frameworks"
    return sorted(folder.glob("*.yaml"))


def _file_stamp(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def _plugin_files(catalog: Catalog) -> list[list[str]] | None:
    """The files of the code each plugin of the catalog was validated with, with their stamps: the modules
    of its class, of its parameters and of their bases, and every module beside the plugin's own. None when
    one cannot be found (then nothing is stored)."""
    from compliance import plugins

    files: set[str] = set()
    for name in {spec.plugin for control in catalog for spec in control.checks}:
        cls = plugins.load(name)
        for kind in (cls, *cls.__mro__, *cls.Params.__mro__):
            if kind.__module__ == "builtins":
                continue
            file = getattr(sys.modules.get(kind.__module__), "__file__", None)
            if file is None:
                return None
            files.add(str(Path(file).resolve()))
            if kind is cls:
                files.update(str(beside) for beside in Path(file).resolve().parent.glob("*.py"))
    try:
        return [[file, _file_stamp(file)] for file in sorted(files)]
    except OSError:
        return None


def _unchanged(depends: Any) -> bool:
    if not isinstance(depends, list):
        return False
    try:
        return all(_file_stamp(path) == stamp for path, stamp in depends)
    except (OSError, TypeError, ValueError):
        return False


def _encoded(catalog: Catalog) -> dict[str, Any]:
    return {"controls": [{"definition": c.model_dump(mode="json"), "source": c.source, "line": c.line,
                          "bundled": c.bundled, "override_source": c.override_source,
                          "frameworks": c.frameworks} for c in catalog]}


def _decoded(data: Mapping[str, Any]) -> list[Listed]:
    return [Listed(dict(c["definition"]), str(c["source"]), int(c["line"]), bool(c["bundled"]),
                   str(c["override_source"]), list(c["frameworks"])) for c in data["controls"]]
