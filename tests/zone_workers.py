"""Real zone workers for tests: `compliance worker` processes on the local Redis or RabbitMQ.

A worker runs with the test plugins (tests/plugins_for_tests.py) registered, without a database or a
compliance.yaml, in a folder of its own; `version` starts it as another version of the product.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.servers import stop_process

ROOT = Path(__file__).resolve().parents[1]
BROKERS = {"redis": "redis://127.0.0.1:6379/5", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//"}

BOOT = """
import sys
sys.path.insert(0, {root!r})
import compliance
if {version!r}:
    compliance.__version__ = {version!r}
from compliance import plugins
from tests.plugins_for_tests import Probe
plugins.register(Probe)
from compliance.cli import main
sys.argv = ["compliance", *sys.argv[1:]]
main()
"""


def new_zone(prefix: str = "z") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Worker:
    def __init__(self, url: str, zone: str, folder: Path, *, concurrency: int = 8, version: str = "",
                 redelivery_after: float = 300.0, env: dict[str, str] | None = None) -> None:
        self.zone = zone
        self.log = folder / f"worker-{uuid.uuid4().hex[:6]}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
        environ.update(env or {})
        environ["COMPLIANCE_BROKER_URL"] = url
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT.format(root=str(ROOT), version=version), "worker", "--zone", zone,
                 "--concurrency", str(concurrency), "--redelivery-after", str(redelivery_after)],
                cwd=folder, env=environ, stdout=subprocess.DEVNULL, stderr=log)
        self.name = f"{zone}.{self.process.pid}@"

    def stop(self) -> None:
        stop_process(self.process, 10)


def wait_for_workers(url: str, zone: str, count: int, timeout: float = 30.0) -> list[Any]:
    """The workers of `zone` once `count` of them answer (fails the test after `timeout` seconds)."""
    from compliance.zones import celery_app, connect, live_workers

    app = celery_app(url)
    deadline = time.monotonic() + timeout
    while True:
        conn = connect(app, url)
        try:
            found = [w for w in live_workers(app, conn, 0.5) if zone in w.zones]
        finally:
            conn.release()
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} workers for zone {zone} did not start within {timeout} s")
        time.sleep(0.2)
