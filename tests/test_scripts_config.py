"""Tests for ``pytest_orchestrator.scripts.config``: finding, validating and merging script configuration."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.scripts import ConfigError
from pytest_orchestrator.scripts import OrchestrateConfig
from pytest_orchestrator.scripts import get_script_config
from pytest_orchestrator.scripts import load_config
from pytest_orchestrator.scripts.pep723 import clear_metadata_cache


REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def project(tmp_path: Path) -> Path:
    """A project root (it has a .git folder) inside ``tmp_path``."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    return root


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_metadata_cache()


def script(path: Path, *orchestrate_lines: str) -> Path:
    text = "print('hi')\n"
    if orchestrate_lines:
        body = "".join(f"# {line}\n" for line in ("[tool.orchestrate]", *orchestrate_lines))
        text = f"# /// script\n{body}# ///\n" + text
    return write(path, text)


# --------------------------------------------------------------------------------------------------------------
# the import stays light
# --------------------------------------------------------------------------------------------------------------


def test_import_does_not_load_yaml() -> None:
    code = "import pytest_orchestrator.scripts, sys; assert 'yaml' not in sys.modules, 'yaml imported'"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_config_error_is_a_workflow_error() -> None:
    err = ConfigError("bad", path="orchestrate.yaml", line=7, key="x")
    assert isinstance(err, WorkflowError)
    assert err.message == "orchestrate.yaml:7: bad"
    assert err.context == {"path": "orchestrate.yaml", "line": 7, "key": "x"}
    assert str(ConfigError("bad", path="f.yaml")) == "f.yaml: bad"
    import pickle

    again = pickle.loads(pickle.dumps(err))
    assert again.message == err.message and again.context == err.context


# --------------------------------------------------------------------------------------------------------------
# load_config: finding the file
# --------------------------------------------------------------------------------------------------------------


def test_no_config_gives_empty_defaults(tmp_path: Path) -> None:
    root = project(tmp_path)
    config = load_config(root)
    assert config.path is None
    assert config.root == root.resolve()
    assert config.defaults == {} and config.scripts == {} and config.skip == () and config.timeout_override is None
    assert config.raw == {}


def test_found_in_start_folder_from_nested_folder_and_from_file(tmp_path: Path) -> None:
    root = project(tmp_path)
    cfg = write(root / "orchestrate.yaml", "defaults:\n  timeout: 5\n")
    nested = root / "a" / "b"
    nested.mkdir(parents=True)
    file_in_nested = script(nested / "s.py")
    for start in (root, nested, file_in_nested):
        config = load_config(start)
        assert config.path == cfg.resolve()
        assert config.root == root.resolve()
        assert config.defaults == {"timeout": 5.0}


def test_default_start_is_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yml", "timeout_override: 3\n")
    monkeypatch.chdir(root)
    config = load_config()
    assert config.path == (root / "orchestrate.yml").resolve()
    assert config.timeout_override == 3.0


def test_nearest_config_wins(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "timeout_override: 1\n")
    inner = write(root / "sub" / "orchestrate.yaml", "timeout_override: 2\n")
    assert load_config(root / "sub").path == inner.resolve()
    assert load_config(root / "sub").timeout_override == 2.0


def test_walk_stops_at_the_project_root(tmp_path: Path) -> None:
    write(tmp_path / "orchestrate.yaml", "timeout_override: 99\n")  # ABOVE the project root: never used
    root = project(tmp_path)
    (root / "deep" / "er").mkdir(parents=True)
    config = load_config(root / "deep" / "er")
    assert config.path is None
    assert config.root == (root / "deep" / "er").resolve()
    # a pyproject.toml without [tool.orchestrate] is a project root too
    other = tmp_path / "other"
    write(other / "pyproject.toml", "[project]\nname = 'x'\n")
    (other / "src").mkdir()
    assert load_config(other / "src").path is None


def test_config_in_the_project_root_itself_is_used(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root / "pyproject.toml", "[project]\nname = 'x'\n")
    cfg = write(root / "orchestrate.yaml", "skip: ['a.py']\n")
    (root / "x").mkdir()
    assert load_config(root / "x").path == cfg.resolve()


