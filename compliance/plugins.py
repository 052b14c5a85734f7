"""Finding check plugins: the entry-point group `compliance.checks`, loaded lazily by name."""

from __future__ import annotations

import threading
from importlib.metadata import EntryPoint, entry_points

from compliance.api import Check
from compliance.errors import ComplianceError, did_you_mean

GROUP = "compliance.checks"

_lock = threading.Lock()
_entry_points: dict[str, EntryPoint] | None = None
_loaded: dict[str, type[Check]] = {}
_registered: dict[str, type[Check]] = {}


class PluginError(ComplianceError):
    """A plugin that does not exist, cannot be imported or does not follow the contract."""


def register(cls: type[Check]) -> type[Check]:
    """Register a plugin class in this process only (tests, benchmarks, embedding).

    Installed plugins are found through entry points; this is for code that is not installed.
    """
    _check_contract(cls, where=f"{cls.__module__}.{cls.__qualname__}")
    with _lock:
        _registered[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)
        _loaded.pop(name, None)


def registered() -> list[str]:
    """The names of the plugins registered in this process (`register`), which no entry point names."""
    with _lock:
        return sorted(_registered)


def refresh() -> None:
    """Forget what was discovered, e.g. after installing a plugin into the running interpreter."""
    global _entry_points
    with _lock:
        _entry_points = None
        _loaded.clear()


def _discovered() -> dict[str, EntryPoint]:
    global _entry_points
    with _lock:
        if _entry_points is None:
            _entry_points = {ep.name: ep for ep in entry_points(group=GROUP)}
        return _entry_points


def names() -> list[str]:
    """Every plugin name that can be loaded, without importing any plugin."""
    return sorted(set(_discovered()) | set(_registered))


def origin(name: str) -> str:
    """Where a plugin comes from: the distribution and version, or 'registered in process'."""
    if name in _registered:
        return "registered in process"
    ep = _discovered().get(name)
    if ep is None:
        return "unknown"
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def load(name: str) -> type[Check]:
    """The plugin class for `name`, imported on first use.

    Raises PluginError naming the plugin, with a 'did you mean' for a close name.
    """
    if name in _registered:
        return _registered[name]
    if name in _loaded:
        return _loaded[name]
    ep = _discovered().get(name)
    if ep is None:
        hint = did_you_mean(name, names())
        raise PluginError(
            f"unknown check plugin '{name}'" + (f"; {hint}" if hint else "")
            + " (run `compliance checks list` to see the installed plugins)"
        )
    try:
        cls: type[Check] = ep.load()
    except Exception as exc:
        raise PluginError(f"check plugin '{name}' ({ep.value}) could not be imported: {exc}") from exc
    _check_contract(cls, where=ep.value)
    if cls.name != name:
        raise PluginError(
            f"check plugin '{name}' ({ep.value}) calls itself '{cls.name}'; the entry-point name and "
            "the class attribute `name` must be the same"
        )
    with _lock:
        _loaded[name] = cls
    return cls


def _check_contract(cls: object, where: str) -> None:
    from pydantic import BaseModel

    if not (isinstance(cls, type) and issubclass(cls, Check)):
        raise PluginError(f"{where} is not a subclass of compliance.api.Check")
    if not isinstance(getattr(cls, "name", None), str):
        raise PluginError(f"check plugin {where} has no `name` (set `name = \"...\"` on the class)")
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise PluginError(
            f"check plugin '{cls.name}' ({where}) has no `Params` model "
            "(subclass compliance.api.Params and set it as `Params`)"
        )
