"""The zone worker: a Celery worker that runs the checks of one network zone (`compliance worker`).

It consumes only its zone's queue, runs each check with the plugins installed on its own machine (with
the check's timeout, as a scan does), and sends the outcome back to the scan's reply queue. It knows the
broker and nothing else: no database, no configuration file.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compliance.api import Message, Result
from compliance.engine import CheckTask, TaskOutcome, ThreadExecutor, default_target
from compliance.zones import PROTOCOL, TASK_NAME, Celery, celery_app, queue_name

log = logging.getLogger(__name__)


class _Runners:
    """`size` threads that run checks from every message the worker holds, so that `size` checks run at once
    however the scans cut them into messages. Each check runs as in a scan: with its timeout, abandoned
    when it exceeds it (ThreadExecutor)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.queue: queue.SimpleQueue[tuple[CheckTask, Callable[[TaskOutcome], None]]] = queue.SimpleQueue()
        self.pid: int | None = None
        self.lock = threading.Lock()

    def _started(self) -> None:
        """Start the threads in this process (a prefork child has none of its parent's threads)."""
        with self.lock:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                self.queue = queue.SimpleQueue()
                for number in range(self.size):
                    threading.Thread(target=self._loop, args=(self.queue,), daemon=True,
                                     name=f"check-runner-{number}").start()

    @staticmethod
    def _loop(work: queue.SimpleQueue[tuple[CheckTask, Callable[[TaskOutcome], None]]]) -> None:
        executor = ThreadExecutor(1, abandoned_limit=10_000)
        while True:
            task, done = work.get()
            try:
                outcome = next(iter(executor.execute([task])))
            except Exception as exc:  # the executor turns a plugin's fault into a result; this is ours
                outcome = TaskOutcome(task, (Result.errored(default_target(task), Message(
                    "check '%(plugin)s' crashed: %(exception)s", plugin=task.plugin,
                    exception=type(exc).__name__)),), datetime.now(UTC), 0.0)
            done(outcome)

    def run(self, tasks: list[CheckTask]) -> list[TaskOutcome]:
        """The outcome of every task, in order, once all are done."""
        self._started()
        outcomes: list[TaskOutcome | None] = [None] * len(tasks)
        finished = threading.Semaphore(0)

        def done_at(index: int) -> Callable[[TaskOutcome], None]:
            def done(outcome: TaskOutcome) -> None:
                outcomes[index] = outcome
                finished.release()
            return done

        for index, task in enumerate(tasks):
            self.queue.put((task, done_at(index)))
        for _ in tasks:
            finished.acquire()
        return [o for o in outcomes if o is not None]


def worker_name(zone: str) -> str:
    return f"{zone}.{os.getpid()}@{socket.gethostname()}"


#: plugins a worker runs only when started with --allow-command: whoever can write to the broker could
#: otherwise run any program on a machine in the zone (messages are not signed)
UNSAFE_PLUGINS = frozenset({"command"})


def make_app(url: str, zone: str, *, base_dir: Path, redelivery_after: float, name: str,
             concurrency: int = 32, pool: str = "threads", allow_command: bool = False) -> Celery:
    """The worker's Celery application with the one task it runs."""
    from compliance import __version__, plugins

    app = celery_app(url, redelivery_after=redelivery_after)
    # threads: one process holds `concurrency` messages and runs `concurrency` checks at once from them;
    # prefork: each of `concurrency` processes runs one message, its checks (at most 64) together
    runners = _Runners(concurrency if pool == "threads" else 64)
    def answer(reply_to: str, answers: list[dict[str, Any]]) -> None:
        body = {"answers": answers, "worker": name, "zone": zone, "version": __version__}
        with app.producer_pool.acquire(block=True) as producer:
            producer.publish(body, exchange="", routing_key=reply_to, serializer="json", delivery_mode=1,
                             retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def run_checks(payload: dict[str, Any]) -> None:
        """Run a message's checks at the same time, each with its timeout; answer them in one message."""
        reply_to = str(payload["reply_to"])
        checks = [c for c in payload.get("checks") or [] if isinstance(c, dict) and isinstance(c.get("token"), int)]
        answers: list[dict[str, Any]] = []
        if payload.get("protocol") != PROTOCOL or payload.get("version") != __version__:
            refused = Message(
                "worker %(worker)s in zone %(zone)s runs compliance %(worker_version)s, the scan %(scan_version)s: "
                "install the same version on both", worker=name, zone=zone, worker_version=__version__,
                scan_version=str(payload.get("version"))).as_json()
            answer(reply_to, [{"token": c["token"], "refused": refused} for c in checks])
            return
        runnable: dict[int, CheckTask] = {}
        installed = set(plugins.names())
        for check in checks:
            body = dict(check.get("task") or {})
            plugin = str(body.get("plugin", ""))
            if plugin not in installed:
                answers.append({"token": check["token"], "refused": Message(
                    "check '%(plugin)s' is not installed on worker %(worker)s in zone %(zone)s", plugin=plugin,
                    worker=name, zone=zone).as_json()})
                continue
            if plugin in UNSAFE_PLUGINS and not allow_command:
                answers.append({"token": check["token"], "refused": Message(
                    "check '%(plugin)s' runs programs and is refused by worker %(worker)s in zone %(zone)s; start the "
                    "worker with --allow-command to allow it", plugin=plugin, worker=name, zone=zone).as_json()})
                continue
            body["base_dir"] = str(base_dir)  # paths of a remote check count from the worker's folder
            body["facts"] = {}
            runnable[check["token"]] = CheckTask(**body)
        ran_on = {"zone": zone, "worker": name}
        for token, outcome in zip(runnable, runners.run(list(runnable.values())), strict=True):
            answers.append({
                "token": token, "started_at": outcome.started_at.isoformat(), "duration": outcome.duration,
                "results": [{"status": r.status.value, "message": r.message, "target": r.target,
                             "evidence": {**r.evidence, "ran_on": ran_on}} for r in outcome.results],
            })
        answer(reply_to, answers)

    return app


def run_worker(url: str, zone: str, *, concurrency: int, pool: str, base_dir: Path, redelivery_after: float,
               loglevel: str = "WARNING", allow_command: bool = False) -> int:
    """Run a worker for `zone` until it is stopped (SIGTERM, Ctrl-C); its exit code.

    A message holds up to `zones.batch` checks of a scan. With the threads pool the worker holds up to
    `concurrency` messages and runs `concurrency` checks at once from all of them (`_Runners`); with prefork
    each of `concurrency` processes runs one message at a time, its checks together."""
    name = worker_name(zone)
    app = make_app(url, zone, base_dir=base_dir, redelivery_after=redelivery_after, name=name,
                   concurrency=concurrency, pool=pool, allow_command=allow_command)
    worker = app.Worker(hostname=name, queues=[queue_name(zone)], concurrency=concurrency, pool=pool,
                        loglevel=loglevel, without_mingle=True, without_gossip=True, quiet=True,
                        optimization="fair")
    log.info("worker %s for zone %s started at %s", name, zone, datetime.now(UTC).isoformat())
    worker.start()
    return int(getattr(worker, "exitcode", 0) or 0)
