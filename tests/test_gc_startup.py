"""`compliance` starts without cyclic garbage collection and runs the command with it (issue 18).

`main()` switches collection off while the modules are imported and back on, with the start-up objects
frozen out of it, once the command is found: a long-running command (the scheduler, a worker, a large
scan) must run with collection on.
"""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """\
import gc, sys
import click
from compliance import cli

@click.command()
def probe():
    print("enabled" if gc.isenabled() else "disabled", gc.get_freeze_count() > 0)

cli.cli.add_command(probe, "probe")
sys.argv = ["compliance", "probe"]
cli.main()
"""


def test_the_command_runs_with_collection_on_and_start_up_frozen() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["enabled", "True"]


def test_collection_is_off_while_the_command_is_looked_up() -> None:
    script = _SCRIPT.replace('cli.cli.add_command(probe, "probe")', (
        'seen = []\n'
        'original = cli.mounted\n'
        'def mounted(name):\n'
        '    seen.append(gc.isenabled())\n'
        '    return original(name)\n'
        'cli.mounted = mounted\n'
        'cli.cli.add_command(probe, "probe")\n'
        'import atexit\n'
        'atexit.register(lambda: print("while mounting:", seen))'))
    done = subprocess.run([sys.executable, "-c", script.replace('"probe"]', '"findings", "--help"]')],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "while mounting: [False]" in done.stdout
