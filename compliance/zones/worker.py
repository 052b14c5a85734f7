"""The zone worker: a Celery worker that runs the checks of one network zone (`compliance worker`).

It consumes only its zone's queue, runs each check with the plugins installed on its own machine (with
the check's timeout, as a scan does), and sends the outcome back to the scan's reply queue. It knows the
broker and nothing else: no database, no configuration file.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compliance.api import Message
from compliance.engine import CheckTask, ThreadExecutor
from compliance.zones import PROTOCOL, TASK_NAME, Celery, celery_app, queue_name

log = logging.getLogger(__name__)


def worker_name(zone: str) -> str:
    return f"{zone}.{os.getpid()}@{socket.gethostname()}"


def make_app(url: str, zone: str, *, base_dir: Path, redelivery_after: float, name: str) -> Celery:
    """The worker's Celery application with the one task it runs."""
    from compliance import __version__, plugins

    app = celery_app(url, redelivery_after=redelivery_after)
    executor = ThreadExecutor(1, abandoned_limit=10_000)

    def answer(reply_to: str, body: dict[str, Any]) -> None:
        with app.producer_pool.acquire(block=True) as producer:
            producer.publish(body, exchange="", routing_key=reply_to, serializer="json", delivery_mode=1,
                             retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})

    def refuse(reply_to: str, token: int, message: Message) -> None:
        answer(reply_to, {"token": token, "refused": message.as_json(), "worker": name, "zone": zone,
                          "version": __version__})

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def run_check(payload: dict[str, Any]) -> None:
        reply_to, token = str(payload["reply_to"]), int(payload["token"])
        body = dict(payload.get("task") or {})
        plugin = str(body.get("plugin", ""))
        if payload.get("protocol") != PROTOCOL or payload.get("version") != __version__:
            refuse(reply_to, token, Message(
                "worker %(worker)s in zone %(zone)s runs compliance %(worker_version)s, the scan %(scan_version)s: "
                "install the same version on both", worker=name, zone=zone, worker_version=__version__,
                scan_version=str(payload.get("version"))))
            return
        if plugin not in plugins.names():
            refuse(reply_to, token, Message(
                "check '%(plugin)s' is not installed on worker %(worker)s in zone %(zone)s", plugin=plugin,
                worker=name, zone=zone))
            return
        body["base_dir"] = str(base_dir)  # paths of a remote check count from the worker's folder
        body["facts"] = {}
        task = CheckTask(**body)
        outcome = next(iter(executor.execute([task])))
        ran_on = {"zone": zone, "worker": name}
        answer(reply_to, {
            "token": token, "worker": name, "zone": zone, "version": __version__,
            "started_at": outcome.started_at.isoformat(), "duration": outcome.duration,
            "results": [{"status": r.status.value, "message": r.message, "target": r.target,
                         "evidence": {**r.evidence, "ran_on": ran_on}} for r in outcome.results],
        })

    return app


def run_worker(url: str, zone: str, *, concurrency: int, pool: str, base_dir: Path, redelivery_after: float,
               loglevel: str = "WARNING") -> int:
    """Run a worker for `zone` until it is stopped (SIGTERM, Ctrl-C); its exit code."""
    name = worker_name(zone)
    app = make_app(url, zone, base_dir=base_dir, redelivery_after=redelivery_after, name=name)
    worker = app.Worker(hostname=name, queues=[queue_name(zone)], concurrency=concurrency, pool=pool,
                        loglevel=loglevel, without_mingle=True, without_gossip=True, quiet=True,
                        optimization="fair")
    log.info("worker %s for zone %s started at %s", name, zone, datetime.now(UTC).isoformat())
    worker.start()
    return int(getattr(worker, "exitcode", 0) or 0)
