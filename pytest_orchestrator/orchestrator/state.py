"""Durable state for ``orchestrate run``: on by default, ``--no-state`` turns it off, ``--resume [RUN_ID]`` resumes.

The store is ``.orchestrate/state.db`` under the current folder (the project root, where ``.orchestrate/runs``
goes too). When it cannot be used (a read-only folder, a corrupt or newer file), the run goes on without state and
says so once; with ``--resume`` that is an error (exit 2), since nothing could be resumed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
import time
from typing import Any
from typing import TextIO

from pytest_orchestrator.errors import StateError
from pytest_orchestrator.state import RunInfo
from pytest_orchestrator.state import StateStore


__all__ = ["DEFAULT_STATE_PATH", "RunState", "format_run", "format_runs", "open_state", "run_details"]

#: where ``orchestrate run`` keeps its state, relative to the current folder
DEFAULT_STATE_PATH = Path(".orchestrate") / "state.db"


@dataclasses.dataclass
class RunState:
    """The state of one ``orchestrate run``: the store, and which earlier run it resumes (resolved up front)."""

    store: StateStore
    #: the run being resumed, or None
    resumed: str | None = None
    #: what resuming did, for the user
    message: str | None = None

    def folder_id(self) -> str | None:
        """The run folder a resumed run writes into: the one of the first run it continues."""
        return self.store.first_run(self.resumed) if self.resumed else None


def open_state(
    name: str,
    *,
    enabled: bool = True,
    resume: bool | str = False,
    path: Path = DEFAULT_STATE_PATH,
    err: TextIO,
) -> RunState | str | None:
    """The run's state, ``None`` when it is off (said once on ``err``), or an error message (for exit 2)."""
    if not enabled:
        return "--resume needs state: drop --no-state" if resume else None
    store = StateStore(path)
    try:
        store.connect()
    except StateError as exc:
        if resume:
            return exc.message
        print(f"orchestrate: state is off for this run: {exc.message}", file=err)
        return None
    state = RunState(store)
    if resume:
        try:
            state.resumed, state.message = store.resumable(name, resume)
        except StateError as exc:
            return exc.message
        if state.message:
            print(f"orchestrate: {state.message}", file=err)
    return state


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _counts(info: RunInfo) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(info.counts.items())) or "nothing recorded"


def format_runs(runs: list[RunInfo]) -> str:
    """``orchestrate runs``: one line a run, the most recent first."""
    if not runs:
        return "no runs recorded\n"
    lines = [f"{'RUN ID':<24} {'STARTED':<19} {'STATUS':<11} NAME: COUNTS"]
    for info in runs:
        resumed = f" (resumes {info.resumed_from})" if info.resumed_from else ""
        lines.append(
            f"{info.run_id:<24} {_when(info.started_at):<19} {info.status:<11} {info.name}: {_counts(info)}{resumed}"
        )
    return "\n".join(lines) + "\n"


def run_details(store: StateStore, run_id: str) -> dict[str, Any]:
    """One run as a JSON-ready dict: the run's facts and its tasks (``orchestrate show --json``)."""
    info = store.get_run(run_id)
    data = info.to_dict()
    data["tasks"] = {name: task.to_dict() for name, task in store.tasks(run_id).items()}
    data["attempts"] = store.attempts(run_id)
    return data


def format_run(details: dict[str, Any]) -> str:
    """``orchestrate show RUN_ID``: the run's facts, then a line per task."""
    lines = [
        f"run {details['run_id']} of {details['name']}: {details['status']}",
        f"started {_when(details['started_at'])}, finished {_when(details['finished_at'])}",
    ]
    if details.get("resumed_from"):
        lines.append(f"resumes run {details['resumed_from']}")
    if details.get("recording_failed"):
        lines.append(f"recording failed: {details['recording_failed']}")
    tasks = details["tasks"]
    width = max((len(name) for name in tasks), default=4)
    for name, task in tasks.items():
        took = (
            f"{task['finished_at'] - task['started_at']:.2f}s"
            if task["started_at"] is not None and task["finished_at"] is not None
            else "-"
        )
        note = " (carried over)" if task["carried_over"] else ""
        error = f"  {task['error']}" if task["error"] else ""
        lines.append(f"  {name:<{width}}  {task['status']:<10} {task['attempts']} attempt(s)  {took}{note}{error}")
    return "\n".join(lines) + "\n"
