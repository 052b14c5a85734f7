"""Checks in several network zones: a Celery worker per zone, one central database.

A check runs where it can reach its target: `local` (this process, the one-box default) or a named zone
(`compliance worker --zone dmz`, on a machine in the DMZ). `ZoneExecutor` is the scan's executor: it runs
the local checks in threads here, as `ThreadExecutor` does, and sends each remote check to its zone's
queue on the message broker (Redis or RabbitMQ). The worker runs the plugin and sends the outcome back
over the broker to a reply queue of this scan only; the scan stores it through the same store as a
local outcome. Workers never see the database or its URL: they need the broker's URL alone
(COMPLIANCE_BROKER_URL), and the messages carry a check's parameters, never a secret.

Exactly once: a check is acknowledged by its worker only after it ran and its answer was sent (late
acknowledgement). A worker that dies mid-check leaves its checks unacknowledged, and the broker gives
them to another worker of the zone (RabbitMQ at once; Redis after the worker's `--redelivery-after`).
A check can so be answered twice: the scan takes the first answer and drops any later one.

Nothing waits forever: a zone without a live worker gets `error` results at once ("no worker for zone
dmz"), a zone that stops answering gets them after its longest check timeout plus `zones.patience`, and
a broker lost mid-scan turns every check still unanswered into an `error` with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from compliance.api import Message, Result, Status
from compliance.engine import CheckTask, TaskOutcome, ThreadExecutor, default_target
from compliance.errors import ComplianceError

if TYPE_CHECKING:
    from compliance.settings import Settings

Celery = Any  # celery.Celery: Celery and kombu ship no type information
Connection = Any  # kombu.Connection

log = logging.getLogger(__name__)

BROKER_ENV = "COMPLIANCE_BROKER_URL"
LOCAL = "local"
TASK_NAME = "compliance.run_check"
QUEUE_PREFIX = "compliance.zone."
REPLY_PREFIX = "compliance.reply."
#: the version of the message between scan and worker; a worker refuses a message of another
PROTOCOL = 2
#: how many messages a worker takes from the broker per slot ahead of time (more: faster; a dead worker's
#: checks wait for redelivery)
PREFETCH = 4
#: checks of one zone per message, by default (`zones.batch`): a message, its acknowledgement and its answer
#: cost the scan, the broker and the worker far more than a check's parameters; a worker runs a message's
#: checks at the same time and answers them together
BATCH = 8


def queue_name(zone: str) -> str:
    return QUEUE_PREFIX + zone


def zone_of_queue(name: str) -> str | None:
    return name[len(QUEUE_PREFIX):] if name.startswith(QUEUE_PREFIX) else None


def broker_url(why: str = "") -> str:
    """The broker's URL from the environment, or a ComplianceError saying what to set."""
    url = os.environ.get(BROKER_ENV, "").strip()
    if not url:
        raise ComplianceError(f"{why}set {BROKER_ENV} to the message broker's URL (redis://HOST:6379/0 or "
                              "amqp://USER:PASSWORD@HOST:5672//); see docs/scale-out.md")
    return url


