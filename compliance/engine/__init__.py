"""The scan engine: plan the checks of controls, run them through an executor, store each control.

Checks run through an `Executor`, a small interface with one method: hand it `CheckTask`s (plain,
serializable data) and iterate `TaskOutcome`s as they complete. `ThreadExecutor` runs them in threads on
this machine; an executor that sends tasks to workers in other network zones implements the same
method, and nothing else changes. Each control is stored in its own transaction as soon as all its
checks are done, so a crash loses at most the controls in flight.
"""

from __future__ import annotations

import contextvars
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from compliance.status import EVIDENCE_LIMIT, Status

# The plugin API (and pydantic behind it) is imported where checks run, not here: `compliance findings`
# lives in this package (compliance.engine.commands) and starts without it (issue 18).
if TYPE_CHECKING:
    from compliance.api import Message, Result
    from compliance.catalog import Control
    from compliance.facts import FactSource
    from compliance.settings import Settings
    from compliance.store import ControlOutcome, Store

MESSAGE_LIMIT = 1000
TARGET_LIMIT = 500
PRINTED_KEPT = 10_000  # characters of what a check printed that are kept for the debug log

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckTask:
    """One plugin run, as plain data that can travel to a worker process or machine."""

    control_id: str
    check_index: int
    plugin: str
    params: dict[str, Any]
    timeout: float
    nameserver: str | None = None
    ca_file: str | None = None
    net_timeout: float = 10.0
    base_dir: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    #: the network zone whose workers run it (`local`: this process)
    zone: str = "local"


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """The results of one task, when it started and how long it took."""

    task: CheckTask
    results: tuple[Result, ...]
    started_at: datetime
    duration: float


class Executor(Protocol):
    """Runs check tasks and yields their outcomes as they complete, in any order.

    Every task yields exactly one outcome. A task that crashes or exceeds its timeout yields an outcome
    with an `error` result; `execute` itself does not raise for a failing check.
    """

    def execute(self, tasks: Sequence[CheckTask]) -> Iterator[TaskOutcome]: ...


class Preparing(Protocol):
    """An executor that must get ready before a scan starts (reach a broker, find the zones' workers).

    `run_scan` calls `prepare(tasks)` before it writes anything; an exception there (e.g. a
    ComplianceError: the broker cannot be reached) stops the scan with the database unchanged.
    """

    def prepare(self, tasks: Sequence[CheckTask]) -> None: ...


def default_target(task: CheckTask) -> str:
    """The target to name in a result when the plugin itself could not say (crash, timeout)."""
    from compliance import plugins

    try:
        param = plugins.load(task.plugin).target_param
    except Exception:
        param = None
    value = task.params.get(param) if param else None
    return str(value) if value not in (None, "") else task.plugin


def run_task(task: CheckTask) -> tuple[Result, ...]:
    """Run one task here and now: load the plugin, validate parameters, run, bound the results.

    Never raises for a plugin's fault: an exception becomes an `error` result with its message.
    """
    from compliance import plugins
    from compliance.api import Context, Message, Result

    try:
        plugin = plugins.load(task.plugin)
        params = plugin.Params.model_validate(task.params)
        ctx = Context(control_id=task.control_id, timeout=task.timeout, nameserver=task.nameserver,
                      ca_file=task.ca_file, net_timeout=task.net_timeout, base_dir=task.base_dir,
                      facts=task.facts)
        results = tuple(_bounded(r) for r in plugin().run(params, ctx))
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        # a plugin's crash is a finding about the plugin, not a crash of the scan; also sys.exit() in a
        # plugin, or a KeyboardInterrupt it raises itself. Only the main thread receives a real Ctrl-C
        # (SIGINT): there it stops the scan.
        if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        # the exception's own text (a plugin's or a library's words) is shown as it is, in every language
        text = (Message("check '%(plugin)s' crashed: %(exception)s: %(reason)s", plugin=task.plugin,
                        exception=type(exc).__name__, reason=message) if message else
                Message("check '%(plugin)s' crashed: %(exception)s", plugin=task.plugin,
                        exception=type(exc).__name__))
        return (_bounded(Result.errored(default_target(task), text, exception=type(exc).__name__)),)
    if not results:
        return (Result.errored(default_target(task), Message("check '%(plugin)s' returned no result",
                                                             plugin=task.plugin)),)
    return results


