"""Check plugins that exist only for tests: they pass, fail, crash, hang or misbehave on request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Literal

from compliance.api import Check, Context, Params, Result

RELEASE = threading.Event()  # set it to let hanging checks return


class ProbeParams(Params):
    name: str = "probe"
    outcome: Literal["pass", "fail", "error", "skipped", "crash", "hang", "nothing", "huge", "not_result"] = "pass"
    sleep: float = 0.0


class Probe(Check):
    """Does what its `outcome` parameter says (for tests)."""

    name = "probe"
    Params = ProbeParams
    target_param = "name"

    def run(self, params: ProbeParams, ctx: Context) -> Iterator[Result]:
        if params.sleep:
            time.sleep(params.sleep)
        if params.outcome == "crash":
            raise RuntimeError(f"probe {params.name} exploded")
        if params.outcome == "hang":
            RELEASE.wait(30)
            return
        if params.outcome == "nothing":
            return
        if params.outcome == "not_result":
            yield "not a result"  # type: ignore[misc]
            return
        if params.outcome == "huge":
            yield Result.passed(params.name, "big evidence", blob="x" * 100_000)
            return
        yield {"pass": Result.passed, "fail": Result.failed, "error": Result.errored,
               "skipped": Result.skipped}[params.outcome](params.name, f"probe {params.name}: {params.outcome}")
