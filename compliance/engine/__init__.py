"""The scan engine: plan the checks of controls, run them through an executor, store each control.

Checks run through an `Executor`, a small interface with one method: hand it `CheckTask`s (plain,
serializable data) and iterate `TaskOutcome`s as they complete. `ThreadExecutor` runs them in threads on
this machine; an executor that sends tasks to workers in other network zones implements the same
method, and nothing else changes. Each control is stored in its own transaction as soon as all its
checks are done, so a crash loses at most the controls in flight.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from compliance.api import EVIDENCE_LIMIT, Context, Message, Result, Status

if TYPE_CHECKING:
    from compliance.catalog import Control
    from compliance.facts import FactSource
    from compliance.settings import Settings
    from compliance.store import ControlOutcome, Store

MESSAGE_LIMIT = 1000
TARGET_LIMIT = 500


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

    try:
        plugin = plugins.load(task.plugin)
        params = plugin.Params.model_validate(task.params)
        ctx = Context(control_id=task.control_id, timeout=task.timeout, nameserver=task.nameserver,
                      ca_file=task.ca_file, net_timeout=task.net_timeout, base_dir=task.base_dir,
                      facts=task.facts)
        results = tuple(_bounded(r) for r in plugin().run(params, ctx))
    except Exception as exc:  # a plugin's crash is a finding about the plugin, not a crash of the scan
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


@dataclass
class _Running:
    task: CheckTask
    started_at: datetime
    started: float
    deadline: float


class ThreadExecutor:
    """Runs tasks in threads on this machine, at most `concurrency` at a time.

    Each task gets a thread of its own. A task that exceeds its timeout is reported as an `error` and
    abandoned: its slot is freed at once, so a hanging plugin cannot stall the scan. (Python cannot
    stop a thread; an abandoned one ends when its plugin returns, and is a daemon thread meanwhile.)
    """

    def __init__(self, concurrency: int = 32) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency

    def execute(self, tasks: Sequence[CheckTask]) -> Iterator[TaskOutcome]:
        done: queue.SimpleQueue[tuple[int, tuple[Result, ...]]] = queue.SimpleQueue()
        running: dict[int, _Running] = {}
        pending = iter(enumerate(tasks))
        exhausted = False

        def worker(token: int, task: CheckTask) -> None:
            done.put((token, run_task(task)))

        while True:
            while not exhausted and len(running) < self.concurrency:
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                token, task = item
                now = time.monotonic()
                running[token] = _Running(task, datetime.now(UTC), now, now + task.timeout)
                threading.Thread(target=worker, args=(token, task), daemon=True,
                                 name=f"check-{task.plugin}-{token}").start()
            if not running:
                return
            wait = max(0.0, min(r.deadline for r in running.values()) - time.monotonic())
            try:
                token, results = done.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                for token in [t for t, r in running.items() if r.deadline <= now]:
                    run = running.pop(token)
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


ProgressCallback = Callable[[int, int, str], None]


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
        for p in plan(control, settings.targets, settings.scan.timeout):
            kinds = plugins.load(p.plugin).facts
            tasks.append(CheckTask(
                p.control_id, p.check_index, p.plugin, p.params, p.timeout, nameserver=net.nameserver,
                ca_file=ca_file, net_timeout=net.timeout, base_dir=str(settings.base_dir),
                facts=facts(kinds, control.id) if kinds and facts is not None else {},
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
    from compliance.facts import FactGatherer

    executor = executor or ThreadExecutor(settings.scan.concurrency)
    enabled = [c for c in controls if c.enabled]
    tasks = make_tasks(enabled, settings, FactGatherer(store.db, store.zone, fact_sources))
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
