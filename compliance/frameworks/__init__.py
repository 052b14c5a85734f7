"""Frameworks a control can refer to, as data: BIO2 (ISO/IEC 27002:2022), AVG and Forum Standaardisatie.

Each framework lists its requirements (ISO control numbers with their BIO2 measures, AVG articles,
internet standards) in a YAML file beside this module. A control belongs to a framework through its
`references`; `requirements_of` maps those references onto requirement numbers, and
`reference_error` says whether a reference is well formed and exists.

BIO2 also lists its government measures (`Framework.measures`, one `Measure` per live measure of the
current version) and, per earlier version, the measure numbers and what moved or lapsed since
(`version_changes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = [
    "FRAMEWORKS", "HYGIENE", "REFERENCE_KEYS", "Framework", "Measure", "Requirement", "VersionChanges",
    "frameworks_of", "load", "measures_of", "reference_error", "requirements_of", "version_changes",
]

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


#: The BIO2 v1.2 categories of a government measure (v1.3 dropped the explanation, not the idea).
HYGIENE = ("basishygiene", "ketenhygiene", "overheidsrisico")


@dataclass(frozen=True, slots=True)
class Measure:
    """A BIO2 government measure ("overheidsmaatregel"), numbered T.CC.NN under ISO control T.CC."""

    number: str
    control: str
    title: dict[str, str]
    hygiene: tuple[str, ...] = ()
    cbw: bool | None = None  # False: outside the Cbw's scope (greyed out in v1.3); None: not known

    def label(self, lang: str = "en") -> str:
        return self.title.get(lang) or self.title["en"]


@dataclass(frozen=True, slots=True)
class VersionChanges:
    """How a framework's measure numbers changed between two versions."""

    from_version: str
    to_version: str
    moved: dict[str, str]  # old number -> new number
    lapsed: tuple[str, ...]  # in from_version, gone in to_version
    new: tuple[str, ...]  # in to_version, not in from_version (and not moved there)


@dataclass(frozen=True)
class Framework:
    name: str
    version: str
    requirements: tuple[Requirement, ...]
    measures: tuple[Measure, ...] = ()
    #: Measure numbers per earlier version, e.g. {"1.2": (...)}.
    earlier: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Per earlier version: the numbers that moved in the current version (old -> new).
    moves: dict[str, dict[str, str]] = field(default_factory=dict)
    _by_number: dict[str, Measure] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_number", {m.number: m for m in self.measures})

    def get(self, number: str) -> Requirement | None:
        return next((r for r in self.requirements if r.number == number), None)

    def measure(self, number: str) -> Measure | None:
        return self._by_number.get(number)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(r.group for r in self.requirements))


