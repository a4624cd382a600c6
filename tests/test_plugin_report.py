"""``pytest --orchestrate --orchestrate-report PATH``: the session's run report (serial and ``-n 2``), validated
against the published schema, and secrets masked in the report and in the terminal output of the run."""

from __future__ import annotations

import json
from typing import Any

from plugin_helpers import NO_TIMEOUT_PLUGIN
from plugin_helpers import assert_clean_error
from plugin_helpers import junit_cases
from plugin_helpers import lean_xdist_inner_runs
from plugin_helpers import project
from plugin_helpers import properties
from plugin_helpers import script
import pytest

from pytest_orchestrator.reporting.schema import validate_report


SECRET = "s3cr3t-t0ken-value"
DB_SECRET = "postgres://admin:hunter2@db"

SUITE = """
import os
import time
import pytest

N = []

def test_build():
    time.sleep(0.4)  # longer than the seed script, so the critical path is the test chain

@pytest.mark.depends("test_build")
@pytest.mark.stage("package")
def test_package():
    pass

@pytest.mark.depends("test_package")
def test_broken():
    print("token is", os.environ["API_TOKEN"])
    assert False, "cannot reach " + os.environ["DB_URL"]

@pytest.mark.depends("test_broken")
def test_deploy():
    pass

@pytest.mark.retry(max_attempts=3, initial_delay=0)
def test_flaky():
    N.append(1)
    assert len(N) >= 2, "flaky with " + os.environ["API_TOKEN"]

@pytest.mark.timeout(0.3)
def test_hangs():
    time.sleep(5)

@pytest.mark.depends("scripts/seed.py")
def test_after_seed():
    pass
"""

SEED = """
import os, sys
print("seeding with", os.environ["API_TOKEN"])
sys.exit(3)
"""


@pytest.fixture(autouse=True)
def _env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)
    monkeypatch.setenv("API_TOKEN", SECRET)
    monkeypatch.setenv("DB_URL", DB_SECRET)  # secret only because the ini names it


def _project(pytester: pytest.Pytester) -> None:
    project(pytester, "orchestrate_secrets = DB_URL\norchestrate_scripts = scripts/*.py\n")
    pytester.makepyfile(test_wf=SUITE)
    script(pytester, "scripts/seed.py", SEED)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--orchestrate", "-p", "no:cacheprovider", *NO_TIMEOUT_PLUGIN, *args)


def _items(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in report["items"]}


def _check(report: dict[str, Any], result: pytest.RunResult, *, workers: list[str] | None) -> None:
    validate_report(report)
    assert report["kind"] == "pytest"
    assert report["success"] is False
    items = _items(report)
    assert len(items) == 8
    assert items["scripts/seed.py::seed"]["kind"] == "script"
    assert items["test_wf.py::test_build"]["kind"] == "test"
    assert items["test_wf.py::test_package"]["stage"] == "package"
    assert items["test_wf.py::test_build"]["status"] == "passed"
    assert items["test_wf.py::test_hangs"]["status"] == "timeout"
    assert items["test_wf.py::test_hangs"]["attempts"][-1]["outcome"] == "timeout"
    flaky = items["test_wf.py::test_flaky"]
    assert [a["outcome"] for a in flaky["attempts"]] == ["failed", "passed"]
    assert [a["number"] for a in flaky["attempts"]] == [1, 2]
    first, second = flaky["attempts"]
    assert first["start"] <= first["end"] <= second["start"] <= second["end"]
    assert "AssertionError" in first["error"] and second["error"] is None
    broken = items["test_wf.py::test_broken"]
    assert broken["status"] == "failed" and "cannot reach" in broken["error"]
    assert "token is ***" in broken["output_tail"]
    deploy = items["test_wf.py::test_deploy"]
    assert deploy["status"] == "skipped" and deploy["attempts"] == []
    assert deploy["skip_cause"] == "dependency 'test_wf.py::test_broken' failed"
    assert deploy["root_cause"] == "test_wf.py::test_broken"
    assert items["test_wf.py::test_after_seed"]["root_cause"] == "scripts/seed.py::seed"
    assert "seeding with ***" in items["scripts/seed.py::seed"]["output_tail"]
    edges = {(e["from"], e["to"], e["kind"]) for e in report["edges"]}
    assert ("test_wf.py::test_build", "test_wf.py::test_package", "hard") in edges
    assert ("scripts/seed.py::seed", "test_wf.py::test_after_seed", "hard") in edges
    assert len(edges) == 4
    assert report["critical_path"][:2] == ["test_wf.py::test_build", "test_wf.py::test_package"]
    if workers is not None:
        assert report["workers"] == workers
        assert {a["worker"] for i in items.values() for a in i["attempts"]} <= set(workers)
    # secrets: neither in the report nor anywhere in what the run printed
    text = json.dumps(report)
    for secret in (SECRET, DB_SECRET):
        assert secret not in text
        assert secret not in result.stdout.str() + result.stderr.str()
    out = result.stdout.str()
    assert "seeding with ***" in out  # the failing script's stdout, in pytest's failure section
    assert "AssertionError: cannot reach ***" in out


