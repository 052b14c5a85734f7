"""The personal-data breach register (GDPR art. 33(5)): record, 72-hour clock, ENISA severity,
notification recommendation and decisions, hash-chained audit trail, and exports.

For other parts of the monitor (the weekly digest, reports) the surface is:

- `Register(database, zone=..., id_prefix=..., audit_key=chain.load_key(environ, key_file))`: the
  operations and `get`, `incidents`, `events`, `verify`, `anchor` (see docs/security.md);
- `open_incidents(database, now)`: incidents not closed, most urgent first; `incident.clock(now)` gives
  the deadline, the hours left (negative when overdue) and whether the authority was notified in time;
- `figures(database, since=..., until=..., now=...)`: counts by status, band and nature, notified within
  72 hours, overdue.

The names below are imported on first use (PEP 562), not with the package: a submodule that is all a
command needs (`compliance.incidents.facts`, which every scan passes to the engine) does not bring the
register and its model with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.incidents.errors import (
        IncidentError,
        IncidentNotFound,
        InvalidInput,
        PersonalDataFound,
        StepSkipped,
    )
    from compliance.incidents.model import (
        NOTIFICATION_WINDOW,
        Assessment,
        Clock,
        Decision,
        Incident,
        Notification,
        deadline_for,
    )
    from compliance.incidents.register import Draft, Figures, Register, Verification, figures, open_incidents

#: The submodule each public name comes from.
_SOURCES = {
    **dict.fromkeys(("IncidentError", "IncidentNotFound", "InvalidInput", "PersonalDataFound", "StepSkipped"),
                    "errors"),
    **dict.fromkeys(("NOTIFICATION_WINDOW", "Assessment", "Clock", "Decision", "Incident", "Notification",
                     "deadline_for"), "model"),
    **dict.fromkeys(("Draft", "Figures", "Register", "Verification", "figures", "open_incidents"), "register"),
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{source}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})


__all__ = [
    "NOTIFICATION_WINDOW",
    "Assessment",
    "Clock",
    "Decision",
    "Draft",
    "Figures",
    "Incident",
    "IncidentError",
    "IncidentNotFound",
    "InvalidInput",
    "Notification",
    "PersonalDataFound",
    "Register",
    "StepSkipped",
    "Verification",
    "deadline_for",
    "figures",
    "open_incidents",
]
