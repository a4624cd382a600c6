"""Bad input never gives a traceback, and is never silent."""

from __future__ import annotations

from pathlib import Path

from plugin_helpers import assert_clean_error
from plugin_helpers import lean_inner_runs
from plugin_helpers import project
from plugin_helpers import script
import pytest

from pytest_orchestrator.scripts.errors import ConfigError
from pytest_orchestrator.scripts.pep723 import clear_metadata_cache
from pytest_orchestrator.scripts.pep723 import parse_script_metadata


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("timeout('abc')", "seconds must be a number, got str 'abc'"),
        ("timeout()", "expected at least one argument"),
        ("timeout(1, method='fork')", "method must be 'signal' or 'thread'"),
        ("timeout(1, func_only='yes')", "func_only must be true or false"),
        ("timeout(1, 'signal', True, 4)", "expected at most 3 arguments"),
        ("timeout(1, sekonds=2)", "unexpected keyword argument 'sekonds'"),
    ],
)
def test_a_malformed_timeout_marker_with_pytest_timeout_is_a_clean_error(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    """pytest-timeout (installed with the test extra) would end these in an INTERNALERROR."""
    project(pytester)
    pytester.makepyfile(test_t=f"import pytest\n\n@pytest.mark.{marker}\ndef test_a(): pass\n\ndef test_b(): pass\n")
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider")
    assert_clean_error(result, "test_t.py::test_a", message)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_valid_pytest_timeout_marker_still_works(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_t="import pytest, time\n\n@pytest.mark.timeout(0.5, method='signal')\ndef test_a(): time.sleep(5)\n"
    )
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])


def test_a_summary_hook_that_raises_is_a_named_plugin_error(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(
        """
        def pytest_orchestrate_summary(config, summary, lines):
            raise ValueError("broken reporter")
        """
    )
    pytester.makepyfile(test_t="def test_a(): pass\n")
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider")
    text = result.stdout.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    result.stdout.fnmatch_lines(
        [
            "*orchestrate: plugin error: the pytest_orchestrate_summary implementation pytest_orchestrate_summary "
            "in plugin *conftest.py* raised ValueError: broken reporter",
            "*= 1 passed in *",
        ]
    )


def test_orchestrate_options_without_orchestrate_say_they_are_ignored(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_t="def test_a(): pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--orchestrate-stage", "unit", "--orchestrate-timeout", "3")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["orchestrate: ignored without --orchestrate (*): --orchestrate-stage unit, --orchestrate-timeout 3*"]
    )
    quiet = pytester.runpytest("-p", "no:cacheprovider")
    assert "ignored without --orchestrate" not in quiet.stdout.str()


def test_an_unknown_stage_names_the_stages_that_exist(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_t="import pytest\n\n@pytest.mark.stage('unit')\ndef test_a(): pass\n\n"
        "@pytest.mark.stage('etl')\ndef test_b(): pass\n"
    )
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider", "--orchestrate-stage", "nosuch")
    assert_clean_error(result, "no stage named 'nosuch'; the stages are: etl, unit")


def test_an_alias_that_shadows_a_test_name_is_an_error(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_t="""
        import pytest

        @pytest.mark.depends(name="test_b")
        def test_a(): pass

        def test_b(): pass

        @pytest.mark.depends("test_b")
        def test_c(): pass
        """
    )
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider")
    assert_clean_error(result, "test_t.py::test_a: alias 'test_b' shadows the name of test_t.py::test_b")


def test_an_alias_naming_a_script_stem_is_an_error(pytester: pytest.Pytester) -> None:
    project(pytester, "orchestrate_scripts = scripts/*.py\n")
    script(pytester, "scripts/load.py", "print('load')")
    pytester.makepyfile(test_t="import pytest\n\n@pytest.mark.depends(name='load')\ndef test_a(): pass\n")
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider")
    assert_clean_error(result, "alias 'load' shadows the name of scripts/load.py::load")


def test_two_pep723_blocks_are_a_duplicate_block(tmp_path: Path) -> None:
    path = tmp_path / "two.py"
    path.write_text(
        "# /// script\n# [tool.orchestrate]\n# timeout = 1\n# ///\n"
        "# /// script\n# [tool.orchestrate]\n# timeout = 2\n# ///\nprint()\n"
    )
    clear_metadata_cache()
    with pytest.raises(ConfigError) as info:
        parse_script_metadata(path)
    assert "two.py:5: duplicate block" in info.value.message
    assert "TOML" not in info.value.message


def test_two_pep723_blocks_fail_the_script_item_cleanly(pytester: pytest.Pytester) -> None:
    project(pytester)
    script(
        pytester,
        "scripts/two.py",
        "# /// script\n# [tool.orchestrate]\n# timeout = 2\n# ///\nprint()\n",
        meta="timeout = 1",
    )
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*two.py:5: duplicate block*"])
    assert "Traceback" not in result.stdout.str()
