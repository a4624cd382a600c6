"""Run reports of ``orchestrate run`` (a scripts folder or a pipeline) and of runs kept in the state store.

``report_from_run`` turns the :class:`~.summary.RunReport` the run driver made into the versioned report
(:mod:`.report`); ``report_from_state`` does the same for a run recorded in a ``StateStore`` (``orchestrate report
RUN_ID``), from its task and attempt rows.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING
from typing import Any
from typing import TextIO

from pytest_orchestrator.reporting.report import build_report
from pytest_orchestrator.reporting.report import write_report
from pytest_orchestrator.reporting.summary import RunReport
from pytest_orchestrator.reporting.summary import ScriptOutcome


if TYPE_CHECKING:
    from pytest_orchestrator.state.store import StateStore

__all__ = ["finish_run_output", "report_from_run", "report_from_state"]

#: a ``ScriptOutcome``'s status in the report's words
_STATUS = {"not_run": "not_run", "passed": "passed", "cancelled": "cancelled", "skipped": "skipped"}


def _attempts(outcome: ScriptOutcome) -> list[dict[str, Any]]:
    """The attempts of one script or stage: earlier failed attempts (errors only), then the last, with its times."""
    if not outcome.attempts:
        return []
    earlier = [
        {"number": n, "start": None, "end": None, "outcome": "failed", "error": error}
        for n, error in enumerate(outcome.attempt_errors, 1)
    ]
    last_outcome = "passed" if outcome.status in ("passed", "skipped") else outcome.status
    last = {
        "number": outcome.attempts,
        "start": outcome.started_at,
        "end": outcome.finished_at,
        "outcome": last_outcome if last_outcome in ("passed", "failed", "timeout", "error") else "failed",
        "error": None if outcome.status == "passed" else outcome.reason,
    }
    return [*earlier[: outcome.attempts - 1], last]


def report_from_run(run: RunReport, *, kind: str = "scripts", name: str | None = None) -> dict[str, Any]:
    """The versioned report of a scripts run (``kind="scripts"``) or a pipeline run (``kind="pipeline"``)."""
    items = []
    for outcome in run.scripts:
        item: dict[str, Any] = {
            "id": outcome.name,
            "name": outcome.name,
            "kind": "stage" if kind == "pipeline" else "script",
            "status": _STATUS.get(outcome.status, outcome.status),
            "duration": outcome.duration,
            "started_at": outcome.started_at,
            "finished_at": outcome.finished_at,
            "attempts": _attempts(outcome),
            "stage": outcome.stage,
            "dependencies": outcome.depends,
            "error": outcome.reason if outcome.failed else None,
            "output_tail": "\n".join(outcome.stderr_tail) or None,
        }
        if outcome.status == "skipped":
            item["skip_cause"] = outcome.reason
        if outcome.carried_over:
            item["tags"] = ["carried over"]
        items.append(item)
    return build_report(
        kind=kind,
        name=name or run.root,
        run_id=run.run_id,
        items=items,
        started_at=run.started_at,
        wall_time=run.elapsed,
        critical_path=run.critical_path or None,
        success=run.success,
        metadata={
            "jobs": run.jobs,
            "fail_fast": run.fail_fast,
            "interrupted": run.interrupted,
            "run_folder": run.run_folder,
            "resumed_from": run.resumed_from,
        },
    )


def report_from_state(store: StateStore, run_id: str) -> dict[str, Any]:
    """The versioned report of a run recorded in ``store`` (``StateError`` when there is no such run)."""
    info = store.get_run(run_id)
    attempts: dict[str, list[dict[str, Any]]] = {}
    for row in store.attempts(run_id):
        outcome = {"completed": "passed"}.get(row["outcome"], row["outcome"])
        attempts.setdefault(row["task"], []).append(
            {
                "number": row["attempt"],
                "start": row["started_at"],
                "end": row["finished_at"],
                "outcome": outcome if outcome in ("passed", "failed", "timeout", "error", "skipped") else "failed",
                "error": row["error"],
            }
        )
    items = []
    for name, task in store.tasks(run_id).items():
        item: dict[str, Any] = {
            "id": name,
            "status": task.status,
            "started_at": task.started_at,
            "finished_at": task.finished_at,
            "attempts": attempts.get(name, []),
            "error": task.error if task.status == "failed" else None,
        }
        if task.status == "skipped":
            item["skip_cause"] = task.error
        if task.carried_over:
            item["tags"] = ["carried over"]
        items.append(item)
    kind = info.name.partition(":")[0] if info.name.startswith(("scripts:", "pipeline:")) else "workflow"
    return build_report(
        kind=kind,
        name=info.name,
        run_id=info.run_id,
        items=items,
        started_at=info.started_at,
        finished_at=info.finished_at,
        metadata={"status": info.status, "resumed_from": info.resumed_from},
    )


def finish_run_output(
    run: RunReport,
    text: str,
    out: TextIO,
    *,
    kind: str = "scripts",
    name: str | None = None,
    report_path: str | os.PathLike[str] | None = None,
    as_json: bool = False,
) -> None:
    """What ``orchestrate run`` writes at the end: the text summary on ``out``, or with ``as_json`` the report as
    JSON there and nothing else; with ``report_path`` the report (JSON or HTML, by suffix) in that file too."""
    report = report_from_run(run, kind=kind, name=name) if (as_json or report_path is not None) else None
    if report is not None and report_path is not None:
        write_report(report, report_path)
    if report is not None and as_json:
        out.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        out.write(text)
    out.flush()