def _bounded(result: Result) -> Result:
    """The result with a one-line message, a bounded target and JSON evidence of bounded size."""
    from compliance.api import Result

    if not isinstance(result, Result):
        raise TypeError(f"a check must return compliance.api.Result objects, not {type(result).__name__}")
    message = " ".join(str(result.message).split())
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    target = str(result.target)[:TARGET_LIMIT] or "-"
    evidence = result.evidence
    encoded = json.dumps(evidence, default=str, ensure_ascii=False)
    if len(encoded.encode()) > EVIDENCE_LIMIT:
        evidence = {"truncated": True, "size": len(encoded.encode()), "preview": encoded[:1000]}
    elif any(not isinstance(v, str | int | float | bool | list | dict | type(None)) for v in evidence.values()):
        evidence = json.loads(encoded)
    status = Status(result.status)
    if status == result.status and message == result.message and target == result.target \
            and evidence is result.evidence:
        return result
    return Result(status, message, target, evidence)


class CheckAbandoned(BaseException):
    """Raised inside a check's thread when the check is abandoned after its timeout, to end it.

    A BaseException, so that a plugin's `except Exception` does not swallow it. Python delivers it only
    between bytecodes: it ends a check that loops or waits in short steps, not one blocked in a single
    long call (a sleep, a read without timeout); those stay until that call returns.
    """


@dataclass
class _Running:
    task: CheckTask
    started_at: datetime
    started: float
    deadline: float
    thread: threading.Thread
    # held while deciding whether the thread is still in its plugin, so that CheckAbandoned is sent only
    # there, never into the bookkeeping after it
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_plugin: bool = True

    def stop(self) -> None:
        """Ask the abandoned check's thread to end, if it still runs the plugin (see CheckAbandoned)."""
        import ctypes  # only for a check that overran its timeout: not part of every scan's start-up

        with self.lock:
            if self.in_plugin and self.thread.ident is not None:
                self.in_plugin = False
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident),
                                                           ctypes.py_object(CheckAbandoned))

    def left_plugin(self) -> None:
        with self.lock:
            self.in_plugin = False


def _checkpoint() -> None:
    """Do nothing, in Python: an exception sent to this thread (CheckAbandoned) is raised on entering."""


# What checks print must not reach the monitor's own output (`scan --format json` is read by programs):
# while check threads run, sys.stdout and sys.stderr are proxies that send what a check thread writes to
# that check's buffer (a context variable, so asyncio tasks of a check count too) and everything else on.
@dataclass
class _Printed:
    """What one check printed, up to PRINTED_KEPT characters."""

    parts: list[str] = field(default_factory=list)
    size: int = 0

    def add(self, text: str) -> None:
        if self.size < PRINTED_KEPT:
            self.parts.append(text[: PRINTED_KEPT - self.size])
            self.size += len(self.parts[-1])


_printed: contextvars.ContextVar[_Printed | None] = contextvars.ContextVar("printed", default=None)
_proxy_lock = threading.Lock()
_proxy_users = 0


