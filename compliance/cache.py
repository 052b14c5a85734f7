"""A private cache of work that only depends on files and the environment: the validated configuration.

Every command is a new process. Reading compliance.yaml with PyYAML and validating it with pydantic
costs more than the rest of `compliance incident list` together (issue 18), yet the file rarely changes.
So the result of that work is kept, as JSON, under a key that covers everything it was made from (the
file's bytes, the environment variables it reads, this version's code), and used only when the key is
the same; otherwise the work is done again and the cache entry replaced.

Where: `$COMPLIANCE_CACHE_DIR`, else `$XDG_CACHE_HOME/compliance-monitor`, else
`~/.cache/compliance-monitor`; `COMPLIANCE_CACHE_DIR=off` switches the cache off. The folder is the
user's own (mode 0700) and an entry is used only when it and its folder belong to the user and nobody
else may write them: an entry decides, say, which database a command opens. Entries hold no secrets
(passwords and tokens come from the environment on every run). Anything wrong with the cache (a full
disk, a damaged or foreign entry) only costs the time it would have saved. At most `MAX_ENTRIES` entries
are kept: a write removes the oldest beyond them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import compliance

_OFF = ("off", "none", "0", "false")


def folder(environ: Any = None) -> Path | None:
    """The cache folder, or None when the cache is off."""
    environ = os.environ if environ is None else environ
    named = environ.get("COMPLIANCE_CACHE_DIR")
    if named is not None:
        return None if named.strip().lower() in (*_OFF, "") else Path(named).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "compliance-monitor"


def code_stamp(*modules: str) -> str:
    """What identifies the code that made an entry: this version and the size and time of the named
    modules' files (`settings` for compliance/settings.py), so that an entry made by other code (an upgrade,
    an edit in a development checkout) is not used; "" when a file cannot be found (then nothing is cached)."""
    here = os.path.dirname(compliance.__file__)
    parts = [compliance.__version__]
    for module in modules:
        try:
            st = os.stat(os.path.join(here, *module.split(".")) + ".py")
        except OSError:
            return ""
        parts.append(f"{module}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read(name: str, entry_key: str, environ: Any = None) -> Any:
    """The data stored under NAME with ENTRY_KEY, or None (no entry, another key, not private, damaged)."""
    where = folder(environ)
    if where is None:
        return None
    file = where / f"{name}.json"
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not (_private(os.fstat(fd)) and _private(os.stat(where))):
            return None
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            stored = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    if not isinstance(stored, dict) or stored.get("key") != entry_key:
        return None
    return stored.get("data")


def write(name: str, entry_key: str, data: Any, environ: Any = None) -> None:
    """Store DATA (JSON) under NAME with ENTRY_KEY, replacing what was there; a failure is ignored."""
    where = folder(environ)
    if where is None:
        return
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.stat(where)):
            return
        text = json.dumps({"key": entry_key, "data": data}, separators=(",", ":"), ensure_ascii=False)
        temporary = where / f".{name}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, where / f"{name}.json")
        _prune(where)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            (where / f".{name}.{os.getpid()}.tmp").unlink(missing_ok=True)


#: Entries kept at most; a write removes the least recently written beyond it (entries of projects that are
#: gone would otherwise stay for ever).
MAX_ENTRIES = 200


def _prune(where: Path) -> None:
    try:
        entries = [(entry.stat().st_mtime_ns, entry.path) for entry in os.scandir(where)
                   if entry.name.endswith(".json") and entry.is_file(follow_symlinks=False)]
    except OSError:
        return
    for _, path in sorted(entries)[:-MAX_ENTRIES] if len(entries) > MAX_ENTRIES else []:
        with contextlib.suppress(OSError):
            os.unlink(path)
