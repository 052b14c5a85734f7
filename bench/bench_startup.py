"""Start-up of the commands people type, end to end, as ratios to the import floor measured in the same run.

Targets (issue 18), each the installed command run as a process, against a floor run alternately with it:
- `compliance --help` at most 1.5x `python -c "import click"`;
- `compliance incident list` (20 breaches), `compliance findings` and `compliance controls list` at most
  1.5x `python -c "import click, sqlalchemy"` (the floor of any command that opens the database);
- a one-control `compliance scan` at most 2x that floor.

The project is made in a temporary folder (`compliance init`, a scan of the bundled catalog, 20
breaches registered through the CLI) and removed afterwards, with a cache folder of its own
(COMPLIANCE_CACHE_DIR): the commands read the validated configuration from there, as every run does
after the first since compliance.yaml changed. The same commands without the cache
(`COMPLIANCE_CACHE_DIR=off`: the first run after a change) are printed beside them, without a target.
Bytecode goes to a temporary PYTHONPYCACHEPREFIX, written during the warm-up runs for ours and the
floors alike (as `pip install` writes it for installed packages), so the checkout is left as it was.
With `--instructions` (needs valgrind), each command is also run once under callgrind and its count of
executed instructions printed beside the floor's: the same for the same code and inputs whatever else
the machine is doing, so a change can be judged on a loaded machine where seconds are noise. The
targets are judged on the seconds.
With `--before EXE` (the `compliance` command of another install, e.g. an older commit in a venv of its
own), the same four commands of that install run interleaved with these, on the same project, and their
ratios are printed beside ours: before and after, side by side in one run.
Run: python bench/bench_startup.py [--runs 15] [--instructions] [--before /path/to/other/venv/bin/compliance]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import compliance_exe, instructions, run_measured, spread, verdict

ROOT = Path(__file__).resolve().parent.parent
BREACHES = 20


def pycache_folders() -> set[Path]:
    folders = {p for name in ("compliance", "checks", "incidents", "bench") for p in (ROOT / name).rglob("__pycache__")}
    return folders | ({ROOT / "__pycache__"} if (ROOT / "__pycache__").exists() else set())


def make_project(folder: Path, exe: str, env: dict[str, str]) -> None:
    def run(*args: str) -> None:
        done = subprocess.run([exe, *args], cwd=folder, env=env, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"set-up failed: compliance {' '.join(args)}: exit {done.returncode}\n{done.stderr}")

    run("init")
    run("scan", "--fail-on", "none")
    for n in range(BREACHES):
        day = f"2026-11-{n % 27 + 1:02d}"
        run("incident", "new", "--title", f"Letter {n} sent to a wrong address", "--aware-at", f"{day}T10:00",
            "--occurred-at", f"{day}T09:00", "--nature", "confidentiality",
            "--data-category", "contact", "--subjects", "1", "--people", "residents",
            "--description", "A decision letter went to a wrong address.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--instructions", action="store_true",
                        help="also count each command's instructions once with callgrind (valgrind)")
    parser.add_argument("--before", metavar="EXE", help="another install's compliance command, compared side by side")
    args = parser.parse_args()
    exe = compliance_exe()
    before = pycache_folders()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        folder = Path(tmp) / "project"
        folder.mkdir()
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
               "COMPLIANCE_CONFIG": str(folder / "compliance.yaml"), "COMPLIANCE_CACHE_DIR": str(Path(tmp) / "cache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        uncached = {**env, "COMPLIANCE_CACHE_DIR": "off"}
        make_project(folder, exe, env)
        commands = {
            "python -c 'import click'": [sys.executable, "-c", "import click"],
            "python -c 'import click, sqlalchemy'": [sys.executable, "-c", "import click, sqlalchemy"],
            "compliance --help": [exe, "--help"],
            f"compliance incident list ({BREACHES} breaches)": [exe, "incident", "list"],
            "compliance findings": [exe, "findings"],
            "compliance controls list": [exe, "controls", "list"],
            "compliance scan --control MON-01": [exe, "scan", "--control", "MON-01", "--fail-on", "none"],
            "  incident list, without the cache": [exe, "incident", "list"],
            "  findings, without the cache": [exe, "findings"],
            "  controls list, without the cache": [exe, "controls", "list"],
        }
        if args.before:
            commands.update({
                "  before: incident list": [args.before, "incident", "list"],
                "  before: findings": [args.before, "findings"],
                "  before: controls list": [args.before, "controls", "list"],
                "  before: scan --control MON-01": [args.before, "scan", "--control", "MON-01", "--fail-on", "none"],
            })
        # the other install keeps its entries in a folder of its own: entries are per file, keyed by the code,
        # so two installs sharing a folder would replace each other's on every run
        other = {**env, "COMPLIANCE_CACHE_DIR": str(Path(tmp) / "cache-before")}
        environments = {name: uncached if "without the cache" in name else other if "before:" in name else env
                        for name in commands}
        for name, argv in commands.items():  # warm-up: bytecode written, file cache warm, cache filled
            for _ in range(2):
                run_measured(argv, cwd=str(folder), env=environments[name])
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so that machine noise hits all alike
            for name, argv in commands.items():
                times[name].append(run_measured(argv, cwd=str(folder), env=environments[name])[0])
        counts = {name: instructions(argv, str(folder), environments[name]) for name, argv in commands.items()} \
            if args.instructions else {}
    names = list(commands)
    for name in names:
        print(f"{name:48s} {spread(times[name])}")
    db_floor = statistics.median(times[names[1]])
    print()
    all_met = True
    judged = [(names[2], names[0], 1.5), (names[3], names[1], 1.5), (names[4], names[1], 1.5),
              (names[5], names[1], 1.5), (names[6], names[1], 2.0)]
    for name, floor_name, target in judged:
        ratio = statistics.median(times[name]) / statistics.median(times[floor_name])
        all_met &= ratio <= target
        print(f"{name:48s} {ratio:5.2f}x {floor_name} (target <= {target}x): {verdict(ratio <= target)}")
    for name in names[7:]:
        print(f"{name:48s} {statistics.median(times[name]) / db_floor:5.2f}x {names[1]} (no target)")
    if counts:
        print("\ninstructions (callgrind, one run each; the same whatever the load):")
        for name in names:
            floor_name = None if name in names[:2] else names[0] if name == names[2] else names[1]
            ratio = f"  {counts[name] / counts[floor_name]:5.2f}x {floor_name}" if floor_name else ""
            print(f"{name:48s} {counts[name] / 1e6:8,.0f} M{ratio}")
    left = pycache_folders() - before
    if left:
        print(f"warning: the run left bytecode folders in the checkout: {sorted(map(str, left))[:3]}")
    print(f"\nstart-up targets: {verdict(all_met)}")


if __name__ == "__main__":
    main()
