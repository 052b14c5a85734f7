"""How severe a control's failure is: the four severities, lowest first, without pydantic.

Split from `compliance.catalog` (which validates controls against it and re-exports it) so that the
commands that only sort or filter by severity (`findings`, `scan --fail-on`) do not import the catalog's
models, pydantic and the plugin API at start-up (issue 18).
"""

from __future__ import annotations

import enum


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

