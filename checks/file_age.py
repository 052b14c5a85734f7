"""`file_age`: the newest file matching a glob is younger than a maximum age.

Secure state: a recent copy exists. Use it for backups, database dumps, log shipping and anything
else that must be refreshed on a schedule (BIO2 / ISO 27002:2022 8.13 information backup, 8.15
logging). When nothing matches the glob, the check fails: a missing backup is worse than an old one.

Example::

    id: BACKUP-01
    title: The nightly database backup is less than 26 hours old
    theme: technological
    references: {bio2: "8.13", iso27002: "8.13"}
    severity: high
    checks:
      - plugin: file_age
        params: {path: /var/backups/db/*.sql.gz, max_age: 26h}
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from datetime import UTC, datetime

from compliance.api import Check, Context, Duration, Message, Params, Result, format_duration


class FileAgeParams(Params):
    path: str
    """A file or a glob (`**` matches folders at any depth); relative paths count from the config file."""
    max_age: Duration
    """The oldest the newest match may be: '26h', '7d', '1h30m'."""


class FileAge(Check):
    name = "file_age"
    Params = FileAgeParams
    target_param = "path"

    def run(self, params: FileAgeParams, ctx: Context) -> Iterator[Result]:
        pattern = ctx.resolve(params.path)
        newest: tuple[float, str] | None = None
        count = 0
        for match in glob.iglob(pattern, recursive=True):
            try:
                stat = os.stat(match)
            except OSError:
                continue  # vanished or unreadable between listing and stat
            if not os.path.isfile(match):
                continue
            count += 1
            if newest is None or stat.st_mtime > newest[0]:
                newest = (stat.st_mtime, match)
        if newest is None:
            yield Result.failed(params.path, Message("No file matches %(path)s; expected one younger than %(maximum)s.",
                                        path=params.path, maximum=format_duration(params.max_age)), pattern=pattern)
            return
        modified = datetime.fromtimestamp(newest[0], UTC)
        age = ctx.now() - modified
        evidence = {"newest": newest[1], "modified": modified.isoformat(), "age_seconds": int(age.total_seconds()),
                    "max_age_seconds": int(params.max_age.total_seconds()), "matches": count}
        if age <= params.max_age:
            yield Result.passed(params.path,
                                Message("Newest match %(path)s is %(age)s old (maximum %(maximum)s).", path=newest[1],
                                        age=format_duration(age), maximum=format_duration(params.max_age)), **evidence)
        else:
            yield Result.failed(params.path,
                                Message("Newest match %(path)s is %(age)s old, older than the maximum of %(maximum)s.",
                                        path=newest[1], age=format_duration(age),
                                        maximum=format_duration(params.max_age)), **evidence)
