"""The control models and their loading: YAML files turned into typed, validated `Control` objects.

A YAML file holds one control (a mapping) or a list of them. Loading makes three passes and collects
every problem before giving up: (1) parse, with line numbers, rejecting duplicate keys; (2) types,
against the `Control` model, unknown keys being errors; (3) meaning: each plugin exists and its
parameters validate for every target, ids are unique across files, target groups exist in the
configuration and cron expressions parse.

The meaning pass also runs on the parts of a control that failed the type pass which are sound on their
own (its references, its schedule, each check whose own shape is valid), so that one run shows every
problem. A bad target in a group of compliance.yaml is reported where it was written in that file,
naming the controls that use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from compliance.api import Check, Seconds
from compliance.catalog.files import bundled_folder, discover
from compliance.cron import cron_error
from compliance.errors import Problem, ValidationFailed, did_you_mean, display_path
from compliance.severity import Severity as Severity  # moved there; imported from here too

#: The four themes of ISO/IEC 27002:2022, which BIO2 follows: clauses 5, 6, 7 and 8.
THEMES: dict[str, str] = {
    "organizational": "5",
    "people": "6",
    "physical": "7",
    "technological": "8",
}


ControlId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")]
Theme = Literal["organizational", "people", "physical", "technological"]
Reference = str | list[str]

#: The longest path of a control file the database keeps (the `source` of a control).
SOURCE_LENGTH = 1000

#: The languages a control's texts can be written in; English is the one every text has.
LANGUAGES = ("en", "nl")
#: The control keys that take a text per language: `title: {en: ..., nl: ...}` or a plain string.
TRANSLATABLE = ("title", "description", "owner")


def _text_error(value: Any) -> str | None:
    """Why a per-language text mapping is not valid (None when it is)."""
    unknown = [str(k) for k in value if k not in LANGUAGES]
    if unknown:
        return (f"unknown language {', '.join(repr(k) for k in unknown)}; "
                f"write the texts under {' and '.join(LANGUAGES)}")
    if "en" not in value:
        return "a text per language needs at least the English one, under `en:`"
    if not all(isinstance(v, str) and v.strip() for v in value.values()):
        return "each language's text must be a non-empty string"
    return None


#: A network zone's name: `local` (this process) or the zone of `compliance worker --zone NAME`.
Zone = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", max_length=40)]
LOCAL_ZONE = "local"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSpec(_Strict):
    """One check of a control: a plugin, its parameters and optionally the targets it runs on."""

    plugin: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    targets: str | list[str | dict[str, Any]] | None = None
    timeout: Seconds | None = None
    #: the network zone whose workers run this check (`compliance worker --zone`); default: the control's
    zone: Zone | None = None


class Control(_Strict):
    """A control: what must be true, why (references), how bad if not, and how to test it."""

    id: ControlId
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    theme: Theme
    references: dict[str, Reference] = Field(default_factory=dict)
    severity: Severity
    owner: str | None = Field(default=None, max_length=200)
    schedule: str | None = Field(default=None, max_length=100)
    tags: list[str] = Field(default_factory=list)
    checks: list[CheckSpec] = Field(min_length=1)
    combine: Literal["all", "any"] = "all"
    timeout: Seconds | None = None
    #: the network zone whose workers run this control's checks; default: its target group's, else `local`
    zone: Zone | None = None
    enabled: bool = True
    #: The texts per language beside the plain value, e.g. {"nl": {"title": ..., "description": ...}};
    #: filled from `title: {en: ..., nl: ...}` (and description, owner). An evidence check's
    #: `requirement` written per language is kept here too, under every language including "en".
    translations: dict[str, dict[str, str]] = Field(default_factory=dict, exclude_if=lambda v: not v)

    _source: str = PrivateAttr(default="")
    _line: int = PrivateAttr(default=1)
    _bundled: bool = PrivateAttr(default=False)
    _override_source: str = PrivateAttr(default="")
    _hash: _Hash = PrivateAttr(default_factory=lambda: _Hash())

    @model_validator(mode="before")
    @classmethod
    def _split_languages(cls, data: Any) -> Any:
        """Turn `title: {en: ..., nl: ...}` into the English title plus its translations.

        A mapping that is not a valid text per language is left as it is, so that the key's own
        validator reports what is wrong with it, at its place.
        """
        if not isinstance(data, dict):
            return data
        if "translations" in data and not isinstance(data.get("translations"), dict):
            return data
        data = dict(data)
        translations: dict[str, dict[str, str]] = {lang: dict(texts) for lang, texts in
                                                   (data.get("translations") or {}).items()
                                                   if isinstance(texts, dict)}
        for key in TRANSLATABLE:
            value = data.get(key)
            if isinstance(value, dict) and _text_error(value) is None:
                data[key] = value["en"]
                for lang, text in value.items():
                    if lang != "en":
                        translations.setdefault(lang, {})[key] = text
        requirement = _first_requirement(data.get("checks"))
        if requirement is not None:
            translations.setdefault("en", {})["requirement"] = requirement["en"]
            for lang, text in requirement.items():
                if lang != "en":
                    translations.setdefault(lang, {})["requirement"] = text
        data["translations"] = {lang: texts for lang, texts in translations.items() if texts}
        return data

    @field_validator(*TRANSLATABLE, mode="before")
    @classmethod
    def _one_text_per_language(cls, value: Any) -> Any:
        if isinstance(value, dict):
            raise ValueError(_text_error(value) or "a text per language")
        return value

    def text(self, field: str, lang: str) -> str:
        """The control's `field` (title, description, owner, requirement) in `lang`, else its plain text.

        The plain text is the English one when the control was written in both languages, or the one
        text a municipality wrote for its own control.
        """
        translated = self.translations.get(lang, {}).get(field)
        if translated:
            return translated
        if field == "requirement":
            return self.translations.get("en", {}).get("requirement") or _plain_requirement(self.checks)
        if field not in TRANSLATABLE:
            raise ValueError(f"unknown text field '{field}'; use one of {', '.join((*TRANSLATABLE, 'requirement'))}")
        value: str | None = getattr(self, field)
        return value or ""

    @property
    def source(self) -> str:
        """The file this control was read from ('' when built in code)."""
        return self._source

    @property
    def line(self) -> int:
        return self._line

    @property
    def bundled(self) -> bool:
        """Whether the control comes from the catalog shipped with the product."""
        return self._bundled

    @property
    def override_source(self) -> str:
        """The local file that overrides some of this control's keys ('' when none does)."""
        return self._override_source

    @property
    def frameworks(self) -> list[str]:
        from compliance.frameworks import frameworks_of

        return frameworks_of(self.references)

    def content_hash(self) -> str:
        """A SHA-256 of the control's definition, so the database knows when the YAML changed."""
        memo = self._hash
        if memo.of is not self.__dict__:  # not yet computed, or for the control this one was copied from
            canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
            memo.of, memo.value = self.__dict__, hashlib.sha256(canonical.encode()).hexdigest()
        return memo.value

    def _known_hash(self, value: str) -> None:
        """Take VALUE as `content_hash()` (the catalog cache kept it with the definition it was computed from)."""
        self._hash.of, self._hash.value = self.__dict__, value


