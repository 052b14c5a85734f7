"""Zones: 2,000 I/O-bound checks of 50 ms through Celery workers, against the in-process executor.

The same checks (a plugin that waits 50 ms, as a check waits on the network) run through
`ZoneExecutor`: in this process (`ThreadExecutor`, concurrency 32, 64 and 128), and on real
`compliance worker` processes of concurrency 32 each (1, 2 and 4 workers of one zone) over the local
Redis and RabbitMQ. Variants are interleaved run by run, so noise hits all alike.

Goals: throughput scales >= 1.8x from 1 to 2 workers; the time a check holds its slot through Celery is
at most 5 ms more than in process (slot time = wall time x concurrency / checks; the check itself takes
50 ms of it).

Run: python bench/bench_zones.py [--checks 2000] [--runs 3] [--broker redis|rabbitmq|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import spread, verdict  # noqa: E402
from compliance.api import Check, Context, Params, Result  # noqa: E402

BROKERS = {"redis": "redis://127.0.0.1:6379/6", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//"}
SLEEP = 0.05
PER_WORKER = 32

BOOT = """
import sys
sys.path.insert(0, {root!r})
from compliance import plugins
from bench.bench_zones import Wait
plugins.register(Wait)
from compliance.cli import main
sys.argv = ["compliance", *sys.argv[1:]]
main()
"""


class WaitParams(Params):
    name: str
    seconds: float = SLEEP


class Wait(Check):
    """Waits, as a check waits on a server, then passes."""

    name = "bench_wait"
    Params = WaitParams
    target_param = "name"

    def run(self, params: WaitParams, ctx: Context) -> Iterator[Result]:
        time.sleep(params.seconds)
        yield Result.passed(params.name, f"{params.name} answered.")


def tasks(n: int, zone: str) -> list[object]:
    from compliance.engine import CheckTask

    return [CheckTask("BENCH", 0, "bench_wait", {"name": f"t{i}"}, 30.0, zone=zone) for i in range(n)]


def run_once(executor: object, batch: list[object]) -> float:
    started = time.perf_counter()
    outcomes = list(executor.execute(batch))  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    assert len(outcomes) == len(batch), (len(outcomes), len(batch))
    bad = [o.results[0].message for o in outcomes if o.results[0].status.value != "pass"]
    assert not bad, bad[:3]
    return elapsed


def slot_ms(seconds: float, concurrency: int, n: int) -> float:
    return seconds * concurrency / n * 1000


def start_workers(url: str, zone: str, count: int, folder: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env["COMPLIANCE_BROKER_URL"] = url
    return [subprocess.Popen([sys.executable, "-c", BOOT.format(root=str(ROOT)), "worker", "--zone", zone,
                              "--concurrency", str(PER_WORKER)], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(count)]


def wait_for(url: str, zone: str, count: int) -> None:
    from compliance.zones import celery_app, connect, live_workers

    app = celery_app(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conn = connect(app, url)
        try:
            if len([w for w in live_workers(app, conn, 0.5) if zone in w.zones]) >= count:
                return
        finally:
            conn.release()
    raise SystemExit(f"{count} workers of zone {zone} did not start")


def bench_broker(name: str, url: str, n: int, runs: int, batch: int) -> None:
    from compliance import plugins
    from compliance.engine import ThreadExecutor
    from compliance.settings import Settings
    from compliance.zones import ZoneExecutor

    plugins.register(Wait)
    os.environ["COMPLIANCE_BROKER_URL"] = url
    counts = (1, 2, 4)
    zones = {k: f"bench-{k}w-{uuid.uuid4().hex[:6]}" for k in counts}
    with tempfile.TemporaryDirectory() as folder:
        processes = [p for k in counts for p in start_workers(url, zones[k], k, Path(folder))]
        try:
            for k in counts:
                wait_for(url, zones[k], k)
            settings = Settings.model_validate({"zones": {"batch": batch}, "base_dir": Path(folder)})
            local = {c: ZoneExecutor(settings, local=ThreadExecutor(c)) for c in (32, 64, 128)}
            remote = {k: ZoneExecutor(settings) for k in counts}
            for k in counts:
                remote[k].prepare(tasks(1, zones[k]))  # finds the zone's workers once, as a scan does
            batches = {k: tasks(n, zones[k]) for k in counts}
            local_batch = tasks(n, "local")
            times: dict[str, list[float]] = {}
            run_once(remote[1], tasks(64, zones[1]))  # warm: connections, imports
            for _ in range(runs):
                for c, ex in local.items():
                    times.setdefault(f"in-process {c}", []).append(run_once(ex, local_batch))
                for k in counts:
                    times.setdefault(f"celery {k}", []).append(run_once(remote[k], batches[k]))
        finally:
            for p in processes:
                p.terminate()
            for p in processes:
                p.wait(20)
    med = {key: statistics.median(v) for key, v in times.items()}
    ideal = {c: n * SLEEP / c for c in (32, 64, 128)}
    print(f"\n{name} ({url.split('@')[-1]}): {n} checks of {SLEEP * 1000:.0f} ms, {batch} a message, {runs} runs, "
          "medians (min-max)")
    print(f"{'executor':<28} {'wall time':>26} {'ideal':>9} {'slot per check':>15}")
    for c, k in ((32, 1), (64, 2), (128, 4)):
        for label, key in ((f"in process, concurrency {c}", f"in-process {c}"),
                           (f"Celery, {k} worker{'s' if k > 1 else ''} x {PER_WORKER}", f"celery {k}")):
            print(f"{label:<28} {spread(times[key], 1.0, 's'):>26} {ideal[c]:8.2f}s "
                  f"{slot_ms(med[key], c, n):12.1f} ms")
    scaling = med["celery 1"] / med["celery 2"]
    print(f"throughput 1 -> 2 workers: {scaling:.2f}x (target >= 1.8x): {verdict(scaling >= 1.8)}")
    print(f"throughput 1 -> 4 workers: {med['celery 1'] / med['celery 4']:.2f}x (no target; 2 cores here)")
    extra = slot_ms(med["celery 1"], 32, n) - slot_ms(med["in-process 32"], 32, n)
    print(f"Celery path, per check: {slot_ms(med['celery 1'], 32, n):.1f} ms a slot vs "
          f"{slot_ms(med['in-process 32'], 32, n):.1f} ms in process: {extra:+.1f} ms "
          f"(target <= +5 ms): {verdict(extra <= 5)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--broker", choices=["redis", "rabbitmq", "both"], default="both")
    parser.add_argument("--batch", type=int, default=8, help="checks per message (zones.batch)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; the scan, the broker and every worker share them")
    for name, url in BROKERS.items():
        if args.broker in (name, "both"):
            bench_broker(name, url, args.checks, args.runs, args.batch)


if __name__ == "__main__":
    main()
