"""The BIO2 framework data: live government measures, their categories, and the changes between versions."""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

import pytest
import yaml

from compliance import frameworks
from compliance.frameworks import HYGIENE, Measure

#: Headings in the BIO2 v1.3 text that are not live measures (moved, lapsed, or a pointer elsewhere).
NOT_LIVE_IN_1_3 = ("5.04.02", "5.04.03", "5.24.06", "5.25.01", "8.08.06",
                   "5.21.01", "5.35.01", "7.01.01", "8.24.03", "5.26.01")


@pytest.fixture(scope="module")
def bio2() -> frameworks.Framework:
    return frameworks.load("bio2")


@pytest.fixture(scope="module")
def bio2_file() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((files("compliance.frameworks") / "bio2.yaml").read_text("utf-8"))
    return data


def test_the_93_iso_controls_stay(bio2: frameworks.Framework) -> None:
    per_group = {g: sum(r.group == g for r in bio2.requirements) for g in bio2.groups}
    assert per_group == {"organizational": 37, "people": 8, "physical": 14, "technological": 34}


def test_measure_counts_equal_the_documented_counts(bio2: frameworks.Framework, bio2_file: dict[str, Any]) -> None:
    documented = bio2_file["documented_counts"]
    per_theme = {theme: sum(m.number.startswith(f"{theme}.") for m in bio2.measures) for theme in "5678"}
    assert per_theme == {str(k): v for k, v in documented["per_theme"].items()}
    assert len(bio2.measures) == documented["measures"] == sum(per_theme.values())
    assert len({m.control for m in bio2.measures}) == documented["controls"]


def test_each_control_lists_exactly_its_live_measures(bio2: frameworks.Framework) -> None:
    listed = [number for r in bio2.requirements for number in r.measures]
    assert sorted(listed) == sorted(m.number for m in bio2.measures)
    for requirement in bio2.requirements:
        assert all(bio2.measure(n).control == requirement.number for n in requirement.measures)  # type: ignore[union-attr]


def test_every_measure_is_numbered_under_an_existing_control(bio2: frameworks.Framework) -> None:
    for measure in bio2.measures:
        match = re.fullmatch(r"([5-8])\.(\d{2})\.(\d{2})", measure.number)
        assert match, measure.number
        assert measure.control == f"{match.group(1)}.{int(match.group(2))}", measure.number
        assert bio2.get(measure.control) is not None, measure.number
        assert int(match.group(3)) >= 1, measure.number


def test_measure_numbers_are_unique(bio2: frameworks.Framework) -> None:
    numbers = [m.number for m in bio2.measures]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("number", NOT_LIVE_IN_1_3)
def test_moved_lapsed_and_pointer_headings_are_not_measures(bio2: frameworks.Framework, number: str) -> None:
    assert bio2.measure(number) is None
    assert all(number not in r.measures for r in bio2.requirements)


def test_titles_are_our_own_short_lines_in_both_languages(bio2: frameworks.Framework) -> None:
    for measure in bio2.measures:
        assert set(measure.title) == {"en", "nl"}, measure.number
        en, nl = measure.title["en"].strip(), measure.title["nl"].strip()
        assert en and nl and en != nl, measure.number
        assert "\n" not in en + nl and len(en) <= 90 and len(nl) <= 90, measure.number
        assert measure.label("nl") == measure.title["nl"] and measure.label("fr") == measure.title["en"]


def test_hygiene_categories_come_from_the_allowed_set(bio2: frameworks.Framework) -> None:
    assert HYGIENE == ("basishygiene", "ketenhygiene", "overheidsrisico")
    for measure in bio2.measures:
        assert measure.hygiene, measure.number  # every v1.3 measure has a v1.2 source with categories
        assert set(measure.hygiene) <= set(HYGIENE), measure.number
        assert len(set(measure.hygiene)) == len(measure.hygiene), measure.number


def test_cbw_scope_is_unknown_until_the_grey_marking_is_available(bio2: frameworks.Framework) -> None:
    assert {m.cbw for m in bio2.measures} == {None}


@pytest.mark.parametrize(("old", "new"), [("5.04.02", "5.10.02"), ("5.04.03", "5.10.03"), ("5.24.06", "5.21.05"),
                                          ("5.25.01", "5.26.02"), ("8.08.06", "5.24.08")])
def test_a_moved_measure_is_live_under_its_new_number(bio2: frameworks.Framework, bio2_file: dict[str, Any],
                                                      old: str, new: str) -> None:
    moved = frameworks.version_changes("bio2", "1.2", "1.3").moved
    assert moved[old] == new
    assert old in bio2_file["versions"]["1.2"]["measures"]
    assert bio2.measure(new) is not None


