"""Tests of ``pytest_orchestrator.orchestrator.driver``: the one run driver, with a small run kind of its own."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
import re
import signal

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.orchestrator.driver import ItemProgress
from pytest_orchestrator.orchestrator.driver import RunDriver
from pytest_orchestrator.orchestrator.driver import RunKind
from pytest_orchestrator.reporting.runfolder import RunFolder
from pytest_orchestrator.reporting.summary import RunReport
from pytest_orchestrator.reporting.summary import ScriptOutcome


_STATUS = {
    TaskStatus.COMPLETED: "passed",
    TaskStatus.FAILED: "failed",
    TaskStatus.SKIPPED: "skipped",
    TaskStatus.CANCELLED: "cancelled",
}


class TaskKind(RunKind):
    """Each task is an item; its engine status is its report status."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def open(self) -> None:
        self.calls.append("open")

    def close(self, interrupted: bool) -> None:
        self.calls.append(("close", interrupted))

    def progress(self, event: ev.TaskFinished | ev.TaskSkipped | ev.TaskCancelled, run: RunDriver) -> ItemProgress:
        if isinstance(event, ev.TaskCancelled):
            return ItemProgress("cancelled", detail=run.cancel_reason(event.reason))
        return ItemProgress(_STATUS[event.result.status], event.result.execution_time, event.result.error)

    def report(self, run: RunDriver) -> RunReport:
        self.calls.append("report")
        report = RunReport(
            run_id=run.run_id,
            root="tasks",
            jobs=1,
            fail_fast=False,
            started_at=run.started_at,
            elapsed=run.elapsed,
            interrupted=run.interrupted,
            run_folder=str(run.folder.path),
        )
        for name, task in run.workflow.tasks.items():
            status = _STATUS.get(task.status, "not_run")
            attempts = task.result.attempts if task.result is not None else 0
            report.scripts.append(ScriptOutcome(name=name, path=name, status=status, attempts=attempts))
        return report


class Recorder:
    """A run listener that writes down what it heard (and whether summary.json existed by then)."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.heard: list[str] = []

    def run_started(self, workflow: Workflow) -> None:
        self.heard.append(f"started {workflow.name} folder={self.folder.path.exists()}")

    def run_finished(self, report: RunReport) -> None:
        self.heard.append(f"finished {report.exit_code} summary={(self.folder.path / 'summary.json').exists()}")


def test_progress_summary_and_listeners(tmp_path: Path) -> None:
    tries: list[int] = []

    async def flaky() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("first try fails")
        return "ok"

    async def broken() -> None:
        raise ValueError("no")

    wf = Workflow("w", fail_fast=False, max_concurrency=1)
    wf.add_task("flaky", flaky, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0))
    wf.add_task("broken", broken, dependencies=["flaky"])
    wf.add_task("after", lambda: None, dependencies=["broken"])
    folder = RunFolder(tmp_path / "runs", "run-1")
    kind = TaskKind()
    recorder = Recorder(folder)
    stream = io.StringIO()
    report = RunDriver(wf, kind, folder=folder, stream=stream, listeners=[recorder]).run()

    assert report.exit_code == 1 and not report.interrupted
    assert kind.calls == ["open", ("close", False), "report"]
    assert recorder.heard == ["started w folder=False", "finished 1 summary=True"]
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/3] START flaky"  # the number started so far
    assert re.fullmatch(r" {7}RETRY flaky \(attempt 1: .*first try fails.*; next in 0s\)", lines[1]), lines[1]
    assert re.fullmatch(r"\[1/3\] PASS flaky \(\d+\.\d\ds\)", lines[2]), lines[2]
    assert lines[3] == "[2/3] START broken"
    assert re.fullmatch(r"\[2/3\] FAIL broken \(\d+\.\d\ds, .*no.*\)", lines[4]), lines[4]
    assert lines[5].startswith("[3/3] SKIP after") and len(lines) == 6
    data = json.loads((folder.path / "summary.json").read_text())
    assert data["run_id"] == "run-1" and data["exit_code"] == 1
    assert {name: s["status"] for name, s in data["scripts"].items()} == {
        "flaky": "passed",
        "broken": "failed",
        "after": "skipped",
    }


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    wf = Workflow("w").add_task("one", lambda: 1)
    stream = io.StringIO()
    report = RunDriver(wf, TaskKind(), folder=RunFolder(tmp_path, "r"), stream=stream, quiet=True).run()
    assert report.exit_code == 0 and stream.getvalue() == ""


def test_ctrl_c_marks_what_did_not_finish_and_still_writes_the_summary(tmp_path: Path) -> None:
    async def interrupt() -> None:
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(5)

    async def waits() -> None:
        await asyncio.sleep(5)

    wf = Workflow("w", fail_fast=False)
    wf.add_task("done", lambda: None)
    wf.add_task("interrupt", interrupt, dependencies=["done"])
    wf.add_task("waits", waits, dependencies=["done"])
    wf.add_task("never", lambda: None, dependencies=["interrupt"])
    folder = RunFolder(tmp_path, "r")
    kind = TaskKind()
    stream = io.StringIO()
    report = RunDriver(wf, kind, folder=folder, stream=stream).run()

    assert report.interrupted and report.exit_code == 130
    assert kind.calls == ["open", ("close", True), "report"]
    statuses = {s.name: s.status for s in report.scripts}
    assert statuses["done"] == "passed"
    assert statuses["interrupt"] == statuses["waits"] == statuses["never"] == "cancelled"
    assert "CANCEL waits (interrupted)" in stream.getvalue()
    data = json.loads((folder.path / "summary.json").read_text())
    assert data["interrupted"] is True and data["exit_code"] == 130


def test_the_workflow_timeout_is_kept(tmp_path: Path) -> None:
    async def slow() -> None:
        await asyncio.sleep(5)

    wf = Workflow("w", timeout=0.05).add_task("slow", slow)
    driver = RunDriver(wf, TaskKind(), folder=RunFolder(tmp_path, "r"), stream=None)
    report = driver.run()
    assert driver.timeout_error is not None and "0.05" in driver.timeout_error
    assert report.exit_code == 1 and not report.interrupted