class _Hash:
    """A control's content hash, kept with the fields (`__dict__`) it was computed from: a copy with other
    fields (`model_copy(update=...)`) gets a new `__dict__` and so computes its own. Not part of equality."""

    __slots__ = ("of", "value")

    def __init__(self) -> None:
        self.of: dict[str, Any] | None = None
        self.value = ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Hash)

    __hash__ = None  # type: ignore[assignment]


def _first_requirement(checks: Any) -> dict[str, str] | None:
    """The first check's `requirement` written per language (the evidence plugin's), when valid."""
    if not isinstance(checks, list):
        return None
    for spec in checks:
        params = spec.get("params") if isinstance(spec, dict) else None
        requirement = params.get("requirement") if isinstance(params, dict) else None
        if isinstance(requirement, dict) and _text_error(requirement) is None:
            return {str(k): v for k, v in requirement.items()}
    return None


def _plain_requirement(checks: Sequence[CheckSpec]) -> str:
    requirement = next((spec.params["requirement"] for spec in checks if "requirement" in spec.params), "")
    return requirement if isinstance(requirement, str) else ""


@dataclass(frozen=True, slots=True)
class PlannedCheck:
    """One plugin run: a check of a control with its parameters for one target filled in."""

    control_id: str
    check_index: int
    plugin: str
    params: dict[str, Any]
    timeout: float
    zone: str = LOCAL_ZONE


