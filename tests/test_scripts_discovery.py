"""Tests for finding scripts (``scripts.discovery``, ``.globs``) and reading their metadata (``scripts.pep723``)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.scripts import ConfigError
from pytest_orchestrator.scripts import ScriptMetadata
from pytest_orchestrator.scripts import discover_scripts
from pytest_orchestrator.scripts import parse_script_metadata
from pytest_orchestrator.scripts.globs import glob_match
from pytest_orchestrator.scripts.pep723 import clear_metadata_cache


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def rel(paths: list[Path], root: Path) -> list[str]:
    base = root.resolve()
    return [p.relative_to(base).as_posix() for p in paths]


def block(*lines: str) -> str:
    """A PEP 723 block holding ``lines`` (each prefixed with ``# ``)."""
    body = "".join(f"# {line}\n" if line else "#\n" for line in lines)
    return f"# /// script\n{body}# ///\n"


# --------------------------------------------------------------------------------------------------------------
# discover_scripts
# --------------------------------------------------------------------------------------------------------------


def test_top_level_and_nested_files_sorted(tmp_path: Path) -> None:
    for name in ("z.py", "a.sh", "m/b.py", "m/n/c.sh", "m/n/d.txt", "a/x.py"):
        touch(tmp_path / name)
    found = discover_scripts(tmp_path)
    assert rel(found, tmp_path) == ["a/x.py", "a.sh", "m/b.py", "m/n/c.sh", "z.py"]  # Path order: by parts
    assert found == sorted(found)
    assert all(p.is_absolute() and p == p.resolve() for p in found)


def test_relative_root_gives_resolved_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path / "proj" / "s.py")
    monkeypatch.chdir(tmp_path)
    assert discover_scripts("proj") == [(tmp_path / "proj" / "s.py").resolve()]
    assert discover_scripts(Path("proj") / ".." / "proj") == [(tmp_path / "proj" / "s.py").resolve()]


def test_skipped_files_and_folders(tmp_path: Path) -> None:
    keep = ["ok.py", "pkg/ok.sh", "env/plain.py", "environment/e.py"]
    drop = [
        "__init__.py",
        "pkg/__init__.py",
        "conftest.py",
        "pkg/conftest.py",
        ".hidden.py",
        ".git/hook.sh",
        ".hid/x.py",
        "venv/lib/a.py",
        ".venv/lib/a.py",
        "myenv/lib/a.py",
        "__pycache__/c.py",
        "pkg/__pycache__/c.py",
        "node_modules/m.sh",
        "pkg/node_modules/m.sh",
        "build/b.py",
        "dist/d.py",
        "thing.egg-info/e.py",
        "pkg/thing.egg-info/e.py",
        "deep/env/v.py",
    ]
    for name in keep + drop:
        touch(tmp_path / name)
    touch(tmp_path / "myenv" / "pyvenv.cfg", "home = /usr\n")  # any folder with pyvenv.cfg is a virtualenv
    touch(tmp_path / "deep" / "env" / "pyvenv.cfg", "home = /usr\n")
    assert rel(discover_scripts(tmp_path), tmp_path) == sorted(keep)


def test_glob_semantics() -> None:
    assert glob_match("**/*.py", "a.py")
    assert glob_match("**/*.py", "x/y/a.py")
    assert not glob_match("*.py", "x/a.py")
    assert glob_match("x/**/a.py", "x/a.py")
    assert glob_match("x/**/a.py", "x/1/2/a.py")
    assert not glob_match("x/**/a.py", "y/x/a.py")
    assert glob_match("x/**", "x/1/2/a.py")
    assert glob_match("x/**", "x")
    assert not glob_match("x/**", "xy/a.py")
    assert glob_match("s?.py", "s1.py")
    assert not glob_match("s?.py", "s/.py")
    assert glob_match("s[0-9].py", "s5.py")
    assert not glob_match("s[!0-9].py", "s5.py")
    assert glob_match("./a/*.py", "a/b.py")
    assert not glob_match("a.py", "xa.py")