def test_serial_json_report(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = _run(pytester, "--orchestrate-report", "out/report.json")
    path = pytester.path / "out" / "report.json"
    report = json.loads(path.read_text())
    _check(report, result, workers=None)
    assert f"report: {path}" in result.stdout.str()
    assert report["workers"] == ["slot 1"]  # serial: one lane


def test_xdist_json_report_written_by_the_controller(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = _run(pytester, "-n", "2", "--orchestrate-report", "report.json")
    report = json.loads((pytester.path / "report.json").read_text())
    _check(report, result, workers=["gw0", "gw1"])
    assert report["metadata"]["numprocesses"] == 2


def test_html_report(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = _run(pytester, "--orchestrate-report", "report.html")
    html = (pytester.path / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") or html.lstrip().lower().startswith("<!doctype html>")
    assert "test_wf.py::test_flaky" in html
    assert SECRET not in html and DB_SECRET not in html
    assert result.ret == 1


def test_bad_report_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    _project(pytester)
    assert_clean_error(_run(pytester, "--orchestrate-report", "report.txt"), "must end in .json or .html")


def test_masking_without_a_report(pytester: pytest.Pytester) -> None:
    """The terminal, JUnit XML and the summary are masked under --orchestrate whether or not a report is written."""
    _project(pytester)
    result = _run(pytester, "-rA", "--junitxml=junit.xml")
    text = result.stdout.str() + (pytester.path / "junit.xml").read_text()
    assert SECRET not in text and DB_SECRET not in text
    assert "token is ***" in text


def test_a_report_needs_orchestrate(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--orchestrate-report", "report.json")
    assert_clean_error(result, "--orchestrate-report needs --orchestrate")
    assert not (pytester.path / "report.json").exists()


JUNIT_SUITE = """
import pytest

N = []

@pytest.mark.stage("build")
def test_build():
    assert False, "compiler crashed"

@pytest.mark.depends("test_build")
def test_package():
    pass

@pytest.mark.depends("test_package")
@pytest.mark.stage("ship")
def test_deploy():
    pass

@pytest.mark.retry(max_attempts=3, initial_delay=0)
def test_flaky():
    N.append(1)
    assert len(N) >= 3, f"try {len(N)}"

@pytest.mark.retry(max_attempts=2, initial_delay=0)
@pytest.mark.timeout(0.2)
def test_slow():
    import time
    time.sleep(5)
"""


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_junit_carries_attempts_stage_and_root_cause(pytester: pytest.Pytester, xdist: bool) -> None:
    project(pytester)
    pytester.makepyfile(test_j=JUNIT_SUITE)
    result = _run(pytester, "--junitxml=junit.xml", *(("-n", "2") if xdist else ()))
    assert result.ret == 1
    cases = junit_cases(pytester.path / "junit.xml")
    assert len(cases) == 5  # one testcase per item, retries or not
    flaky = properties(cases["test_j.test_flaky"])
    assert flaky["attempts"] == "3"
    assert [flaky[f"attempt_{n}_outcome"] for n in (1, 2, 3)] == ["failed", "failed", "passed"]
    assert "try 1" in flaky["attempt_1_error"] and "try 2" in flaky["attempt_2_error"]
    assert "attempt_3_error" not in flaky
    slow = properties(cases["test_j.test_slow"])
    assert slow["attempts"] == "2"
    assert [slow["attempt_1_outcome"], slow["attempt_2_outcome"]] == ["timeout", "timeout"]
    assert "timed out after 0.2 s" in slow["attempt_2_error"]
    assert properties(cases["test_j.test_build"])["stage"] == "build"
    assert properties(cases["test_j.test_package"]) == {"root_cause": "test_j.py::test_build"}
    assert properties(cases["test_j.test_deploy"]) == {"stage": "ship", "root_cause": "test_j.py::test_build"}


def test_soft_edges_are_marked_and_skip_nothing(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_s="""
        import pytest

        def test_prepare():
            assert False

        @pytest.mark.depends("test_prepare", soft=True)
        def test_soft():
            pass

        @pytest.mark.depends("test_prepare")
        def test_hard():
            pass
        """
    )
    _run(pytester, "--orchestrate-report", "report.json")
    report = json.loads((pytester.path / "report.json").read_text())
    validate_report(report)
    edges = {(e["from"], e["to"]): e["kind"] for e in report["edges"]}
    assert edges == {
        ("test_s.py::test_prepare", "test_s.py::test_soft"): "soft",
        ("test_s.py::test_prepare", "test_s.py::test_hard"): "hard",
    }
    items = _items(report)
    assert items["test_s.py::test_soft"]["status"] == "passed"
    assert items["test_s.py::test_hard"]["root_cause"] == "test_s.py::test_prepare"
