"""``scripts/lines.py``: the one key-path -> line helper, for composed YAML documents and for TOML text."""

from __future__ import annotations

from pathlib import Path
import textwrap
import tomllib

import pytest
import yaml

from pytest_orchestrator.scripts.lines import toml_error
from pytest_orchestrator.scripts.lines import toml_key_line
from pytest_orchestrator.scripts.lines import yaml_key_line
from pytest_orchestrator.scripts.lines import yaml_node


YAML = textwrap.dedent(
    """\
    defaults:
      timeout: 5
    stages:
      - name: build
        commands: [make]
      - name: test
        timeout: 3
    scripts:
      load.py: {depends: [x]}
    """
)


@pytest.fixture
def root() -> yaml.Node:
    node = yaml.compose(YAML, Loader=yaml.SafeLoader)
    assert node is not None
    return node


@pytest.mark.parametrize(
    ("keypath", "line"),
    [
        ((), 1),
        (("defaults",), 1),
        (("defaults", "timeout"), 2),
        (("stages", 0), 4),
        (("stages", 1, "timeout"), 7),
        (("stages", -1, "name"), 6),
        (("scripts", "load.py", "depends"), 9),
        # missing parts: the deepest part found
        (("defaults", "retry"), 1),
        (("stages", 7, "timeout"), 3),
        (("stages", "build"), 3),
        (("nothing",), 1),
    ],
)
def test_yaml_key_line(root: yaml.Node, keypath: tuple[str | int, ...], line: int) -> None:
    assert yaml_key_line(root, keypath) == line


def test_yaml_node(root: yaml.Node) -> None:
    name = yaml_node(root, ("stages", 1, "name"))
    assert isinstance(name, yaml.ScalarNode) and name.value == "test"
    assert yaml_node(root, ()) is root
    assert yaml_node(root, ("stages", 2)) is None
    assert yaml_node(root, ("defaults", "timeout", "deeper")) is None


def test_yaml_without_a_document() -> None:
    assert yaml_key_line(None, ("a",)) is None
    assert yaml_node(None, ()) is None


def test_yaml_the_last_of_repeated_keys_wins() -> None:
    node = yaml.compose("a: 1\na: 2\n", Loader=yaml.SafeLoader)
    assert yaml_key_line(node, ("a",)) == 2


TOML = textwrap.dedent(
    """\
    [project]
    name = "x"

    [tool.orchestrate]
    timeout_override = 5
    defaults = {timeout = 3, "retry" = 2}

    [tool.orchestrate.scripts."load.py"]
    depends = ["x"]
    """
).splitlines()


@pytest.mark.parametrize(
    ("keypath", "line"),
    [
        (("tool", "orchestrate"), 4),
        (("tool", "orchestrate", "timeout_override"), 5),
        (("tool", "orchestrate", "defaults"), 6),
        (("tool", "orchestrate", "defaults", "retry"), 6),  # a key of an inline table
        (("tool", "orchestrate", "scripts", "load.py"), 8),
        (("tool", "orchestrate", "scripts", "load.py", "depends"), 9),
        # missing: the deepest enclosing table found
        (("tool", "orchestrate", "scripts", "load.py", "timeout"), 8),
        (("tool", "orchestrate", "stage"), 4),
        (("nothing",), None),
        ((), None),
    ],
)
def test_toml_key_line(keypath: tuple[str, ...], line: int | None) -> None:
    assert toml_key_line(TOML, keypath) == line


def test_toml_dotted_keys_at_the_top() -> None:
    assert toml_key_line(["x = 1", "tool.orchestrate.timeout_override = 2"], ("tool", "orchestrate")) == 2


def test_toml_error() -> None:
    with pytest.raises(tomllib.TOMLDecodeError) as info:
        tomllib.loads("a = 1\nb = \n")
    problem, line = toml_error(info.value)
    assert line == 2
    assert problem and "at line" not in problem


def test_config_errors_point_at_the_line(tmp_path: Path) -> None:
    """The config files and the pipeline files use these helpers: their errors name the line of the key."""
    from pytest_orchestrator.pipelines import load_pipeline
    from pytest_orchestrator.scripts import ConfigError
    from pytest_orchestrator.scripts import load_config

    (tmp_path / "pyproject.toml").write_text("[project]\n\n[tool.orchestrate.defaults]\ntimeout = -1\n")
    with pytest.raises(ConfigError) as config_error:
        load_config(tmp_path)
    assert config_error.value.context["line"] == 4

    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - name: a\n    commands: [x]\n  - name: b\n    commands: [y]\n    timeout: no\n")
    with pytest.raises(ConfigError) as pipeline_error:
        load_pipeline(pipeline)
    assert pipeline_error.value.context["line"] == 6
