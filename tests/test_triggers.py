"""File and event triggers: real file writes on both backends, the change set filter, emit from any thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import importlib.util
from pathlib import Path
import threading
import time
from typing import Any

import pytest

from pytest_orchestrator import Workflow
from pytest_orchestrator.schedule import FakeClock
from pytest_orchestrator.schedule import Scheduler
from pytest_orchestrator.schedule.clock import settle
from pytest_orchestrator.triggers import ChangeSet
from pytest_orchestrator.triggers import EventTrigger
from pytest_orchestrator.triggers import FileTrigger
from pytest_orchestrator.triggers import emit


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


BACKENDS = ["polling"] + (["watchfiles"] if importlib.util.find_spec("watchfiles") else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_file_trigger_runs_on_real_writes_with_the_matching_changes(tmp_path: Path, backend: str) -> None:
    (tmp_path / "old.py").write_text("x = 1\n")
    seen: list[ChangeSet] = []
    scheduler = Scheduler()
    trigger = FileTrigger(tmp_path, patterns=("*.py",), ignore=("skip_*",), debounce=0.1, backend=backend)
    job_id = scheduler.schedule(seen.append, trigger)
    with scheduler:  # start() returns once the watcher runs: writes right after it are seen
        (tmp_path / "new.py").write_text("y = 2\n")
        (tmp_path / "notes.txt").write_text("not python\n")
        (tmp_path / "skip_me.py").write_text("ignored\n")
        (tmp_path / "old.py").write_text("x = 100\n")
        _wait_for(lambda: sum(len(c) for c in seen) >= 2)
    changed = {Path(c.path).name: c.change for cs in seen for c in cs}
    assert changed == {"new.py": "added", "old.py": "modified"}
    assert scheduler.get_job(job_id).failures == 0


def test_polling_debounce_on_a_fake_clock(tmp_path: Path) -> None:
    seen: list[ChangeSet] = []
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)

    async def main() -> None:
        scheduler.schedule(seen.append, FileTrigger(tmp_path, debounce=1.0, backend="polling", poll_interval=0.5))
        serving = asyncio.create_task(scheduler.serve())
        await settle()
        for i in range(3):  # a burst of writes, 0.5 s apart
            (tmp_path / f"f{i}.txt").write_text(str(i))
            await clock.advance(0.5)
            await asyncio.sleep(0.05)  # the snapshot is taken in a thread
        assert seen == []
        for _ in range(4):
            await clock.advance(0.5)
            await asyncio.sleep(0.05)
        scheduler.stop(wait=True)
        await serving

    asyncio.run(main())
    assert len(seen) == 1
    assert sorted(Path(p).name for p in seen[0].paths) == ["f0.txt", "f1.txt", "f2.txt"]


def test_change_set_filter() -> None:
    trigger = FileTrigger(".", patterns=("*.py", "docs/*.md"))
    root = Path(".").resolve()
    assert trigger.matches(root / "a.py")
    assert trigger.matches(root / "docs" / "x.md")
    assert not trigger.matches(root / "x.md")
    assert not trigger.matches(root / "__pycache__" / "a.py")
    env = ChangeSet(()).to_env()
    assert env["ORCHESTRATE_CHANGED_FILES"] == ""
    with pytest.raises(ValueError, match="no such file"):
        FileTrigger("/definitely/not/here")


def test_event_trigger_passes_the_payload_to_functions_and_workflow_factories() -> None:
    payloads: list[Any] = []

    def factory(payload: dict[str, Any]) -> Workflow:
        return Workflow("deploy").add_task("use", lambda: payload["version"])

    scheduler = Scheduler()
    fn_job = scheduler.schedule(payloads.append, EventTrigger("release"))
    wf_job = scheduler.schedule(factory, EventTrigger("release"))
    assert emit("release", {"version": "0"}) == 0  # nobody listens before start
    with scheduler:
        thread = threading.Thread(target=emit, args=("release", {"version": "1.2"}))
        thread.start()
        thread.join()
        assert emit("other", 1) == 0
        _wait_for(lambda: scheduler.get_job(wf_job).runs == 1 and scheduler.get_job(fn_job).runs == 1)
    assert payloads == [{"version": "1.2"}]
    assert scheduler.get_job(wf_job).last_result == {"use": "1.2"}


def test_event_trigger_on_a_fake_clock() -> None:
    got: list[int] = []

    async def record(n: int) -> None:
        got.append(n)

    async def main() -> None:
        scheduler = Scheduler(clock=FakeClock())
        scheduler.schedule(record, EventTrigger("tick"))
        serving = asyncio.create_task(scheduler.serve())
        await settle()
        assert emit("tick", 1) == 1
        emit("tick", 2)
        await settle()
        scheduler.stop()
        await serving

    asyncio.run(main())
    assert got == [1]  # the second emit came while the first run was going: overlap="skip"
