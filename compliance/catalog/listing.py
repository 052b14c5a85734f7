"""The validated catalog, kept in the cache between runs: `load_catalog` and `compliance controls list` (issue 18).

Loading the catalog parses every control file (PyYAML), validates it (pydantic) and imports each check
plugin it names to validate the parameters: most of the time of a one-control scan or of `controls list`.
What it gives only changes when what it was made from changes, so it is kept in the cache
(`compliance.cache`) under all of it: the path and bytes of every control file (the shipped catalog's too,
when bundled frameworks are asked for), the settings that decide the catalog (the target groups,
`controls.bundled`, the paths), the code that validates (this package, the plugin API, the frameworks' data)
and the installed distributions (whose entry points name the plugins). The entry also names the files of
each plugin it validated against, and is used only while they are unchanged.

On a hit `load_catalog` rebuilds the same `Control` objects (`model_construct` from the validated fields,
the fields written, where each was read from, the parameters and targets with their positions, the content
hash) without PyYAML, validation or any plugin; `controls list` reads the same entry as views (`Listed`).
`validate_catalog` (`compliance.catalog.model`) always validates.

A catalog with a problem is never stored: its problems are reported at file:line on every run. Nor is one
that JSON cannot give back exactly (a date among a check's parameters), nor while plugins are registered in
the process.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from compliance.catalog.files import bundled_folder, discover
from compliance.severity import Severity

if TYPE_CHECKING:
    from compliance.catalog.model import Catalog, Control

T = TypeVar("T")

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
    return _through_cache(paths, target_groups, bundled, environ, _decoded, lambda catalog: _decoded(_encoded(catalog)))


def load_catalog(paths: Sequence[Path], target_groups: Mapping[str, list[Any]] | None = None, *,
                 bundled: Sequence[str] = ()) -> Catalog:
    """Load and validate every control under paths (`compliance.catalog.model.validate_catalog`: raises
    ValidationFailed with all problems), from the cache while nothing the catalog was made from has changed."""
    return cached_catalog(paths, {} if target_groups is None else target_groups, bundled=bundled)


def cached_catalog(paths: Sequence[Path], target_groups: Mapping[str, list[Any]], *, bundled: Sequence[str] = (),
                   environ: Mapping[str, str] | None = None) -> Catalog:
    """What `validate_catalog(paths, target_groups, bundled=bundled)` gives, rebuilt from the cache (without
    PyYAML, validation or plugins) when nothing it was made from has changed; raises what it raises, on every
    run. The same entry as `listed`'s."""
    return _through_cache(paths, target_groups, bundled, environ, _rebuilt, lambda catalog: catalog)


def _through_cache(paths: Sequence[Path], target_groups: Mapping[str, list[Any]], bundled: Sequence[str],
                   environ: Mapping[str, str] | None, decode: Callable[[Mapping[str, Any]], T],
                   fresh: Callable[[Catalog], T]) -> T:
    """DECODE of the stored entry of the catalog when it is still valid, else FRESH of the catalog validated now
    (stored when it may be)."""
    from compliance import cache

    environ = os.environ if environ is None else environ
    entry = _entry_key(paths, target_groups, bundled, environ)
    if entry is None:
        return fresh(_validated(paths, target_groups, bundled))
    name, entry_key = entry
    stored = cache.read(name, entry_key, environ)
    if isinstance(stored, dict) and _unchanged(stored.get("depends")):
        try:
            return decode(stored)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # an entry this code cannot read: validate again and replace it
    catalog = _validated(paths, target_groups, bundled)
    data = _encoded(catalog)
    depends = _plugin_files(catalog)
    # stored only when no file changed while it was validated (the entry holds what its key describes) and
    # the controls come back from it exactly as validated (a YAML date in params would come back a string)
    if (depends is not None and _entry_key(paths, target_groups, bundled, environ) == entry
            and _faithful(catalog, data)):
        cache.write(name, entry_key, {**data, "depends": depends}, environ)
    return fresh(catalog)


