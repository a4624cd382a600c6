"""The workflow summary, --orchestrate-graph and the duration cache."""

from __future__ import annotations

import json
import re

from plugin_helpers import NO_TIMEOUT_PLUGIN
from plugin_helpers import lean_inner_runs
from plugin_helpers import project
from plugin_helpers import summary_lines
import pytest

from pytest_orchestrator.plugin.summary import ItemRecord
from pytest_orchestrator.plugin.summary import build_summary
from pytest_orchestrator.plugin.summary import format_summary
from pytest_orchestrator.plugin.summary import summary_markup


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
    # the counts say what pytest's stats line does not (a timeout); one worker: no efficiency line
    assert lines[0] == "8 items: 4 passed, 1 failed, 1 timeout, 2 skipped; 1 rerun"
    assert lines[1].startswith("critical path ")
    assert "test_wf.py::test_build (" in lines[1] and " -> test_wf.py::test_package (" in lines[1]
    assert not any("efficiency" in line for line in lines)
    assert "flaky (passed after retries):\n  test_wf.py::test_flaky: 2 attempts" in text
    assert "timeouts:\n  test_wf.py::test_hangs: timed out after 0.2 s" in text
    assert (
        "dependency skips:\n"
        "  test_wf.py::test_deploy: dependency 'test_wf.py::test_broken' failed\n"
        "  test_wf.py::test_announce: dependency 'test_wf.py::test_deploy' was skipped "
        "(root cause: 'test_wf.py::test_broken' failed)"
    ) in text
    # no per-item table without -vv
    assert not any(line.startswith("status ") for line in lines)
    assert not any(line.startswith("status ") for line in summary_lines(pytester.runpytest("--orchestrate", "-v")))
    # it sits after the failures and just above pytest's short summary and final stats line
    out = result.outlines
    position = next(i for i, line in enumerate(out) if "workflow summary" in line)
    assert position > next(i for i, line in enumerate(out) if "FAILURES" in line)
    assert "short test summary info" in out[position + len(lines) + 1]
    assert "failed" in out[-1] and "passed" in out[-1]


def test_verbose_table(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    result = pytester.runpytest("--orchestrate", "-vv", *NO_TIMEOUT_PLUGIN)
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
    assert lines[1] == "wall time 3.00s on 2 workers, summed item durations 3.00 s: parallel efficiency 50%"
    assert "  b: 2 attempts (last error: y)" in lines
    assert format_summary(summary, verbose=-2) == []
    assert not any(line.startswith("status") for line in format_summary(summary, verbose=1))
    assert any(line.startswith("status") for line in format_summary(summary, verbose=2))
    markup = dict(summary_markup(format_summary(summary, verbose=2)))
    assert markup["retried and still failing:"] == {"red": True, "bold": True}
    assert markup["  b: 2 attempts (last error: y)"] == {"red": True}
    assert markup["dependency skips:"] == {"yellow": True, "bold": True}
    assert markup[lines[2]] == {"cyan": True} and lines[2].startswith("critical path")
    row = next(line for line in markup if line.startswith("passed "))
    assert markup[row] == {"green": True}


def _report(when: str, outcome: str, **attrs: object) -> pytest.TestReport:
    longrepr = ("t.py", 1, "Skipped: not here") if outcome == "skipped" else ("boom" if outcome == "failed" else None)
    report = pytest.TestReport("t.py::x", ("t.py", 0, "x"), {}, outcome, longrepr, when, start=5.0, stop=6.0)  # type: ignore[arg-type]
    for name, value in attrs.items():
        setattr(report, name, value)
    return report


@pytest.mark.parametrize(
    ("phases", "status", "finished", "reruns"),
    [
        ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed", True, 0),
        ([("setup", "passed"), ("call", "passed", {"wasxfail": ""}), ("teardown", "passed")], "xpassed", True, 0),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "passed")], "failed", True, 0),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "error", True, 0),
        ([("setup", "failed"), ("teardown", "passed")], "error", True, 0),
        ([("setup", "skipped"), ("teardown", "passed")], "skipped", True, 0),
        ([("setup", "passed"), ("call", "skipped", {"wasxfail": "known"}), ("teardown", "passed")], "xfailed", True, 0),
        ([("setup", "passed"), ("teardown", "passed")], "passed", True, 0),  # --setup-only: no call
        ([("setup", "passed")], "interrupted", False, 0),  # cut short during its call
        ([("???", "failed")], "failed", True, 0),  # xdist's report of a worker crash
        # pytest-rerunfailures logs a failed teardown it will rerun as "rerun": the item has not finished
        ([("setup", "passed"), ("call", "passed"), ("teardown", "rerun")], "passed", False, 1),
        (
            [("setup", "passed"), ("call", "rerun"), ("setup", "passed"), ("call", "passed"), ("teardown", "passed")],
            "passed",
            True,
            1,
        ),
    ],
)
def test_recorder_folds_phase_reports(phases: list[tuple[str, ...]], status: str, finished: bool, reruns: int) -> None:
    from pytest_orchestrator.plugin.summary import Recorder

    recorder = Recorder()
    for phase in phases:
        when, outcome, *attrs = phase
        record = recorder.add(_report(when, outcome, **(attrs[0] if attrs else {})))  # type: ignore[arg-type]
    assert (record.status, record.finished, record.reruns) == (status, finished, reruns)
    assert (record.start, record.stop) == (5.0, 6.0)