def masked(url: str) -> str:
    """The URL without its password, to show."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


def celery_app(url: str, *, redelivery_after: float = 300.0) -> Celery:
    """The Celery application of scans and workers: JSON only, late acknowledgement, no result store.

    Answers travel back as plain messages to the scan's own reply queue (see module docs), so neither
    side needs a result backend, and a worker needs the broker's URL only.
    """
    try:
        import celery
    except ImportError:
        raise ComplianceError("checks in network zones need Celery: pip install 'compliance-monitor[scale]'") from None

    app = celery.Celery("compliance", broker=url, set_as_current=False)
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json",
        task_ignore_result=True, result_backend=None,
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=PREFETCH,
        task_create_missing_queues=True, task_default_queue=queue_name(LOCAL),
        # Redis gives an unacknowledged message to another worker after this long (swept for every few
        # seconds; RabbitMQ at once when the worker's connection drops); it must exceed PREFETCH times the
        # longest check on a worker, or a check waiting in a live worker is run twice (the scan keeps one)
        broker_transport_options={"visibility_timeout": redelivery_after, "unacked_restore_throttle": 1,
                                  "unacked_restore_interval": max(1, min(10, int(redelivery_after / 4)))},
        broker_connection_retry_on_startup=True, broker_connection_timeout=5.0,
        worker_hijack_root_logger=False, worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def connect(app: Celery, url: str) -> Connection:
    """A connection to the broker, or a ComplianceError (exit 2) that says why there is none."""
    conn = app.connection_for_write()
    try:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=5)
    except Exception as exc:
        conn.release()
        raise ComplianceError(f"cannot reach the message broker at {masked(url)}: {exc}; start the broker or "
                              f"correct {BROKER_ENV}") from None
    return conn


@dataclass
class WorkerInfo:
    name: str
    zones: list[str]
    concurrency: int | None = None


def live_workers(app: Celery, conn: Connection, timeout: float) -> list[WorkerInfo]:
    """The workers that answer within `timeout`, and the zones whose queues each consumes."""
    inspect = app.control.inspect(timeout=timeout, connection=conn)
    stats: dict[str, Any] = {}

    def get_stats() -> None:
        with app.connection_for_write() as own:
            stats.update(app.control.inspect(timeout=timeout, connection=own).stats() or {})

    thread = threading.Thread(target=get_stats, daemon=True)
    thread.start()
    queues = inspect.active_queues() or {}
    thread.join(timeout + 2)
    workers = []
    for name, consumed in sorted(queues.items()):
        zones = sorted({z for q in consumed if (z := zone_of_queue(str(q.get("name", "")))) is not None})
        pool = (stats.get(name) or {}).get("pool") or {}
        concurrency = pool.get("max-concurrency")  # checks at once (and messages held at once)
        workers.append(WorkerInfo(name, zones, concurrency if isinstance(concurrency, int) else None))
    return workers


def queue_length(conn: Connection, zone: str) -> int:
    """How many checks wait in a zone's queue (0 for a queue that does not exist yet)."""
    channel = conn.channel()
    try:
        return int(channel.queue_declare(queue=queue_name(zone), passive=True).message_count)
    except Exception:
        return 0
    finally:
        with contextlib.suppress(Exception):
            channel.close()


# -- the messages ------------------------------------------------------------------------------------


def task_message(batch: Sequence[tuple[int, CheckTask]], reply_to: str) -> dict[str, Any]:
    """What a worker gets: checks of one zone as plain data (each with its token), where to answer, and the
    scan's product version. Never the facts of the register (checks that need them run locally)."""
    from compliance import __version__

    checks = []
    for token, task in batch:
        body = asdict(task)
        body.pop("facts")
        checks.append({"token": token, "task": body})
    return {"protocol": PROTOCOL, "version": __version__, "reply_to": reply_to, "checks": checks}


def batches(tasks: Sequence[tuple[int, CheckTask]], size: int = BATCH) -> list[list[tuple[int, CheckTask]]]:
    """The tasks in messages of at most `size` checks, each message of one zone, in the order given."""
    by_zone: dict[str, list[list[tuple[int, CheckTask]]]] = {}
    out: list[list[tuple[int, CheckTask]]] = []
    for item in tasks:
        chunks = by_zone.setdefault(item[1].zone, [])
        if not chunks or len(chunks[-1]) >= size:
            chunks.append([])
            out.append(chunks[-1])
        chunks[-1].append(item)
    return out


def outcome_from_answer(task: CheckTask, answer: Mapping[str, Any]) -> TaskOutcome:
    results = tuple(Result(Status(r["status"]), str(r["message"]), str(r["target"]), dict(r.get("evidence") or {}))
                    for r in answer["results"])
    started = datetime.fromisoformat(answer["started_at"])
    return TaskOutcome(task, results, started, float(answer["duration"]))


def _error(task: CheckTask, message: Message, **evidence: Any) -> TaskOutcome:
    return TaskOutcome(task, (Result.errored(default_target(task), message, zone=task.zone, **evidence),),
                       datetime.now(UTC), 0.0)


# -- the executor ------------------------------------------------------------------------------------


