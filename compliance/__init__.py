"""The compliance monitor core.

Kept free of heavy imports: the CLI imports submodules only inside the commands that need them,
so that `compliance --help` starts fast. Check plugins use `compliance.api` only.
"""

__version__ = "0.1.0"
