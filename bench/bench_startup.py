"""Start-up: `compliance --help` against `python -c "import click"`. Target: at most 1.5x.

Both are run alternately, so machine noise hits them alike; the medians and their ratio are printed.
Run: python bench/bench_startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    exe = shutil.which("compliance", path=str(Path(sys.executable).parent)) or "compliance"
    ours, baseline = [], []
    for _ in range(3):  # warm the file cache
        timed([exe, "--help"])
        timed([sys.executable, "-c", "import click"])
    for _ in range(args.runs):
        ours.append(timed([exe, "--help"]))
        baseline.append(timed([sys.executable, "-c", "import click"]))
    m_ours, m_base = statistics.median(ours), statistics.median(baseline)
    ratio = m_ours / m_base
    print(f"compliance --help         median {m_ours * 1000:6.1f} ms  (runs: {args.runs})")
    print(f"python -c 'import click'  median {m_base * 1000:6.1f} ms")
    print(f"ratio {ratio:.2f}x (target <= 1.5x): {'met' if ratio <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
