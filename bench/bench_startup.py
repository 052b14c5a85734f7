"""Start-up: `compliance --help` against `python -c "import click"`. Target: at most 1.5x.

Both are run alternately, so machine noise hits them alike; the medians and their ratio are printed.
Measured twice: as installed (the project's modules byte-compiled, as `pip install` does for every
package, click included), and from source without bytecode (an editable install under
PYTHONDONTWRITEBYTECODE=1, where every start compiles cli.py again). The target is for the first.
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

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ["cli.py", "compliance", "checks", "incidents"]


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def bytecode(present: bool) -> None:
    """Write (as pip install does) or remove the project's bytecode in its __pycache__ folders."""
    if present:
        subprocess.run([sys.executable, "-m", "compileall", "-q", *PROJECT], cwd=ROOT, check=True)
        return
    for folder in [ROOT / "__pycache__", *(p for name in PROJECT[1:] for p in (ROOT / name).rglob("__pycache__"))]:
        shutil.rmtree(folder, ignore_errors=True)


def measure(exe: str, runs: int) -> tuple[float, float]:
    ours, baseline = [], []
    for _ in range(3):  # warm the file cache
        timed([exe, "--help"])
        timed([sys.executable, "-c", "import click"])
    for _ in range(runs):
        ours.append(timed([exe, "--help"]))
        baseline.append(timed([sys.executable, "-c", "import click"]))
    return statistics.median(ours), statistics.median(baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    exe = shutil.which("compliance", path=str(Path(sys.executable).parent)) or "compliance"
    for label, present in (("as installed (bytecode compiled)", True), ("from source, no bytecode", False)):
        bytecode(present)
        m_ours, m_base = measure(exe, args.runs)
        ratio = m_ours / m_base
        print(f"{label}:")
        print(f"  compliance --help         median {m_ours * 1000:6.1f} ms  (runs: {args.runs})")
        print(f"  python -c 'import click'  median {m_base * 1000:6.1f} ms")
        verdict = ("met" if ratio <= 1.5 else "NOT met") if present else "for information"
        print(f"  ratio {ratio:.2f}x (target <= 1.5x): {verdict}")


if __name__ == "__main__":
    main()