class ZoneExecutor:
    """Runs local checks in threads here and remote ones on their zone's workers (see module docs).

    With only local checks it is a `ThreadExecutor`: no broker is needed or contacted.
    """

    def __init__(self, settings: Settings, *, local: Any | None = None, concurrency: int | None = None) -> None:
        self.settings = settings
        self.local = local or ThreadExecutor(concurrency or settings.scan.concurrency)
        self.patience = float(settings.zones.patience)
        self.discovery_timeout = float(settings.zones.discovery_timeout)
        self.batch = settings.zones.batch
        self._url: str | None = None
        self._app: Celery | None = None
        self._zones_with_workers: dict[str, list[str]] | None = None

    # preparing: before the scan writes anything
    def prepare(self, tasks: Sequence[CheckTask]) -> None:
        remote = sorted({t.zone for t in tasks if t.zone != LOCAL})
        if not remote:
            return
        self._url = broker_url(f"checks in zone {', '.join(remote)} run on workers: ")
        self._app = celery_app(self._url)
        conn = connect(self._app, self._url)
        try:
            workers = live_workers(self._app, conn, self.discovery_timeout)
        finally:
            conn.release()
        found: dict[str, list[str]] = {}
        for w in workers:
            for zone in w.zones:
                found.setdefault(zone, []).append(w.name)
        self._zones_with_workers = found
        for zone in remote:
            if zone not in found:
                log.warning("no worker answers for zone %s: its checks are reported as errors", zone)

    def execute(self, tasks: Sequence[CheckTask]) -> Iterator[TaskOutcome]:
        local = [t for t in tasks if t.zone == LOCAL]
        remote = [t for t in tasks if t.zone != LOCAL]
        if not remote:
            yield from self.local.execute(local)
            return
        if self._zones_with_workers is None:
            self.prepare(tasks)
        assert self._zones_with_workers is not None
        sendable = []
        for task in remote:
            if task.facts or _needs_facts(task.plugin):
                yield _error(task, Message("check '%(plugin)s' reads the central database and runs only in zone "
                                           "local, not in zone %(zone)s", plugin=task.plugin, zone=task.zone))
            elif task.zone not in self._zones_with_workers:
                yield _error(task, Message("no worker for zone %(zone)s: start one with `compliance worker --zone "
                                           "%(zone)s`", zone=task.zone))
            else:
                sendable.append(task)
        outcomes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        done = object()
        stop = threading.Event()
        pumps = 0

        def pump_local() -> None:
            try:
                for outcome in self.local.execute(local):
                    outcomes.put(outcome)
                    if stop.is_set():
                        break
            except BaseException as exc:
                outcomes.put(exc)
            outcomes.put(done)

        if local:
            threading.Thread(target=pump_local, daemon=True, name="local-checks").start()
            pumps += 1
        if sendable:
            threading.Thread(target=self._pump_remote, args=(sendable, outcomes, done, stop), daemon=True,
                             name="zone-checks").start()
            pumps += 1
        try:
            while pumps:
                try:
                    item = outcomes.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is done:
                    pumps -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            if self._app is not None and not sendable:  # discovery's broadcast connections; _remote closes its own
                with contextlib.suppress(Exception):
                    self._app.close()

    def _pump_remote(self, tasks: list[CheckTask], outcomes: queue.SimpleQueue[Any], done: object,
                     stop: threading.Event) -> None:
        try:
            for outcome in self._remote(tasks, stop):
                outcomes.put(outcome)
        except BaseException as exc:
            outcomes.put(exc)
        outcomes.put(done)

    def _remote(self, tasks: list[CheckTask], stop: threading.Event) -> Iterator[TaskOutcome]:
        """Send the tasks to their zones and yield each answer once; errors for what is not answered."""
        from kombu import Consumer, Queue

        assert self._app is not None and self._url is not None
        app = self._app
        reply_to = REPLY_PREFIX + uuid.uuid4().hex
        # auto-deleted when this scan stops consuming (RabbitMQ also drops it an hour after it is unused)
        reply_queue = Queue(reply_to, routing_key=reply_to, durable=False, auto_delete=True, expires=3600.0,
                            no_declare=False)
        waiting = {token: task for token, task in enumerate(tasks)}
        answers: list[tuple[int, dict[str, Any]]] = []
        longest: dict[str, float] = {}
        for task in tasks:
            longest[task.zone] = max(longest.get(task.zone, 0.0), task.timeout)
        duplicates = 0

        def on_answer(body: Any, message: Any) -> None:
            message.ack()
            if not isinstance(body, dict):
                return
            for answer in body.get("answers") or []:
                if isinstance(answer, dict) and isinstance(answer.get("token"), int):
                    answers.append((answer["token"], {**answer, "worker": body.get("worker")}))

        conn = connect(app, self._url)
        sender: threading.Thread | None = None
        try:
            channel = conn.channel()
            consumer = Consumer(channel, queues=[reply_queue], callbacks=[on_answer], accept=["json"])
            consumer.consume()
            send_failed: list[BaseException] = []
            to_send = batches(list(waiting.items()), self.batch)

            def send() -> None:  # in its own thread and connection: answers are read while it sends
                try:
                    with app.producer_or_acquire() as producer:
                        for batch in to_send:
                            if stop.is_set():
                                return
                            longest_here = max(task.timeout for _, task in batch)
                            first = batch[0][1]
                            app.send_task(TASK_NAME, args=[task_message(batch, reply_to)],
                                          queue=queue_name(first.zone), producer=producer, ignore_result=True,
                                          soft_time_limit=longest_here + 5, time_limit=longest_here + 15,
                                          # what logs and monitors show of a message (not the parameters)
                                          argsrepr=f"{len(batch)} checks, first {first.control_id}#"
                                                   f"{first.check_index} {first.plugin}",
                                          kwargsrepr="")
                except BaseException as exc:
                    send_failed.append(exc)

            sender = threading.Thread(target=send, daemon=True, name="zone-send")
            sender.start()
            heard = {zone: time.monotonic() for zone in longest}
            while waiting and not stop.is_set():
                if send_failed:
                    yield from self._lost(waiting, send_failed[0])
                    return
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
                except Exception as exc:
                    if isinstance(exc, (*conn.connection_errors, *conn.channel_errors, OSError)):
                        yield from self._lost(waiting, exc)
                        return
                    raise
                for token, body in answers:
                    task_ = waiting.pop(token, None)
                    if task_ is None:  # a second answer to a check answered already (redelivered)
                        duplicates += 1
                        continue
                    heard[task_.zone] = time.monotonic()
                    yield self._outcome(task_, body)
                answers.clear()
                now = time.monotonic()
                if sender.is_alive():  # still sending: every zone counts as heard from
                    heard = dict.fromkeys(heard, now)
                for zone in sorted({t.zone for t in waiting.values()}):
                    limit = longest[zone] + self.patience
                    if now - heard[zone] > limit:
                        for token in [k for k, t in waiting.items() if t.zone == zone]:
                            yield _error(waiting.pop(token), Message(
                                "no answer from zone %(zone)s within %(seconds)s s", zone=zone,
                                seconds=format(limit, "g")))
            try:
                consumer.cancel()
                reply_queue.bind(channel).delete()
            except Exception:
                pass
        finally:
            conn.release()
            if sender is not None:
                sender.join(5)  # stop is set when the scan ends early: it stops between messages
            with contextlib.suppress(Exception):
                app.close()  # the producer pool's connections
            if duplicates:
                log.info("%d checks were answered twice (delivered again after a worker stopped); the first "
                         "answer of each is kept", duplicates)

    def _outcome(self, task: CheckTask, body: Mapping[str, Any]) -> TaskOutcome:
        refused = body.get("refused")
        if isinstance(refused, dict):  # the worker could not run it: another version, a missing plugin
            try:
                message = Message(str(refused["template"]), **dict(refused.get("params") or {}))
            except (KeyError, TypeError, ValueError):
                message = Message("worker %(worker)s refused the check", worker=str(body.get("worker")))
            return _error(task, message, worker=body.get("worker"))
        try:
            return outcome_from_answer(task, body)
        except (KeyError, TypeError, ValueError) as exc:
            return _error(task, Message("the answer of zone %(zone)s could not be read: %(reason)s", zone=task.zone,
                                        reason=f"{type(exc).__name__}: {exc}"))

    def _lost(self, waiting: dict[int, CheckTask], exc: BaseException) -> Iterator[TaskOutcome]:
        reason = str(exc).strip() or type(exc).__name__
        for token in list(waiting):
            task = waiting.pop(token)
            yield _error(task, Message("lost the connection to the message broker before zone %(zone)s answered: "
                                       "%(reason)s", zone=task.zone, reason=reason))


def _needs_facts(plugin: str) -> bool:
    from compliance import plugins

    try:
        return bool(plugins.load(plugin).facts)
    except Exception:
        return False