@dataclass(frozen=True)
class Catalog:
    """The loaded controls, in file order, with unique ids."""

    controls: tuple[Control, ...]

    def __iter__(self) -> Any:
        return iter(self.controls)

    def __len__(self) -> int:
        return len(self.controls)

    def get(self, control_id: str) -> Control | None:
        return next((c for c in self.controls if c.id == control_id), None)

    def ids(self) -> list[str]:
        return [c.id for c in self.controls]


@dataclass
class _Item:
    """One control mapping as written in a file, or a bundled one merged with a local override."""

    path: str
    raw: Any  # the file's located document, for positions
    prefix: tuple[int, ...]
    data: dict[str, Any]
    pos: tuple[int, int]
    bundled: bool
    overridden: dict[str, tuple[str, Any, tuple[int, ...]]] = field(default_factory=dict)
    override_path: str = ""

    def source(self, key: object) -> tuple[str, Any, tuple[int, ...]]:
        """Where the value of a top-level key was written: the override's file or the control's own."""
        return self.overridden.get(str(key), (self.path, self.raw, self.prefix))




def validate_catalog(
    paths: Sequence[Path],
    target_groups: Mapping[str, list[Any]] | None = None,
    *,
    bundled: Sequence[str] = (),
) -> Catalog:
    """Load and validate every control under paths, now. Raises ValidationFailed with all problems.

    `bundled` names the frameworks (bio2, avg, forum-standaardisatie) whose controls from the shipped
    catalog are loaded first. A local control with the id of an earlier one and `override: true` changes
    it: its keys replace the earlier control's keys (`enabled: false` switches it off).

    `load_catalog` (`compliance.catalog.listing`) gives the same catalog, from the cache when it can.
    """
    from compliance.frameworks import frameworks_of

    problems: list[Problem] = []
    items: list[_Item] = []
    if bundled:
        shipped, _ = discover([bundled_folder()])
        for file in shipped:
            found, file_problems = _read_items(file, bundled=True)
            problems.extend(file_problems)
            items.extend(i for i in found if set(frameworks_of(_mapping(i.data.get("references")))) & set(bundled))
    files, missing = discover(paths)
    problems.extend(missing)
    for file in files:
        found, file_problems = _read_items(file, bundled=False)
        problems.extend(file_problems)
        items.extend(found)

    merged = _apply_overrides(items, problems)
    meaning = _Meaning(target_groups or {})
    controls: list[Control] = []
    for item in merged:
        control = _validate_item(item, meaning, problems)
        if control is not None:
            controls.append(control)
    problems.extend(meaning.group_problems())
    if problems:
        raise ValidationFailed(problems)
    return Catalog(tuple(controls))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_items(file: Path, *, bundled: bool) -> tuple[list[_Item], list[Problem]]:
    from compliance.yamlfile import LocList, load_yaml, position_of

    raw, problems = load_yaml(file)
    path = str(file)
    if raw is None:
        return [], problems
    if isinstance(raw, list):
        entries, multi = list(raw), True
    elif isinstance(raw, dict):
        entries, multi = [raw], False
    else:
        return [], [*problems, Problem(path, 1, 1, "a control file holds a control (a mapping) or a list of them",
                                       "start the file with `id: ...` or `- id: ...`")]
    items: list[_Item] = []
    for index, entry in enumerate(entries):
        prefix = (index,) if multi else ()
        pos = raw.item_pos[index] if isinstance(raw, LocList) else (1, 1)
        if not isinstance(entry, dict):
            problems.append(Problem(path, *pos, "a control must be a mapping of keys",
                                    "write `- id: ...` with the keys indented below it"))
            continue
        id_pos = position_of(raw, (*prefix, "id")) if "id" in entry else pos
        items.append(_Item(path, raw, prefix, entry, id_pos, bundled))
    return items, problems