def test_pyproject_table(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    pyproject = write(
        root / "pyproject.toml",
        """\
        [project]
        name = "demo"

        [tool.orchestrate]
        skip = ["legacy/*.py"]
        timeout_override = 50

        [tool.orchestrate.defaults]
        timeout = 9
        env = {A = "1"}

        [tool.orchestrate.scripts."scripts/load.py"]
        depends = ["extract"]
        retry = {max_attempts = 3, initial_delay = 0.1}
        """,
    )
    (root / "scripts").mkdir()
    config = load_config(root / "scripts")
    assert config.path == pyproject.resolve()
    assert config.root == root.resolve()
    assert config.skip == ("legacy/*.py",)
    assert config.timeout_override == 50.0
    assert config.defaults == {"timeout": 9.0, "env": {"A": "1"}}
    assert config.scripts == {
        "scripts/load.py": {"depends": ["extract"], "retry": RetryPolicy(max_attempts=3, initial_delay=0.1)}
    }


def test_yaml_is_preferred_to_pyproject_in_the_same_folder(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root / "pyproject.toml", "[tool.orchestrate]\ntimeout_override = 1\n")
    cfg = write(root / "orchestrate.yaml", "timeout_override: 2\n")
    assert load_config(root).path == cfg.resolve()
    assert load_config(root).timeout_override == 2.0


def test_missing_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope")


# --------------------------------------------------------------------------------------------------------------
# load_config: validation
# --------------------------------------------------------------------------------------------------------------


def test_full_schema_is_normalized(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(
        root / "orchestrate.yaml",
        """\
        defaults:
          timeout: 60
          retry: 1
          env: {A: b, N: 3}
          args: []
          allowed_exit_codes: [0]
          stage: null
        skip: ["scripts/legacy/*.py"]
        timeout_override: 120
        scripts:
          ./scripts/load.py:
            depends: [extract]
            timeout: 10
            retry: {max_attempts: 3, initial_delay: 0.1}
            args: ["--x", 5]
            env: {K: v}
            stage: etl
            allowed_exit_codes: [0, 3]
            skip: false
          extract.sh:
          other.py:
            depends: transform
        """,
    )
    config = load_config(root)
    assert config.defaults == {
        "timeout": 60.0,
        "retry": RetryPolicy(max_attempts=1),
        "env": {"A": "b", "N": "3"},
        "args": [],
        "allowed_exit_codes": [0],
        "stage": None,
    }
    assert config.skip == ("scripts/legacy/*.py",)
    assert config.timeout_override == 120.0
    assert config.scripts["scripts/load.py"] == {
        "depends": ["extract"],
        "timeout": 10.0,
        "retry": RetryPolicy(max_attempts=3, initial_delay=0.1),
        "args": ["--x", "5"],
        "env": {"K": "v"},
        "stage": "etl",
        "allowed_exit_codes": [0, 3],
        "skip": False,
    }
    assert config.scripts["extract.sh"] == {}
    assert config.scripts["other.py"] == {"depends": ["transform"]}
    assert "./scripts/load.py" in config.raw["scripts"]
    data = config.to_dict()
    json.dumps(data)
    assert data["defaults"]["retry"]["max_attempts"] == 1
    assert data["path"] == str((root / "orchestrate.yaml").resolve())


def test_empty_yaml_file(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "# nothing yet\n")
    config = load_config(root)
    assert config.path is not None and config.scripts == {} and config.defaults == {}


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    root = project(tmp_path)
    cfg = write(
        root / "orchestrate.yaml",
        """\
        defaults:
          timeout: 5
        scripts:
          a.py:
            depends: [x
          b.py: {}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(root)
    err = info.value
    assert err.context["path"] == str(cfg.resolve())
    assert err.context["line"] == 6
    assert f"orchestrate.yaml:{err.context['line']}:" in err.message
    assert "invalid YAML" in err.message


def test_malformed_yaml_tab_indent(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "defaults:\n\ttimeout: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(root)
    assert info.value.context["line"] == 2


def test_unsafe_yaml_tags_are_rejected(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "defaults:\n  stage: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_config(root)
    assert info.value.context["line"] == 2


@pytest.mark.parametrize(
    ("text", "line", "key", "suggestion"),
    [
        ("defaults:\n  timeout: 1\ntimout_override: 3\n", 3, "timout_override", "timeout_override"),
        ("skip: []\ndefaults:\n  stage: a\n  timout: 3\n", 4, "timout", "timeout"),
        ("scripts:\n  a.py:\n    depends: [x]\n\n    dependz: [y]\n", 5, "dependz", "depends"),
        ("script:\n  a.py: {}\n", 1, "script", "scripts"),
        ("scripts:\n  a.py: {allowed_exit_code: [1]}\n", 2, "allowed_exit_code", "allowed_exit_codes"),
    ],
)
def test_unknown_keys_suggest_close_matches(tmp_path: Path, text: str, line: int, key: str, suggestion: str) -> None:
    root = project(tmp_path)
    cfg = write(root / "orchestrate.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(root)
    err = info.value
    assert err.context["key"] == key
    assert err.context["line"] == line
    assert err.context["path"] == str(cfg.resolve())
    assert err.context["suggestions"][0] == suggestion
    assert f"did you mean {suggestion!r}" in err.message
    assert f"orchestrate.yaml:{line}: " in err.message


def test_unknown_key_without_close_match_lists_known_keys(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "defaults:\n  zzz: 1\n")
    with pytest.raises(ConfigError, match="known keys") as info:
        load_config(root)
    assert info.value.context["suggestions"] == []


def test_unknown_key_in_pyproject_names_its_line(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(
        root / "pyproject.toml",
        """\
        [project]
        name = "demo"

        [tool.orchestrate.defaults]
        timeout = 3
        timout = 4
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(root)
    err = info.value
    assert err.context["line"] == 6 and err.context["key"] == "timout"
    assert "pyproject.toml:6:" in err.message and "did you mean 'timeout'?" in err.message


def test_malformed_pyproject_names_its_line(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root / "pyproject.toml", "[tool.orchestrate]\ntimeout_override = \n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_config(root)
    assert info.value.context["line"] == 2
    assert "pyproject.toml:2:" in info.value.message


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        ("defaults:\n  timeout: soon\n", 2, "timeout", "positive number"),
        ("defaults:\n  retry: many\n", 2, "retry", "retry"),
        ("defaults:\n  env: [A, B]\n", 2, "env", "mapping"),
        ("defaults:\n  env: {DEBUG: yes}\n", 2, "env", "quote"),
        ("defaults:\n  depends: [a]\n", 2, "depends", "per script"),
        ("defaults: [1]\n", 1, "defaults", "mapping"),
        ("skip: 3\n", 1, "skip", "glob"),
        ("timeout_override: -5\n", 1, "timeout_override", "timeout_override must be a positive"),
        ("scripts: [a.py]\n", 1, "scripts", "mapping"),
        ("scripts:\n  a.py:\n    args: --x\n", 3, "args", "list of strings"),
        ("scripts:\n  a.py:\n    skip: maybe\n", 3, "skip", "true or false"),
        ("scripts:\n  a.py:\n    depends: [1]\n", 3, "depends", "strings"),
        ("scripts:\n  a.py:\n    allowed_exit_codes: [zero]\n", 3, "allowed_exit_codes", "integer"),
        ("scripts:\n  a.py:\n    timeout: 1\n  ./a.py: {}\n", 4, "./a.py", "same script"),
        ("scripts:\n  a.py: 3\n", 2, "a.py", "mapping"),
    ],
)
def test_wrong_types_name_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, fragment: str) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(root)
    err = info.value
    assert err.context["key"] == key
    assert err.context["line"] == line
    assert fragment in err.message
    assert f"orchestrate.yaml:{line}: " in err.message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping") as info:
        load_config(root)
    assert info.value.context["line"] == 1


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "defaults:\n  timeout: 1\n  stage: a\n  timeout: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'timeout'") as info:
        load_config(root)
    assert info.value.context["line"] == 4


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(
        root / "orchestrate.yaml",
        """\
        scripts:
          a.py: &base {timeout: 3, stage: s}
          b.py:
            <<: *base
            timeout: 4
        """,
    )
    config = load_config(root)
    assert config.scripts["b.py"] == {"timeout": 4.0, "stage": "s"}


