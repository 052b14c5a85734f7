"""The layers of docs/architecture.md: import-linter's contracts hold, and only the root mounts command modules."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import compliance

ROOT = Path(__file__).resolve().parents[1]
#: compliance/ as installed: its links (checks, incidents, cli.py) followed, as Python sees them
PACKAGE = Path(compliance.__file__).parent


def test_the_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement of the module names (relative imports resolved)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _sources() -> list[Path]:
    """Every .py file of the package, through its links (Path.rglob does not follow linked folders)."""
    return sorted(Path(folder, name) for folder, _, names in os.walk(PACKAGE, followlinks=True)
                  for name in names if name.endswith(".py"))


def test_no_module_imports_a_command_module() -> None:
    importers = []
    for path in _sources():
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in _imported(tree, module, path.name == "__init__.py"):
            if name.split(".")[-1] == "commands":
                importers.append(f"{module} imports {name}")
    assert importers == []
