"""`file_age`: the newest file matching a glob is younger than a maximum age, or the oldest is old enough.

Secure state, `mode: newest` (the default): a recent copy exists. Use it for backups, database dumps,
log shipping and anything else that must be refreshed on a schedule (BIO2 / ISO 27002:2022 8.13
information backup, 8.15 logging). When nothing matches the glob, the check fails: a missing backup is
worse than an old one.

Secure state, `mode: oldest` with `min_age`: retention is kept (BIO2 8.15.04, log retention). The
oldest file that still matches the glob is at least as old as the retention period, so that logs are
not rotated away too early. Age is measured from the file's modification time, which for a rotated
log is the time of its last entry: the check errs on the safe side (a log of January rotated on
1 February counts from 1 February). When nothing matches, the check fails: no retained logs at all.

Example::

    id: BACKUP-01
    title: The nightly database backup is less than 26 hours old
    theme: technological
    references: {bio2: "8.13", iso27002: "8.13"}
    severity: high
    checks:
      - plugin: file_age
        params: {path: /var/backups/db/*.sql.gz, max_age: 26h}

Log retention is the same plugin with `params: {path: /var/log/nginx/access.log*, mode: oldest,
min_age: 180d}`.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

from pydantic import model_validator

from compliance.api import Check, Context, Duration, Message, Params, Result, format_duration


class FileAgeParams(Params):
    path: str
    """A file or a glob (`**` matches folders at any depth); relative paths count from the config file."""
    mode: Literal["newest", "oldest"] = "newest"
    """`newest`: the newest match is younger than `max_age` (freshness). `oldest`: the oldest match is at
    least `min_age` old (retention)."""
    max_age: Duration | None = None
    """Mode `newest`: the oldest the newest match may be: '26h', '7d', '1h30m'."""
    min_age: Duration | None = None
    """Mode `oldest`: the retention period the oldest match must reach: '180d', '1y'."""

    @model_validator(mode="after")
    def _fits_mode(self) -> FileAgeParams:
        if self.mode == "newest":
            if self.max_age is None:
                raise ValueError("mode 'newest' needs max_age, e.g. max_age: 26h")
            if self.min_age is not None:
                raise ValueError("min_age belongs to mode 'oldest'; with mode 'newest' give max_age only")
        else:
            if self.min_age is None:
                raise ValueError("mode 'oldest' needs min_age (the retention period), e.g. min_age: 180d")
            if self.max_age is not None:
                raise ValueError("max_age belongs to mode 'newest'; add a second file_age check for freshness")
        return self


class FileAge(Check):
    name = "file_age"
    Params = FileAgeParams
    target_param = "path"

    def run(self, params: FileAgeParams, ctx: Context) -> Iterator[Result]:
        pattern = ctx.resolve(params.path)
        newest: tuple[float, str] | None = None
        oldest: tuple[float, str] | None = None
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
            if oldest is None or stat.st_mtime < oldest[0]:
                oldest = (stat.st_mtime, match)
        if params.mode == "oldest":
            yield self._oldest(params, ctx, pattern, oldest, count)
            return
        assert params.max_age is not None  # the validator holds it
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

    @staticmethod
    def _oldest(params: FileAgeParams, ctx: Context, pattern: str, oldest: tuple[float, str] | None,
                count: int) -> Result:
        assert params.min_age is not None  # the validator holds it
        retention = format_duration(params.min_age)
        if oldest is None:
            return Result.failed(params.path,
                                 Message("No file matches %(path)s; expected files kept for %(retention)s.",
                                         path=params.path, retention=retention), pattern=pattern)
        modified = datetime.fromtimestamp(oldest[0], UTC)
        age = ctx.now() - modified
        evidence = {"oldest": oldest[1], "modified": modified.isoformat(), "age_seconds": int(age.total_seconds()),
                    "min_age_seconds": int(params.min_age.total_seconds()), "matches": count}
        if age >= params.min_age:
            return Result.passed(params.path,
                                 Message("Oldest match %(path)s is %(age)s old, retention %(retention)s is kept.",
                                         path=oldest[1], age=format_duration(age), retention=retention), **evidence)
        return Result.failed(params.path,
                             Message("Oldest match %(path)s is only %(age)s old, retention %(retention)s.",
                                     path=oldest[1], age=format_duration(age), retention=retention), **evidence)
