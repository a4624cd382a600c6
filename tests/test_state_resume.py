"""Resuming workflows from a real SQLite store: what carries over, what reruns and why, and crash safety with
real processes killed by SIGKILL at random points."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from pytest_orchestrator import StateStore
from pytest_orchestrator import TaskFailedError
from pytest_orchestrator import Workflow
from pytest_orchestrator import WorkflowError


def _wf(store: StateStore, calls: list[str], fail: set[str], *, c_arg: int = 10) -> Workflow:
    def a() -> int:
        calls.append("a")
        return 1

    def b(a: int) -> int:
        calls.append("b")
        if "b" in fail:
            raise RuntimeError("b is broken")
        return a + 1

    def c(b: int, factor: int) -> int:
        calls.append("c")
        return b * factor

    def side() -> dict[str, int]:
        calls.append("side")
        return {"n": 3}

    wf = Workflow("w", state=store, fail_fast=False)
    wf.add_task("a", a)
    wf.add_task("b", b, dependencies=["a"])
    wf.add_task("c", c, dependencies=["b"], kwargs={"factor": c_arg})
    wf.add_task("side", side)
    return wf


def test_resume_reruns_only_what_did_not_complete_and_hands_stored_values_on(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    calls: list[str] = []
    with pytest.raises(TaskFailedError):
        asyncio.run(_wf(store, calls, {"b"}).run())
    assert sorted(calls) == ["a", "b", "side"]
    first = store.list_runs()[0].run_id
    calls.clear()
    wf = _wf(store, calls, set())
    values = asyncio.run(wf.run(resume=True))
    assert sorted(calls) == ["b", "c"]  # a and side are carried over
    assert values == {"a": 1, "b": 2, "c": 20, "side": {"n": 3}}  # carried values returned as if they had just run
    summary = wf.get_summary()
    assert summary["resumed_from"] == first and summary["run_id"] != first
    assert summary["tasks"]["a"]["carried_over"] is True and "carried_over" not in summary["tasks"]["b"]
    assert summary["resume"]["rerun"] == {"b": "it did not complete (failed)", "c": "it did not complete (skipped)"}
    assert summary["success"] is True


def test_a_changed_definition_reruns_with_its_dependents_and_says_why(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    calls: list[str] = []
    asyncio.run(_wf(store, calls, set()).run())
    run = store.list_runs()[0].run_id
    calls.clear()
    wf = _wf(store, calls, set(), c_arg=100)  # c's kwargs changed
    values = asyncio.run(wf.run(resume=run))  # a completed run can still be resumed by id
    assert calls == ["c"]
    assert values["c"] == 200
    assert wf.get_summary()["resume"]["rerun"] == {"c": "its definition changed"}


def test_nothing_to_resume_runs_from_the_start_and_says_so(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    calls: list[str] = []
    wf = _wf(store, calls, set())
    asyncio.run(wf.run(resume=True))
    assert sorted(calls) == ["a", "b", "c", "side"]
    assert wf.get_summary()["resume"]["message"].startswith("nothing to resume: no earlier run of 'w'")


def test_values_that_are_not_json_rerun(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    calls: list[str] = []

    def obj() -> object:
        calls.append("obj")
        return object()

    def num() -> int:
        calls.append("num")
        return 7

    def make() -> Workflow:
        wf = Workflow("objs", state=store, fail_fast=False)
        wf.add_task("obj", obj)
        wf.add_task("num", num)
        wf.add_task("boom", lambda: (_ for _ in ()).throw(RuntimeError("x")))
        return wf

    with pytest.raises(TaskFailedError):
        asyncio.run(make().run())
    calls.clear()
    wf = make()
    with pytest.raises(TaskFailedError):
        asyncio.run(wf.run(resume=True))
    assert calls == ["obj"]
    assert wf.get_summary()["resume"]["rerun"]["obj"] == "its value was not stored (not JSON-serialisable)"


def test_state_must_be_a_store_and_resume_needs_one() -> None:
    with pytest.raises(WorkflowError, match="state must be a StateStore"):
        Workflow("w", state="state.db")  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match="resume needs a state store"):
        asyncio.run(Workflow("w").run(resume=True))


def test_an_unusable_state_file_stops_the_run_before_any_task(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_text("not a database, really not " * 50)
    ran: list[str] = []
    wf = Workflow("w", state=StateStore(path))
    wf.add_task("a", lambda: ran.append("a"))
    with pytest.raises(WorkflowError, match="not a readable state database"):
        asyncio.run(wf.run())
    assert ran == []


# -- crash safety: a workflow in a subprocess, killed with SIGKILL in the middle ---------------------------------

CRASH_WORKFLOW = """
import asyncio, json, os, sys, time
from pathlib import Path
from pytest_orchestrator import StateStore, Workflow

