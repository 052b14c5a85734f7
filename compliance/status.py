"""The words results are given in: a check's status and a stored message, without pydantic.

Split from `compliance.api` (which re-exports all of it for plugins) so that the commands that only read
results (`findings`, the report) do not import the plugins' API and pydantic at start-up (issue 18).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

#: The largest evidence a result may carry, in bytes of JSON. Larger evidence is cut by the engine.
EVIDENCE_LIMIT = 16 * 1024


class Status(enum.StrEnum):
    """The outcome of one check on one target."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # the check could not decide: it crashed, timed out or could not reach the target
    SKIPPED = "skipped"  # the check does not apply here (e.g. nothing matched a glob that may be empty)


#: The evidence key under which a result keeps its message template (see `Message`).
MESSAGE_KEY = "message_template"


def render_message(stored: Mapping[str, Any], translate: Callable[[str], str], lang: str = "en") -> str:
    """A stored message (`Message.as_json()`) filled in, each template translated by `translate`.

    A parameter given as a text per language is shown in `lang` (in English when `lang` is missing).
    """

    def fill(value: Any) -> Any:
        if isinstance(value, Mapping) and "template" in value:
            return render_message(value, translate, lang)
        if isinstance(value, Mapping):
            return value.get(lang) or value.get("en", "")
        if isinstance(value, list):
            return "; ".join(str(fill(v)) for v in value)
        return value

    template = str(stored["template"])
    params = {k: fill(v) for k, v in (stored.get("params") or {}).items()}
    try:
        return translate(template) % params
    except (KeyError, TypeError, ValueError):  # a translation that does not fit its parameters
        return template % params
