"""``pytest --orchestrate --orchestrate-metrics PATH``: the session's metrics, through the library's
``MetricsCollector``, as JSON or (``.prom``) the Prometheus text format; serially and under ``-n 2`` (the controller
writes it); the counts agree with pytest's own outcomes and with the run report's items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plugin_helpers import NO_TIMEOUT_PLUGIN
from plugin_helpers import lean_xdist_inner_runs
from plugin_helpers import project
import pytest

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.plugin.metrics import session_events


SUITE = """
import time
import pytest

N = []

def test_build():
    time.sleep(0.3)

@pytest.mark.depends("test_build")
def test_package():
    time.sleep(0.05)

@pytest.mark.depends("test_package")
def test_broken():
    assert False, "cannot reach the database"

@pytest.mark.depends("test_broken")
def test_deploy():
    pass

@pytest.mark.retry(max_attempts=3, initial_delay=0)
def test_flaky():
    N.append(1)
    assert len(N) >= 3, "not yet"

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False

def test_lint():
    time.sleep(0.2)
"""

ITEMS = [
    f"test_m.py::{name}"
    for name in (
        "test_build",
        "test_package",
        "test_broken",
        "test_deploy",
        "test_flaky",
        "test_skipped",
        "test_known_bug",
        "test_lint",
    )
]


@pytest.fixture(autouse=True)
def _env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)
    project(pytester)
    pytester.makepyfile(test_m=SUITE)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--orchestrate", "-p", "no:cacheprovider", *NO_TIMEOUT_PLUGIN, *args)


def _report_items(path: Path) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in json.loads(path.read_text())["items"]}


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_json_metrics_item_by_item(pytester: pytest.Pytester, xdist: bool) -> None:
    result = _run(
        pytester,
        "--orchestrate-metrics",
        "out/metrics.json",
        "--orchestrate-report",
        "report.json",
        *(("-n", "2") if xdist else ()),
    )
    assert result.ret == 1
    path = pytester.path / "out" / "metrics.json"
    assert f"metrics: {path}" in result.stdout.str()
    metrics = json.loads(path.read_text())
    # the counts are pytest's outcomes in the library's words
    outcomes = result.parseoutcomes()
    assert outcomes == {"passed": 4, "failed": 1, "skipped": 2, "xfailed": 1, "rerun": 2}
    assert metrics["workflows"] == 1
    assert metrics["counts"] == {
        "completed": outcomes["passed"],
        "failed": outcomes["failed"],
        "skipped": outcomes["skipped"] + outcomes["xfailed"],
        "cancelled": 0,
    }
    assert metrics["retries"] == {"total": outcomes["rerun"], "tasks": {"test_m.py::test_flaky": 2}}
    # durations: each item that ran (a skip in setup did not), as long as the run report says
    report = _report_items(pytester.path / "report.json")
    ran = set(ITEMS) - {"test_m.py::test_deploy", "test_m.py::test_skipped"}
    durations = metrics["durations"]["tasks"]
    assert set(durations) == ran
    for nodeid in ran:
        stats = durations[nodeid]
        assert stats["count"] == 1
        assert stats["p50"] == stats["p95"] == stats["max"] == stats["sum"] == pytest.approx(report[nodeid]["duration"])
    assert durations["test_m.py::test_build"]["max"] >= 0.3
    assert durations["test_m.py::test_lint"]["max"] >= 0.2
    overall = metrics["durations"]["overall"]
    assert overall["count"] == len(ran)
    assert overall["max"] == max(s["max"] for s in durations.values())
    assert overall["sum"] == pytest.approx(sum(s["sum"] for s in durations.values()))
    # queue wait: from the dependencies' end (the run's first start for the rest) to the item's start
    waits = metrics["queue_wait"]["tasks"]
    assert set(waits) == ran
    build, package = report["test_m.py::test_build"], report["test_m.py::test_package"]
    assert waits["test_m.py::test_package"]["max"] == pytest.approx(
        package["attempts"][0]["start"] - build["finished_at"], abs=1e-3
    )
    assert all(w["max"] >= 0 for w in waits.values())
    # concurrency: one item at a time serially, at most one per worker under -n 2; every start has its end
    concurrency = metrics["concurrency"]
    assert concurrency["max"] == 1 if not xdist else 1 <= concurrency["max"] <= 2
    timeline = concurrency["timeline"]
    assert len(timeline) == 2 * len(ran)
    assert timeline[-1][1] == 0 and all(n >= 0 for _, n in timeline)
    assert [t for t, _ in timeline] == sorted(t for t, _ in timeline)
    chain = ["test_m.py::test_build", "test_m.py::test_package", "test_m.py::test_broken"]
    assert metrics["critical_path"][:3] == chain
    assert metrics["critical_path_time"] >= 0.3


def test_prometheus_metrics_parse(pytester: pytest.Pytester) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    result = _run(pytester, "-n", "2", "--orchestrate-metrics", "metrics.prom")
    assert result.ret == 1
    families = {f.name: f for f in parser.text_string_to_metric_families((pytester.path / "metrics.prom").read_text())}
    tasks = {s.labels["status"]: s.value for s in families["orchestrate_tasks"].samples if s.name.endswith("_total")}
    assert tasks == {"completed": 4, "failed": 1, "skipped": 3, "cancelled": 0}
    retries = [(s.labels, s.value) for s in families["orchestrate_task_retries"].samples]
    assert retries == [({"task": "test_m.py::test_flaky"}, 2)]
    durations = families["orchestrate_task_duration_seconds"]
    assert durations.type == "summary"
    counts = {s.labels["task"]: s.value for s in durations.samples if s.name.endswith("_count")}
    assert set(counts) == set(ITEMS) - {"test_m.py::test_deploy", "test_m.py::test_skipped"}
    assert set(counts.values()) == {1}
    build = {s.labels.get("quantile"): s.value for s in durations.samples if s.labels["task"].endswith("test_build")}
    assert build["0.95"] >= 0.3
    assert families["orchestrate_max_concurrency"].samples[0].value in (1, 2)
    assert families["orchestrate_critical_path_seconds"].samples[0].value >= 0.3
    # only the controller wrote it: no worker left a file (or a temporary one) behind
    assert sorted(p.name for p in pytester.path.iterdir() if "metrics" in p.name) == ["metrics.prom"]


def test_the_ini_key_and_an_absolute_path(pytester: pytest.Pytester, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "m.json"
    project(pytester, f"orchestrate_metrics = {target}\n")
    result = _run(pytester, "-k", "build or lint")
    assert result.ret == 0
    metrics = json.loads(target.read_text())
    assert metrics["counts"] == {"completed": 2, "failed": 0, "skipped": 0, "cancelled": 0}
    assert set(metrics["durations"]["tasks"]) == {"test_m.py::test_build", "test_m.py::test_lint"}


def test_metrics_without_orchestrate_are_ignored_and_said_so(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--orchestrate-metrics", "m.json", "-k", "lint")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["orchestrate: ignored without --orchestrate (*): --orchestrate-metrics m.json"])
    assert not (pytester.path / "m.json").exists()


def test_session_events_order_ends_before_starts_at_the_same_instant() -> None:
    items: list[dict[str, Any]] = [
        {"id": "a", "status": "passed", "attempts": [{"number": 1, "start": 1.0, "end": 2.0}], "finished_at": 2.0},
        {"id": "b", "status": "passed", "attempts": [{"number": 1, "start": 2.0, "end": 2.0}], "finished_at": 2.0},
        {"id": "c", "status": "not_run", "attempts": []},
    ]
    events = session_events("s", items, finished_at=3.0)
    kinds = [(type(e).__name__, getattr(e, "task", None)) for e in events]
    assert kinds == [
        ("WorkflowStarted", None),
        ("TaskStarted", "a"),
        ("TaskFinished", "a"),
        ("TaskStarted", "b"),
        ("TaskFinished", "b"),
        ("TaskCancelled", "c"),
        ("WorkflowFinished", None),
    ]
    assert isinstance(events[0], ev.WorkflowStarted) and events[0].time == 1.0
    assert isinstance(events[-1], ev.WorkflowFinished) and events[-1].success is False


def test_help_names_the_option_and_its_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())  # however the terminal wraps it
    assert "--orchestrate-metrics=PATH Write the session's metrics to PATH" in text
    assert "orchestrate_metrics (string): Default of --orchestrate-metrics" in text
