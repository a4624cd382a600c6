"""Scripts as test items: collection, outcomes, settings from PEP 723 metadata and orchestrate.yaml, run_script."""

from __future__ import annotations

import os
from pathlib import Path
import sys
import time

from plugin_helpers import SCRIPTS_INI
from plugin_helpers import lean_inner_runs
from plugin_helpers import order_of
from plugin_helpers import project
from plugin_helpers import script
from plugin_helpers import write
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


def test_scripts_become_items(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(pytester, "scripts/load.py", "print('loaded')")
    script(pytester, "scripts/sub/deep.py", "print('deep')")
    write(pytester, "scripts/clean.sh", "echo cleaned\n")
    write(pytester, "scripts/__init__.py", "")
    write(pytester, "scripts/conftest.py", "")
    write(pytester, "tools/other.py", "print('not a script')\n")
    pytester.makepyfile(test_mod="def test_x():\n    pass\n")
    result = pytester.runpytest("--orchestrate", "--co", "-q")
    assert result.ret == 0
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "scripts/clean.sh::clean",
        "scripts/load.py::load",
        "scripts/sub/deep.py::deep",
        "test_mod.py::test_x",
    ]


def test_custom_globs_and_test_modules(pytester: pytest.Pytester) -> None:
    """Only files matching orchestrate_scripts are scripts; test_*.py stays a test module unless a glob says so."""
    project(pytester, "orchestrate_scripts = jobs/*.py ops/test_*.py\n")
    script(pytester, "jobs/nightly.py", "print('ok')")
    script(pytester, "jobs/test_inside.py", "print('a script: matches jobs/*.py')")
    script(pytester, "ops/test_probe.py", "print('a script by glob')")
    script(pytester, "scripts/load.py", "print('not matched by the custom globs')")
    pytester.makepyfile(test_mod="def test_x():\n    pass\n")
    result = pytester.runpytest("--orchestrate", "--co", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "jobs/nightly.py::nightly",
        "jobs/test_inside.py::test_inside",
        "ops/test_probe.py::test_probe",
        "test_mod.py::test_x",
    ]


def test_script_named_on_command_line(pytester: pytest.Pytester) -> None:
    """A .py script named on the command line is a script item; a test module named there stays one."""
    project(pytester, SCRIPTS_INI)
    write(pytester, "tools/migrate.py", "print('migrated')\n")
    write(pytester, "tools/run.sh", "echo ran\n")
    pytester.makepyfile(test_mod="def test_x():\n    pass\n")
    result = pytester.runpytest("--orchestrate", "-v", "tools/migrate.py", "tools/run.sh", "test_mod.py")
    result.assert_outcomes(passed=3)
    assert order_of(result) == ["tools/migrate.py::migrate", "tools/run.sh::run", "test_mod.py::test_x"]


def test_failure_shows_command_status_and_output(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(
        pytester,
        "scripts/load.py",
        """
        import sys
        for i in range(30):
            print(f"out line {i}")
        print("something broke", file=sys.stderr)
        sys.exit(3)
        """,
        meta='args = ["--rows", "10"]',
    )
    result = pytester.runpytest("--orchestrate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "scripts/load.py exited with status 3",
            "command: *python* */scripts/load.py --rows 10",
            "exit status: 3",
            "----- stdout (last 20 of 30 lines) -----",
            "out line 10",
            "*",
            "out line 29",
            "----- stderr (1 lines) -----",
            "something broke",
            "*FAILED scripts/load.py::load*",  # (pytest < 8.1 prints no message for a non-Python item)
        ]
    )
    assert "out line 9\n" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_exit_77_skips_with_last_stderr_line(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(
        pytester,
        "scripts/needs_db.py",
        "import sys\nprint('checking', file=sys.stderr)\n"
        "print('no database configured', file=sys.stderr)\nsys.exit(77)\n",
    )
    write(pytester, "scripts/bare.sh", "exit 77\n")
    result = pytester.runpytest("--orchestrate", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] scripts/bare.sh:1: bare exited with status 77",
            "SKIPPED [[]1[]] scripts/needs_db.py:1: no database configured",
        ]
    )


