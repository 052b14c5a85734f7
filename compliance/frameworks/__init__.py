"""Frameworks a control can refer to, as data: BIO2 (ISO/IEC 27002:2022), AVG and Forum Standaardisatie.

Each framework lists its requirements (ISO control numbers with their BIO2 measures, AVG articles,
internet standards) in a YAML file beside this module. A control belongs to a framework through its
`references`; `requirements_of` maps those references onto requirement numbers, and
`reference_error` says whether a reference is well formed and exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

FRAMEWORKS = ("bio2", "avg", "forum-standaardisatie")

#: The `references` keys through which a control belongs to each framework.
REFERENCE_KEYS = {
    "bio2": ("bio2", "iso27002", "iso27001"),
    "avg": ("avg",),
    "forum-standaardisatie": ("forum-standaardisatie",),
}


@dataclass(frozen=True, slots=True)
class Requirement:
    number: str
    group: str
    title: dict[str, str]
    measures: tuple[str, ...] = ()

    def label(self, lang: str = "en") -> str:
        return self.title.get(lang) or self.title["en"]


@dataclass(frozen=True)
class Framework:
    name: str
    version: str
    requirements: tuple[Requirement, ...]

    def get(self, number: str) -> Requirement | None:
        return next((r for r in self.requirements if r.number == number), None)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(r.group for r in self.requirements))


@cache
def load(name: str) -> Framework:
    import yaml

    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework '{name}'; use one of {', '.join(FRAMEWORKS)}")
    data: dict[str, Any] = yaml.safe_load((files("compliance.frameworks") / f"{name}.yaml").read_text("utf-8"))
    for requirement in data["requirements"]:
        if set(requirement["title"]) != {"en", "nl"}:  # e.g. an unquoted comma in a flow mapping
            raise ValueError(f"{name}.yaml: requirement {requirement['number']} needs exactly an en and a nl title, "
                             f"got {sorted(requirement['title'])}")
    return Framework(
        data["framework"], str(data["version"]),
        tuple(Requirement(str(r["number"]), r["group"], dict(r["title"]), tuple(r.get("measures", ())))
              for r in data["requirements"]),
    )


def _values(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


_ISO = re.compile(r"^([5-8])\.(\d{1,2})$")
_BIO2 = re.compile(r"^([5-8])\.(\d{1,2})(?:\.(\d{1,2}))?$")
_AVG = re.compile(r"^(\d{1,2})(?:\(\d{1,2}\))?(?:\([a-z]\))?$")
_ISO27001 = re.compile(r"^(?:[4-9]|10)(?:\.\d{1,2}){0,2}$|^A\.[5-8]\.\d{1,2}$")
_NIS2 = re.compile(r"^\d{1,2}(?:\(\d{1,2}\))?(?:\([a-j]\))?$")


def _iso_number(theme: str, control: str) -> str:
    return f"{int(theme)}.{int(control)}"


def requirements_of(references: dict[str, Any], framework: str) -> set[str]:
    """The requirement numbers of `framework` that a control's references point at."""
    found: set[str] = set()
    for key in REFERENCE_KEYS[framework]:
        for value in _values(references.get(key, [])):
            value = value.strip()
            if framework == "bio2" and key in ("bio2", "iso27002"):
                match = _BIO2.match(value)
                if match:
                    found.add(_iso_number(match.group(1), match.group(2)))
            elif framework == "avg":
                match = _AVG.match(value)
                if match:
                    found.add(str(int(match.group(1))))
            elif framework == "forum-standaardisatie":
                found.add(value)
    return found


def frameworks_of(references: dict[str, Any]) -> list[str]:
    """The frameworks a control belongs to through its references."""
    return [name for name in FRAMEWORKS if any(key in references for key in REFERENCE_KEYS[name])]


def reference_error(key: str, value: str) -> str:
    """Why a reference is not well formed or does not exist, or '' when it is fine."""
    value = value.strip()
    if key == "iso27002":
        match = _ISO.match(value)
        if not match:
            return f"'{value}' is not an ISO/IEC 27002:2022 control number such as \"8.13\""
        if load("bio2").get(_iso_number(*match.groups())) is None:
            return f"ISO/IEC 27002:2022 has no control {value}"
    elif key == "bio2":
        match = _BIO2.match(value)
        if not match:
            return f"'{value}' is not a BIO2 number such as \"8.13\" (control) or \"8.13.01\" (measure)"
        requirement = load("bio2").get(_iso_number(match.group(1), match.group(2)))
        if requirement is None:
            return f"BIO2 has no control {match.group(1)}.{match.group(2)}"
        if match.group(3) is not None:
            measure = f"{int(match.group(1))}.{int(match.group(2)):02d}.{int(match.group(3)):02d}"
            if measure not in requirement.measures:
                known = ", ".join(requirement.measures) or "none"
                return f"BIO2 has no measure {measure} (measures of {requirement.number}: {known})"
    elif key == "avg":
        match = _AVG.match(value)
        if not match or not 1 <= int(match.group(1)) <= 99:
            return f"'{value}' is not an AVG/GDPR article such as \"30\" or \"33(5)\""
    elif key == "iso27001":
        if not _ISO27001.match(value):
            return f"'{value}' is not an ISO/IEC 27001:2022 clause such as \"6.1.2\" or \"A.5.1\""
    elif key == "nis2":
        if not _NIS2.match(value):
            return f"'{value}' is not a NIS2 article such as \"21\" or \"21(2)(d)\""
    elif key == "forum-standaardisatie":
        standards = [r.number for r in load("forum-standaardisatie").requirements]
        if value not in standards:
            return f"'{value}' is not a Forum Standaardisatie standard; use one of {', '.join(standards)}"
    return ""
