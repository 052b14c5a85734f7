"""Processes and threads under fault: plugins that print, hang, exit or raise; programs that leave children
behind; Ctrl-C on a scan; a scan whose process died and whose PID was reused. Real subprocesses, real
signals, and SQLite and PostgreSQL where the database is involved."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from compliance.api import Check, Context, Params, Result, Status
from compliance.engine import CheckTask, ThreadExecutor, abandoned_checks
from tests.conftest import Project

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
NOISE = "NOISE-FROM-A-PLUGIN"


# -- plugins that misbehave ---------------------------------------------------------------------------


class PrinterParams(Params):
    name: str = "printer"


class Printer(Check):
    """Prints to stdout and stderr, also from an asyncio task and with print(flush=True), then passes."""

    name = "printer"
    Params = PrinterParams
    target_param = "name"

    def run(self, params: PrinterParams, ctx: Context) -> Iterator[Result]:
        import asyncio

        print(f"{NOISE} stdout {params.name}", flush=True)
        print(f"{NOISE} stderr {params.name}", file=sys.stderr)
        sys.stdout.write("{not json\n")

        async def chatter() -> None:
            print(f"{NOISE} asyncio {params.name}")

        asyncio.run(chatter())
        yield Result.passed(params.name, f"{params.name} printed")


HANG = threading.Event()  # set it to let the hanging checks return


class HangerParams(Params):
    name: str = "hanger"
    hang: bool = True


class Hanger(Check):
    """Waits until HANG is set (or 120 s) when `hang`, else passes at once."""

    name = "hanger"
    Params = HangerParams
    target_param = "name"

    def run(self, params: HangerParams, ctx: Context) -> Iterator[Result]:
        if params.hang:
            HANG.wait(120)
        yield Result.passed(params.name, f"{params.name} returned")


class SpinnerParams(Params):
    name: str = "spinner"


class Spinner(Check):
    """Loops for ever, burning CPU, and swallows every Exception on the way."""

    name = "spinner"
    Params = SpinnerParams
    target_param = "name"

    def run(self, params: SpinnerParams, ctx: Context) -> Iterator[Result]:
        turns = 0
        while True:
            try:
                turns += 1
            except Exception:  # a careless plugin
                continue
        yield Result.passed(params.name, "never")


class RaiserParams(Params):
    raise_: str = "SystemExit"


class Raiser(Check):
    """Raises SystemExit(3), SystemExit() or KeyboardInterrupt, as a careless plugin might."""

    name = "raiser"
    Params = RaiserParams

    def run(self, params: RaiserParams, ctx: Context) -> Iterator[Result]:
        if params.raise_ == "SystemExit":
            sys.exit(3)
        if params.raise_ == "SystemExit()":
            raise SystemExit()
        raise KeyboardInterrupt
        yield  # a generator, like every plugin


class SleeperParams(Params):
    name: str = "sleeper"
    seconds: float = 0.0


class Sleeper(Check):
    """Sleeps, then passes."""

    name = "sleeper"
    Params = SleeperParams
    target_param = "name"

    def run(self, params: SleeperParams, ctx: Context) -> Iterator[Result]:
        time.sleep(params.seconds)
        yield Result.passed(params.name, f"{params.name} slept {params.seconds:g} s")


TEST_PLUGINS = (Printer, Hanger, Spinner, Raiser, Sleeper)


@pytest.fixture
def test_plugins() -> Iterator[None]:
    from compliance import plugins

    HANG.clear()
    for plugin in TEST_PLUGINS:
        plugins.register(plugin)
    yield
    HANG.set()
    for plugin in TEST_PLUGINS:
        plugins.unregister(plugin.name)
    deadline = time.monotonic() + 10
    while abandoned_checks() and time.monotonic() < deadline:  # the next test starts with none
        time.sleep(0.02)


def compliance_process(project: Project, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """`compliance ARGS` in a process of its own, with this module's test plugins registered."""
    driver = textwrap.dedent("""\
        import sys
        from compliance import plugins
        from tests.faults.test_processes import TEST_PLUGINS
        for plugin in TEST_PLUGINS:
            plugins.register(plugin)
        from compliance.cli import main
        sys.argv[0] = "compliance"
        main()
        """)
    env = {**os.environ, "COMPLIANCE_CONFIG": str(project.config), "PYTHONPATH": str(ROOT)}
    env.pop("COMPLIANCE_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-c", driver, *args], env=env, cwd=project.root, text=True, **popen)


