"""The workflow summary, --orchestrate-graph and the duration cache."""

from __future__ import annotations

import json

from plugin_helpers import NO_TIMEOUT_PLUGIN
from plugin_helpers import lean_inner_runs
from plugin_helpers import project
from plugin_helpers import summary_lines
import pytest

from pytest_orchestrator.plugin.summary import ItemRecord
from pytest_orchestrator.plugin.summary import build_summary
from pytest_orchestrator.plugin.summary import format_summary


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


SUITE = """
import time
import pytest



N = []

def test_build():
    time.sleep(0.15)

@pytest.mark.depends("test_build")
def test_package():
    time.sleep(0.15)

@pytest.mark.depends("test_package")
def test_broken():
    assert False

@pytest.mark.depends("test_broken")
def test_deploy(): pass

@pytest.mark.depends("test_deploy")
def test_announce(): pass

@pytest.mark.retry(max_attempts=3, initial_delay=0)
def test_flaky():
    N.append(1)
    assert len(N) >= 2

@pytest.mark.timeout(0.2)
def test_hangs():
    time.sleep(5)

def test_independent(): pass
"""


def test_summary_contents(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    result = pytester.runpytest("--orchestrate", *NO_TIMEOUT_PLUGIN)
    lines = summary_lines(result)
    text = "\n".join(lines)
    assert lines[0] == "8 items: 4 passed, 1 failed, 1 timeout, 2 skipped; 1 rerun"
    assert lines[1].startswith("wall time ") and "parallel efficiency" in lines[1] and "(1 worker)" in lines[1]
    assert lines[2].startswith("critical path ")
    assert "test_wf.py::test_build (" in lines[2] and " -> test_wf.py::test_package (" in lines[2]
    assert "flaky (passed after retries):\n  test_wf.py::test_flaky: 2 attempts" in text
    assert "timeouts:\n  test_wf.py::test_hangs: timed out after 0.2 s" in text
    assert (
        "dependency skips:\n"
        "  test_wf.py::test_deploy: dependency 'test_wf.py::test_broken' failed\n"
        "  test_wf.py::test_announce: dependency 'test_wf.py::test_deploy' was skipped "
        "(root cause: 'test_wf.py::test_broken' failed)"
    ) in text
    # no per-item table without -v
    assert not any(line.startswith("status ") for line in lines)
    # it sits after the failures and just above pytest's short summary and final stats line
    out = result.outlines
    position = next(i for i, line in enumerate(out) if "workflow summary" in line)
    assert position > next(i for i, line in enumerate(out) if "FAILURES" in line)
    assert "short test summary info" in out[position + len(lines) + 1]
    assert "failed" in out[-1] and "passed" in out[-1]


def test_verbose_table(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    result = pytester.runpytest("--orchestrate", "-v", *NO_TIMEOUT_PLUGIN)
    lines = summary_lines(result)
    header = lines.index(next(line for line in lines if line.startswith("status ")))
    assert lines[header].split() == ["status", "attempts", "duration", "start", "item"]
    rows = {line.split()[-1]: line.split() for line in lines[header + 1 :]}
    assert len(rows) == 8
    assert rows["test_wf.py::test_flaky"][:2] == ["passed", "2"]
    assert rows["test_wf.py::test_hangs"][0] == "timeout"
    assert rows["test_wf.py::test_deploy"][0] == "skipped"
    assert rows["test_wf.py::test_build"][4].startswith("+")


def test_retried_and_still_failing(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_r="""
        import pytest

        @pytest.mark.retry(max_attempts=2, initial_delay=0)
        def test_always():
            raise ValueError("nope")
        """
    )
    result = pytester.runpytest("--orchestrate")
    text = "\n".join(summary_lines(result))
    assert "retried and still failing:\n  test_r.py::test_always: 2 attempts (last error: ValueError: nope)" in text


def test_no_summary_without_items_or_on_collect_only(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    assert "workflow summary" not in pytester.runpytest("--orchestrate", "--co").stdout.str()


def test_graph_mermaid_runs_nothing(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE + "\ndef test_ran_marker():\n    open('RAN', 'w').close()\n")
    result = pytester.runpytest("--orchestrate", "--orchestrate-graph=mermaid", "-q")
    assert result.ret == 0
    assert not (pytester.path / "RAN").exists()
    out = result.stdout.str()
    assert "flowchart TD" in out
    assert '["test_wf.py::test_build"]' in out
    assert "workflow summary" not in out
    assert "passed" not in out and "failed" not in out


def test_graph_dot_respects_selection(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    result = pytester.runpytest("--orchestrate", "--orchestrate-graph", "dot", "-k", "package")
    assert result.ret == 0
    out = result.stdout.str()
    assert 'digraph "workflow" {' in out
    assert '"test_wf.py::test_build" -> "test_wf.py::test_package";' in out
    assert "test_flaky" not in out


def test_durations_are_cached_and_used(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    pytester.runpytest("--orchestrate", *NO_TIMEOUT_PLUGIN)
    cache_file = pytester.path / ".pytest_cache" / "v" / "orchestrate" / "durations"
    durations = json.loads(cache_file.read_text())
    assert durations["test_wf.py::test_build"] >= 0.05
    assert "test_wf.py::test_deploy" not in durations  # skipped items are not remembered
    result = pytester.runpytest("--orchestrate", *NO_TIMEOUT_PLUGIN)
    result.stdout.fnmatch_lines(
        ["orchestrate: 8 items, 4 dependencies; estimated critical path *s (*cached durations)"]
    )
    graph = pytester.runpytest("--orchestrate", "--orchestrate-graph=mermaid")
    graph.stdout.fnmatch_lines(["%% estimated critical path (cached durations): test_wf.py::test_build -> *"])


def test_corrupt_cache_and_no_cacheprovider(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    cache_dir = pytester.path / ".pytest_cache" / "v" / "orchestrate"
    cache_dir.mkdir(parents=True)
    (cache_dir / "durations").write_text('["not", "a", "dict"]')
    result = pytester.runpytest("--orchestrate", *NO_TIMEOUT_PLUGIN)
    result.assert_outcomes(passed=4, failed=2, skipped=2)
    assert isinstance(json.loads((cache_dir / "durations").read_text()), dict)
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider", *NO_TIMEOUT_PLUGIN)
    result.assert_outcomes(passed=4, failed=2, skipped=2)
    assert "workflow summary" in result.stdout.str()


def test_build_and_format_summary_units() -> None:
    records = {
        "a": ItemRecord("a", "passed", start=100.0, stop=101.0),
        "b": ItemRecord("b", "failed", reruns=1, start=101.0, stop=103.0, errors=["x", "y"]),
        "c": ItemRecord("c", "skipped", reason="dependency 'b' failed", dependency_skip=True),
    }
    from pytest_orchestrator.plugin.dag import ItemGraph
    from pytest_orchestrator.plugin.dag import Node

    graph = ItemGraph([Node("a"), Node("b", deps=["a"]), Node("c", deps=["b"]), Node("d")])
    summary = build_summary(records, wall_time=3.0, session_start=99.0, workers=2, graph=graph)
    json.dumps(summary)
    assert summary["counts"]["not_run"] == 1
    assert summary["counts"]["rerun"] == 1
    assert summary["efficiency"] == pytest.approx(0.5)
    assert summary["critical_path"] == ["a", "b", "c"]
    assert summary["critical_path_duration"] == pytest.approx(3.0)
    assert summary["items"]["a"]["start"] == pytest.approx(1.0)
    lines = format_summary(summary)
    assert lines[0] == "4 items: 1 passed, 1 failed, 1 skipped, 1 not run; 1 rerun"
    assert "parallel efficiency 50% (2 workers)" in lines[1]
    assert "  b: 2 attempts (last error: y)" in lines