def test_patterns(tmp_path: Path) -> None:
    for name in ("top.py", "top.sh", "s/a.py", "s/deep/b.py", "t/c.py"):
        touch(tmp_path / name)
    assert rel(discover_scripts(tmp_path, ("*.py",)), tmp_path) == ["top.py"]
    assert rel(discover_scripts(tmp_path, "s/*.py"), tmp_path) == ["s/a.py"]
    assert rel(discover_scripts(tmp_path, ["s/**/*.py"]), tmp_path) == ["s/a.py", "s/deep/b.py"]
    assert rel(discover_scripts(tmp_path, ["**/*.sh"]), tmp_path) == ["top.sh"]
    assert rel(discover_scripts(tmp_path, ["**/c.py", "top.*"]), tmp_path) == ["t/c.py", "top.py", "top.sh"]
    with pytest.raises(ValueError, match="empty glob"):
        discover_scripts(tmp_path, [""])


def test_exclude_by_path_and_by_name(tmp_path: Path) -> None:
    for name in ("a.py", "s/b.py", "s/legacy/old.py", "t/test_x.py", "test_top.py", "u/keep.sh"):
        touch(tmp_path / name)
    assert rel(discover_scripts(tmp_path, exclude=["s/legacy/*.py"]), tmp_path) == [
        "a.py",
        "s/b.py",
        "t/test_x.py",
        "test_top.py",
        "u/keep.sh",
    ]
    # a bare-name pattern drops the file wherever it is
    assert rel(discover_scripts(tmp_path, exclude=("test_*.py",)), tmp_path) == [
        "a.py",
        "s/b.py",
        "s/legacy/old.py",
        "u/keep.sh",
    ]
    # a folder that matches is not searched at all
    assert rel(discover_scripts(tmp_path, exclude=["legacy"]), tmp_path) == [
        "a.py",
        "s/b.py",
        "t/test_x.py",
        "test_top.py",
        "u/keep.sh",
    ]
    assert rel(discover_scripts(tmp_path, exclude=["s/**", "*.sh"]), tmp_path) == ["a.py", "t/test_x.py", "test_top.py"]


def test_subdirs(tmp_path: Path) -> None:
    for name in ("top.py", "s/a.py", "s/deep/b.py", "t/c.py", "u/d.py"):
        touch(tmp_path / name)
    assert rel(discover_scripts(tmp_path, subdirs=["s", "t"]), tmp_path) == ["s/a.py", "s/deep/b.py", "t/c.py"]
    assert rel(discover_scripts(tmp_path, subdirs="t"), tmp_path) == ["t/c.py"]
    # a pattern may be relative to root or to the subfolder
    assert rel(discover_scripts(tmp_path, ["*.py"], subdirs=["s"]), tmp_path) == ["s/a.py"]
    assert rel(discover_scripts(tmp_path, ["s/deep/*.py"], subdirs=["s"]), tmp_path) == ["s/deep/b.py"]
    # overlapping subfolders give each file once; a missing one is ignored
    assert rel(discover_scripts(tmp_path, subdirs=["s", "s/deep", "nope"]), tmp_path) == ["s/a.py", "s/deep/b.py"]
    with pytest.raises(ValueError, match="outside"):
        discover_scripts(tmp_path / "s", subdirs=["../t"])
    with pytest.raises(ValueError, match="outside"):
        discover_scripts(tmp_path / "s", subdirs=[tmp_path / "u"])


def test_explicit_subdir_is_searched_even_if_its_name_is_skipped(tmp_path: Path) -> None:
    touch(tmp_path / "build" / "gen.py")
    touch(tmp_path / "build" / "__pycache__" / "x.py")
    assert discover_scripts(tmp_path) == []
    assert rel(discover_scripts(tmp_path, subdirs=["build"]), tmp_path) == ["build/gen.py"]


def test_max_depth(tmp_path: Path) -> None:
    for name in ("a.py", "x/b.py", "x/y/c.py", "x/y/z/d.py"):
        touch(tmp_path / name)
    assert rel(discover_scripts(tmp_path, max_depth=0), tmp_path) == ["a.py"]
    assert rel(discover_scripts(tmp_path, max_depth=1), tmp_path) == ["a.py", "x/b.py"]
    assert rel(discover_scripts(tmp_path, max_depth=2), tmp_path) == ["a.py", "x/b.py", "x/y/c.py"]
    assert len(discover_scripts(tmp_path, max_depth=None)) == 4
    # depth counts from root, also when searching a subfolder
    assert rel(discover_scripts(tmp_path, subdirs=["x"], max_depth=1), tmp_path) == ["x/b.py"]
    assert discover_scripts(tmp_path, subdirs=["x/y"], max_depth=1) == []
    with pytest.raises(ValueError, match="max_depth"):
        discover_scripts(tmp_path, max_depth=-1)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_scripts(tmp_path / "nope")
    touch(tmp_path / "file.py")
    with pytest.raises(NotADirectoryError):
        discover_scripts(tmp_path / "file.py")


