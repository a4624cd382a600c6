"""No way out of the root: the plugin collects scripts by the CLI's discovery rule.

A link whose target leaves the rootdir is skipped with a warning naming it, a script reached through two paths runs
once, a link cycle never hangs collection, an ``orchestrate.yaml`` entry naming no script is a warning with close
matches, and a dependency on a stem two scripts share is an error listing them (as ``orchestrate list`` says).
"""

from __future__ import annotations

import os
from pathlib import Path

from plugin_helpers import assert_clean_error
from plugin_helpers import assert_counts
from plugin_helpers import lean_inner_runs
from plugin_helpers import project
from plugin_helpers import script
from plugin_helpers import write
import pytest

from pytest_orchestrator.plugin.script_scope import glob_base
from pytest_orchestrator.scripts.config import load_config
from pytest_orchestrator.scripts.discovery import discover_scripts
from pytest_orchestrator.scripts.entries import missing_entries


#: inner runs show our warnings instead of turning them into errors (this suite runs with ``-W error``)
SHOW = ("-W", "always::pytest_orchestrator.plugin.script_scope.OrchestrateWarning")


#: scripts are opt-in: these projects declare theirs by the ini globs
GLOBS = "orchestrate_scripts = scripts/**/*.py scripts/**/*.sh\n"


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