def _validated(paths: Sequence[Path], target_groups: Mapping[str, list[Any]], bundled: Sequence[str]) -> Catalog:
    from compliance.catalog.model import validate_catalog

    return validate_catalog(paths, target_groups, bundled=bundled)


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
    """The entry of a validated catalog: each control's definition (`model_dump(mode="json")`), where it was
    read from, which of its fields (and of its checks' fields) were written, and its content hash."""
    return {"controls": [{"definition": c.model_dump(mode="json"), "source": c.source, "line": c.line,
                          "bundled": c.bundled, "override_source": c.override_source,
                          "frameworks": c.frameworks, "set": sorted(c.model_fields_set),
                          "checks_set": [sorted(spec.model_fields_set) for spec in c.checks],
                          "checks_data": _checks_data(c), "hash": c.content_hash()} for c in catalog]}


def _checks_data(control: Control) -> list[list[Any]] | None:
    """The parameters and targets of each check as validated, with the positions of what was read from a file
    (`LocDict`, `LocList`), in the configuration cache's JSON; None when JSON cannot hold them (a date)."""
    from compliance.settings import NotCached, encoded

    try:
        return [[encoded(spec.params), encoded(spec.targets)] for spec in control.checks]
    except NotCached:
        return None


def _rebuilt(data: Mapping[str, Any]) -> Catalog:
    """The catalog an entry holds, as `Control` objects built from their validated fields (not validated again)."""
    from compliance.catalog.model import Catalog, CheckSpec, Control
    from compliance.settings_view import from_cache

    controls = []
    for stored in data["controls"]:
        values = dict(stored["definition"])
        values["severity"] = Severity(values["severity"])
        values["checks"] = [
            CheckSpec.model_construct(set(written), **{**spec, "params": from_cache(params),
                                                       "targets": from_cache(targets)})
            for spec, written, (params, targets) in zip(values["checks"], stored["checks_set"], stored["checks_data"],
                                                        strict=True)]
        values.setdefault("translations", {})  # left out of the definition when empty
        control = Control.model_construct(set(stored["set"]), **values)
        control._source, control._line = str(stored["source"]), int(stored["line"])
        control._bundled, control._override_source = bool(stored["bundled"]), str(stored["override_source"])
        control._known_hash(str(stored["hash"]))
        controls.append(control)
    return Catalog(tuple(controls))


def _faithful(catalog: Catalog, data: Mapping[str, Any]) -> bool:
    """Whether the entry gives back the validated controls exactly: the same types, values, fields written and
    attributes (what JSON cannot hold, such as a date or a number as a mapping's key, is not cached)."""
    try:
        again = _rebuilt(json.loads(json.dumps(data)))
    except (KeyError, TypeError, ValueError):
        return False
    return len(again) == len(catalog) and all(
        _same(a.__dict__, b.__dict__) and _same(a.__pydantic_private__, b.__pydantic_private__)
        and a.model_fields_set == b.model_fields_set
        and all(x.model_fields_set == y.model_fields_set for x, y in zip(a.checks, b.checks, strict=True))
        for a, b in zip(catalog, again, strict=True))


def _same(one: Any, other: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True, yet JSON keeps them apart)."""
    from pydantic import BaseModel

    if type(one) is not type(other):
        return False
    if isinstance(one, BaseModel):
        return _same(one.__dict__, other.__dict__) and _same(one.__pydantic_private__, other.__pydantic_private__)
    if isinstance(one, dict):
        return list(one) == list(other) and all(_same(one[k], other[k]) for k in one)
    if isinstance(one, list | tuple):
        return len(one) == len(other) and all(_same(a, b) for a, b in zip(one, other, strict=True))
    return bool(one == other)


def _decoded(data: Mapping[str, Any]) -> list[Listed]:
    return [Listed(dict(c["definition"]), str(c["source"]), int(c["line"]), bool(c["bundled"]),
                   str(c["override_source"]), list(c["frameworks"])) for c in data["controls"]]
