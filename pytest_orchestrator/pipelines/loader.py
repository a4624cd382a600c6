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
from pytest_orchestrator.scripts.documents import load_yaml_document
from pytest_orchestrator.scripts.errors import ConfigError
from pytest_orchestrator.scripts.lines import yaml_key_line
from pytest_orchestrator.scripts.lines import yaml_node


if TYPE_CHECKING:
    import yaml

__all__ = ["load_pipeline"]


class _Lines:
    """Line numbers (1-based) of the stages and keys of a composed pipeline document (see :mod:`..scripts.lines`)."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def top(self, key: str | None) -> int | None:
        return yaml_key_line(self.root, () if key is None else (key,))

    def stage_path(self, stage: str) -> tuple[str | int, ...] | None:
        """The key path of a stage: ``("stages", name)`` in the mapping form, ``("stages", index)`` in the list form."""
        import yaml

        stages = yaml_node(self.root, ("stages",))
        if isinstance(stages, yaml.MappingNode):
            return ("stages", stage) if yaml_node(stages, (stage,)) is not None else None
        if isinstance(stages, yaml.SequenceNode):
            for index, item in enumerate(stages.value):
                name = yaml_node(item, ("name",))
                if isinstance(name, yaml.ScalarNode) and name.value == stage:
                    return ("stages", index)
        return None

    def stage_key(self, stage: str, key: str | None) -> int | None:
        path = self.stage_path(stage)
        if path is None:
            return None
        return yaml_key_line(self.root, path if key is None else (*path, key))

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
                line = yaml_key_line(node, ("stages", i))
                raise ConfigError(f"stage #{i + 1} has no name", path=file, line=line, key="name")
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