def test_summary_lists_flaky_failed_timeouts_and_skips() -> None:
    records = {
        "flaky": ItemRecord("flaky", "passed", reruns=2, start=1.0, stop=2.0),
        "still": ItemRecord("still", "error", reruns=1, errors=["e1", "e2"]),
        "slow": ItemRecord("slow", "timeout", reason="timed out after 1 s"),
        "after": ItemRecord("after", "skipped", reason="dependency 'still' failed", dependency_skip=True),
        "fine": ItemRecord("fine", "passed", start=2.0, stop=2.5),
    }
    summary = build_summary(records, wall_time=2.0, session_start=0.0)
    assert summary["counts"]["rerun"] == 3
    assert summary["counts"]["dependency_skipped"] == 1
    assert summary["counts"]["passed"] == 2 and summary["counts"]["timeout"] == 1
    assert summary["total_duration"] == pytest.approx(1.5)
    assert summary["flaky"] == [{"nodeid": "flaky", "attempts": 3}]
    assert summary["retried_failed"] == [{"nodeid": "still", "attempts": 2, "errors": ["e1", "e2"]}]
    assert summary["timeouts"] == [{"nodeid": "slow", "reason": "timed out after 1 s"}]
    assert summary["dependency_skips"] == [{"nodeid": "after", "reason": "dependency 'still' failed"}]
    assert list(summary["items"]) == list(records)
    assert summary["items"]["fine"] == {
        "status": "passed",
        "attempts": 1,
        "duration": 0.5,
        "start": 2.0,
        "reason": "",
    }


def test_summary_without_items_differs_only_in_items() -> None:
    records = {
        "flaky": ItemRecord("flaky", "passed", reruns=2, start=1.0, stop=2.0),
        "slow": ItemRecord("slow", "timeout", reason="timed out after 1 s", start=2.0, stop=3.5),
    }
    full = build_summary(records, wall_time=2.0, session_start=0.0)
    lean = build_summary(records, wall_time=2.0, session_start=0.0, with_items=False)
    assert list(full["items"]) == ["flaky", "slow"] and lean["items"] == {}
    assert {k: v for k, v in lean.items() if k != "items"} == {k: v for k, v in full.items() if k != "items"}


def test_no_critical_path_without_edges() -> None:
    from pytest_orchestrator.plugin.dag import ItemGraph
    from pytest_orchestrator.plugin.dag import Node

    records = {"slow": ItemRecord("slow", start=1.0, stop=9.0), "fast": ItemRecord("fast", start=9.0, stop=9.5)}
    graph = ItemGraph([Node("slow"), Node("fast")])
    summary = build_summary(records, wall_time=8.5, session_start=0.5, graph=graph)
    assert summary["critical_path"] == []
    # nothing to tell: serial, no edges, no retries, no timeouts, no skips
    assert format_summary(summary) == []
    # a lone slow item beside a chain is not the critical path either
    graph = ItemGraph([Node("slow"), Node("a"), Node("b", deps=["a"])])
    records = {**records, "a": ItemRecord("a", start=1.0, stop=2.0), "b": ItemRecord("b", start=2.0, stop=3.0)}
    assert build_summary(records, wall_time=9.0, session_start=0.5, graph=graph)["critical_path"] == ["a", "b"]


PLAIN = """
import time
def test_one(): time.sleep(0.05)
def test_two(): pass
"""


def test_plain_suite_gets_no_summary_and_no_header(pytester: pytest.Pytester) -> None:
    """A suite without dependencies, retries or timeouts: pytest's own output says it all."""
    project(pytester)
    pytester.makepyfile(test_plain=PLAIN)
    for args in ((), ("-v",), ("-q",)):
        result = pytester.runpytest("--orchestrate", *args)
        result.assert_outcomes(passed=2)
        out = result.stdout.str()
        assert "workflow summary" not in out, args
        assert "orchestrate:" not in out, args
    # -vv still shows the table
    assert summary_lines(pytester.runpytest("--orchestrate", "-vv"))[0].split() == [
        "status",
        "attempts",
        "duration",
        "start",
        "item",
    ]


def test_nothing_under_qq(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    result = pytester.runpytest("--orchestrate", "-qq", *NO_TIMEOUT_PLUGIN)
    out = result.stdout.str()
    assert "workflow summary" not in out and "critical path" not in out and "flaky" not in out
    assert "orchestrate:" not in out


def test_wall_time_is_pytests(pytester: pytest.Pytester) -> None:
    """The summary's wall time is the one pytest's final line gives (collection and all)."""
    project(pytester)
    pytester.makepyfile(
        test_two="""
        import time
        def test_a(): time.sleep(0.3)
        def test_b(): time.sleep(0.3)
        """
    )
    pytester.makeconftest("import time\ntime.sleep(0.4)  # slow collection\n")
    result = pytester.runpytest_subprocess("--orchestrate", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    line = next(line for line in summary_lines(result) if line.startswith("wall time "))
    ours = float(re.match(r"wall time (\d+\.\d+)s on 2 workers", line).group(1))  # type: ignore[union-attr]
    theirs = float(re.search(r" in (\d+\.\d+)s", result.outlines[-1]).group(1))  # type: ignore[union-attr]
    assert ours == pytest.approx(theirs, abs=0.05)
    # one efficiency figure, not a second one on the workers' line
    assert sum(line.count("efficiency") for line in summary_lines(result)) == 1


def test_colour_with_pytests_markup(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_wf=SUITE)
    colour = pytester.runpytest("--orchestrate", "--color=yes", *NO_TIMEOUT_PLUGIN).outlines
    plain = summary_lines(pytester.runpytest("--orchestrate", "--color=no", *NO_TIMEOUT_PLUGIN))
    assert plain and not any("\x1b[" in line for line in plain)
    assert any("\x1b[1m" in line and "workflow summary" in line for line in colour)
    assert any(line.startswith("\x1b[") and "dependency skips:" in line for line in colour)
    assert any("\x1b[31m" in line and "timed out after" in line for line in colour)