class _CheckOutputProxy:
    """A text stream that keeps what check threads write and passes everything else to `stream`."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        printed = _printed.get()
        if printed is None:
            return self.stream.write(text)
        printed.add(text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _printed.get() is None:
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _capture_check_output() -> None:
    """Put the proxies in place (once, for every check thread running)."""
    global _proxy_users
    with _proxy_lock:
        _proxy_users += 1
        if not isinstance(sys.stdout, _CheckOutputProxy):
            sys.stdout = _CheckOutputProxy(sys.stdout)
        if not isinstance(sys.stderr, _CheckOutputProxy):
            sys.stderr = _CheckOutputProxy(sys.stderr)


def _release_check_output() -> None:
    """Take the proxies away when the last check thread ends (unless someone replaced them since)."""
    global _proxy_users
    with _proxy_lock:
        _proxy_users -= 1
        if _proxy_users:
            return
        if isinstance(sys.stdout, _CheckOutputProxy):
            sys.stdout = sys.stdout.stream
        if isinstance(sys.stderr, _CheckOutputProxy):
            sys.stderr = sys.stderr.stream


def _run_in_thread(task: CheckTask) -> tuple[Result, ...]:
    """run_task in a check thread: what the check prints is kept from our output and logged at debug."""
    printed = _Printed()
    token = _printed.set(printed)
    try:
        results = run_task(task)
    finally:
        _printed.reset(token)
    if printed.size:
        log.debug("check '%s' of %s printed %s", task.plugin, task.control_id, repr("".join(printed.parts))[1:-1])
    return results


# Checks that did not finish within their timeout and still run (blocked in a call that CheckAbandoned
# cannot interrupt). They are bounded: a check still running from an earlier run is not started again,
# and no new check starts while as many are abandoned as an executor has slots. Shared by every executor
# of the process, as the daemon makes one per run.
_abandoned_lock = threading.Lock()
_abandoned: dict[tuple[str, int, str, str], tuple[threading.Thread, float]] = {}


def _task_key(task: CheckTask) -> tuple[str, int, str, str]:
    return (task.control_id, task.check_index, task.plugin,
            json.dumps(task.params, sort_keys=True, default=str))


def abandoned_checks() -> int:
    """How many checks that exceeded their timeout are still running in this process."""
    with _abandoned_lock:
        for key in [k for k, (thread, _) in _abandoned.items() if not thread.is_alive()]:
            del _abandoned[key]
        return len(_abandoned)


class ThreadExecutor:
    """Runs tasks in threads on this machine, at most `concurrency` at a time.

    Each task gets a thread of its own. A task that exceeds its timeout is reported as an `error` and
    abandoned: its slot is freed at once, so a hanging plugin cannot stall the scan, and CheckAbandoned
    is raised in its thread, which ends a check that loops. Python cannot stop a thread blocked in one
    long call; such a thread ends when the call returns, and is a daemon thread meanwhile. So that
    repeated runs (the daemon) cannot pile up hung threads, a task whose earlier run still hangs is not
    started again, and while `abandoned_limit` (default: `concurrency`) abandoned checks run in this
    process no new check starts: both are reported as an `error` at once. What check threads print
    goes to the debug log, not to our output.
    """

    def __init__(self, concurrency: int = 32, abandoned_limit: int | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.abandoned_limit = concurrency if abandoned_limit is None else abandoned_limit

    def execute(self, tasks: Sequence[CheckTask]) -> Iterator[TaskOutcome]:
        from compliance.api import Message, Result

        done: queue.SimpleQueue[tuple[int, tuple[Result, ...]]] = queue.SimpleQueue()
        running: dict[int, _Running] = {}  # started, neither done nor abandoned
        runs: dict[int, _Running] = {}  # every task started
        pending = iter(enumerate(tasks))
        exhausted = False

        def worker(token: int, task: CheckTask) -> None:
            run = runs[token]
            try:
                results = _run_in_thread(task)
                run.left_plugin()  # from here on no CheckAbandoned is sent
                _checkpoint()  # one sent just before is raised here, not after the try
                done.put((token, results))
            except CheckAbandoned:  # its outcome was reported when it was abandoned
                pass
            finally:
                _release_check_output()

        while True:
            while not exhausted and len(running) < self.concurrency:
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                token, task = item
                refused = self._refused(task)
                if refused is not None:
                    yield TaskOutcome(task, (Result.errored(default_target(task), refused),), datetime.now(UTC), 0.0)
                    continue
                now = time.monotonic()
                thread = threading.Thread(target=worker, args=(token, task), daemon=True,
                                          name=f"check-{task.plugin}-{token}")
                runs[token] = running[token] = _Running(task, datetime.now(UTC), now, now + task.timeout, thread)
                _capture_check_output()
                try:
                    thread.start()
                except BaseException:
                    _release_check_output()
                    raise
            if not running:
                return
            wait = max(0.0, min(r.deadline for r in running.values()) - time.monotonic())
            try:
                token, results = done.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                for token in [t for t, r in running.items() if r.deadline <= now]:
                    run = running.pop(token)
                    with _abandoned_lock:
                        _abandoned[_task_key(run.task)] = (run.thread, run.task.timeout)
                    run.stop()
                    message = Message("check '%(plugin)s' did not finish within its timeout of %(timeout)s s "
                                      "and was abandoned", plugin=run.task.plugin,
                                      timeout=format(run.task.timeout, "g"))
                    yield TaskOutcome(run.task, (Result.errored(default_target(run.task), message,
                                                                timeout=run.task.timeout),),
                                      run.started_at, now - run.started)
                continue
            run_ = running.pop(token, None)
            if run_ is None:  # finished after it was abandoned: already reported
                continue
            yield TaskOutcome(run_.task, results, run_.started_at, time.monotonic() - run_.started)

    def _refused(self, task: CheckTask) -> Message | None:
        """Why task may not start now (its earlier run still hangs, or too many do), or None."""
        from compliance.api import Message

        count = abandoned_checks()
        with _abandoned_lock:
            earlier = _abandoned.get(_task_key(task))
        if earlier is not None:
            return Message("check '%(plugin)s' is still running from an earlier run (it did not finish within "
                           "its timeout of %(timeout)s s); skipped", plugin=task.plugin,
                           timeout=format(earlier[1], "g"))
        if count >= self.abandoned_limit:
            return Message("check '%(plugin)s' was not started: %(count)d checks that did not finish within "
                           "their timeout are still running; skipped", plugin=task.plugin, count=count)
        return None


ProgressCallback = Callable[[int, int, str], None]


class SharedChecks:
    """The executor of the scans of several organisations in one run (`scan --all-orgs`): a check that
    more of them have (the same plugin with the same parameters, settings and facts: a shared mail
    gateway or data centre) runs once, and its outcome counts for each of them.

    Each organisation's scan stores the outcome as its own result, so the finding shows in each and an
    exception on it is each organisation's own. Wraps the executor that runs the checks.
    """

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self._outcomes: dict[str, TaskOutcome] = {}
        self._reused: set[str] = set()

    @property
    def shared(self) -> int:
        """How many checks ran once for more than one organisation's scan."""
        return len(self._reused)

    @staticmethod
    def _key(task: CheckTask) -> str:
        return json.dumps([task.plugin, task.params, task.timeout, task.nameserver, task.ca_file, task.net_timeout,
                           task.base_dir, task.facts, task.zone], sort_keys=True, default=str)

    def prepare(self, tasks: Sequence[CheckTask]) -> None:
        prepare = getattr(self.inner, "prepare", None)
        if prepare is not None:
            prepare([task for task in tasks if self._key(task) not in self._outcomes])

    def execute(self, tasks: Sequence[CheckTask]) -> Iterator[TaskOutcome]:
        fresh = []
        for task in tasks:
            key = self._key(task)
            earlier = self._outcomes.get(key)
            if earlier is None:
                fresh.append(task)
                continue
            self._reused.add(key)
            yield TaskOutcome(task, earlier.results, earlier.started_at, earlier.duration)
        for outcome in self.inner.execute(fresh) if fresh else ():
            self._outcomes[self._key(outcome.task)] = outcome
            yield outcome


