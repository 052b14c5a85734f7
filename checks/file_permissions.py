"""`file_permissions`: nothing under a path is more open than a maximum mode.

Secure state: configuration, key and log files are readable only by those who need them (BIO2 /
ISO 27002:2022 8.3 information access restriction). Every file under the path (recursively for a
folder) must have no permission bit outside `max_mode`; folders are held to `max_dir_mode`, which
defaults to `max_mode` with the search (x) bit added wherever read is allowed, since a folder needs
x to be entered. A path that does not exist is an error, not a pass: the check could not look.

Example::

    id: CONF-PERMS
    title: Secrets in /etc/monitor are not world-readable
    theme: technological
    references: {bio2: "8.3", iso27002: "8.3"}
    severity: medium
    checks:
      - plugin: file_permissions
        params: {path: /etc/monitor, max_mode: "0640"}
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from pydantic import field_validator

from compliance.api import Check, Context, Message, Params, Result

MAX_LISTED = 20


def _octal(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('write the mode as a quoted octal string, e.g. "0640"')
    text = value.strip()
    if not text or any(c not in "01234567" for c in text) or int(text, 8) > 0o7777:
        raise ValueError(f"'{value}' is not an octal file mode such as \"0640\"")
    return text


class FilePermissionsParams(Params):
    path: str
    max_mode: str
    max_dir_mode: str | None = None
    recursive: bool = True

    _check_modes = field_validator("max_mode", "max_dir_mode", mode="before")(
        lambda cls, v: v if v is None else _octal(v))


def dir_mode_for(file_mode: int) -> int:
    """The folder mode that matches a file mode: x added wherever r is allowed."""
    return file_mode | ((file_mode & 0o444) >> 2)


class FilePermissions(Check):
    name = "file_permissions"
    Params = FilePermissionsParams
    target_param = "path"

    def run(self, params: FilePermissionsParams, ctx: Context) -> Iterator[Result]:
        root = ctx.resolve(params.path)
        max_file = int(params.max_mode, 8)
        max_dir = int(params.max_dir_mode, 8) if params.max_dir_mode else dir_mode_for(max_file)
        if not os.path.lexists(root):
            yield Result.errored(params.path, Message("%(path)s does not exist, so its permissions cannot be checked.",
                                                          path=params.path))
            return
        offenders: list[dict[str, str]] = []
        checked = 0
        for path in self._walk(root, params.recursive):
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue  # a link's own mode means nothing; its target is checked where it lives
            allowed = max_dir if stat.S_ISDIR(st.st_mode) else max_file
            mode = stat.S_IMODE(st.st_mode)
            checked += 1
            if mode & ~allowed:
                offenders.append({"path": path, "mode": f"{mode:04o}", "allowed": f"{allowed:04o}"})
        evidence = {"checked": checked, "too_open": len(offenders), "examples": offenders[:MAX_LISTED],
                    "max_mode": f"{max_file:04o}", "max_dir_mode": f"{max_dir:04o}"}
        if not offenders:
            what = "1 entry" if checked == 1 else f"all {checked} entries"
            yield Result.passed(params.path, f"Permissions of {what} under {params.path} are within mode "
                                f"{max_file:04o} (folders {max_dir:04o}).", **evidence)
        else:
            first = offenders[0]
            yield Result.failed(params.path,
                                Message("%(offenders)d of %(checked)d entries under %(path)s are more open than "
                                        "allowed, e.g. %(example)s has mode %(mode)s (maximum %(maximum)s).",
                                        offenders=len(offenders), checked=checked, path=params.path,
                                        example=first["path"], mode=first["mode"], maximum=first["allowed"]),
                                            **evidence)

    @staticmethod
    def _walk(root: str, recursive: bool) -> Iterator[str]:
        yield root
        if not os.path.isdir(root) or os.path.islink(root):
            return
        if not recursive:
            for entry in os.scandir(root):
                yield entry.path
            return
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                yield os.path.join(folder, name)
