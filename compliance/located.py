"""Data read from a file that remembers where each key and value stood: `LocDict`, `LocList`.

`compliance.yamlfile` makes them from YAML; this module holds them without PyYAML, so that data read
before (the validated configuration in the cache, `compliance.cache`) keeps its positions for messages
without importing the YAML parser.
"""

from __future__ import annotations

from typing import Any

Pos = tuple[int, int]


class LocDict(dict[str, Any]):
    path: str = ""
    pos: Pos = (1, 1)
    key_pos: dict[str, Pos]
    value_pos: dict[str, Pos]


class LocList(list[Any]):
    path: str = ""
    pos: Pos = (1, 1)
    item_pos: list[Pos]


def position_of(data: Any, loc: tuple[int | str, ...], *, key: bool = False) -> Pos:
    """The position of the value (or, with key=True, the key) at `loc` inside located data.

    Walks as deep as the data allows; a missing part yields the position of its nearest parent.
    """
    node, pos = data, getattr(data, "pos", (1, 1))
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, LocDict) and str(part) in node:
            part = str(part)
            pos = node.key_pos[part] if (last and key) else node.value_pos[part]
            node = node[part]
        elif isinstance(node, LocList) and isinstance(part, int) and 0 <= part < len(node):
            pos = node.item_pos[part]
            node = node[part]
        else:
            break
    return pos


def plain(data: Any) -> Any:
    """Located data turned into plain dicts and lists (for hashing and storing)."""
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data