def test_version_changes_between_1_2_and_1_3(bio2: frameworks.Framework) -> None:
    changes = frameworks.version_changes("bio2", "1.2", "1.3")
    live = {m.number for m in bio2.measures}
    before = set(bio2.earlier["1.2"])
    assert set(changes.moved) <= before and set(changes.moved.values()) <= live
    assert not set(changes.moved) & live
    assert set(changes.lapsed) == {"5.21.01", "5.35.01", "7.01.01", "8.24.03"}
    assert set(changes.new) == {"6.03.04"}
    # every 1.2 number is live, moved or lapsed; every live number was in 1.2, moved there, or is new
    assert before == (before & live) | set(changes.moved) | set(changes.lapsed)
    assert live == (live & before) | set(changes.moved.values()) | set(changes.new)


def test_version_changes_to_itself_is_empty() -> None:
    changes = frameworks.version_changes("bio2", "1.3", "1.3")
    assert (changes.moved, changes.lapsed, changes.new) == ({}, (), ())


@pytest.mark.parametrize(("framework", "from_version", "to_version"),
                         [("bio2", "1.0", "1.3"), ("bio2", "1.3", "1.2"), ("avg", "1.2", "1.3")])
def test_version_changes_refuses_unknown_versions(framework: str, from_version: str, to_version: str) -> None:
    with pytest.raises(ValueError, match=f"has no measure changes from version '{re.escape(from_version)}'"):
        frameworks.version_changes(framework, from_version, to_version)


@pytest.mark.parametrize(("value", "message"), [
    ("5.04.02", "BIO2 measure 5.04.02 (v1.2) moved to 5.10.02 in v1.3; refer to 5.10.02"),
    ("5.4.3", "BIO2 measure 5.04.03 (v1.2) moved to 5.10.03 in v1.3; refer to 5.10.03"),
    ("5.25.01", "BIO2 measure 5.25.01 (v1.2) moved to 5.26.02 in v1.3; refer to 5.26.02"),
    ("8.08.06", "BIO2 measure 8.08.06 (v1.2) moved to 5.24.08 in v1.3; refer to 5.24.08"),
    ("5.21.01", "BIO2 measure 5.21.01 (v1.2) lapsed in v1.3; remove the reference"),
    ("8.24.03", "BIO2 measure 8.24.03 (v1.2) lapsed in v1.3; remove the reference"),
    ("5.26.01", "BIO2 has no measure 5.26.01 (measures of 5.26: 5.26.02)"),
    ("5.25.02", "BIO2 has no measure 5.25.02 (measures of 5.25: none)"),
    ("8.13.09", "BIO2 has no measure 8.13.09 (measures of 8.13: 8.13.01, 8.13.02, 8.13.03, 8.13.04)"),
    ("8.13.02", ""),
    ("8.13", ""),
])
def test_reference_error_for_measures(value: str, message: str) -> None:
    assert frameworks.reference_error("bio2", value) == message


@pytest.mark.parametrize(("references", "numbers"), [
    ({"bio2": ["8.13", "8.13.2", " 5.10.02 "]}, {"8.13.02", "5.10.02"}),
    ({"bio2": "8.15.01"}, {"8.15.01"}),
    ({"bio2": "8.15"}, set()),
    ({"bio2": ["x.1.2", "9.01.01"]}, set()),
    ({"iso27002": "8.13", "avg": "32"}, set()),
])
def test_measures_of_names_only_measure_numbers(references: dict[str, Any], numbers: set[str]) -> None:
    assert frameworks.measures_of(references) == numbers


def test_measure_lookup(bio2: frameworks.Framework) -> None:
    measure = bio2.measure("8.13.02")
    assert isinstance(measure, Measure) and measure.control == "8.13"
    assert bio2.measure("8.13.99") is None


@pytest.mark.parametrize("name", ["avg", "forum-standaardisatie"])
def test_other_frameworks_have_no_measures(name: str) -> None:
    spec = frameworks.load(name)
    assert spec.measures == () and spec.measure("8.13.02") is None
    assert all(r.measures == () for r in spec.requirements)


@pytest.mark.parametrize(("entry", "message"), [
    ({"number": "8.13.2", "title": {"en": "a", "nl": "b"}}, "measure '8.13.2' is not numbered T.CC.NN"),
    ({"number": "8.13.02", "title": {"en": "a"}}, "measure 8.13.02 needs exactly an en and a nl title"),
    ({"number": "8.13.02", "title": {"en": "a", "nl": "b"}, "hygiene": ["netheid"]}, "unknown hygiene"),
    ({"number": "8.13.02", "title": {"en": "a", "nl": "b"}, "cbw": "nee"}, "has cbw 'nee'"),
])
def test_a_malformed_measure_is_named(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        frameworks._measure("bio2", entry)