@dataclass
class ScanReport:
    """What a scan did: its id, each control's outcome, and whether it ran to the end."""

    scan_id: int
    started_at: datetime
    finished_at: datetime | None = None
    outcomes: list[ControlOutcome] = field(default_factory=list)
    status: str = "running"


FactsProvider = Callable[[tuple[str, ...], str], dict[str, Any]]


def make_tasks(controls: Iterable[Control], settings: Settings,
               facts: FactsProvider | None = None) -> list[CheckTask]:
    """Every task for the enabled controls, targets expanded, network defaults and facts filled in.

    `facts(kinds, control_id)` gathers the facts a plugin asks for in `Check.facts`.
    """
    from compliance import plugins
    from compliance.catalog import plan

    net = settings.network
    ca_file = str(settings.resolve(net.ca_file)) if net.ca_file else None
    tasks = []
    for control in controls:
        if not control.enabled:
            continue
        for p in plan(control, settings.targets, settings.scan.timeout, settings.zones.groups):
            kinds = plugins.load(p.plugin).facts
            tasks.append(CheckTask(
                p.control_id, p.check_index, p.plugin, p.params, p.timeout, nameserver=net.nameserver,
                ca_file=ca_file, net_timeout=net.timeout, base_dir=str(settings.base_dir),
                facts=facts(kinds, control.id) if kinds and facts is not None else {}, zone=p.zone,
            ))
    return tasks