work = Path(sys.argv[1])
resume = sys.argv[2] == "resume"
N = 16

def make(i):
    def task(**deps):
        # one counter file per run of a task: how many times each task ran, even across kills
        with open(work / f"ran-{i}", "a") as f:
            f.write("x")
        time.sleep(0.05 + (i % 3) * 0.03)
        return sum(deps.values()) + i
    return task

wf = Workflow("crash", state=StateStore(work / "state.db"), max_concurrency=3, fail_fast=False)
deps = {i: [f"t{j}" for j in range(i) if (i * 7 + j * 3) % 5 == 0][-2:] for i in range(N)}
for i in range(N):
    names = deps[i]
    fn = make(i)
    def action(_fn=fn, _names=names, _task_results=None):
        return _fn(**{n: _task_results[n].value for n in _names})
    wf.add_task(f"t{i}", action, dependencies=names)
values = asyncio.run(wf.run(resume=resume))
(work / "values.json").write_text(json.dumps(values, sort_keys=True))
"""


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}


def _run(work: Path, mode: str, *, kill_after: float | None = None) -> int:
    script = work / "wf.py"
    script.write_text(textwrap.dedent(CRASH_WORKFLOW))
    with subprocess.Popen(
        [sys.executable, "-W", "ignore::RuntimeWarning", str(script), str(work), mode],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        if kill_after is not None:
            # the clock starts when this run starts its first task, not when the interpreter starts: start-up time
            # varies with the machine's load and would otherwise decide whether a kill lands in the middle
            started = sum(_ran(work).values())
            deadline = time.monotonic() + 30
            while proc.poll() is None and sum(_ran(work).values()) == started and time.monotonic() < deadline:
                time.sleep(0.005)
            try:
                proc.wait(kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()
        return proc.returncode


def _completed_before(work: Path) -> dict[str, int]:
    """Per task, how many times it had run when its completion was last recorded (from the counter files)."""
    store = StateStore(work / "state.db")
    done: dict[str, int] = {}
    for info in store.list_runs(name="crash", limit=100):
        for name, task in store.tasks(info.run_id).items():
            if task.status == "completed":
                done[name] = 1
    store.close()
    return done


def _last_run_completed(work: Path) -> bool:
    if not (work / "state.db").exists():
        return False
    store = StateStore(work / "state.db")
    runs = store.list_runs(name="crash", limit=1)
    store.close()
    return bool(runs) and runs[0].status == "completed"


def _stored_values(work: Path) -> dict[str, Any]:
    """The values of the last run, all carried over or computed: what ``run()`` returned."""
    store = StateStore(work / "state.db")
    last = store.list_runs(name="crash", limit=1)[0]
    tasks = store.tasks(last.run_id)
    store.close()
    assert {t.status for t in tasks.values()} == {"completed"}
    return {name: t.value for name, t in tasks.items()}


def _ran(work: Path) -> dict[str, int]:
    return {p.name.removeprefix("ran-"): len(p.read_text()) for p in work.glob("ran-*")}


def test_an_uninterrupted_run_gives_the_reference_values(tmp_path: Path) -> None:
    assert _run(tmp_path, "fresh") == 0
    assert _ran(tmp_path) == {str(i): 1 for i in range(16)}


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_never_reruns_a_recorded_completion(tmp_path: Path) -> None:
    """20+ kills at random points: a task recorded completed never runs again, no completion is lost, and the final
    values equal an uninterrupted run's."""
    reference = tmp_path / "reference"
    reference.mkdir()
    _run(reference, "fresh")
    expected: dict[str, Any] = json.loads((reference / "values.json").read_text())
    assert _stored_values(reference) == expected
    rng = random.Random(20261206)
    kills = 0
    trial = 0
    while kills < 20:
        trial += 1
        assert trial <= 30, f"only {kills} kills landed in the middle of a run"
        work = tmp_path / f"trial{trial}"
        work.mkdir()
        mode = "fresh"
        while True:
            recorded = _completed_before(work) if (work / "state.db").exists() else {}
            ran_before = _ran(work)
            rc = _run(work, mode, kill_after=rng.uniform(0.0, 0.4))
            ran_after = _ran(work)
            for name in recorded:  # recorded completed -> never run again
                assert ran_after.get(name.removeprefix("t")) == ran_before.get(name.removeprefix("t")), (trial, name)
            if rc == 0 or _last_run_completed(work):
                break  # (a kill that landed after the run completed: nothing is left to resume)
            kills += 1
            mode = "resume"
        assert _stored_values(work) == expected
        # no lost completion: every task completed in some run of this trial
        assert set(_completed_before(work)) == {f"t{i}" for i in range(16)}
