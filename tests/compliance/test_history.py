"""History with a retention policy: `compliance db prune` rolls up old days and the figures stay the same.

A history of 8 days in January 2026 (Europe/Amsterdam), three scans a day (01:00, 09:00, 17:00), runs
through the real engine and store (the `probe` plugin decides each outcome, see report/history.py):

| control | BIO2     | target | outcomes                                                   | else                 |
|---------|----------|--------|------------------------------------------------------------|----------------------|
| L       | 8.15.01  | a      | fail at 09:00 on day 2 only (opened and resolved that day) | attestation          |
|         |          | b      | fail all of days 5 and 6                                   |                      |
| M       | 8.15.02  | m      | error at 17:00 on day 3 (the day's last), else pass        |                      |
| K       | 5.01.01  | k      | pass, fail from 09:00 on day 6 on (open at the end)        |                      |
| Q       | 8.15.03  | q      | fail throughout (open at the end)                          | exception from day 1 |
| S       | 8.15.04  | s      | pass; not scanned after day 4 (its last results are old)   |                      |

The report (`--as-of` the last day, weekly and monthly) and the ENSIA export of 2026 are rendered as
JSON, the history is pruned (all of it, or up to a day in the middle), and both are rendered again.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from compliance.db.models import CheckResultRow, Finding, HistoryDay
from compliance.history import prune
from tests.compliance.report.conftest import Seeded
from tests.compliance.report.history import History, Spec
from tests.conftest import Project

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
FIRST = date(2026, 1, 5)
DAYS = 8
HOURS = (1, 9, 17)
LAST_DAY = FIRST + timedelta(days=DAYS - 1)

L = Spec("L", title="Security events are logged", references={"bio2": ["8.15.01"]})
M = Spec("M", title="Logs are kept", references={"bio2": ["8.15.02"]})
K = Spec("K", title="Policy approved", references={"bio2": ["5.01.01"]})
Q = Spec("Q", title="Logs are protected", references={"bio2": ["8.15.03"]})
S = Spec("S", title="Logs are reviewed", references={"bio2": ["8.15.04"]})
SPECS = (L, M, K, Q, S)


def outcomes(day: int, scan: int) -> dict[Spec, dict[str, str]]:
    """What each control finds in scan `scan` (0-2) of day `day` (1-8)."""
    plan = {
        L: {"a": "fail" if (day, scan) == (2, 1) else "pass", "b": "fail" if day in (5, 6) else "pass"},
        M: {"m": "error" if (day, scan) == (3, 2) else "pass"},
        K: {"k": "fail" if (day, scan) >= (6, 1) else "pass"},
        Q: {"q": "fail"},
    }
    if day <= 4:
        plan[S] = {"s": "pass"}
    return plan


def control_file(project: Project) -> None:
    """The controls as YAML, so that `ensia export` finds the measures they cover (JSON is YAML)."""
    project.control("history.yaml", json.dumps([spec.control({"x": "pass"}).model_dump(
        mode="json", include={"id", "title", "theme", "severity", "references"}) | {
        "checks": [{"plugin": "probe", "params": {}, "targets": [{"name": "x", "outcome": "pass"}]}]}
        for spec in SPECS]))


@pytest.fixture
def weeks(project: Project, database: Any, store: Any, probe_plugin: type) -> None:
    from compliance import evidence

    control_file(project)
    history = History(database, store)
    for day in range(1, DAYS + 1):
        when = FIRST + timedelta(days=day - 1)
        for scan, hour in enumerate(HOURS):
            history.scan(datetime(when.year, when.month, when.day, hour, tzinfo=AMSTERDAM), outcomes(day, scan))
        if day == 1:
            store.add_exception("Q", reason="Log store being replaced", approved_by="CISO", until=date(2026, 6, 30),
                                created_by="anna", now=datetime(2026, 1, 5, 12, tzinfo=AMSTERDAM))
    evidence.record(database, "L", by="CISO", evidence="https://intranet.gemeente.nl/logging.pdf",
                    valid_until=date(2026, 12, 31), recorded_by="anna")


def figures(project: Project, *args: str) -> Any:
    result = project.run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    data.pop("generated_at")  # the moment of rendering, the one field that may differ
    return data


def outputs(project: Project, as_of: date) -> list[Any]:
    return [figures(project, "report", "--as-of", as_of.isoformat(), "--period", period, "--lang", "en")
            for period in ("week", "month")] + [figures(project, "ensia", "export", "--year", "2026", "--lang", "en")]


def counts(database: Any) -> tuple[int, int]:
    with database.sessions() as session:
        return (session.scalar(select(func.count()).select_from(CheckResultRow)) or 0,
                session.scalar(select(func.count()).select_from(HistoryDay)) or 0)


def prune_cli(project: Project, *args: str) -> Any:
    result = project.run("db", "prune", *args, "--format", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_the_report_and_the_ensia_export_are_the_same_after_pruning_everything(project: Project, database: Any,
                                                                              weeks: None) -> None:
    before = outputs(project, LAST_DAY)
    results, _ = counts(database)
    done = prune_cli(project, "--raw-days", "1")
    assert (done["days"], done["first_day"], done["last_day"]) == (DAYS, FIRST.isoformat(), LAST_DAY.isoformat())
    assert done["results_removed"] + done["results_kept"] == results
    # kept: the newest result of each control and target (6), and K's and Q's newest failure are among them
    assert done["results_kept"] == 6
    assert outputs(project, LAST_DAY) == before


@pytest.mark.slow
@pytest.mark.parametrize("pruned", [1, 3, 6])
def test_the_figures_are_the_same_with_part_of_the_history_pruned(project: Project, database: Any, weeks: None,
                                                                  pruned: int) -> None:
    def weekly() -> list[Any]:  # the report as of each day of the history
        return [figures(project, "report", "--as-of", (FIRST + timedelta(days=d)).isoformat(), "--lang", "en")
                for d in range(DAYS)]

    before, each_day = outputs(project, LAST_DAY), weekly()
    # at noon on the day after the pruned days plus one: one day of raw results is kept
    now = datetime.combine(FIRST + timedelta(days=pruned + 1), datetime.min.time(), tzinfo=AMSTERDAM)
    report = prune(database, raw_days=1, keep=None, zone=AMSTERDAM, now=now + timedelta(hours=12))
    assert report.days_rolled_up == [FIRST + timedelta(days=d) for d in range(pruned)]
    assert outputs(project, LAST_DAY) == before
    assert weekly() == each_day


def test_the_seeded_report_history_gives_the_same_report_after_pruning(project: Project, seeded: Seeded) -> None:
    args = ("report", "--as-of", "2026-03-08", "--lang", "en")
    before = [figures(project, *args, "--period", period) for period in ("week", "month", "quarter")]
    assert prune_cli(project, "--raw-days", "1")["days"] == 4
    assert [figures(project, *args, "--period", period) for period in ("week", "month", "quarter")] == before


def test_a_dry_run_changes_nothing_and_counts_what_a_prune_removes(project: Project, database: Any,
                                                                   seeded: Seeded) -> None:
    stored = counts(database)
    dry = prune_cli(project, "--raw-days", "1", "--dry-run")
    assert counts(database) == stored
    done = prune_cli(project, "--raw-days", "1")
    assert {k: v for k, v in dry.items() if k not in ("dry_run", "bytes_after")} == {
        k: v for k, v in done.items() if k not in ("dry_run", "bytes_after")}
    assert (dry["dry_run"], done["dry_run"], dry["results_removed"]) == (True, False, stored[0] - done["results_kept"])
    assert counts(database) == (stored[0] - done["results_removed"], done["rollups_written"])


def test_a_second_prune_changes_nothing(project: Project, database: Any, seeded: Seeded) -> None:
    first = prune_cli(project, "--raw-days", "1")
    stored = counts(database)
    second = prune_cli(project, "--raw-days", "1")
    assert (first["results_removed"] > 0, first["rollups_written"] > 0) == (True, True)
    assert (second["days"], second["results_removed"], second["rollups_written"]) == (0, 0, 0)
    assert counts(database) == stored


def test_a_prune_interrupted_after_a_rollup_deletes_the_rest_without_rolling_up_again(
        project: Project, database: Any, seeded: Seeded) -> None:
    from compliance import history

    prune(database, raw_days=1, keep=None, zone=AMSTERDAM, now=datetime(2026, 3, 2, 12, tzinfo=AMSTERDAM))
    day = date(2026, 3, 2)
    start, end = history._day_bounds(day, AMSTERDAM)
    # as if the next prune stopped right after the day's rollup was committed: its raw results still there
    with database.transaction() as session:
        rows = history._rollup_rows(session, day, start, end)
        session.execute(insert(HistoryDay), rows)
    raw = counts(database)[0]
    report = prune(database, raw_days=1, keep=None, zone=AMSTERDAM, now=datetime(2026, 3, 4, 12, tzinfo=AMSTERDAM))
    # the day's 7 results less C's, its newest (C was not scanned on 5 March)
    assert (report.days_rolled_up, report.rollups_written, report.results_removed) == ([], 0, 6)
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(HistoryDay).where(HistoryDay.day == day)) == len(rows)
    assert counts(database)[0] == raw - 6


@pytest.mark.slow
def test_what_open_findings_and_last_results_need_is_never_pruned(project: Project, database: Any,
                                                                  weeks: None) -> None:
    with database.sessions() as session:
        newest = set(session.execute(select(CheckResultRow.control_id, CheckResultRow.target,
                                            func.max(CheckResultRow.started_at))
                                     .group_by(CheckResultRow.control_id, CheckResultRow.target)))
        failing = {(f.control_id, f.target) for f in session.scalars(select(Finding).where(Finding.state == "open"))}
        newest_failures = set(session.execute(
            select(CheckResultRow.control_id, CheckResultRow.target, func.max(CheckResultRow.started_at))
            .where(CheckResultRow.status == "fail").group_by(CheckResultRow.control_id, CheckResultRow.target)))
    assert failing == {("K", "k"), ("Q", "q")}
    prune_cli(project, "--raw-days", "1")
    with database.sessions() as session:
        kept = set(session.execute(select(CheckResultRow.control_id, CheckResultRow.target, CheckResultRow.started_at)))
    assert newest <= kept  # S (not scanned since day 4) and Q (under an exception) keep their last results
    assert {f for f in newest_failures if f[:2] in failing} <= kept


def test_keep_removes_old_rollups_and_a_longer_raw_retention_is_refused(project: Project, database: Any,
                                                                        seeded: Seeded) -> None:
    project.write_config("history:\n  raw_days: 10\n  keep: 20\n")
    refused = project.run("db", "prune", "--raw-days", "30")
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == ("error: --raw-days 30 is not less than history.keep (20 days) in the config: rollups "
                              "would be removed before or with the raw results they replace. Give at most --raw-days "
                              "19, or raise history.keep.\n")
    project.write_config("history:\n  raw_days: 10\n")
    rolled = prune_cli(project)  # today is long after March 2026: every day is rolled up
    assert rolled["days"] == 4
    project.write_config("history:\n  raw_days: 10\n  keep: 20\n")
    stored = counts(database)
    done = prune_cli(project)
    assert (done["days"], done["rollup_days_removed"], done["rollups_removed"]) == (0, 4, stored[1])
    assert counts(database) == (stored[0], 0)
    again = prune_cli(project)  # days past keep are not rolled up again
    assert (again["days"], again["rollups_written"], again["rollups_removed"]) == (0, 0, 0)


def test_a_keep_shorter_than_the_raw_retention_is_a_config_error(project: Project) -> None:
    project.write_config("history:\n  raw_days: 30\n  keep: 7\n")
    result = project.run("db", "prune", "--dry-run")
    assert result.exit_code == 2
    assert "history.keep (7 days) is not longer than history.raw_days (30)" in result.stderr


def test_the_text_output_says_what_was_removed(project: Project, seeded: Seeded) -> None:
    result = project.run("db", "prune", "--raw-days", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    cutoff = (datetime.now(UTC).astimezone(AMSTERDAM).date() - timedelta(days=1)).isoformat()
    assert lines[0] == f"raw results before {cutoff} (1 days kept): 4 day(s) rolled up, 2026-02-16 to 2026-03-05"
    assert lines[1].startswith("  would remove ") and "would write" in lines[1]


def test_the_help_teaches_the_retention(run_cli: Any) -> None:
    result = run_cli("db", "prune", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for phrase in ("history.raw_days", "--dry-run", "Never removed", "compliance db prune --raw-days 30"):
        assert phrase in text


def test_the_scheduler_job_prunes_by_the_settings(database: Any, seeded: Seeded, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    import threading

    from compliance import scheduler as sched
    from compliance.catalog import Catalog
    from compliance.settings import Settings

    settings = Settings.model_validate({"database": {"url": database.url}, "history": {"raw_days": 1}})
    monkeypatch.setattr(sched, "_runtime", sched._Runtime(settings, Catalog(()), database, "test", threading.Event()))
    stored = counts(database)
    with caplog.at_level("INFO", logger="compliance.scheduler"):
        sched.run_prune_job(scheduled_at=datetime.now(UTC))
    assert counts(database)[1] > 0 and counts(database)[0] < stored[0]
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("history pruned")] == [
        f"history pruned: {stored[0] - counts(database)[0]} raw result(s) removed, 4 day(s) rolled up, "
        "0 rollup row(s) removed"]
