"""The run report: every report validates against the published schema; the builder derives lanes, root causes,
the critical path and the efficiency figure; the workflow adapter records each attempt; secrets never leak."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
from report_helpers import T0
from report_helpers import known_items
from report_helpers import known_report
from report_helpers import large_report

from pytest_orchestrator import RetryPolicy
from pytest_orchestrator import Workflow
from pytest_orchestrator.reporting.html import render_html
from pytest_orchestrator.reporting.recorder import ReportRecorder
from pytest_orchestrator.reporting.report import build_report
from pytest_orchestrator.reporting.report import detect_ci
from pytest_orchestrator.reporting.report import report_from_workflow
from pytest_orchestrator.reporting.report import write_report
from pytest_orchestrator.reporting.schema import SCHEMA_ID
from pytest_orchestrator.reporting.schema import ReportValidationError
from pytest_orchestrator.reporting.schema import load_schema
from pytest_orchestrator.reporting.schema import validate_report


def _demo_workflow() -> Workflow:
    calls = {"flaky": 0}

    def flaky() -> int:
        calls["flaky"] += 1
        if calls["flaky"] < 2:
            raise RuntimeError("boom once")
        return 1

    async def slow() -> None:
        await asyncio.sleep(0.05)

    async def bad() -> None:
        raise ValueError("nope")

    wf = Workflow("demo", fail_fast=False, max_concurrency=2)
    wf.add_task("fetch", slow)
    wf.add_task("flaky", flaky, dependencies=["fetch"], retry_policy=RetryPolicy(max_attempts=3, initial_delay=0.01))
    wf.add_task("bad", bad, dependencies=["fetch"])
    wf.add_task("after_bad", slow, dependencies=["bad"])
    wf.add_task("after_after", slow, dependencies=["after_bad"])
    wf.add_task("sleepy", "sleep 5", timeout=0.2)
    wf.add_task("echo", "echo hello; echo world", shell=True, dependencies=["flaky"])
    return wf


def _run(wf: Workflow) -> None:
    with pytest.raises(Exception, match="failed"):
        asyncio.run(wf.run())


@pytest.fixture(scope="module")
def workflow_report() -> dict[str, Any]:
    wf = _demo_workflow()
    ReportRecorder.attach(wf)
    _run(wf)
    return report_from_workflow(wf)


def _item(report: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for i in report["items"] if i["id"] == item_id)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == SCHEMA_ID


@pytest.mark.parametrize(
    "make",
    [
        known_report,
        lambda: large_report(300),
        lambda: build_report(kind="scripts", name="empty", items=[]),
        lambda: build_report(kind="pytest", name="one", items=[{"id": "t::a", "status": "passed"}]),
    ],
    ids=["known", "large", "empty", "minimal"],
)
def test_every_built_report_validates(make: Any) -> None:
    report = make()
    validate_report(report)
    validate_report(json.loads(json.dumps(report)))  # and survives a JSON round trip


def test_an_invalid_report_is_rejected_with_its_path() -> None:
    report = known_report()
    report["items"][1]["status"] = "exploded"
    with pytest.raises(ReportValidationError, match=r"\$\.items\[1\]\.status"):
        validate_report(report)
    with pytest.raises(ReportValidationError):
        validate_report({"schema": "something/else"})


def test_build_report_derives_root_causes_critical_path_and_efficiency() -> None:
    report = known_report()
    assert _item(report, "package")["root_cause"] == "integration"
    assert _item(report, "publish")["root_cause"] == "integration"  # through the skipped package
    assert report["critical_path"] == ["build", "integration", "package", "publish"]
    assert report["workers"] == ["gw0", "gw1"]
    assert report["wall_time"] == pytest.approx(5.5)
    total = sum(i["duration"] for i in report["items"])
    assert report["total_duration"] == pytest.approx(total)
    assert report["efficiency"] == pytest.approx(total / (5.5 * 2))
    assert report["counts"] == {"completed": 3, "failed": 2, "skipped": 2}
    assert report["success"] is False
    assert {(e["from"], e["to"]) for e in report["edges"]} >= {("lint", "package"), ("build", "unit")}
    assert report["stages"] == ["build", "test", "deploy"]


def test_no_edges_means_no_critical_path_and_slots_fill_lanes() -> None:
    items = [
        {"id": "a", "status": "completed", "started_at": T0, "finished_at": T0 + 2},
        {"id": "b", "status": "completed", "started_at": T0 + 0.5, "finished_at": T0 + 1},
        {"id": "c", "status": "completed", "started_at": T0 + 1, "finished_at": T0 + 3},
    ]
    report = build_report(kind="workflow", name="flat", items=items)
    assert report["critical_path"] == []
    assert report["critical_path_duration"] == 0
    lanes = [i["attempts"][0]["worker"] for i in report["items"]]
    assert lanes == ["slot 1", "slot 2", "slot 2"]  # b's slot is free again when c starts
    assert report["workers"] == ["slot 1", "slot 2"]


def test_duplicate_ids_and_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        build_report(kind="pytest", name="x", items=[{"id": "a", "status": "passed"}] * 2)
    with pytest.raises(ValueError, match="kind"):
        build_report(kind="nightly", name="x", items=[])


def test_report_from_workflow_records_each_attempt(workflow_report: dict[str, Any]) -> None:
    report = workflow_report
    validate_report(report)
    assert report["kind"] == "workflow" and report["name"] == "demo" and report["run_id"]
    flaky = _item(report, "flaky")
    assert flaky["status"] == "completed"
    assert [a["outcome"] for a in flaky["attempts"]] == ["failed", "passed"]
    assert flaky["attempts"][0]["error"] == "RuntimeError: boom once"
    first, second = flaky["attempts"]
    assert first["start"] <= first["end"] <= second["start"] <= second["end"]
    sleepy = _item(report, "sleepy")
    assert sleepy["status"] == "failed" and sleepy["attempts"][-1]["outcome"] == "timeout"
    skipped = _item(report, "after_after")
    assert skipped["status"] == "skipped" and skipped["attempts"] == []
    assert skipped["root_cause"] == "bad" and "after_bad" in skipped["skip_cause"]
    assert "hello" in (_item(report, "echo")["output_tail"] or "")
    assert len(report["workers"]) <= 2  # max_concurrency=2: never more than two slots
    assert report["critical_path"][0] == "fetch"


def test_report_from_workflow_without_a_recorder_still_validates() -> None:
    wf = _demo_workflow()
    _run(wf)
    report = report_from_workflow(wf)
    validate_report(report)
    flaky = _item(report, "flaky")
    assert [a["start"] is None for a in flaky["attempts"]] == [True, False]


def test_write_report_picks_the_format_by_suffix(tmp_path: Path) -> None:
    report = known_report()
    as_json = write_report(report, tmp_path / "r.json")
    validate_report(json.loads(as_json.read_text()))
    page = write_report(report, tmp_path / "sub" / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    with pytest.raises(ValueError, match=r"\.json or \.html"):
        write_report(report, tmp_path / "r.txt")


def test_the_page_is_self_contained() -> None:
    page = render_html(known_report())
    for needle in ("http://", "https://", "<link", "src="):
        assert needle not in page.replace('"$schema"', "")


def test_a_value_cannot_close_the_script_element() -> None:
    items = [{"id": "x", "status": "failed", "error": "</script><script>alert(1)</script>"}]
    page = render_html(build_report(kind="scripts", name="evil", items=items))
    assert "</script><script>alert(1)" not in page
    assert page.count("</script>") == 2  # the data element and the page's script


def test_detect_ci() -> None:
    assert detect_ci({}) == {"detected": False, "provider": None}
    assert detect_ci({"CI": "true"}) == {"detected": True, "provider": None}
    assert detect_ci({"CI": "false"})["detected"] is False
    assert detect_ci({"GITHUB_ACTIONS": "true", "CI": "true"}) == {"detected": True, "provider": "github"}


def test_importing_the_report_builder_loads_no_heavy_module() -> None:
    code = (
        "import sys, pytest_orchestrator, pytest_orchestrator.reporting.report;"
        "print(sorted(m for m in ('networkx', 'jsonschema', 'yaml', 'pytest_orchestrator.reporting.html') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_known_items_are_what_the_browser_test_counts() -> None:
    """Pins the numbers tests/test_report_browser.py expects of the known run."""
    report = known_report()
    assert len(known_items()) == 7 and len(report["edges"]) == 7
    assert sum(1 for i in report["items"] for a in i["attempts"] if a["start"] is not None) == 7
