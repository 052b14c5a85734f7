"""The engine: concurrency, crashing and hanging plugins, bounded results."""

from __future__ import annotations

import time
from typing import Any

from compliance.api import EVIDENCE_LIMIT, Status
from compliance.engine import CheckTask, ThreadExecutor, run_task


def task(outcome: str = "pass", name: str = "t", timeout: float = 5.0, sleep: float = 0.0) -> CheckTask:
    return CheckTask("C", 0, "probe", {"name": name, "outcome": outcome, "sleep": sleep}, timeout)


def test_a_crashing_plugin_becomes_an_error_result_with_its_message(probe_plugin: type) -> None:
    [result] = run_task(task("crash", name="web1"))
    assert result.status == Status.ERROR
    assert result.target == "web1"
    assert result.message == "check 'probe' crashed: RuntimeError: probe web1 exploded"


def test_a_plugin_that_returns_nothing_or_junk_is_an_error(probe_plugin: type) -> None:
    assert run_task(task("nothing"))[0].message == "check 'probe' returned no result"
    junk = run_task(task("not_result"))[0]
    assert junk.status == Status.ERROR and "must return compliance.api.Result objects, not str" in junk.message


def test_bad_parameters_at_run_time_are_an_error_not_a_crash(probe_plugin: type) -> None:
    [result] = run_task(CheckTask("C", 0, "probe", {"outcome": "explode"}, 5))
    assert result.status == Status.ERROR and "ValidationError" in result.message


def test_unknown_plugin_at_run_time_is_an_error(probe_plugin: type) -> None:
    [result] = run_task(CheckTask("C", 0, "no_such_plugin", {}, 5))
    assert result.status == Status.ERROR and "unknown check plugin 'no_such_plugin'" in result.message


def test_evidence_is_bounded(probe_plugin: type) -> None:
    [result] = run_task(task("huge"))
    assert result.evidence["truncated"] is True and result.evidence["size"] > EVIDENCE_LIMIT
    assert len(result.evidence["preview"]) == 1000


def test_a_hanging_check_times_out_and_the_others_finish(probe_plugin: type) -> None:
    tasks = [task("hang", name="stuck", timeout=0.3)] + [task(name=f"ok{i}") for i in range(5)]
    started = time.monotonic()
    outcomes = list(ThreadExecutor(concurrency=2).execute(tasks))
    elapsed = time.monotonic() - started
    assert len(outcomes) == 6 and elapsed < 3
    by_target = {o.results[0].target: o.results[0] for o in outcomes}
    assert by_target["stuck"].status == Status.ERROR
    assert by_target["stuck"].message == "check 'probe' did not finish within its timeout of 0.3 s and was abandoned"
    assert all(by_target[f"ok{i}"].status == Status.PASS for i in range(5))


def test_a_hung_check_frees_its_slot(probe_plugin: type) -> None:
    # with one slot, a hang must not block the queue behind it beyond its timeout
    tasks = [task("hang", name="stuck", timeout=0.2), task(name="after")]
    outcomes = list(ThreadExecutor(concurrency=1).execute(tasks))
    assert [o.results[0].target for o in outcomes] == ["stuck", "after"]


def test_checks_run_concurrently_up_to_the_limit(probe_plugin: type) -> None:
    tasks = [task(name=f"t{i}", sleep=0.2) for i in range(8)]
    started = time.monotonic()
    outcomes = list(ThreadExecutor(concurrency=8).execute(tasks))
    assert time.monotonic() - started < 0.2 * 8 / 2  # far less than one after another
    assert sorted(o.results[0].target for o in outcomes) == sorted(f"t{i}" for i in range(8))
    assert all(o.duration >= 0.2 for o in outcomes)


def test_every_task_yields_exactly_one_outcome(probe_plugin: type) -> None:
    outcomes: list[Any] = list(ThreadExecutor(3).execute([task(o) for o in
                                                         ("pass", "fail", "crash", "error", "skipped")]))
    assert sorted(o.results[0].status.value for o in outcomes) == ["error", "error", "fail", "pass", "skipped"]
