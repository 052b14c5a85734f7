"""Names the report shows for the overview's codes (themes, severities, lights, ...), marked for translation.

The values are English msgids; `pybabel extract` finds them through the `N_` marker and the renderer
translates them with the report's catalog (locale/<lang>/LC_MESSAGES/messages.po).
"""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


THEMES: Mapping[str, str] = {
    "organizational": N_("Organizational controls"),
    "people": N_("People controls"),
    "physical": N_("Physical controls"),
    "technological": N_("Technological controls"),
}

SEVERITIES: Mapping[str, str] = {
    "low": N_("low"),
    "medium": N_("medium"),
    "high": N_("high"),
    "critical": N_("critical"),
}

LIGHTS: Mapping[str, str] = {
    "green": N_("green"),
    "amber": N_("amber"),
    "red": N_("red"),
    "none": N_("no data"),
}

NATURES: Mapping[str, str] = {
    "confidentiality": N_("confidentiality"),
    "integrity": N_("integrity"),
    "availability": N_("availability"),
}

BANDS: Mapping[str, str] = {
    "low": N_("low"),
    "medium": N_("medium"),
    "high": N_("high"),
    "very high": N_("very high"),
    "unassessed": N_("not assessed"),
}

#: Names of the frameworks a control's `references` point into (other keys are shown as written).
REFERENCES: Mapping[str, str] = {
    "bio2": N_("BIO2"),
    "iso27002": N_("ISO/IEC 27002:2022"),
    "iso27001": N_("ISO/IEC 27001:2022"),
    "avg": N_("GDPR art."),
    "nis2": N_("NIS2 art."),
    "forum-standaardisatie": N_("Forum Standaardisatie"),
}

KINDS: Mapping[str, Mapping[str, str]] = {
    "theme": THEMES,
    "severity": SEVERITIES,
    "light": LIGHTS,
    "nature": NATURES,
    "band": BANDS,
    "reference": REFERENCES,
}