def _apply_overrides(items: list[_Item], problems: list[Problem]) -> list[_Item]:
    """Merge `override: true` items into the control they name; report duplicate ids."""
    from compliance.yamlfile import position_of

    result: list[_Item] = []
    by_id: dict[str, _Item] = {}
    for item in items:
        cid = item.data.get("id")
        override = item.data.get("override")
        if override is not None and not isinstance(override, bool):
            problems.append(Problem(item.path, *position_of(item.raw, (*item.prefix, "override")),
                                    "override must be true or false", "write `override: true`"))
            continue
        if not isinstance(cid, str):
            result.append(item)  # the type pass reports the missing or wrong id
            continue
        base = by_id.get(cid)
        if override:
            if base is None:
                hint = did_you_mean(cid, list(by_id))
                problems.append(Problem(item.path, *item.pos, f"override of unknown control '{cid}'",
                                        hint or "override changes a bundled or earlier control with this id; "
                                        "see `compliance controls list`"))
                continue
            data = {**base.data, **{k: v for k, v in item.data.items() if k != "override"}}
            source = (item.path, item.raw, item.prefix)
            merged = _Item(base.path, base.raw, base.prefix, data, base.pos, base.bundled,
                           {**base.overridden, **{k: source for k in item.data if k != "override"}}, item.path)
            result[result.index(base)] = merged
            by_id[cid] = merged
            continue
        if base is not None:
            hint = (f"already defined at {display_path(base.path)}:{base.pos[0]}; give one of them another id"
                    + ("" if not base.bundled else ", or add `override: true` to change the bundled control"))
            problems.append(Problem(item.path, *item.pos, f"duplicate control id '{cid}'", hint))
            result.append(item)  # still validated, so its other mistakes are reported too
            continue
        by_id[cid] = item
        result.append(item)
    return result


def _validate_item(item: _Item, meaning: _Meaning, problems: list[Problem]) -> Control | None:
    data = {k: v for k, v in item.data.items() if k != "override"}
    try:
        control = Control.model_validate(data)
    except ValidationError as exc:
        # a union type reports each member that failed; one message per place is enough
        first_per_place: dict[tuple[str, int, int], Problem] = {}
        for err in exc.errors():
            path, raw, prefix = item.source(err["loc"][0] if err["loc"] else "")
            problem = _type_problem(path, raw, prefix, data, err)
            first_per_place.setdefault((problem.path, problem.line, problem.col), problem)
        problems.extend(first_per_place.values())
        problems.extend(meaning.problems(item, *_sound_parts(data, exc)))
        return None
    if len(item.path) > SOURCE_LENGTH:
        problems.append(Problem(item.path, *item.pos, f"the path of this file is {len(item.path)} characters "
                                f"long; at most {SOURCE_LENGTH} fit", "move the file to a shorter path"))
        return None
    control._source, control._line, control._bundled = item.path, item.pos[0], item.bundled
    control._override_source = item.override_path
    problems.extend(meaning.problems(item, control.references, control.schedule, list(enumerate(control.checks))))
    return control


def _sound_parts(
    data: Mapping[str, Any], exc: ValidationError
) -> tuple[Mapping[str, Reference], str | None, list[tuple[int, CheckSpec]]]:
    """The references, schedule and checks of a control that failed the type pass, where valid on their own.

    The model has no rule across keys, so a key without a type error holds a valid value whatever is
    wrong elsewhere in the control; likewise each check without an error of its own.
    """
    bad = {tuple(err["loc"][:2]) if err["loc"][:1] == ("checks",) else tuple(err["loc"][:1])
           for err in exc.errors()}
    references = data.get("references") if ("references",) not in bad else None
    schedule = data.get("schedule") if ("schedule",) not in bad else None
    checks: list[tuple[int, CheckSpec]] = []
    if ("checks",) not in bad and isinstance(data.get("checks"), list):
        checks = [(i, CheckSpec.model_validate(spec)) for i, spec in enumerate(data["checks"])
                  if ("checks", i) not in bad]
    return references if isinstance(references, dict) else {}, schedule if isinstance(schedule, str) else None, checks


