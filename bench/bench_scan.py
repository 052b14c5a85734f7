"""Scan: 1,000 I/O-bound checks, each waiting 50 ms on a local server, sequential vs concurrent.

Every check is the real `tcp_port` plugin reading a banner that a loopback server sends after 50 ms,
run through the real engine (`run_scan`) and stored in a real SQLite database: 100 controls of 10
targets. The same scan runs with concurrency 1 (sequential) and with the default limit (32); the ratio
of the medians is the speed-up (target >= 20x). The engine's own overhead per check is measured with a
plugin that returns at once, through the same engine and store.

The JSON of `scan --format json` for one control with 8,000 and 64,000 results is timed too: it must grow
linearly (target <= 32x for 8x the results; quadratic is 64x).

Run: python bench/bench_scan.py [--checks 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import timed_scan
from compliance.api import Check, Context, Params, Result


class InstantParams(Params):
    name: str


class Instant(Check):
    """Passes at once: measures the engine and store, not the check."""

    name = "bench_instant"
    Params = InstantParams
    target_param = "name"

    def run(self, params: InstantParams, ctx: Context) -> Iterator[Result]:
        yield Result.passed(params.name, f"{params.name} is fine.")


def controls(plugin: str, n_checks: int, per_control: int, params: dict[str, Any], targets: list[Any]) -> list[Any]:
    from compliance.catalog import Control

    return [
        Control.model_validate({
            "id": f"BENCH-{c:04d}", "title": f"bench {c}", "theme": "technological", "severity": "medium",
            "checks": [{"plugin": plugin, "params": params,
                        "targets": targets[c * per_control:(c + 1) * per_control]}],
        })
        for c in range(n_checks // per_control)
    ]


def scan_seconds(ctrls: list[Any], concurrency: int) -> tuple[float, int]:
    elapsed, report = timed_scan(ctrls, concurrency)
    return elapsed, sum(len(o.results) for o in report.outcomes)


def main() -> None:
    from compliance import plugins
    from compliance.project import BannerServer
    from compliance.settings import ScanSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant (medians are reported)")
    args = parser.parse_args()
    default_limit = ScanSettings().concurrency
    plugins.register(Instant)
    per_control = 10

    with BannerServer(b"SSH-2.0-Bench\r\n", delay=0.05) as server:
        targets = [{"host": "127.0.0.1", "port": server.port}] * args.checks
        ctrls = controls("tcp_port", args.checks, per_control, {"banner": "^SSH-2", "timeout": 5}, targets)
        sequential, concurrent = [], []
        for _ in range(args.runs):  # alternate, so noise hits both alike
            seconds, n = scan_seconds(ctrls, 1)
            sequential.append(seconds)
            seconds, n2 = scan_seconds(ctrls, default_limit)
            concurrent.append(seconds)
            assert n == n2 == args.checks
    seq, con = statistics.median(sequential), statistics.median(concurrent)
    ideal = args.checks * 0.05
    print(f"{args.checks} checks, 50 ms each, {args.checks // per_control} controls, SQLite store, {args.runs} runs")
    print(f"sequential (concurrency 1):            median {seq:7.2f} s   (50 ms x {args.checks} = {ideal:.0f} s)")
    print(f"concurrent (default limit {default_limit}):        median {con:7.2f} s")
    print(f"speed-up {seq / con:.1f}x (target >= 20x): {'met' if seq / con >= 20 else 'NOT met'}")

    n_instant = 10_000
    instant = controls("bench_instant", n_instant, per_control, {}, [f"t{i}" for i in range(n_instant)])
    overheads = []
    for _ in range(args.runs):
        seconds, n = scan_seconds(instant, default_limit)
        overheads.append(seconds / n)
    print(f"engine + store overhead per check ({n_instant} instant checks): "
          f"median {statistics.median(overheads) * 1e6:.0f} us")
    json_results(args.runs)


def json_results(runs: int) -> None:
    """`scan --format json` of one control with 8,000 and 64,000 results: linear is 8x, quadratic 64x."""
    import gc
    import time

    from compliance.api import Status
    from compliance.engine.commands import _results_json
    from compliance.store import ControlOutcome, TargetOutcome

    def seconds(n: int) -> float:
        targets = tuple(TargetOutcome(f"t{i}", Status.FAIL, "m", accepted=i % 2 == 0) for i in range(n))
        results = tuple(("bench_instant", 0, Result.failed(f"t{i}", "m")) for i in range(n))
        outcome = ControlOutcome("BENCH-JSON", "low", Status.FAIL, targets, results)
        timings = []
        for _ in range(runs):
            gc.collect()
            gc.disable()  # the collector's passes over the many new dicts would blur the ratio
            started = time.perf_counter()
            _results_json(outcome)
            timings.append(time.perf_counter() - started)
            gc.enable()
        return statistics.median(timings)

    small, large = seconds(8_000), seconds(64_000)
    verdict = "met" if large / small <= 32 else "NOT met"
    print(f"scan --format json, one control: 64,000 results {large:.3f} s, 8,000 {small:.3f} s: "
          f"{large / small:.1f}x for 8x the results (target <= 32x; quadratic is 64x): {verdict}")


if __name__ == "__main__":
    main()