def test_symlinks_out_of_root_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    touch(outside / "evil.py")
    touch(outside / "nested" / "evil2.sh")
    root = tmp_path / "root"
    touch(root / "ok.py")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    (root / "linked_file.py").symlink_to(outside / "evil.py")
    (root / "sub").mkdir()
    (root / "sub" / "up.py").symlink_to(outside / "evil.py")
    (root / "sub" / "broken.py").symlink_to(root / "missing.py")
    found = discover_scripts(root)
    assert rel(found, root) == ["ok.py"]
    assert all(p.is_relative_to(root.resolve()) for p in found)
    with pytest.raises(ValueError, match="outside"):
        discover_scripts(root, subdirs=["linked_dir"])


def test_symlinks_inside_root_are_followed_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    touch(root / "real" / "a.py")
    touch(root / "tools" / "b.sh")
    (root / "alias.py").symlink_to(root / "real" / "a.py")
    (root / "tools" / "shared").symlink_to(root / "real", target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    assert rel(discover_scripts(root), root) == ["real/a.py", "tools/b.sh"]
    # through a subfolder that only reaches real/ by a link
    assert rel(discover_scripts(root, subdirs=["tools"]), root) == ["real/a.py", "tools/b.sh"]


def test_links_do_not_bypass_exclusions(tmp_path: Path) -> None:
    root = tmp_path / "root"
    touch(root / "legacy" / "old.py")
    touch(root / ".hidden" / "h.py")
    (root / "current").symlink_to(root / "legacy", target_is_directory=True)
    (root / "h").symlink_to(root / ".hidden", target_is_directory=True)
    (root / "init_alias.py").symlink_to(touch(root / "pkg" / "__init__.py"))
    assert discover_scripts(root, exclude=["legacy"]) == []


# --------------------------------------------------------------------------------------------------------------
# parse_script_metadata
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_metadata_cache()


FULL = block(
    'requires-python = ">=3.11"',
    'dependencies = ["requests"]',
    "",
    "[tool.orchestrate]",
    'depends = ["extract", "clean"]',
    "timeout = 30",
    "retry = 2",
    'args = ["--fast", "-n", "3"]',
    'env = {MODE = "test", LEVEL = "2"}',
    'stage = "etl"',
    "allowed_exit_codes = [0, 3]",
)


def test_full_block_in_python_script(tmp_path: Path) -> None:
    script = touch(tmp_path / "load.py", '"""Load."""\n\n' + FULL + "\nprint('hi')\n")
    meta = parse_script_metadata(script)
    assert meta.depends == ("extract", "clean")
    assert meta.timeout == 30.0 and isinstance(meta.timeout, float)
    assert meta.retry == RetryPolicy(max_attempts=2)
    assert meta.args == ("--fast", "-n", "3")
    assert meta.env == {"MODE": "test", "LEVEL": "2"}
    assert meta.stage == "etl"
    assert meta.allowed_exit_codes == (0, 3)
    assert meta.raw["timeout"] == 30 and set(meta.raw) == {
        "depends",
        "timeout",
        "retry",
        "args",
        "env",
        "stage",
        "allowed_exit_codes",
    }
    data = meta.to_dict()
    json.dumps(data)
    assert data["retry"]["max_attempts"] == 2 and data["depends"] == ["extract", "clean"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.timeout = 1  # type: ignore[misc]


def test_block_in_shell_script(tmp_path: Path) -> None:
    text = (
        "#!/usr/bin/env bash\nset -e\n"
        + block("[tool.orchestrate]", 'depends = "extract"', "timeout = 2.5")
        + "echo hi\n"
    )
    meta = parse_script_metadata(touch(tmp_path / "run.sh", text))
    assert meta.depends == ("extract",)
    assert meta.timeout == 2.5


def test_retry_table_and_single_string_depends(tmp_path: Path) -> None:
    text = block(
        "[tool.orchestrate]",
        'depends = "extract"',
        "[tool.orchestrate.retry]",
        "max_attempts = 3",
        "initial_delay = 0.1",
    )
    meta = parse_script_metadata(touch(tmp_path / "s.py", text))
    assert meta.depends == ("extract",)
    assert meta.retry == RetryPolicy(max_attempts=3, initial_delay=0.1)
    inline = block("[tool.orchestrate]", "retry = {max_attempts = 4, max_delay = 2}")
    assert parse_script_metadata(touch(tmp_path / "t.py", inline)).retry == RetryPolicy(max_attempts=4, max_delay=2)


def test_no_block_or_no_table_gives_defaults(tmp_path: Path) -> None:
    assert parse_script_metadata(touch(tmp_path / "a.py", "print(1)\n")) == ScriptMetadata()
    other = block('requires-python = ">=3.11"', 'dependencies = ["x"]')
    meta = parse_script_metadata(touch(tmp_path / "b.py", other))
    assert meta == ScriptMetadata()
    assert meta.allowed_exit_codes == (0,) and meta.env == {} and meta.raw == {}
    # a different block type is not ours; an indented opening is not a block
    assert parse_script_metadata(touch(tmp_path / "c.py", "# /// pyproject\n# x = 1\n# ///\n")) == ScriptMetadata()
    assert parse_script_metadata(touch(tmp_path / "d.py", "  # /// script\n")) == ScriptMetadata()


def test_malformed_toml_names_the_script_line(tmp_path: Path) -> None:
    text = "#!/usr/bin/env python\n\n" + block("[tool.orchestrate]", "timeout = 3", "depends = [extract]")
    #  line 3: '# /// script', 4: [tool.orchestrate], 5: timeout, 6: the bad line
    script = touch(tmp_path / "bad.py", text)
    with pytest.raises(ConfigError) as info:
        parse_script_metadata(script)
    err = info.value
    assert err.context["line"] == 6
    assert err.context["path"] == str(script)
    assert f"{script}:6:" in str(err)
    assert "invalid TOML" in err.message and "at line" not in err.message


def test_unknown_key_suggests_close_match(tmp_path: Path) -> None:
    text = "import os\n" + block("[tool.orchestrate]", 'depends = ["a"]', "timout = 3")
    script = touch(tmp_path / "s.py", text)
    with pytest.raises(ConfigError) as info:
        parse_script_metadata(script)
    err = info.value
    assert err.context["key"] == "timout"
    assert err.context["line"] == 5
    assert err.context["suggestions"] == ["timeout"]
    assert "did you mean 'timeout'?" in str(err)
    assert f"{script}:5:" in err.message


@pytest.mark.parametrize(
    ("setting", "key", "fragment"),
    [
        ("timeout = -1", "timeout", "positive"),
        ("timeout = 0", "timeout", "positive"),
        ('timeout = "30"', "timeout", "positive"),
        ("timeout = true", "timeout", "positive"),
        ("depends = [1, 2]", "depends", "strings"),
        ("depends = 3", "depends", "strings"),
        ('depends = [""]', "depends", "empty"),
        ('args = "--fast"', "args", "list of strings"),
        ("args = [true]", "args", "list of strings"),
        ('env = ["A"]', "env", "mapping"),
        ("env = {A = true}", "env", "quote"),
        ("stage = 3", "stage", "string"),
        ("allowed_exit_codes = []", "allowed_exit_codes", "integer"),
        ('allowed_exit_codes = ["0"]', "allowed_exit_codes", "integer"),
        ("retry = 0", "retry", "max_attempts"),
        ('retry = "often"', "retry", "retry"),
        ("retry = {max_attempts = 2, bogus = 1}", "retry", "bogus"),
    ],
)
def test_wrong_types(tmp_path: Path, setting: str, key: str, fragment: str) -> None:
    script = touch(tmp_path / "s.sh", "#!/bin/sh\n" + block("[tool.orchestrate]", "# a TOML comment", setting))
    with pytest.raises(ConfigError) as info:
        parse_script_metadata(script)
    err = info.value
    assert err.context["key"] == key
    assert err.context["line"] == 5  # the line of the setting inside the block
    assert err.context["path"] == str(script)
    assert fragment in err.message
    assert key in err.message


def test_allowed_exit_codes_accepts_single_int(tmp_path: Path) -> None:
    script = touch(tmp_path / "s.py", block("[tool.orchestrate]", "allowed_exit_codes = 2", "args = [1, 2.5]"))
    meta = parse_script_metadata(script)
    assert meta.allowed_exit_codes == (2,)
    assert meta.args == ("1", "2.5")


def test_orchestrate_must_be_a_table(tmp_path: Path) -> None:
    script = touch(tmp_path / "s.py", block("[tool]", "orchestrate = 3"))
    with pytest.raises(ConfigError, match="must be a table"):
        parse_script_metadata(script)


def test_pep723_block_rules(tmp_path: Path) -> None:
    unclosed = touch(tmp_path / "a.py", "x = 1\n# /// script\n# [tool.orchestrate]\n")
    with pytest.raises(ConfigError, match="unclosed") as info:
        parse_script_metadata(unclosed)
    assert info.value.context["line"] == 2
    # a comment line without a space after '#' ends the run of comment lines: the block never closes
    broken = touch(tmp_path / "b.py", "# /// script\n#[tool.orchestrate]\n# ///\n")
    with pytest.raises(ConfigError, match="unclosed"):
        parse_script_metadata(broken)
    twice = touch(tmp_path / "c.py", block("[tool.orchestrate]") + "\n" + block("[tool.orchestrate]"))
    with pytest.raises(ConfigError, match="more than one") as info:
        parse_script_metadata(twice)
    assert info.value.context["line"] == 5
    # the block ends at the LAST '# ///' of the comment run (a '# ///' may sit inside a TOML string)
    text = block("[tool.orchestrate]", 'stage = """', "# ///", '"""', "timeout = 4")
    meta = parse_script_metadata(touch(tmp_path / "d.py", text))
    assert meta.timeout == 4.0 and meta.stage == "# ///\n"
    # CRLF line endings
    crlf = block("[tool.orchestrate]", "timeout = 7").replace("\n", "\r\n")
    (tmp_path / "e.py").write_bytes(crlf.encode())
    assert parse_script_metadata(tmp_path / "e.py").timeout == 7.0


def test_block_past_the_first_64kb_boundary(tmp_path: Path) -> None:
    filler = "# # " + "x" * 70 + "\n"
    head = "x = 1\n" * 10_900  # ~65 KB: the block straddles the read limit
    text = head + "# /// script\n# [tool.orchestrate]\n" + filler * 20 + "# timeout = 9\n# ///\n"
    assert parse_script_metadata(touch(tmp_path / "big.py", text)).timeout == 9.0


def test_metadata_is_cached_by_mtime_and_size(tmp_path: Path) -> None:
    script = touch(tmp_path / "s.py", block("[tool.orchestrate]", "timeout = 1"))
    first = parse_script_metadata(script)
    assert parse_script_metadata(str(script)) is first
    touch(script, block("[tool.orchestrate]", "timeout = 22"))  # a different size
    second = parse_script_metadata(script)
    assert second.timeout == 22.0
    touch(script, block("[tool.orchestrate]", "timeout = 33"))  # same size: the mtime tells
    stat = script.stat()
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert parse_script_metadata(script).timeout == 33.0


def test_missing_script(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_script_metadata(tmp_path / "nope.py")


def test_dotted_keys_report_their_line(tmp_path: Path) -> None:
    text = block('requires-python = ">=3.11"', 'tool.orchestrate.stage = "a"', "tool.orchestrate.timeout = -2")
    with pytest.raises(ConfigError) as info:
        parse_script_metadata(touch(tmp_path / "s.py", text))
    assert info.value.context["line"] == 4 and info.value.context["key"] == "timeout"


def test_names_from_before_the_split_stay_importable() -> None:
    """``scripts.discovery`` was split by job; what it exported is still importable from it."""
    from pytest_orchestrator.scripts import discovery
    from pytest_orchestrator.scripts import fields
    from pytest_orchestrator.scripts import globs
    from pytest_orchestrator.scripts import pep723

    assert discovery.glob_match is globs.glob_match
    assert discovery.FIELD_KEYS is fields.FIELD_KEYS
    assert discovery.ScriptMetadata is pep723.ScriptMetadata
    assert discovery.parse_script_metadata is pep723.parse_script_metadata
    assert discovery.clear_metadata_cache is pep723.clear_metadata_cache