def run_scan(
    controls: Sequence[Control],
    settings: Settings,
    store: Store,
    *,
    executor: Executor | None = None,
    trigger: str = "manual",
    progress: ProgressCallback | None = None,
    fact_sources: Mapping[str, FactSource] | None = None,
) -> ScanReport:
    """Run every check of the enabled controls and store each control's results and findings.

    `fact_sources` gathers the facts of kinds this layer does not know, such as the breach register's
    `breaches` (`compliance.incidents.facts.FACT_SOURCES`): the caller passes them in.
    A KeyboardInterrupt or crash marks the scan interrupted or failed; controls stored before stay.
    """
    from compliance.errors import ComplianceError
    from compliance.facts import FactGatherer

    enabled = [c for c in controls if c.enabled]
    tasks = make_tasks(enabled, settings, FactGatherer(store.db, store.zone, fact_sources))
    if executor is None:
        remote = sorted({t.zone for t in tasks if t.zone != "local"})
        if remote:
            raise ComplianceError(f"checks in zone {', '.join(remote)} need workers: run the scan with the "
                                  "zone executor (compliance.zones.ZoneExecutor), as `compliance scan` does")
        executor = ThreadExecutor(settings.scan.concurrency)
    prepare = getattr(executor, "prepare", None)
    if prepare is not None:
        prepare(tasks)
    expected: dict[str, int] = {c.id: 0 for c in enabled}
    for task in tasks:
        expected[task.control_id] += 1
    by_id = {c.id: c for c in enabled}
    store.sync_controls(enabled)
    store.close_abandoned_scans()
    state = store.scan_state()
    scan_id, started_at = store.start_scan(trigger)
    report = ScanReport(scan_id, started_at)
    collected: dict[str, list[TaskOutcome]] = {cid: [] for cid in expected}
    try:
        for control_id in [cid for cid, n in expected.items() if n == 0]:
            report.outcomes.append(store.record_control(scan_id, by_id[control_id], [], state))
        for done_count, outcome in enumerate(executor.execute(tasks), start=1):
            control_id = outcome.task.control_id
            collected[control_id].append(outcome)
            if len(collected[control_id]) == expected[control_id]:
                report.outcomes.append(store.record_control(scan_id, by_id[control_id],
                                                            collected.pop(control_id), state))
            if progress is not None:
                progress(done_count, len(tasks), control_id)
    except BaseException as exc:
        report.status = "interrupted" if isinstance(exc, KeyboardInterrupt | SystemExit) else "failed"
        report.finished_at = store.finish_scan(scan_id, report.status, report.outcomes)
        raise
    report.status = "completed"
    report.finished_at = store.finish_scan(scan_id, report.status, report.outcomes)
    return report
