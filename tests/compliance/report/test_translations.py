"""The Dutch catalog: complete for every text in the templates and code, and compiled (.mo) from its .po."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

LOCALE = Path(str(files("compliance.report") / "locale"))
PO = LOCALE / "nl" / "LC_MESSAGES" / "messages.po"
MO = LOCALE / "nl" / "LC_MESSAGES" / "messages.mo"
ROOT = Path(__file__).resolve().parents[3]


def entries(catalog: Any) -> dict[Any, Any]:
    def key(value: Any) -> Any:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {key(m.id): key(m.string) for m in catalog if m.id and not m.fuzzy}


def test_the_compiled_catalog_is_not_stale() -> None:
    """Fails when messages.po was edited without `pybabel compile` (see compliance/report/babel.cfg)."""
    with PO.open("rb") as po, MO.open("rb") as mo:
        assert entries(read_mo(mo)) == entries(read_po(po))


def test_every_text_of_the_report_is_translated() -> None:
    """Fails when a template or label gained a text that messages.po lacks (run the babel.cfg commands)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with (ROOT / "compliance/report/babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = {m[2] if isinstance(m[2], str) else tuple(m[2])
             for m in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)}
    with PO.open("rb") as po:
        translated = {k for k, v in entries(read_po(po)).items() if v and all(v if isinstance(v, tuple) else [v])}
    assert found - translated == set()
    assert translated - found == set(), "messages.po has texts that no longer occur"