def test_timeout_kills_the_process_group(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    pidfile = pytester.path / "child.pid"
    script(
        pytester,
        "scripts/hang.py",
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(60)
        """,
        meta="timeout = 1",
    )
    start = time.monotonic()
    result = pytester.runpytest("--orchestrate")
    assert time.monotonic() - start < 20
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["scripts/hang.py timed out after 1 s (process group killed)"])
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child {child} of the timed-out script is still alive")


def test_default_timeout_applies_to_scripts(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(pytester, "scripts/slow.py", "import time\ntime.sleep(30)\n")
    result = pytester.runpytest("--orchestrate", "--orchestrate-timeout", "0.5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*timed out after 0.5 s*"])


def test_metadata_args_env_and_allowed_exit_codes(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(
        pytester,
        "scripts/check.py",
        """
        import os, sys
        assert sys.argv[1:] == ["--mode", "fast"], sys.argv
        assert os.environ["ORCH_LEVEL"] == "3"
        assert os.getcwd() == os.environ["EXPECTED_CWD"], os.getcwd()
        sys.exit(3)
        """,
        meta="""
        args = ["--mode", "fast"]
        env = {ORCH_LEVEL = "3"}
        allowed_exit_codes = [0, 3]
        """,
    )
    os.environ["EXPECTED_CWD"] = str(pytester.path)
    try:
        result = pytester.runpytest("--orchestrate")
    finally:
        del os.environ["EXPECTED_CWD"]
    result.assert_outcomes(passed=1)


def test_orchestrate_yaml_wins_over_metadata(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(
        pytester,
        "scripts/a.py",
        "import sys\nassert sys.argv[1:] == ['from-yaml'], sys.argv\n",
        meta='args = ["inline"]',
    )
    script(pytester, "scripts/legacy.py", "raise SystemExit(1)")
    write(
        pytester,
        "orchestrate.yaml",
        """
        scripts:
          scripts/a.py:
            args: ["from-yaml"]
          scripts/legacy.py:
            skip: true
        """,
    )
    result = pytester.runpytest("--orchestrate", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*scripts/legacy.py*skipped by the orchestrate config*orchestrate.yaml*"])


def test_malformed_metadata_is_a_clean_error(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(pytester, "scripts/bad.py", "print('x')", meta="timout = 3")
    result = pytester.runpytest("--orchestrate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # a rejected configuration: nothing runs
    text = result.stdout.str()
    assert "scripts/bad.py:3: unknown key 'timout'" in text
    assert "did you mean 'timeout'" in text
    assert "Traceback" not in text


def test_malformed_yaml_is_a_clean_error(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(pytester, "scripts/a.py", "print('x')")
    write(pytester, "orchestrate.yaml", "defaults:\n  timeout: -4\n")
    result = pytester.runpytest("--orchestrate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # a rejected configuration: nothing runs
    text = result.stdout.str()
    assert "orchestrate.yaml:2:" in text
    assert "Traceback" not in text


def test_keyword_deselect_and_stage_marker_filters(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(pytester, "scripts/extract.py", "print(1)", meta='stage = "etl"')
    script(pytester, "scripts/report.py", "print(2)")
    script(pytester, "scripts/other.py", "print(3)")
    result = pytester.runpytest(
        "--orchestrate", "-v", "-k", "extract or report", "--deselect", "scripts/report.py::report"
    )
    result.assert_outcomes(passed=1)
    assert order_of(result) == ["scripts/extract.py::extract"]
    result = pytester.runpytest("--orchestrate", "-v", "-m", "stage")
    result.assert_outcomes(passed=1)
    assert order_of(result) == ["scripts/extract.py::extract"]


def test_last_failed_reruns_the_failed_script(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(pytester, "scripts/good.py", "print('ok')")
    script(pytester, "scripts/bad.py", "raise SystemExit(2)")
    pytester.runpytest("--orchestrate").assert_outcomes(passed=1, failed=1)
    result = pytester.runpytest("--orchestrate", "--lf", "-v")
    result.assert_outcomes(failed=1)
    assert order_of(result) == ["scripts/bad.py::bad"]


def test_run_script_fixture(pytester: pytest.Pytester) -> None:
    """run_script runs a script like an item (settings apply), relative to rootdir, and returns the result."""
    project(pytester, SCRIPTS_INI)
    script(
        pytester,
        "scripts/echo.py",
        """
        import os, sys
        print(" ".join(sys.argv[1:]), os.environ.get("WHO"))
        sys.exit(int(os.environ.get("CODE", 0)))
        """,
        meta='args = ["hello"]\nenv = {WHO = "meta"}',
    )
    script(pytester, "scripts/slow.py", "import time\ntime.sleep(30)\n")
    pytester.makepyfile(
        test_use="""
        def test_run(run_script):
            result = run_script("scripts/echo.py", "world", env={"WHO": "caller"})
            assert result.status == "passed"
            assert result.exit_code == 0
            assert result.stdout.strip() == "hello world caller"
            failed = run_script("scripts/echo.py", env={"CODE": "5"})
            assert failed.status == "failed" and failed.exit_code == 5

        def test_timeout(run_script):
            result = run_script("scripts/slow.py", timeout=0.5)
            assert result.status == "timeout"
            assert "timed out after 0.5 s" in result.error

        def test_missing(run_script):
            run_script("scripts/nope.py")
        """
    )
    # the fixture works with or without --orchestrate
    for args in ([], ["--orchestrate", "-k", "test_"]):
        result = pytester.runpytest(*args)
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(["*run_script: no such script: *scripts/nope.py*"])


def test_run_script_retries_per_settings(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    counter = pytester.path / "count.txt"
    script(
        pytester,
        "scripts/flaky.py",
        f"""
        import pathlib, sys
        p = pathlib.Path({str(counter)!r})
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        sys.exit(0 if n >= 2 else 1)
        """,
        meta="retry = {max_attempts = 3, initial_delay = 0}",
    )
    pytester.makepyfile(
        test_use="""
        def test_run(run_script):
            result = run_script("scripts/flaky.py")
            assert result.status == "passed"
            assert result.attempts == 2
            assert result.attempt_errors == ["exited with status 1"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.skipif(sys.platform != "linux", reason="bash scripts")
def test_shell_script_env_and_failure(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    write(
        pytester,
        "scripts/deploy.sh",
        """
        # /// script
        # [tool.orchestrate]
        # env = {TARGET = "staging"}
        # ///
        echo "deploying to $TARGET"
        echo "no credentials" >&2
        exit 4
        """,
    )
    result = pytester.runpytest("--orchestrate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["scripts/deploy.sh exited with status 4", "command: bash *deploy.sh", "deploying to staging"]
    )
