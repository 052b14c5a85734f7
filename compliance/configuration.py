"""The configuration as the commands load it: validated once, then read back from the cache.

`compliance.settings.load_settings` parses compliance.yaml (PyYAML), validates it and the environment
(pydantic, APScheduler for the cron expressions) and reports every problem at file:line. That is most of
the time of a short command (issue 18), and its result only changes when the file, the environment
variables it reads or the monitor's code change. So `load_settings` here keeps the validated result in
the cache (`compliance.cache`) under exactly those, and when they are as before returns it as a view
(`compliance.settings_view`) without importing any of the three. Secrets are read from the environment
on every run and never stored. A file with a mistake is never cached: it is reported on every run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from pathlib import Path

    from compliance.settings import Settings

#: The modules whose code decides what a validated configuration is (see `cache.code_stamp`).
_CODE = ("settings", "settings_view", "located", "durations", "yamlfile", "cron")


def load_settings(explicit: str | None = None, environ: Mapping[str, str] | None = None, *,
                  require: bool = False) -> Settings:
    """The configuration, as `compliance.settings.load_settings` gives it (the same errors), from the
    cache when the config file, the environment and the code are what they were when it was stored."""
    from compliance import cache
    from compliance.settings_view import NoConfig, environment_key, find_config, from_cache, with_secrets

    environ = os.environ if environ is None else environ
    path = find_config(explicit, environ)
    if path is None and require and not environ.get("COMPLIANCE_DATABASE_URL"):
        raise NoConfig()
    stamp = cache.code_stamp(*_CODE) if cache.folder(environ) is not None else ""
    content: bytes | None = b""
    if stamp and path is not None:
        try:
            content = path.read_bytes()
        except OSError:
            content = None  # the validation below reports it
    if not stamp or content is None:
        return _validated(path, environ, None)
    base_dir = str(path.resolve().parent) if path is not None else os.getcwd()
    where = str(path.resolve()) if path is not None else ""
    name = "settings-" + cache.key(where, base_dir)[:24]
    entry = cache.key(stamp, where, base_dir, content, *environment_key(environ))
    stored = cache.read(name, entry, environ)
    if stored is not None:
        try:
            return cast("Settings", with_secrets(from_cache(stored), environ))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # an entry this code cannot read: validate again and replace it
    try:
        text: str | None = content.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # read again by the validation, which reports it
    settings = _validated(path, environ, text)
    from compliance.settings import NotCached, encoded

    with contextlib.suppress(NotCached):  # a value JSON cannot hold (a date in a target): validated every run
        cache.write(name, entry, encoded(settings), environ)
    return settings


def _validated(path: Path | None, environ: Mapping[str, str], text: str | None) -> Settings:
    from compliance.settings import validated  # pydantic, PyYAML and APScheduler only on this path

    return validated(path, environ, text)
