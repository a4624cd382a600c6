"""``load_pipeline``: a pipeline YAML file to a validated ``PipelineConfig``, with ``file:line`` errors.

The document is composed into a node tree with ``yaml.SafeLoader`` (so only plain data, as ``yaml.safe_load``),
then constructed; the nodes give the line of the key or stage an error is about. PyYAML is imported here only when
a file is read.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_orchestrator.pipelines.config import PipelineConfig
from pytest_orchestrator.scripts.errors import ConfigError


if TYPE_CHECKING:
    import yaml

__all__ = ["load_pipeline"]


class _Lines:
    """Line numbers (1-based) of the keys in a composed YAML document."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    @staticmethod
    def entries(node: yaml.Node | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            return {}
        return {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}

    @staticmethod
    def line(node: yaml.Node | None) -> int | None:
        return None if node is None else node.start_mark.line + 1

    def top(self, key: str | None) -> int | None:
        entry = self.entries(self.root).get(key) if key is not None else None
        return self.line(entry[0] if entry else self.root)

    def stage_node(self, stage: str) -> yaml.Node | None:
        import yaml

        entry = self.entries(self.root).get("stages")
        if entry is None:
            return None
        stages = entry[1]
        if isinstance(stages, yaml.MappingNode):
            found = self.entries(stages).get(stage)
            return found[0] if found else None
        if isinstance(stages, yaml.SequenceNode):
            for item in stages.value:
                name = self.entries(item).get("name")
                if name is not None and isinstance(name[1], yaml.ScalarNode) and name[1].value == stage:
                    return item
        return None

    def stage_key(self, stage: str, key: str | None) -> int | None:
        import yaml

        node = self.stage_node(stage)
        if node is None:
            return None
        if key is not None:
            body = node
            if isinstance(node, yaml.ScalarNode):  # the key of a "name: {...}" entry
                stages = self.entries(self.root)["stages"][1]
                body = self.entries(stages)[stage][1]
            entry = self.entries(body).get(key)
            if entry is not None:
                return self.line(entry[0])
        return self.line(node)

    def of(self, exc: ConfigError) -> int | None:
        stage, key = exc.context.get("stage"), exc.context.get("key")
        if isinstance(stage, str):
            line = self.stage_key(stage, key)
            if line is not None:
                return line
        if stage is None:
            return self.top(key)
        return self.top("stages")


def load_pipeline(path: str | os.PathLike[str]) -> PipelineConfig:
    """Read a pipeline YAML file (``yaml.safe_load`` semantics) into a validated :class:`PipelineConfig`.

    Raises :class:`ConfigError` whose message starts with ``<file>:<line>:`` for malformed YAML, an unknown key
    (with close matches), a value of the wrong type, a ``needs`` naming no stage, or a cycle; and
    ``FileNotFoundError`` if there is no such file.
    """
    import yaml

    from pytest_orchestrator.scripts.config import load_yaml_document

    file = Path(path)
    node, data = load_yaml_document(file)
    lines = _Lines(node)
    if not isinstance(data, Mapping):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"a pipeline file is a mapping with 'stages', got {got}", path=file, line=lines.top(None))
    stages = data.get("stages")
    if isinstance(stages, list):
        for i, item in enumerate(stages):
            if isinstance(item, Mapping) and "name" not in item:
                seq = lines.entries(node)["stages"][1]
                item_node = seq.value[i] if isinstance(seq, yaml.SequenceNode) else None
                raise ConfigError(f"stage #{i + 1} has no name", path=file, line=lines.line(item_node), key="name")
    try:
        config = PipelineConfig.from_dict(data, path=file)
    except ConfigError as exc:
        context = {k: v for k, v in exc.context.items() if k not in ("path", "line")}
        raise ConfigError(exc.message, path=file, line=lines.of(exc), **context) from None
    except TypeError as exc:  # a field given twice or similar
        raise ConfigError(str(exc), path=file, line=lines.top("stages")) from None
    for stage in config.stage_list:
        line = lines.stage_key(stage.name, None)
        if line is not None:
            config.stage_lines[stage.name] = line
    return config
