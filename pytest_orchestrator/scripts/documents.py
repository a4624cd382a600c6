"""Reading a configuration document: text as UTF-8, and one YAML document safely, with its node tree.

:func:`load_yaml_document` gives the node tree (for line numbers, see :mod:`.lines`) beside the loaded value, and
refuses duplicate keys (which ``yaml.safe_load`` silently merges). Used by the config files (:mod:`.config`) and the
pipeline files (:mod:`pytest_orchestrator.pipelines.loader`). PyYAML is imported only when a YAML file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from pytest_orchestrator.scripts.errors import ConfigError


if TYPE_CHECKING:
    import yaml


__all__ = ["load_yaml_document", "read_text"]


def read_text(path: Path) -> str:
    """The file's text; a ``ConfigError`` naming it if it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid UTF-8: {exc}", path=path) from None


def _check_duplicate_keys(node: yaml.Node | None, path: Path) -> None:
    import yaml

    seen_nodes: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: set[tuple[str, str]] = set()
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    ident = (key_node.tag, key_node.value)
                    if ident in keys:
                        raise ConfigError(
                            f"duplicate key {key_node.value!r}",
                            path=path,
                            line=key_node.start_mark.line + 1,
                            key=key_node.value,
                        )
                    keys.add(ident)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _reader_error(exc: Any, text: str, path: Path) -> ConfigError:
    """A ``ConfigError`` (with the line) for PyYAML's ``ReaderError``: a character YAML does not allow."""
    line = text.count("\n", 0, max(0, int(exc.position))) + 1
    return ConfigError(f"invalid YAML: character {exc.character:#06x} is not allowed in YAML", path=path, line=line)


def load_yaml_document(path: Path) -> tuple[Any, Any]:
    """Read one YAML document safely: ``(node, data)``, the node tree (for line numbers) and its value.

    Malformed YAML and duplicate keys are a ``ConfigError`` naming the file and the line; ``yaml.SafeLoader``
    only, so no tag can build arbitrary objects.
    """
    import yaml

    text = read_text(path)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a control character)
        raise _reader_error(exc, text, path) from None
    try:
        node = loader.get_single_node()
        _check_duplicate_keys(node, path)
        data = None if node is None else loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, path) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", path=path, line=None if mark is None else mark.line + 1) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=path) from None
    finally:
        loader.dispose()
    return node, data