def _evil(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A script outside the project that leaves a mark when it runs: (script, mark)."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    mark = elsewhere / "ran"
    evil = elsewhere / "evil.py"
    evil.write_text(f"open({str(mark)!r}, 'w').write('ran')\n")
    return evil, mark


def test_a_file_link_out_of_the_root_is_skipped_with_a_warning(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project(pytester, GLOBS)
    script(pytester, "scripts/a.py", "print('a')")
    evil, mark = _evil(tmp_path_factory)
    os.symlink(evil, pytester.path / "scripts" / "evil.py")
    result = pytester.runpytest(*SHOW, "--orchestrate", "-p", "no:cacheprovider")
    assert_counts(result, passed=1)
    result.stdout.fnmatch_lines(["*OrchestrateWarning: orchestrate: skipped scripts/evil.py: a link to *evil.py*"])
    assert not mark.exists()


def test_a_folder_link_out_of_the_root_is_skipped_with_a_warning(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project(pytester, GLOBS)
    script(pytester, "scripts/a.py", "print('a')")
    evil, mark = _evil(tmp_path_factory)
    os.symlink(evil.parent, pytester.path / "scripts" / "ext")
    result = pytester.runpytest(*SHOW, "--orchestrate", "-p", "no:cacheprovider")
    assert_counts(result, passed=1)
    result.stdout.fnmatch_lines(["*skipped scripts/ext: a link to *, outside the rootdir*"])
    assert not mark.exists()


def test_a_link_back_into_the_tree_runs_each_script_once(pytester: pytest.Pytester) -> None:
    project(pytester, GLOBS)
    script(pytester, "scripts/a.py", "print('a')")
    script(pytester, "scripts/sub/b.py", "print('b')")
    os.symlink(".", pytester.path / "scripts" / "self")  # before the fix: 41 copies of each script
    os.symlink("a.py", pytester.path / "scripts" / "alias.py")
    result = pytester.runpytest(*SHOW, "--orchestrate", "-p", "no:cacheprovider", "-v")
    assert_counts(result, passed=2)
    result.stdout.fnmatch_lines(["scripts/a.py::a PASSED*", "scripts/sub/b.py::b PASSED*"])


def test_a_two_link_cycle_never_hangs_collection(pytester: pytest.Pytester) -> None:
    project(pytester, GLOBS)
    script(pytester, "scripts/x/one.py", "print('1')")
    script(pytester, "scripts/y/two.py", "print('2')")
    os.symlink("../y", pytester.path / "scripts" / "x" / "to_y")
    os.symlink("../x", pytester.path / "scripts" / "y" / "to_x")
    result = pytester.runpytest(*SHOW, "--orchestrate", "-p", "no:cacheprovider", "--co", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert sorted(ids) == ["scripts/x/one.py::one", "scripts/y/two.py::two"], result.stdout.str()


def test_a_config_entry_naming_no_script_is_a_warning_with_close_matches(pytester: pytest.Pytester) -> None:
    project(pytester, GLOBS)
    script(pytester, "scripts/load.py", "print('load')")
    config = "scripts:\n  scripts/load.py: {timeout: 5}\n  scripts/lod.py: {retry: 2}\n"
    write(pytester, "orchestrate.yaml", config)
    result = pytester.runpytest(*SHOW, "--orchestrate", "-p", "no:cacheprovider")
    assert_counts(result, passed=1)
    result.stdout.fnmatch_lines(
        ["*orchestrate.yaml:3: scripts entry 'scripts/lod.py' names no script; did you mean 'scripts/load.py'?*"]
    )
    strict = pytester.runpytest(*SHOW, "--orchestrate", "--orchestrate-strict", "-p", "no:cacheprovider")
    assert_clean_error(strict, "config entries that name no script", "scripts entry 'scripts/lod.py' names no script")


def test_a_stem_two_scripts_share_is_an_ambiguous_dependency(pytester: pytest.Pytester) -> None:
    project(pytester, GLOBS)
    script(pytester, "scripts/a/load.py", "print('a')")
    script(pytester, "scripts/b/load.py", "print('b')")
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.depends("load")
        def test_x():
            pass
        """
    )
    result = pytester.runpytest(*SHOW, "--orchestrate", "-p", "no:cacheprovider")
    # as an unknown dependency: the item errors, naming the candidates (a usage error under --orchestrate-strict)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_x.py::test_x: dependency 'load' is ambiguous: it matches scripts/a/load.py, scripts/b/load.py; *"]
    )
    strict = pytester.runpytest(*SHOW, "--orchestrate", "--orchestrate-strict", "-p", "no:cacheprovider")
    assert_clean_error(strict, "dependency 'load' is ambiguous", "scripts/a/load.py, scripts/b/load.py")


def test_a_stem_shared_with_an_uncollected_script_is_ambiguous_too(pytester: pytest.Pytester) -> None:
    project(pytester, GLOBS)
    script(pytester, "scripts/a/load.py", "print('a')")
    script(pytester, "scripts/b/load.py", "print('b')")
    pytester.makepyfile(test_x="import pytest\n\n@pytest.mark.depends('load')\ndef test_x():\n    pass\n")
    result = pytester.runpytest(
        *SHOW, "--orchestrate", "--orchestrate-strict", "-p", "no:cacheprovider", "test_x.py", "scripts/a"
    )
    assert_clean_error(result, "dependency 'load' is ambiguous", "scripts/a/load.py, scripts/b/load.py")


def test_a_stem_one_script_has_still_resolves(pytester: pytest.Pytester) -> None:
    project(pytester, GLOBS)
    script(pytester, "scripts/a/load.py", "print('a')")
    pytester.makepyfile(test_x="import pytest\n\n@pytest.mark.depends('load')\ndef test_x():\n    pass\n")
    result = pytester.runpytest(*SHOW, "--orchestrate", "-p", "no:cacheprovider", "-v")
    assert_counts(result, passed=2)


# -- the pieces ---------------------------------------------------------------------------------------------------


def test_discovery_reports_the_links_it_skips(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text("")
    root = tmp_path / "root"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "a.py").write_text("")
    os.symlink(outside / "evil.py", root / "scripts" / "evil.py")
    os.symlink(outside, root / "scripts" / "ext")
    skipped: list[tuple[Path, Path]] = []
    found = discover_scripts(root, on_skip=lambda link, target: skipped.append((link, target)))
    assert found == [(root / "scripts" / "a.py").resolve()]
    assert sorted(link.name for link, _ in skipped) == ["evil.py", "ext"]


def test_glob_base_is_the_fixed_head_of_a_glob() -> None:
    assert glob_base("scripts/**/*.py") == "scripts"
    assert glob_base("jobs/nightly/*.sh") == "jobs/nightly"
    assert glob_base("**/*.py") == ""
    assert glob_base("*.py") == ""
    assert glob_base("./ops/test_*.py") == "ops"


def test_missing_entries_knows_trailing_names_and_absolute_escapes(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "load.py").write_text("")
    (tmp_path / "orchestrate.yaml").write_text(
        "scripts:\n  load.py: {timeout: 1}\n  ../../x.py: {timeout: 1}\n  scripts/load.py: {timeout: 2}\n"
    )
    config = load_config(tmp_path)
    missing = missing_entries(config, [tmp_path / "scripts" / "load.py"])
    assert [(m.entry, m.line) for m in missing] == [("../../x.py", 3)]


def test_a_config_entry_that_misspells_a_script_name_is_told_the_entry_to_write(tmp_path: Path) -> None:
    # "loadr" is far from "scripts/loader.py" as a path, close to its name: the hint is an entry that works
    (tmp_path / "scripts" / "etl").mkdir(parents=True)
    for rel in ("scripts/loader.py", "scripts/report.py", "scripts/etl/report.py"):
        (tmp_path / rel).write_text("")
    (tmp_path / "orchestrate.yaml").write_text("scripts:\n  loadr: {timeout: 1}\n  reprt: {timeout: 1}\n")
    config = load_config(tmp_path)
    scripts = [tmp_path / rel for rel in ("scripts/loader.py", "scripts/report.py", "scripts/etl/report.py")]
    missing = {m.entry: m for m in missing_entries(config, scripts)}
    assert missing["loadr"].suggestions == ("loader.py",)
    assert missing["loadr"].message.endswith("scripts entry 'loadr' names no script; did you mean 'loader.py'?")
    # a name two scripts share is no entry of its own: their paths are
    assert missing["reprt"].suggestions == ("scripts/report.py", "scripts/etl/report.py")