def control(cid: str, plugin: str, params: dict[str, Any], timeout: str = "30s") -> str:
    return textwrap.dedent(f"""\
        - id: {cid}
          title: {cid.lower()}
          theme: technological
          severity: low
          timeout: {timeout}
          checks: [{{plugin: {plugin}, params: {json.dumps(params)}}}]
        """)


# -- 1. what a plugin prints stays out of our output ---------------------------------------------------


def test_what_plugins_print_stays_out_of_scan_json_and_is_logged_at_debug(project: Project, test_plugins: None) -> None:
    project.control(
        "c.yaml", control("PRINT-1", "printer", {"name": "one"}) + control("PRINT-2", "printer", {"name": "two"})
    )
    process = compliance_process(
        project, "--log-level", "debug", "scan", "--format", "json", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    output = json.loads(stdout)
    assert [(r["control"], r["status"], r["message"]) for r in output["results"]] == [
        ("PRINT-1", "pass", "one printed"),
        ("PRINT-2", "pass", "two printed"),
    ]
    assert NOISE not in stdout
    printed = [line for line in stderr.splitlines() if NOISE in line]
    # on stderr only inside the debug log lines of the engine, never as the plugin wrote it
    assert printed and all("compliance.engine: check 'printer' of PRINT-" in line for line in printed)
    assert {
        name
        for name in ("one", "two")
        for kind in ("stdout", "stderr", "asyncio")
        if any(f"{NOISE} {kind} {name}" in line for line in printed)
    } == {"one", "two"}
    for name, kind in [(n, k) for n in ("one", "two") for k in ("stdout", "stderr", "asyncio")]:
        assert f"{NOISE} {kind} {name}" in stderr


def test_what_plugins_print_is_not_shown_at_the_default_log_level(project: Project, test_plugins: None) -> None:
    """Nor while a hung check's thread still runs when the results are printed."""
    project.control(
        "c.yaml",
        control("PRINT-1", "printer", {"name": "one"}) + control("HUNG", "hanger", {"name": "hung"}, timeout="0.5s"),
    )
    process = compliance_process(
        project, "scan", "--format", "json", "--fail-on", "none", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert [r["message"] for r in json.loads(stdout)["results"]] == [
        "one printed",
        "check 'hanger' did not finish within its timeout of 0.5 s and was abandoned",
    ]
    assert NOISE not in stdout + stderr and "{not json" not in stdout + stderr


def test_the_streams_are_ours_again_once_the_checks_ended(test_plugins: None) -> None:
    before = sys.stdout, sys.stderr
    outcomes = list(ThreadExecutor(2).execute([CheckTask("C", i, "printer", {"name": f"p{i}"}, 5) for i in range(4)]))
    assert sorted(o.results[0].message for o in outcomes) == [f"p{i} printed" for i in range(4)]
    assert (sys.stdout, sys.stderr) == before


# -- 2. hung checks do not pile up threads ---------------------------------------------------------------


def check_threads(plugin: str) -> int:
    """How many threads of this process run a check of plugin."""
    return sum(thread.name.startswith(f"check-{plugin}-") for thread in threading.enumerate())


def test_repeated_runs_with_hung_checks_keep_threads_and_cpu_bounded(test_plugins: None) -> None:
    """A daemon that runs the same controls every second, three of whose checks hang: after 30 runs there
    is one thread per hung check, not one per run, and the process idles."""
    tasks = [CheckTask("HUNG", i, "hanger", {"name": f"h{i}"}, 0.1) for i in range(3)] + [
        CheckTask("FINE", i, "hanger", {"name": f"f{i}", "hang": False}, 0.1) for i in range(2)
    ]
    assert check_threads("hanger") == 0
    cpu_before, wall_before = time.process_time(), time.monotonic()
    messages: list[set[str]] = []
    for _ in range(30):
        outcomes = list(ThreadExecutor(4).execute(tasks))
        assert len(outcomes) == len(tasks)
        messages.append({o.results[0].message for o in outcomes if o.task.control_id == "HUNG"})
        assert {o.results[0].status for o in outcomes if o.task.control_id == "FINE"} == {Status.PASS}
        time.sleep(0.1)
    cpu, wall = time.process_time() - cpu_before, time.monotonic() - wall_before
    assert check_threads("hanger") == 3
    assert abandoned_checks() == 3
    assert cpu < 0.25 * wall, f"{cpu:.2f} s CPU in {wall:.2f} s"
    assert messages[0] == {"check 'hanger' did not finish within its timeout of 0.1 s and was abandoned"}
    assert all(
        m
        == {
            "check 'hanger' is still running from an earlier run (it did not finish within its "
            "timeout of 0.1 s); skipped"
        }
        for m in messages[1:]
    )
    HANG.set()
    deadline = time.monotonic() + 10
    while abandoned_checks() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert abandoned_checks() == 0 and check_threads("hanger") == 0
    # once the hung checks returned they run again
    assert {o.results[0].status for o in ThreadExecutor(4).execute(tasks)} == {Status.PASS}


def process_threads_and_cpu(pid: int) -> tuple[int, float]:
    """A process's thread count and the CPU seconds it used, from /proc."""
    threads = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Threads:")
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return threads, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@pytest.mark.slow
def test_the_daemon_does_not_pile_up_threads_on_hung_checks(project: Project, test_plugins: None) -> None:
    """The daemon runs three hanging checks every second: its threads stay as many and it idles."""
    project.control(
        "c.yaml",
        "".join(control(f"HUNG-{i}", "hanger", {"name": f"h{i}"}, timeout="0.3s") for i in range(3))
        + control("FINE", "sleeper", {"name": "fine"}),
    )
    project.write_config("schedule:\n  default: every 1s\n")
    daemon = compliance_process(project, "schedule", "run", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def completed() -> int:
            return sum(s.status == "completed" for s in scan_rows(project.db_url))

        deadline = time.monotonic() + 30
        while completed() < 3:
            assert time.monotonic() < deadline and daemon.poll() is None
            time.sleep(0.2)
        threads_then, cpu_then = process_threads_and_cpu(daemon.pid)
        wall_then = time.monotonic()
        while completed() < 13:
            assert time.monotonic() < deadline + 30 and daemon.poll() is None
            time.sleep(0.2)
        threads_now, cpu_now = process_threads_and_cpu(daemon.pid)
        wall = time.monotonic() - wall_then
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    assert threads_now <= threads_then + 1, f"{threads_then} threads after 3 runs, {threads_now} after 13"
    assert cpu_now - cpu_then < 0.5 * wall, f"{cpu_now - cpu_then:.1f} s CPU in {wall:.1f} s"
    from compliance.db import Database
    from compliance.db.models import CheckResultRow

    database = Database(project.db_url)
    try:
        with database.sessions() as session:
            messages = set(session.scalars(select(CheckResultRow.message).where(CheckResultRow.control_id == "HUNG-0")))
    finally:
        database.close()
    assert messages == {
        "check 'hanger' did not finish within its timeout of 0.3 s and was abandoned",
        "check 'hanger' is still running from an earlier run (it did not finish within its timeout of 0.3 s); skipped",
    }


def test_no_check_starts_while_as_many_are_abandoned_as_the_limit(test_plugins: None) -> None:
    tasks = [CheckTask("HUNG", i, "hanger", {"name": f"h{i}"}, 0.1) for i in range(3)]
    first = list(ThreadExecutor(3, abandoned_limit=3).execute(tasks))
    assert [o.results[0].status for o in first] == [Status.ERROR] * 3 and abandoned_checks() == 3
    started = time.monotonic()
    [other] = ThreadExecutor(3, abandoned_limit=3).execute([CheckTask("OTHER", 0, "hanger", {"hang": False}, 5)])
    assert time.monotonic() - started < 0.5
    assert (other.results[0].status, other.results[0].target, other.results[0].message) == (
        Status.ERROR,
        "hanger",
        "check 'hanger' was not started: 3 checks that did not finish within their timeout are still running; skipped",
    )
    [allowed] = ThreadExecutor(3, abandoned_limit=4).execute([CheckTask("OTHER", 0, "hanger", {"hang": False}, 5)])
    assert allowed.results[0].status == Status.PASS


def test_a_check_that_loops_past_its_timeout_is_stopped(test_plugins: None) -> None:
    """The thread of a looping check ends after its timeout: repeated runs use neither threads nor CPU."""
    cpu_before, wall_before = time.process_time(), time.monotonic()
    for _ in range(10):
        [outcome] = ThreadExecutor(1).execute([CheckTask("SPIN", 0, "spinner", {}, 0.1)])
        assert outcome.results[0].message == (
            "check 'spinner' did not finish within its timeout of 0.1 s and was abandoned"
        )
        deadline = time.monotonic() + 2
        while abandoned_checks() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert abandoned_checks() == 0
    cpu, wall = time.process_time() - cpu_before, time.monotonic() - wall_before
    assert check_threads("spinner") == 0
    assert cpu < 0.2 * 10 + 0.5 and wall < 0.2 * 10 + 2  # each ran for its 0.1 s, not on


# -- 3. a command's timeout ends its whole process group ---------------------------------------------------


def live_group_members(pgid: int) -> list[int]:
    """The processes of a process group that still run (zombies are dead and do not count)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def test_a_command_timeout_ends_the_grandchildren_too(tmp_path: Path) -> None:
    from compliance.checks.command import Command

    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $$ $! > {pids}; wait"
    params = Command.Params.model_validate({"run": ["sh", "-c", script]})
    started = time.monotonic()
    [result] = Command().run(params, Context("C", 1.0))
    assert time.monotonic() - started < 4
    assert (result.status, result.message) == (
        Status.ERROR,
        f"sh -c '{script}' did not finish within 1 s and was stopped.",
    )
    shell, grandchild = map(int, pids.read_text().split())
    assert os.getpgid(os.getpid()) != shell  # the program had a group of its own
    assert live_group_members(shell) == []
    assert (
        not Path(f"/proc/{grandchild}").exists()
        or Path(f"/proc/{grandchild}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    )


def test_a_program_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    from compliance.checks.command import STOP_GRACE, Command

    pids = tmp_path / "pids"
    script = f"trap '' TERM; sleep 300 & echo $$ $! > {pids}; while :; do sleep 0.1; done"
    params = Command.Params.model_validate({"run": ["sh", "-c", script]})
    started = time.monotonic()
    [result] = Command().run(params, Context("C", 0.5))
    elapsed = time.monotonic() - started
    assert result.status == Status.ERROR and "was stopped" in result.message
    assert 0.5 + STOP_GRACE - 0.2 < elapsed < 0.5 + STOP_GRACE + 2
    assert live_group_members(int(pids.read_text().split()[0])) == []


# -- 4. SystemExit and KeyboardInterrupt in a plugin; Ctrl-C on a scan -------------------------------------


@pytest.mark.parametrize(
    ("raise_", "message"),
    [
        ("SystemExit", "check 'raiser' crashed: SystemExit: 3"),
        ("SystemExit()", "check 'raiser' crashed: SystemExit"),
        ("KeyboardInterrupt", "check 'raiser' crashed: KeyboardInterrupt"),
    ],
)
def test_a_plugin_that_exits_or_raises_keyboardinterrupt_is_an_error_with_its_cause(
    test_plugins: None, raise_: str, message: str
) -> None:
    started = time.monotonic()
    [outcome] = ThreadExecutor(1).execute([CheckTask("C", 0, "raiser", {"raise_": raise_}, 5)])
    assert time.monotonic() - started < 1  # at once, not after the timeout
    [result] = outcome.results
    assert (result.status, result.target, result.message) == (Status.ERROR, "raiser", message)
    assert result.evidence["exception"] == raise_.rstrip("()")


def test_a_keyboardinterrupt_in_the_main_thread_still_stops(test_plugins: None) -> None:
    """A Ctrl-C arrives in the main thread; a plugin run there (run_task) lets it through."""
    from compliance.engine import run_task

    with pytest.raises(KeyboardInterrupt):
        run_task(CheckTask("C", 0, "raiser", {"raise_": "KeyboardInterrupt"}, 5))


def scan_rows(url: str) -> list[Any]:
    from compliance.db import Database
    from compliance.db.models import Scan

    database = Database(url)
    try:
        with database.sessions() as session:
            return list(session.scalars(select(Scan).order_by(Scan.id)))
    finally:
        database.close()


def stored_results(url: str) -> list[tuple[str, str]]:
    from compliance.db import Database
    from compliance.db.models import CheckResultRow

    database = Database(url)
    try:
        with database.sessions() as session:
            return [
                tuple(r)
                for r in session.execute(
                    select(CheckResultRow.control_id, CheckResultRow.status).order_by(CheckResultRow.control_id)
                )
            ]
    finally:
        database.close()


@pytest.mark.slow
def test_ctrl_c_on_scan_exits_130_and_marks_the_scan_interrupted(
    project: Project, test_plugins: None, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    project.control(
        "c.yaml",
        control("FAST-1", "sleeper", {"name": "fast1"})
        + control("FAST-2", "sleeper", {"name": "fast2"})
        + control("SLOW", "sleeper", {"name": "slow", "seconds": 60}, timeout="120s")
        + control("PROGRAM", "command", {"run": ["sh", "-c", f"sleep 300 & echo $$ > {pids}; wait"]}, timeout="120s"),
    )
    process = compliance_process(project, "scan", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while len(stored_results(project.db_url)) < 2 or not pids.exists() or not pids.read_text().strip():
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == (
        "interrupted: the controls checked so far are stored and the scan is marked interrupted"
    )
    assert "Aborted" not in stderr and stdout == ""
    [scan] = scan_rows(project.db_url)
    assert (scan.status, scan.controls_total) == ("interrupted", 2) and scan.finished_at is not None
    assert stored_results(project.db_url) == [("FAST-1", "pass"), ("FAST-2", "pass")]
    assert live_group_members(int(pids.read_text())) == []  # the command's program did not outlive the scan


# -- 5. a dead scan whose PID was reused ---------------------------------------------------------------


def add_running_scan(database: Any, host: str, pid: int) -> int:
    from compliance.db.models import Scan

    with database.transaction() as session:
        scan = Scan(started_at=datetime.now(UTC), trigger="manual", status="running", host=host, pid=pid)
        session.add(scan)
        session.flush()
        return int(scan.id)


def test_a_scan_of_a_live_pid_that_started_at_another_time_is_closed(database: Any, store: Any) -> None:
    """The scan's process died and its PID now belongs to another process (here: this test's), which
    started at another time: the scan is closed as interrupted. Those of live owners stay running."""
    from compliance.db.models import Scan
    from compliance.store import _owner, process_start

    me = os.getpid()
    started = process_start(me)
    assert started is not None
    host = socket.gethostname()
    reused = add_running_scan(database, f"{host}#{started - 1}", me)
    mine = add_running_scan(database, _owner()[0], me)
    assert _owner()[0] == f"{host}#{started}"
    legacy = add_running_scan(database, host, me)  # stored before the start time was: the PID decides
    elsewhere = add_running_scan(database, f"other-{host}#{started - 1}", me)
    assert store.close_abandoned_scans() == [reused]
    with database.sessions() as session:
        status = {scan_id: state for scan_id, state in session.execute(select(Scan.id, Scan.status))}
        assert session.scalar(select(func.count()).select_from(Scan).where(Scan.finished_at.is_not(None))) == 1
    assert status == {reused: "interrupted", mine: "running", legacy: "running", elsewhere: "running"}


def test_a_scan_whose_process_is_gone_is_closed_with_or_without_a_start_time(database: Any, store: Any) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    with_start = add_running_scan(database, f"{host}#12345", gone.pid)
    without = add_running_scan(database, host, gone.pid)
    assert sorted(store.close_abandoned_scans()) == [with_start, without]


def test_the_scan_owner_is_the_host_and_the_process_start_time(store: Any, probe_plugin: type) -> None:
    from compliance.store import process_start

    scan_id, _ = store.start_scan("manual")
    [scan] = [s for s in scan_rows(store.db.url) if s.id == scan_id]
    assert (scan.host, scan.pid) == (f"{socket.gethostname()}#{process_start(os.getpid())}", os.getpid())
    assert store.close_abandoned_scans() == []
