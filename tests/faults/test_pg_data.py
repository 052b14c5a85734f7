"""What PostgreSQL refuses and SQLite takes: NUL characters, values longer than their columns, two
processes inserting the same new controls. Each once aborted whole scans on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from compliance.api import Check, Context, Params, Result

pytestmark = pytest.mark.faults


class OddParams(Params):
    name: str = "odd"
    target_length: int = 0


class OddOutput(Check):
    """Fails with NUL characters in its target, message and evidence (or an over-long target), for tests."""

    name = "odd_output"
    Params = OddParams
    target_param = "name"

    def run(self, params: OddParams, ctx: Context) -> Iterator[Result]:
        target = "t" * (params.target_length - 2) + "\0\0" if params.target_length else f"/srv/{params.name}\0x"
        yield Result.failed(target, f"Binary \0 data in {params.name}.", **{"raw\0key": "v\0", "items": ["\0", 1]})


@pytest.fixture
def odd_plugin(probe_plugin: type) -> Iterator[type]:
    from compliance import plugins

    plugins.register(OddOutput)
    yield OddOutput
    plugins.unregister("odd_output")


def _control(cid: str, check: str, **extra: str) -> str:
    fields = "".join(f"\n  {key}: {value}" for key, value in extra.items())
    return (
        f"- id: {cid}\n  title: Control {cid}\n  theme: technological\n  severity: high{fields}\n"
        f"  checks:\n    - {check}\n"
    )


def _rows(project: Any, sql: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    from compliance.db import Database

    database = Database(project.db_url)
    try:
        with database.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        database.close()


def test_nul_characters_are_stored_escaped_and_the_scan_goes_on(project: Any, odd_plugin: type) -> None:
    project.write_config("  bundled: []\n")
    project.control(
        "nul.yaml",
        _control(
            "NUL-01",
            'plugin: file_age\n      params: {path: "/srv/a\\0b", max_age: 26h}',
            owner='"CI\\0SO"',
            description='"a\\0b"',
            tags='["t\\0"]',
            references='{iso27002: "8.13"}',
        )
        + _control("NUL-02", "plugin: odd_output")
        + _control("AFTER-01", "plugin: probe\n      params: {name: after, outcome: pass}"),
    )

    result = project.run("scan", "--format", "json")

    assert result.exit_code == 1, result.output
    assert _rows(project, "SELECT status, controls_total FROM scans") == [("completed", 3)]
    stored = _rows(project, "SELECT control_id, target, status, message FROM check_results ORDER BY control_id")
    assert stored == [
        ("AFTER-01", "after", "pass", "probe after: pass"),
        ("NUL-01", "/srv/a\\0b", "fail", "No file matches /srv/a\\0b; expected one younger than 1d 2h."),
        ("NUL-02", "/srv/odd\\0x", "fail", "Binary \\0 data in odd."),
    ]
    assert _rows(project, "SELECT owner, description FROM controls WHERE id = 'NUL-01'") == [("CI\\0SO", "a\\0b")]
    assert _rows(project, "SELECT target FROM findings ORDER BY target") == [("/srv/a\\0b",), ("/srv/odd\\0x",)]


def test_nul_in_evidence_is_stored_escaped(project: Any, odd_plugin: type) -> None:
    import json

    project.write_config("  bundled: []\n")
    project.control("nul.yaml", _control("NUL-02", "plugin: odd_output"))

    assert project.run("scan").exit_code == 1
    (evidence,) = _rows(project, "SELECT evidence FROM check_results")[0]
    evidence = json.loads(evidence) if isinstance(evidence, str) else evidence
    assert evidence == {"raw\\0key": "v\\0", "items": ["\\0", 1]}


def test_a_target_escaped_beyond_its_column_is_cut_the_same_way_every_scan(project: Any, odd_plugin: type) -> None:
    """The engine cuts targets to 500 characters; writing NUL as `\\0` must not make them longer."""
    project.write_config("  bundled: []\n")
    project.control("long.yaml", _control("LONG-01", "plugin: odd_output\n      params: {target_length: 500}"))

    assert project.run("scan").exit_code == 1
    assert project.run("scan").exit_code == 1

    assert _rows(project, "SELECT status FROM scans ORDER BY id") == [("completed",), ("completed",)]
    assert _rows(project, "SELECT target FROM findings") == [("t" * 498 + "\\…",)]


@pytest.mark.parametrize(("key", "limit"), [("title", 200), ("owner", 200), ("schedule", 100)])
def test_validation_refuses_what_the_column_cannot_hold(project: Any, probe_plugin: type, key: str, limit: int) -> None:
    value = "x" * (limit + 1)
    project.control(
        "long.yaml",
        _control("LONG-01", "plugin: probe", **{key: value}).replace(
            "  title: Control LONG-01\n", "  title: Control LONG-01\n" if key != "title" else ""
        ),
    )

    result = project.run("controls", "validate")

    assert result.exit_code == 2
    line = 4 if key == "title" else 5
    assert result.output == (
        f"controls/long.yaml:{line}:{len(key) + 5}: {key} is {limit + 1} characters long; at "
        f"most {limit} fit (shorten it (the database keeps no more))\n1 problem found\n"
    )


def test_validation_and_schema_agree_on_every_control_column() -> None:
    """Each text column of `controls` holds the longest value the validator lets through."""
    from sqlalchemy import String

    from compliance.catalog import SOURCE_LENGTH, Control
    from compliance.db.models import ControlRow

    columns = {
        c.name: c.type.length
        for c in ControlRow.__table__.columns
        if isinstance(c.type, String) and c.type.length is not None
    }
    allowed = {
        "id": 100,
        "theme": max(map(len, ("organizational", "people", "physical", "technological"))),
        "severity": len("critical"),
        "content_hash": 64,
        "source": SOURCE_LENGTH,
        "last_status": len("skipped"),
    }
    for name, field in Control.model_fields.items():
        limit = next((m.max_length for m in field.metadata if getattr(m, "max_length", None)), None)
        if limit is not None:
            allowed[name] = limit
    assert {name: allowed[name] <= length for name, length in columns.items()} == dict.fromkeys(columns, True)


def test_an_owner_at_the_limit_is_stored(project: Any, probe_plugin: type) -> None:
    project.write_config("  bundled: []\n")
    project.control("long.yaml", _control("LONG-01", "plugin: probe", owner="o" * 200))

    assert project.run("scan").exit_code == 0
    assert _rows(project, "SELECT length(owner) FROM controls") == [(200,)]


def test_concurrent_first_syncs_of_new_controls_all_succeed(db_url: str) -> None:
    """Several processes' worth of stores sync the same new controls at the same moment, round after round."""
    from compliance.catalog import Control
    from compliance.db import Database
    from compliance.store import Store

    workers, rounds, per_round = 4, 5, 10
    databases = [Database(db_url) for _ in range(workers)]
    try:
        for round_no in range(rounds):
            catalog = [
                Control.model_validate(
                    {
                        "id": f"R{round_no}-{i:02d}",
                        "title": f"Round {round_no} control {i}",
                        "theme": "technological",
                        "severity": "low",
                        "owner": "CISO",
                        "checks": [{"plugin": "probe"}],
                    }
                )
                for i in range(per_round)
            ]
            barrier = threading.Barrier(workers)
            failures: list[BaseException] = []

            def sync(
                database: Database,
                catalog: list[Control] = catalog,
                barrier: threading.Barrier = barrier,
                failures: list[BaseException] = failures,
            ) -> None:
                barrier.wait()
                try:
                    Store(database).sync_controls(catalog)
                except BaseException as exc:  # collected and asserted below
                    failures.append(exc)

            threads = [threading.Thread(target=sync, args=(d,)) for d in databases]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert failures == [], f"round {round_no}"
        with databases[0].engine.connect() as connection:
            from sqlalchemy import text

            assert connection.execute(text("SELECT count(*), count(DISTINCT id) FROM controls")).one() == (
                rounds * per_round,
                rounds * per_round,
            )
    finally:
        for database in databases:
            database.close()