# --------------------------------------------------------------------------------------------------------------
# get_script_config
# --------------------------------------------------------------------------------------------------------------


def test_package_defaults_without_any_config(tmp_path: Path) -> None:
    root = project(tmp_path)
    target = script(root / "s.py")
    assert get_script_config(target) == {
        "depends": [],
        "timeout": None,
        "retry": None,
        "args": [],
        "env": {},
        "stage": None,
        "allowed_exit_codes": [0],
        "skip": False,
    }


def test_precedence_defaults_metadata_entry_override(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(
        root / "orchestrate.yaml",
        """\
        defaults:
          timeout: 60
          retry: 1
          args: [--default]
          stage: base
          allowed_exit_codes: [0, 1]
          env: {A: defaults, B: defaults, C: defaults}
        scripts:
          scripts/load.py:
            args: [--entry]
            env: {C: entry}
        """,
    )
    target = script(
        root / "scripts" / "load.py",
        "timeout = 30",
        'stage = "etl"',
        'args = ["--meta"]',
        'depends = "extract"',
        'env = {B = "meta", C = "meta", D = "meta"}',
    )
    settings = get_script_config(target)
    assert settings["timeout"] == 30.0  # metadata beats defaults
    assert settings["stage"] == "etl"
    assert settings["args"] == ["--entry"]  # the config entry beats metadata
    assert settings["retry"] == RetryPolicy(max_attempts=1)  # defaults kept where nothing else speaks
    assert settings["allowed_exit_codes"] == [0, 1]
    assert settings["depends"] == ["extract"]
    assert settings["env"] == {"A": "defaults", "B": "meta", "C": "entry", "D": "meta"}
    assert settings["skip"] is False

    # the entry beats metadata on timeout too, and timeout_override beats everything
    write(root / "orchestrate.yaml", "scripts:\n  scripts/load.py: {timeout: 10}\n")
    assert get_script_config(target)["timeout"] == 10.0
    write(root / "orchestrate.yaml", "timeout_override: 120\nscripts:\n  scripts/load.py: {timeout: 10}\n")
    assert get_script_config(target)["timeout"] == 120.0


def test_result_is_a_fresh_copy(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "defaults:\n  env: {A: b}\n  args: [x]\n")
    target = script(root / "s.py", 'depends = ["a"]')
    config = load_config(root)
    first = get_script_config(target, config=config)
    first["env"]["Z"] = "mutated"
    first["args"].append("y")
    first["depends"].append("b")
    again = get_script_config(target, config=config)
    assert again["env"] == {"A": "b"} and again["args"] == ["x"] and again["depends"] == ["a"]


def test_entry_matching_by_exact_path_and_whole_component_suffix(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(
        root / "orchestrate.yaml",
        """\
        scripts:
          load.py: {stage: by-name}
          scripts/load.py: {stage: by-two}
          a/scripts/load.py: {stage: exact}
          ad.py: {stage: wrong}
        """,
    )
    config = load_config(root)
    cases = {
        "a/scripts/load.py": "exact",
        "x/scripts/load.py": "by-two",
        "scripts/load.py": "by-two",
        "load.py": "by-name",
        "b/load.py": "by-name",
        "b/ad.py": "wrong",
    }
    for rel_path, stage in cases.items():
        assert get_script_config(script(root / rel_path), config=config)["stage"] == stage, rel_path
    # 'ad.py' is no match for 'load.py' minus a prefix, nor 'load.py' for 'preload.py'
    assert get_script_config(script(root / "c" / "preload.py"), config=config)["stage"] is None
    found = config.find_entry(root / "x" / "scripts" / "load.py")
    assert found is not None and found[0] == "scripts/load.py"


def test_script_path_forms_and_explicit_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path)
    write(root / "orchestrate.yaml", "scripts:\n  jobs/run.sh: {timeout: 4}\n  run.sh: {timeout: 9}\n")
    target = write(root / "jobs" / "run.sh", "echo hi\n")
    config = load_config(root)
    assert get_script_config("jobs/run.sh", config=config)["timeout"] == 4.0  # relative to config.root
    assert get_script_config("run.sh", root=root / "jobs", config=config)["timeout"] == 9.0
    monkeypatch.chdir(root / "jobs")
    assert get_script_config("run.sh")["timeout"] == 4.0  # relative to the current folder, config found
    with pytest.raises(FileNotFoundError):
        get_script_config(root / "nope.sh", config=config)
    assert get_script_config(target)["timeout"] == 4.0


def test_skip_globs_and_entry_skip(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(
        root / "orchestrate.yaml",
        """\
        skip: ["scripts/legacy/*.py", "tmp_*.sh"]
        scripts:
          scripts/legacy/keep.py: {skip: false}
          scripts/off.py: {skip: true}
        """,
    )
    config = load_config(root)
    assert get_script_config(script(root / "scripts" / "legacy" / "old.py"), config=config)["skip"] is True
    assert get_script_config(script(root / "scripts" / "legacy" / "keep.py"), config=config)["skip"] is False
    assert get_script_config(script(root / "scripts" / "off.py"), config=config)["skip"] is True
    assert get_script_config(script(root / "scripts" / "on.py"), config=config)["skip"] is False
    assert get_script_config(script(root / "scripts" / "legacy" / "deep" / "x.py"), config=config)["skip"] is False
    assert get_script_config(write(root / "any" / "tmp_x.sh"), config=config)["skip"] is True  # by file name
    assert config.is_skipped("scripts/legacy/old.py")
    assert config.is_skipped(root / "scripts" / "off.py")
    assert not config.is_skipped("scripts/on.py")


def test_default_config_object(tmp_path: Path) -> None:
    config = OrchestrateConfig(root=tmp_path)
    assert config.path is None
    assert not config.is_skipped(tmp_path / "x.py")
    target = script(tmp_path / "x.py", "timeout = 2")
    assert get_script_config(target, config=config)["timeout"] == 2.0


def test_invalid_metadata_surfaces_through_get_script_config(tmp_path: Path) -> None:
    root = project(tmp_path)
    target = script(root / "s.py", "timeout = -1")
    with pytest.raises(ConfigError) as info:
        get_script_config(target)
    assert info.value.context["path"] == str(target.resolve())
    assert info.value.context["line"] == 3


def test_pyproject_inline_tables_report_the_defining_line(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(
        root / "pyproject.toml",
        """\
        [tool.orchestrate]
        skip = []
        scripts = {"a.py" = {timeout = "x"}}
        """,
    )
    with pytest.raises(ConfigError, match="positive number") as info:
        load_config(root)
    assert info.value.context["line"] == 3 and info.value.context["key"] == "timeout"
