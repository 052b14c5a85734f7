"""Reading YAML safely while remembering where every key and value stands.

`load_yaml` uses PyYAML's safe constructors (no Python objects), rejects duplicate keys, and returns
plain dicts and lists that remember positions: `LocDict.key_pos[key]`, `LocDict.value_pos[key]`,
`LocList.item_pos[i]` and `.pos` of the collection itself, each a 1-based `(line, column)`, and
`.path`, the file they were read from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from compliance.errors import Problem
from compliance.located import LocDict, LocList, Pos, plain, position_of

__all__ = ["LocDict", "LocList", "Pos", "load_yaml", "plain", "position_of", "unreadable"]


def _pos(node: yaml.Node) -> Pos:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


#: How deep collections may nest. Controls and the configuration need under ten levels; a limit keeps
#: a hostile file (`[[[[...` 5,000 deep) from exhausting Python's recursion.
MAX_DEPTH = 100


class _Located:
    """The composer's depth limit and the constructors that remember positions, for either parser."""

    path: str
    problems: list[Problem]
    depth: int

    def _start(self, path: str) -> None:
        self.path = path
        self.problems = []
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)  # type: ignore[attr-defined]
            node: yaml.Node | None = super().compose_node(parent, index)  # type: ignore[misc]
            return node
        finally:
            self.depth -= 1

    def construct_located_mapping(self, node: yaml.MappingNode) -> LocDict:
        self.flatten_mapping(node)  # type: ignore[attr-defined]
        data = LocDict()
        data.path, data.pos, data.key_pos, data.value_pos = self.path, _pos(node), {}, {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            if not isinstance(key, str | int | float | bool) or key is None:
                self.problems.append(
                    Problem(self.path, *_pos(key_node), "a key must be a plain word", "write `name: value`")
                )
                continue
            key = str(key)
            if key in data:
                first = data.key_pos[key][0]
                self.problems.append(
                    Problem(
                        self.path, *_pos(key_node), f"duplicate key '{key}'",
                        f"it is already set on line {first}; keep one of them",
                    )
                )
                continue
            data[key] = self.construct_object(value_node, deep=True)  # type: ignore[attr-defined]
            data.key_pos[key] = _pos(key_node)
            data.value_pos[key] = _pos(value_node)
        return data

    def construct_located_sequence(self, node: yaml.SequenceNode) -> LocList:
        data = LocList(self.construct_object(child, deep=True) for child in node.value)  # type: ignore[attr-defined]
        data.path, data.pos = self.path, _pos(node)
        data.item_pos = [_pos(child) for child in node.value]
        return data


class _Loader(_Located, yaml.SafeLoader):
    """All in Python: the reference, and what reports a syntax error (its messages are the ones users see)."""

    def __init__(self, stream: str, path: str) -> None:
        super().__init__(stream)
        self._start(path)


_LOADERS: list[type[Any]] = [_Loader]

#: libyaml's parser, when PyYAML was built with it (the wheels are).
_CParser: Any = getattr(yaml, "__with_libyaml__", False) and getattr(getattr(yaml, "cyaml", None), "CParser", None)

if _CParser:

    class _FastLoader(_Located, yaml.composer.Composer, _CParser,  # type: ignore[misc]
                      yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml's scanner and parser (C, about ten times faster on the bundled catalog) under PyYAML's own
        composer, so that the depth limit holds and nodes keep their positions as with _Loader."""

        def __init__(self, stream: str, path: str) -> None:
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._start(path)

    _LOADERS.insert(0, _FastLoader)

for _loader in _LOADERS:
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _loader.construct_located_mapping)
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _loader.construct_located_sequence)


def load_yaml(path: Path, text: str | None = None) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; return the data and the problems found (syntax, duplicate keys).

    On a syntax error the data is None and there is one problem at the error's position.
    """
    spath = str(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            return None, [Problem(spath, 1, 1, f"file is not UTF-8 text ({exc.reason})", "save it as UTF-8")]
        except OSError as exc:
            return None, [unreadable(path, exc)]
    if len(_LOADERS) > 1:
        fast = _LOADERS[0](text, spath)
        try:
            return fast.get_single_data(), fast.problems
        except yaml.YAMLError:
            pass  # parsed again below, so that the message is PyYAML's own, the same on every machine
        finally:
            fast.dispose()
    loader = _Loader(text, spath)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        hint = "check the indentation and quoting around this place"
        if "tab" in str(what).lower() or "\\t" in str(what):
            hint = "YAML does not allow tabs for indentation; use spaces"
        if "nested deeper" in str(what):
            hint = "flatten the structure"
        return None, [Problem(spath, line, col, f"YAML syntax error: {what}", hint)]
    except yaml.YAMLError as exc:
        return None, [Problem(spath, 1, 1, f"YAML error: {exc}", "check the file is valid YAML")]
    finally:
        loader.dispose()
    return data, loader.problems


def unreadable(path: Path, exc: OSError) -> Problem:
    """The problem of a file that cannot be read: why, and what to do about it."""
    import errno

    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM):
        hint = "give the account that runs the monitor read access to it, e.g. `chmod a+r`"
    elif exc.errno == errno.ELOOP:
        hint = "it is a symbolic link that points back at itself; fix or remove the link"
    elif exc.errno == errno.ENOENT:
        hint = "it is a symbolic link to a file that does not exist; fix or remove the link"
    else:
        hint = "check the file and the disk, or remove the file"
    return Problem(str(path), 1, 1, f"cannot read the file: {reason}", hint)