_KEY_HINTS = {
    "id": "a short unique id such as `BACKUP-01`",
    "title": "a one-line title",
    "theme": "one of " + ", ".join(THEMES),
    "severity": "one of low, medium, high, critical",
    "checks": "a list of checks, e.g. `- plugin: file_age`",
    "plugin": "the name of a check plugin, see `compliance checks list`",
}


def _type_problem(path: str, raw: Any, prefix: tuple[int, ...], item: Mapping[str, Any], err: Any) -> Problem:
    from compliance.yamlfile import position_of

    loc = tuple(err["loc"])
    # pydantic puts the union member tried in the location (e.g. 'str', 'list[...]'); drop it
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "list", "dict"))))
    dotted = ".".join(str(p) for p in loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = _lookup(item, loc[:-1])
        allowed = _allowed_keys(loc[:-1])
        hint = did_you_mean(key, allowed) if allowed else ""
        hint = hint or (f"allowed keys: {', '.join(allowed)}" if allowed else "remove it")
        line, col = position_of(raw, (*prefix, *loc), key=True)
        where = f" in {'.'.join(str(p) for p in loc[:-1])}" if loc[:-1] and isinstance(parent, dict) else ""
        return Problem(path, line, col, f"unknown key '{key}'{where}", hint)
    line, col = position_of(raw, (*prefix, *loc))
    field = str(loc[-1]) if loc else ""
    if kind == "missing":
        return Problem(path, line, col, f"missing required key '{dotted}'",
                       f"add `{field}:` with {_KEY_HINTS.get(field, 'a value')}")
    value = _lookup(item, loc)
    if kind == "string_too_long" and isinstance(value, str):
        limit = err.get("ctx", {}).get("max_length")
        return Problem(path, line, col, f"{dotted} is {len(value)} characters long; at most {limit} fit",
                       "shorten it (the database keeps no more)")
    shown = f" '{value}'" if isinstance(value, str | int | float) else ""
    message = str(err["msg"]).removeprefix("Value error, ")
    hint = ""
    if field == "theme" and isinstance(value, str):
        hint = did_you_mean(value, list(THEMES)) or _KEY_HINTS["theme"]
    elif field == "severity" and isinstance(value, str):
        hint = did_you_mean(value, [s.value for s in Severity]) or _KEY_HINTS["severity"]
    elif kind == "string_type" and isinstance(value, int | float) and "references" in loc:
        hint = 'quote it, e.g. "8.10": YAML reads an unquoted 8.10 as the number 8.1'
    elif kind == "string_pattern_mismatch" and field == "id":
        hint = "use letters, digits and . _ : - (at most 100), starting with a letter or digit"
        message = "is not a valid control id"
    elif kind == "too_short" and field == "checks":
        hint = _KEY_HINTS["checks"]
        message = "a control needs at least one check"
    return Problem(path, line, col, f"{dotted}{shown}: {message}", hint)


def _lookup(item: Any, loc: tuple[Any, ...]) -> Any:
    node = item
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_list or (isinstance(node, dict) and part in node):
            node = node[part]
        else:
            return None
    return node


def _allowed_keys(parent_loc: tuple[Any, ...]) -> list[str]:
    if not parent_loc:
        return list(Control.model_fields)
    if parent_loc[0] == "checks" and len(parent_loc) == 2:
        return list(CheckSpec.model_fields)
    return []


class _Meaning:
    """The meaning pass: references, schedules, plugins, target groups and every target's parameters.

    A problem with a target of a group is reported in compliance.yaml where the target was written
    (when the groups come with their positions), once, naming every control that uses it.
    """

    def __init__(self, groups: Mapping[str, list[Any]]) -> None:
        self.groups = groups
        self._in_groups: dict[tuple[Problem, str], list[str]] = {}

    def problems(
        self, item: _Item, references: Mapping[str, Reference], schedule: str | None,
        checks: Sequence[tuple[int, CheckSpec]],
    ) -> list[Problem]:
        from compliance import plugins
        from compliance.frameworks import reference_error
        from compliance.yamlfile import position_of

        problems: list[Problem] = []
        path, raw, prefix = item.source("references")
        for key, value in references.items():
            for i, one in enumerate([value] if isinstance(value, str) else value):
                error = reference_error(key, one)
                if error:
                    where: tuple[int | str, ...] = (*prefix, "references", key)
                    if not isinstance(value, str):
                        where = (*where, i)
                    problems.append(Problem(path, *position_of(raw, where), f"references.{key}: {error}"))
        path, raw, prefix = item.source("schedule")
        if schedule is not None:
            error = cron_error(schedule)
            if error:
                problems.append(Problem(
                    path, *position_of(raw, (*prefix, "schedule")),
                    f"schedule '{schedule}' is not a valid cron expression: {error}",
                    "use five fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * *'"))
        path, raw, prefix = item.source("checks")
        for ci, spec in checks:
            here: tuple[int | str, ...] = (*prefix, "checks", ci)
            try:
                plugin = plugins.load(spec.plugin)
            except plugins.PluginError as exc:
                problems.append(Problem(path, *position_of(raw, (*here, "plugin")), str(exc)))
                continue
            if isinstance(spec.targets, str) and spec.targets not in self.groups and not item.bundled:
                hint = did_you_mean(spec.targets, list(self.groups)) or (
                    f"define it under `targets: {spec.targets}:` in compliance.yaml"
                    + (f" (defined: {', '.join(sorted(self.groups))})" if self.groups else ""))
                problems.append(Problem(path, *position_of(raw, (*here, "targets")),
                                        f"unknown target group '{spec.targets}'", hint))
            runs = target_params(spec, plugin, self.groups)
            if not runs and isinstance(spec.targets, str):
                # an unknown or empty group: the control's own parameters can still be checked
                problems.extend(self._param_problems(item, here, spec, plugin, None, dict(spec.params)))
            for ti, params in enumerate(runs):
                problems.extend(self._param_problems(item, here, spec, plugin, ti, params))
        return list(dict.fromkeys(problems))

    def group_problems(self) -> list[Problem]:
        """The problems with targets of groups, each naming the controls that use the target."""
        return [Problem(p.path, p.line, p.col, f"target in group '{group}', used by "
                        f"control{'s' if len(users) > 1 else ''} {', '.join(repr(u) for u in users)}: {p.message}",
                        p.hint)
                for (p, group), users in self._in_groups.items()]

    def _param_problems(
        self, item: _Item, here: tuple[Any, ...], spec: CheckSpec, plugin: type[Check], ti: int | None,
        params: dict[str, Any] | Problem,
    ) -> list[Problem]:
        """Problems with one run's parameters (ti None: the params alone, missing ones not counted)."""
        from compliance.yamlfile import position_of

        path, raw, _ = item.source("checks")
        found: list[Problem] = []
        if isinstance(params, Problem):
            assert ti is not None
            file, data, where = self._in_group(spec, ti) or (path, raw, (*here, "targets", ti))
            found.append(Problem(file, *position_of(data, where), params.message, params.hint))
            return self._route(item, spec, found)
        try:
            plugin.Params.model_validate(params)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                name = str(loc[0]) if loc else ""
                if ti is None and err["type"] == "missing":
                    continue
                key = err["type"] == "extra_forbidden"
                file, data, where = self._param_location(path, raw, here, spec, plugin, ti, name, loc,
                                                         err["type"] == "missing")
                line, col = position_of(data, where, key=key)
                fields = list(plugin.Params.model_fields)
                if key:
                    hint = did_you_mean(name, fields) or f"parameters of '{plugin.name}': {', '.join(fields)}"
                    found.append(Problem(file, line, col, f"unknown parameter '{name}' for plugin '{plugin.name}'",
                                         hint))
                elif err["type"] == "missing":
                    hint = f"add `{name}:` to this target" if file != path else f"add `{name}:` under params" + (
                        f" or list targets (they fill `{plugin.target_param}`)" if plugin.target_param == name else "")
                    found.append(Problem(file, line, col, f"plugin '{plugin.name}' needs parameter '{name}'", hint))
                else:
                    value = params.get(name)
                    shown = f" '{value}'" if isinstance(value, str | int | float) else ""
                    message = str(err["msg"]).removeprefix("Value error, ")
                    found.append(Problem(file, line, col, f"parameter '{name}'{shown} of plugin '{plugin.name}': "
                                         f"{message}", ""))
        return self._route(item, spec, found)

    def _route(self, item: _Item, spec: CheckSpec, found: list[Problem]) -> list[Problem]:
        """The problems in the control's file; those in compliance.yaml are kept for `group_problems`."""
        path, _, _ = item.source("checks")
        cid = item.data.get("id")
        user = cid if isinstance(cid, str) else f"at {display_path(item.path)}:{item.pos[0]}"
        own: list[Problem] = []
        for problem in found:
            if problem.path == path or not isinstance(spec.targets, str):
                own.append(problem)
                continue
            users = self._in_groups.setdefault((problem, spec.targets), [])
            if user not in users:
                users.append(user)
        return own

    def _in_group(self, spec: CheckSpec, ti: int, *loc: Any) -> tuple[str, Any, tuple[Any, ...]] | None:
        """Where target ti of the check's group (and loc inside it) was written, when that is known."""
        groups = self.groups
        if not isinstance(spec.targets, str) or not getattr(groups, "path", ""):
            return None
        return getattr(groups, "path", ""), groups, (spec.targets, ti, *loc)

    def _param_location(
        self, path: str, raw: Any, here: tuple[Any, ...], spec: CheckSpec, plugin: type[Check], ti: int | None,
        name: str, loc: tuple[Any, ...], missing: bool,
    ) -> tuple[str, Any, tuple[Any, ...]]:
        """Where a bad parameter was written: in a target (of the control or of a group), or under params."""
        if ti is not None and spec.targets is not None:
            targets = spec.targets if isinstance(spec.targets, list) else self.groups.get(spec.targets, [])
            target = targets[ti]
            in_target = isinstance(target, dict) and name in target
            fills = isinstance(target, str) and name == plugin.target_param
            lacks = missing and name == plugin.target_param
            if in_target or fills or lacks:
                inner = loc if in_target else ()
                if isinstance(spec.targets, list):
                    return path, raw, (*here, "targets", ti, *inner)
                located = self._in_group(spec, ti, *inner)
                if located is not None:
                    return located
        return path, raw, (*here, "params", *loc)


def target_params(
    spec: CheckSpec, plugin: type[Check], groups: Mapping[str, list[Any]]
) -> list[dict[str, Any] | Problem]:
    """The parameters for each run of a check: one per target, or the params alone without targets."""
    if spec.targets is None:
        return [dict(spec.params)]
    items = groups.get(spec.targets, []) if isinstance(spec.targets, str) else spec.targets
    runs: list[dict[str, Any] | Problem] = []
    for item in items:
        if isinstance(item, dict):
            runs.append({**spec.params, **item})
        elif plugin.target_param is None:
            runs.append(Problem("", 0, 0, f"plugin '{plugin.name}' does not take plain targets",
                                "give each target as a mapping of parameters"))
        else:
            runs.append({**spec.params, plugin.target_param: item})
    return runs


def check_zone(control: Control, spec: CheckSpec, group_zones: Mapping[str, str]) -> str:
    """Where a check runs: its own zone, else its control's, else its target group's, else `local`."""
    if spec.zone or control.zone:
        return spec.zone or control.zone or LOCAL_ZONE
    if isinstance(spec.targets, str):
        return group_zones.get(spec.targets, LOCAL_ZONE)
    return LOCAL_ZONE


def plan(control: Control, groups: Mapping[str, list[Any]], default_timeout: float,
         group_zones: Mapping[str, str] | None = None) -> list[PlannedCheck]:
    """Every plugin run a control needs, its targets expanded. The control must have validated."""
    from compliance import plugins

    planned: list[PlannedCheck] = []
    for ci, spec in enumerate(control.checks):
        plugin = plugins.load(spec.plugin)
        timeout = spec.timeout or control.timeout or default_timeout
        zone = check_zone(control, spec, group_zones or {})
        for params in target_params(spec, plugin, groups):
            assert isinstance(params, dict)
            planned.append(PlannedCheck(control.id, ci, spec.plugin, params, timeout, zone))
    return planned
