"""Controls: YAML files turned into typed, validated `Control` objects.

A YAML file holds one control (a mapping) or a list of them. Loading makes three passes and collects
every problem before giving up: (1) parse, with line numbers, rejecting duplicate keys; (2) types,
against the `Control` model, unknown keys being errors; (3) meaning: each plugin exists and its
parameters validate for every target, ids are unique across files, target groups exist in the
configuration and cron expressions parse.

The models and the loading live in `compliance.catalog.model`, the finding of files in
`compliance.catalog.files`; both are imported from here on first use, so that importing a module of this
package (`compliance.catalog.commands` for `compliance controls --help`) does not import pydantic and the
plugin API (issue 18).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.catalog.files import bundled_folder, discover
    from compliance.catalog.listing import load_catalog
    from compliance.catalog.model import (
        LANGUAGES,
        LOCAL_ZONE,
        SOURCE_LENGTH,
        THEMES,
        TRANSLATABLE,
        Catalog,
        CheckSpec,
        Control,
        ControlId,
        PlannedCheck,
        Reference,
        Severity,
        Theme,
        Zone,
        check_zone,
        plan,
        target_params,
    )

__all__ = [
    "LANGUAGES", "LOCAL_ZONE", "SOURCE_LENGTH", "THEMES", "TRANSLATABLE", "Catalog", "CheckSpec", "Control",
    "ControlId", "PlannedCheck", "Reference", "Severity", "Theme", "Zone", "bundled_folder", "check_zone",
    "discover", "load_catalog", "plan", "target_params",
]

_MODULES = {"bundled_folder": "files", "discover": "files", "load_catalog": "listing"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"compliance.catalog.{_MODULES.get(name, 'model')}"), name)
    globals()[name] = value
    return value
