"""`backup_copies`: the newest backup is within the RPO and an identical copy exists on another filesystem.

Secure state (BIO2 8.13.02 and 8.13.03, ISO 27002:2022 8.13 information backup): the newest backup in
`primary` (a glob; the newest match by modification time) is younger than `max_age`, the recovery
point objective, and a second copy of that same backup exists under `copies` - one or more folders or
globs at another device or site (an NFS or SMB mount, a USB disk, a mounted object store). A copy is
the file with the same name as the newest backup, directly in a `copies` folder or among a glob's
matches; it counts when

- its size equals the backup's size (and its SHA-256 too with `verify: hash`; that reads both files
  in full, so mind the check's time budget for large backups), and
- it is not on the filesystem of the backup (`st_dev` differs). A copy on the same filesystem is no
  protection against the loss of that disk, and it is also what remains when the offsite mount was
  down and the copy job wrote into the empty mount point. Set `same_device_ok: true` only where the
  "other site" is reached in a way that shares the device number (rare). Note that a bind mount of the
  same filesystem counts as the same device, as it should.

No backup at all, a stale one, no copy, or a copy that differs fails. A copy location that cannot be
read (permission denied, I/O error) is an error: the check could not judge. The monitor needs read
access to the backup folders (and to the files themselves with `verify: hash`), nothing more.

Example::

    id: BACKUP-COPIES
    title: The nightly database backup is within the RPO and copied offsite
    theme: technological
    references: {bio2: "8.13.03", iso27002: "8.13"}
    severity: high
    checks:
      - plugin: backup_copies
        params:
          primary: /var/backups/db/*.sql.gz
          max_age: 26h
          copies: [/mnt/offsite/db, /mnt/usb/db/**/*.sql.gz]
          verify: hash
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from compliance.api import Check, Context, Duration, Message, Params, Result, file_sha256, format_duration

MAX_LISTED = 10


class BackupCopiesParams(Params):
    primary: str
    """The backups: a file or a glob (`**` for any depth); the newest match is the one judged."""
    max_age: Duration
    """The recovery point objective: the oldest the newest backup may be ('26h', '7d')."""
    copies: list[str] = Field(min_length=1)
    """Folders or globs at another device or site where a copy with the same name must exist."""
    verify: Literal["size", "hash"] = "size"
    """Compare the copy by size, or by size and SHA-256 (`hash`, reads both files)."""
    same_device_ok: bool = False
    """Accept a copy on the same filesystem as the backup (not advised)."""
    min_copies: int = Field(1, ge=1)
    """How many good copies must exist."""

    @field_validator("copies", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("copies")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("a copy location cannot be empty")
        return value


class BackupCopies(Check):
    name = "backup_copies"
    Params = BackupCopiesParams
    target_param = "primary"

    def run(self, params: BackupCopiesParams, ctx: Context) -> Iterator[Result]:
        target = params.primary
        pattern = ctx.resolve(params.primary)
        newest: tuple[float, str, os.stat_result] | None = None
        for match in glob.iglob(pattern, recursive=True):
            try:
                stat = os.stat(match)
            except OSError:
                continue  # vanished between listing and stat
            if os.path.isfile(match) and (newest is None or stat.st_mtime > newest[0]):
                newest = (stat.st_mtime, match, stat)
        if newest is None:
            yield Result.failed(target, Message("No backup matches %(path)s; expected one younger than %(maximum)s.",
                                                path=params.primary, maximum=format_duration(params.max_age)),
                                pattern=pattern)
            return
        _, path, stat = newest
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        age = ctx.now() - modified
        evidence: dict[str, Any] = {"backup": path, "size": stat.st_size, "modified": modified.isoformat(),
                                    "age_seconds": int(age.total_seconds()),
                                    "max_age_seconds": int(params.max_age.total_seconds()), "verify": params.verify}
        problems: list[Message | str] = []
        if age > params.max_age:
            problems.append(Message("it is %(age)s old, older than the RPO of %(maximum)s",
                                    age=format_duration(age), maximum=format_duration(params.max_age)))
        digest: str | None = None
        if params.verify == "hash":
            try:
                digest = file_sha256(path)
            except OSError as exc:
                yield Result.errored(target, Message("Cannot read the backup %(path)s: %(reason)s.", path=path,
                                                     reason=exc.strerror or str(exc)), **evidence)
                return
            evidence["sha256"] = digest
        name = os.path.basename(path)
        good: list[str] = []
        rejected: list[dict[str, Any]] = []
        candidates = 0
        for location in params.copies:
            try:
                found = self._candidates(ctx.resolve(location), name)
            except OSError as exc:
                yield Result.errored(target, Message("Cannot read the copy location %(location)s: %(reason)s.",
                                                     location=location, reason=exc.strerror or str(exc)), **evidence)
                return
            for copy in found:
                candidates += 1
                try:
                    problem = self._judge(copy, stat, digest, params.same_device_ok)
                except OSError as exc:
                    yield Result.errored(target, Message("Cannot read the copy %(copy)s: %(reason)s.", copy=copy,
                                                         reason=exc.strerror or str(exc)), **evidence)
                    return
                if problem is None:
                    good.append(copy)
                else:
                    rejected.append({"copy": copy, "reason": str(problem)})
                    if len(rejected) <= 3:
                        problems.append(problem)
        evidence.update(copies=good[:MAX_LISTED], rejected=rejected[:MAX_LISTED], locations=params.copies)
        if candidates == 0:
            problems.append(Message("no copy named %(name)s under %(locations)s", name=name,
                                    locations=", ".join(params.copies)))
        elif len(good) < params.min_copies and (good or params.min_copies > 1):
            problems.append(Message("%(good)s good copies, %(required)s required", good=len(good),
                                    required=params.min_copies))
        if problems:
            yield Result.failed(target, Message("Backup %(path)s: %(problems)s.", path=path, problems=problems),
                                **evidence)
            return
        yield Result.passed(target, Message(
            "Newest backup %(path)s is %(age)s old (RPO %(maximum)s) and has %(count)s good copies on another "
            "filesystem, e.g. %(copy)s.", path=path, age=format_duration(age),
            maximum=format_duration(params.max_age), count=len(good), copy=good[0]), **evidence)

    @staticmethod
    def _candidates(location: str, name: str) -> list[str]:
        """The files named `name` in a folder, or among a glob's matches (OSError when a folder is unreadable)."""
        if os.path.isdir(location):
            os.listdir(location)  # raises on a folder the monitor may not read, rather than "no copy"
            candidate = os.path.join(location, name)
            return [candidate] if os.path.isfile(candidate) else []
        return sorted(m for m in glob.glob(location, recursive=True)
                      if os.path.basename(m) == name and os.path.isfile(m))

    @staticmethod
    def _judge(copy: str, original: os.stat_result, digest: str | None, same_device_ok: bool) -> Message | None:
        """Why a copy does not count, or None when it does."""
        stat = os.stat(copy)
        if stat.st_dev == original.st_dev and not same_device_ok:
            return Message("copy %(copy)s is on the same filesystem as the backup", copy=copy)
        if stat.st_size != original.st_size:
            return Message("copy %(copy)s has %(size)s bytes, the backup %(expected)s", copy=copy,
                           size=stat.st_size, expected=original.st_size)
        if digest is not None and file_sha256(copy) != digest:
            return Message("copy %(copy)s differs from the backup (SHA-256)", copy=copy)
        return None
