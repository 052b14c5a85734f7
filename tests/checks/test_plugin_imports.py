"""Loading the check plugins (to read their parameters) imports none of the heavy libraries they run with.

`compliance controls list` and `compliance scan --control X` load every plugin the catalog uses, to validate
each check's `params`; dnspython, cryptography, paramiko, ldap3, ... belong in the functions that run the
check. The probe runs in a fresh interpreter and names the module and line that imported each package.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from typing import Any

from compliance import plugins

HEAVY = ("dns", "cryptography", "paramiko", "ldap3", "defusedxml", "publicsuffixlist")

#: Loads every plugin through compliance.plugins and validates the bundled catalog (as `controls list`
#: does), or imports one module, recording for each heavy package its first import: what was being
#: loaded, and the importing module and line. argv[1]: the heavy packages (JSON); argv[2]: "" for
#: the plugins and the catalog, else the module to import alone.
PROBE = """
import json, sys

heavy = set(json.loads(sys.argv[1]))
loading = "startup"
first = {}


class Blame:
    def find_spec(self, name, path=None, target=None):
        if name in heavy and name not in first:
            frame = sys._getframe(1)
            while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                         or frame.f_globals.get("__name__") == __name__ and frame.f_code.co_name
                                         == "find_spec"):
                frame = frame.f_back
            where = "?" if frame is None else f"{frame.f_globals.get('__name__')}:{frame.f_lineno}"
            first[name] = f"while {loading}: {where}"
        return None


sys.meta_path.insert(0, Blame())

from compliance import plugins
from compliance.catalog import load_catalog

controls = 0
if sys.argv[2]:
    loading = f"importing {sys.argv[2]}"

    def load_alone():
        __import__(sys.argv[2])

    load_alone()
else:
    for name in plugins.names():
        loading = f"loading plugin {name!r}"
        plugins.load(name)
    loading = "validating the bundled catalog"
    controls = len(load_catalog([], {}, bundled=["bio2", "avg", "forum-standaardisatie"]))
print(json.dumps({"controls": controls, "plugins": plugins.names(),
                  "imported": {name: first.get(name, "?") for name in sorted(heavy) if name in sys.modules}}))
"""


def probe(module: str = "") -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), module],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def culprits() -> list[str]:
    """Each plugin module that imports a heavy package on its own (in a fresh interpreter), with where."""
    modules = sorted({ep.module for ep in entry_points(group=plugins.GROUP)})
    found = []
    for module in modules:
        imported = probe(module)["imported"]
        if imported:
            found.append(f"{module} imports " + ", ".join(f"{package} ({where})"
                                                           for package, where in imported.items()))
    return found


def test_loading_every_plugin_and_the_catalog_imports_no_heavy_library() -> None:
    result = probe()
    assert result["controls"] >= 30 and len(result["plugins"]) >= 20
    if result["imported"]:
        first = "; ".join(f"{package} ({where})" for package, where in result["imported"].items())
        raise AssertionError(f"imported when only the parameters are needed: {first}.\n"
                             + "\n".join(culprits()))


def test_the_probe_names_the_importer() -> None:
    # The probe can fail: an import of dnspython is blamed on the module and line that made it.
    line = PROBE.splitlines().index("        __import__(sys.argv[2])") + 1
    assert probe("dns.resolver")["imported"] == {"dns": f"while importing dns.resolver: __main__:{line}"}