@cache
def load(name: str) -> Framework:
    """The framework NAME as its YAML file beside this module says, validated.

    Parsing and validating the YAML costs more than the rest of a short command (issue 18), so the result is
    kept as JSON in the private cache (`compliance.cache`) under the file's bytes and this module's code; while
    both are as they were, a run builds the framework from that JSON without importing PyYAML. A file with a
    mistake is never cached: its error is raised on every run."""
    from compliance import cache as store

    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework '{name}'; use one of {', '.join(FRAMEWORKS)}")
    raw = (files("compliance.frameworks") / f"{name}.yaml").read_bytes()
    entry = f"framework-{name}"
    stamp = store.code_stamp("frameworks.__init__") if store.folder() is not None else ""
    entry_key = store.key(stamp, name, raw) if stamp else ""
    if entry_key:
        stored = store.read(entry, entry_key)
        if stored is not None:
            try:
                return _decoded(stored)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                pass  # a damaged entry: parse the file again and replace it
    # Text as `read_text` gives it (universal newlines), so that the cache changes nothing that is parsed.
    framework = _parsed(name, raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n"))
    if entry_key:
        import json

        encoded = _encoded(framework)
        try:  # only what JSON gives back as it was: not a date, nor a number as a mapping's key
            faithful = _decoded(json.loads(json.dumps(encoded))) == framework
        except (TypeError, ValueError):
            faithful = False
        if faithful:
            store.write(entry, entry_key, encoded)
    return framework


def _parsed(name: str, text: str) -> Framework:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is there: 10x faster
    data: dict[str, Any] = yaml.load(text, loader)
    for requirement in data["requirements"]:
        if set(requirement["title"]) != {"en", "nl"}:  # e.g. an unquoted comma in a flow mapping
            raise ValueError(f"{name}.yaml: requirement {requirement['number']} needs exactly an en and a nl title, "
                             f"got {sorted(requirement['title'])}")
    measures = tuple(_measure(name, m) for m in data.get("measures", ()))
    per_control: dict[str, list[str]] = {}
    for measure in measures:
        per_control.setdefault(measure.control, []).append(measure.number)
    controls = {str(r["number"]) for r in data["requirements"]}
    if stray := sorted(set(per_control) - controls):
        raise ValueError(f"{name}.yaml: measures under unknown controls {stray}")
    if len({m.number for m in measures}) != len(measures):
        raise ValueError(f"{name}.yaml: a measure number occurs twice")
    earlier = {str(v): tuple(str(n) for n in d["measures"]) for v, d in (data.get("versions") or {}).items()}
    moves = {str(v): {str(a): str(b) for a, b in (d.get("moved") or {}).items()}
             for v, d in (data.get("versions") or {}).items()}
    return Framework(
        data["framework"], str(data["version"]),
        tuple(Requirement(str(r["number"]), r["group"], dict(r["title"]), tuple(per_control.get(str(r["number"]), ())))
              for r in data["requirements"]),
        measures, earlier, moves,
    )


def _encoded(framework: Framework) -> dict[str, Any]:
    """FRAMEWORK as JSON data for the cache; `_decoded` builds it back."""
    return {
        "name": framework.name, "version": framework.version,
        "requirements": [[r.number, r.group, r.title, list(r.measures)] for r in framework.requirements],
        "measures": [[m.number, m.control, m.title, list(m.hygiene), m.cbw] for m in framework.measures],
        "earlier": {version: list(numbers) for version, numbers in framework.earlier.items()},
        "moves": framework.moves,
    }


def _decoded(data: dict[str, Any]) -> Framework:
    return Framework(
        data["name"], data["version"],
        tuple(Requirement(number, group, dict(title), tuple(measures))
              for number, group, title, measures in data["requirements"]),
        tuple(Measure(number, control, dict(title), tuple(hygiene), cbw)
              for number, control, title, hygiene, cbw in data["measures"]),
        {version: tuple(numbers) for version, numbers in data["earlier"].items()},
        {version: dict(moves) for version, moves in data["moves"].items()},
    )


def _measure(framework: str, data: dict[str, Any]) -> Measure:
    number = str(data["number"])
    match = _MEASURE.match(number)
    if not match:
        raise ValueError(f"{framework}.yaml: measure '{number}' is not numbered T.CC.NN such as \"8.13.02\"")
    if set(data["title"]) != {"en", "nl"}:
        raise ValueError(f"{framework}.yaml: measure {number} needs exactly an en and a nl title, "
                         f"got {sorted(data['title'])}")
    hygiene = tuple(data.get("hygiene") or ())
    if unknown := set(hygiene) - set(HYGIENE):
        raise ValueError(f"{framework}.yaml: measure {number} has unknown hygiene {sorted(unknown)}; "
                         f"use {', '.join(HYGIENE)}")
    cbw = data.get("cbw")
    if cbw is not None and not isinstance(cbw, bool):
        raise ValueError(f"{framework}.yaml: measure {number} has cbw {cbw!r}; use true, false or null")
    return Measure(number, _iso_number(match.group(1), match.group(2)), dict(data["title"]), hygiene, cbw)


def version_changes(framework: str, from_version: str, to_version: str) -> VersionChanges:
    """What moved, lapsed and came new among `framework`'s measures from one version to the next."""
    spec = load(framework)
    if from_version == to_version:
        return VersionChanges(from_version, to_version, {}, (), ())
    if to_version != spec.version or from_version not in spec.earlier:
        known = ", ".join(f"{v} -> {spec.version}" for v in spec.earlier) or "none"
        raise ValueError(f"{framework} has no measure changes from version '{from_version}' to '{to_version}'; "
                         f"known: {known}")
    before = spec.earlier[from_version]
    moved = dict(spec.moves.get(from_version, {}))
    live = {m.number for m in spec.measures}
    return VersionChanges(
        from_version, to_version, moved,
        tuple(n for n in before if n not in live and n not in moved),
        tuple(m.number for m in spec.measures if m.number not in before and m.number not in moved.values()),
    )


def _values(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


_ISO = re.compile(r"^([5-8])\.(\d{1,2})$")
_BIO2 = re.compile(r"^([5-8])\.(\d{1,2})(?:\.(\d{1,2}))?$")
_MEASURE = re.compile(r"^([5-8])\.(\d{2})\.(\d{2})$")
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


def measures_of(references: dict[str, Any]) -> set[str]:
    """The BIO2 measure numbers (T.CC.NN, zero-padded) that a control's `bio2` references name.

    An ISO control number such as "8.13" names no measure; nor does a malformed value.
    """
    found: set[str] = set()
    for value in _values(references.get("bio2", [])):
        match = _BIO2.match(value.strip())
        if match and match.group(3) is not None:
            found.add(_measure_number(*match.groups()))
    return found


def _measure_number(theme: str, control: str, sequence: str) -> str:
    return f"{int(theme)}.{int(control):02d}.{int(sequence):02d}"


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
            return _measure_error(load("bio2"), requirement, _measure_number(*match.groups()))
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


def _measure_error(spec: Framework, requirement: Requirement, number: str) -> str:
    if spec.measure(number) is not None:
        return ""
    for version, moves in spec.moves.items():
        if number in moves:
            return (f"BIO2 measure {number} (v{version}) moved to {moves[number]} in v{spec.version}; "
                    f"refer to {moves[number]}")
    for version, numbers in spec.earlier.items():
        if number in numbers:
            return f"BIO2 measure {number} (v{version}) lapsed in v{spec.version}; remove the reference"
    known = ", ".join(requirement.measures) or "none"
    return f"BIO2 has no measure {number} (measures of {requirement.number}: {known})"
