"""Where a setting is written: a key path to its 1-based line, in a YAML node tree or in TOML text.

Loaded data carries no positions (``tomllib`` reports none for a valid document; PyYAML's values have none), so
an error about a setting looks its line up here. A key path is a sequence of mapping keys (``str``) and, in YAML,
sequence indexes (``int``); when part of it is missing the line of the deepest part found is given, so an error
still points near its cause. One helper for the config files (:mod:`.config`), the scripts' inline metadata
(:mod:`.pep723`) and the pipeline files (:mod:`pytest_orchestrator.pipelines.loader`).

Standard library only; the YAML functions take nodes already composed by PyYAML and import it only to read them.
"""

from __future__ import annotations

from collections.abc import Sequence
import re
import tomllib
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import yaml


__all__ = ["toml_error", "toml_key_line", "yaml_key_line", "yaml_node"]


# --------------------------------------------------------------------------------------------------------------
# YAML: a composed node tree
# --------------------------------------------------------------------------------------------------------------


def _yaml_walk(root: yaml.Node | None, keypath: Sequence[str | int]) -> tuple[int | None, yaml.Node | None]:
    """``(line of the deepest part of keypath found, value node at keypath or None if a part is missing)``."""
    import yaml

    node = root
    line = None if node is None else node.start_mark.line + 1
    for part in keypath:
        if isinstance(part, int):
            if not isinstance(node, yaml.SequenceNode) or not -len(node.value) <= part < len(node.value):
                return line, None
            node = node.value[part]
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            return line, None
        match: tuple[yaml.Node, yaml.Node] | None = None
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                match = (key_node, value_node)  # the last one wins, as in the loaded data
        if match is None:
            return line, None
        line = match[0].start_mark.line + 1
        node = match[1]
    return line, node


def yaml_node(root: yaml.Node | None, keypath: Sequence[str | int]) -> yaml.Node | None:
    """The value node at ``keypath`` under ``root`` (``root`` itself for ``()``), or ``None`` if it is not there."""
    return _yaml_walk(root, keypath)[1]


def yaml_key_line(root: yaml.Node | None, keypath: Sequence[str | int]) -> int | None:
    """The 1-based line of ``keypath`` in a composed YAML document: of the key for a mapping key, of the item for a
    sequence index, of ``root`` for ``()``; the deepest part found when the rest is missing; ``None`` for no
    document.

    Usage::

        node, data = load_yaml_document(path)
        yaml_key_line(node, ("scripts", "load.py", "timeout"))  # the line of "timeout:" under that entry
    """
    return _yaml_walk(root, keypath)[0]


# --------------------------------------------------------------------------------------------------------------
# TOML: best effort on the text
# --------------------------------------------------------------------------------------------------------------

_TOML_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TOML_DOTTED = rf"{_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*"
_TOML_HEADER_RE = re.compile(rf"^\s*\[\[?\s*({_TOML_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_TOML_ASSIGN_RE = re.compile(rf"^\s*({_TOML_DOTTED})\s*=")
_TOML_PART_RE = re.compile(_TOML_KEY_PART)


def _split_toml_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for token in _TOML_PART_RE.findall(dotted):
        parts.append(token[1:-1] if token[:1] in ("'", '"') else token)
    return tuple(parts)


def _toml_index(lines: Sequence[str], table: tuple[str, ...], key: str) -> int | None:
    """0-based index of the line defining ``key`` in ``table``, else of the deepest part of ``table`` found."""
    current: tuple[str, ...] = ()
    fallback: int | None = None
    fallback_depth = -1
    for index, line in enumerate(lines):
        header = _TOML_HEADER_RE.match(line)
        if header:
            current = _split_toml_key(header.group(1))
            if current[: len(table) + 1] == (*table, key):
                return index
            depth = len(current) if current == table[: len(current)] else -1
            if depth > fallback_depth:
                fallback, fallback_depth = index, depth
            continue
        assign = _TOML_ASSIGN_RE.match(line)
        if not assign:
            continue
        parts = current + _split_toml_key(assign.group(1))
        if parts[: len(table) + 1] == (*table, key):
            return index
        if parts == table[: len(parts)]:
            # an inline table holding the table we look for: look for the key on the same line
            rest = line[assign.end() :]
            if re.search(rf"""(?<![\w-])["']?{re.escape(key)}["']?\s*=""", rest):
                return index
            if len(parts) > fallback_depth:
                fallback, fallback_depth = index, len(parts)
    return fallback if fallback_depth > 0 else None


def toml_key_line(lines: Sequence[str], keypath: Sequence[str]) -> int | None:
    """The 1-based line (in ``lines``) defining the key at ``keypath``, as a ``[table]`` header, a (dotted) key or a
    key of an inline table; else the line of the deepest enclosing table found; ``None`` if none is there.

    Usage::

        toml_key_line(text.splitlines(), ("tool", "orchestrate", "defaults", "timeout"))
    """
    if not keypath:
        return None
    index = _toml_index(lines, tuple(keypath[:-1]), keypath[-1])
    return None if index is None else index + 1


_TOML_ERROR_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def toml_error(exc: tomllib.TOMLDecodeError) -> tuple[str, int | None]:
    """``(problem, line)`` of a TOML syntax error: its message without the position, and the 1-based line in the
    parsed text (``None`` if the message gives none)."""
    text = str(exc)
    match = _TOML_ERROR_POSITION_RE.search(text)
    return _TOML_ERROR_POSITION_RE.sub("", text).strip(), int(match.group(1)) if match else None
