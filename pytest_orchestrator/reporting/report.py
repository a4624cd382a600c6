"""The run report: one JSON-ready dict (schema ``pytest-orchestrator/report/1``) for every kind of run.

``build_report`` turns items (dicts: a task, a test, a script), their edges and the run's facts into a report; it
derives what the producer does not know (timeline lanes, root causes of dependency skips, the critical path, the
efficiency figure, counts, the environment) and masks secrets. ``report_from_workflow`` is the adapter for a
library ``Workflow`` after its run (attach a :class:`~pytest_orchestrator.reporting.recorder.ReportRecorder` before
the run for per-attempt times). ``write_report`` writes JSON or the self-contained HTML page, by the path's suffix.

An item passed to ``build_report`` needs ``id`` and ``status``; it may carry ``name``, ``kind``, ``duration``,
``started_at``, ``finished_at``, ``attempts`` (``[{number, start, end, outcome, error}]``), ``worker``, ``stage``,
``dependencies``, ``skip_cause``, ``root_cause``, ``error``, ``output_tail`` and ``tags``. Times are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import json
import os
from pathlib import Path
import platform
import re
import sys
from typing import TYPE_CHECKING
from typing import Any

from pytest_orchestrator.core.graph import critical_path as _critical_path
from pytest_orchestrator.reporting.schema import SCHEMA_ID
from pytest_orchestrator.reporting.secrets import SecretMasker


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import Workflow
    from pytest_orchestrator.reporting.recorder import ReportRecorder

__all__ = [
    "FAILED_STATUSES",
    "KINDS",
    "OUTPUT_TAIL_LINES",
    "build_report",
    "collect_environment",
    "detect_ci",
    "report_from_workflow",
    "write_report",
    "write_text_atomic",
]

KINDS = ("workflow", "scripts", "pipeline", "pytest")
#: statuses that make a run unsuccessful
FAILED_STATUSES = frozenset({"failed", "error", "timeout", "cancelled", "not_run"})
#: statuses of an item that ran (at least one attempt) and ended with that attempt's outcome
_RAN_OUTCOME = {"completed": "passed", "passed": "passed", "failed": "failed", "error": "error", "timeout": "timeout"}
_RAN_OUTCOME.update(xfailed="xfailed", xpassed="xpassed")
#: how many lines of an item's output the report keeps (and at most 64 characters of each times that)
OUTPUT_TAIL_LINES = 40
_PACKAGES = ("pytest-orchestrator", "pytest", "pytest-xdist", "pluggy", "networkx", "PyYAML")
#: CI providers by the environment variable that gives them away, most specific first
_CI_PROVIDERS = (
    ("GITHUB_ACTIONS", "github"),
    ("GITLAB_CI", "gitlab"),
    ("CIRCLECI", "circleci"),
    ("TRAVIS", "travis"),
    ("BUILDKITE", "buildkite"),
    ("JENKINS_URL", "jenkins"),
    ("TF_BUILD", "azure-pipelines"),
    ("BITBUCKET_BUILD_NUMBER", "bitbucket"),
    ("TEAMCITY_VERSION", "teamcity"),
)


def detect_ci(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"detected": bool, "provider": name or None}`` from the environment (``CI`` alone: provider unknown)."""
    env = os.environ if env is None else env
    for var, provider in _CI_PROVIDERS:
        if env.get(var):
            return {"detected": True, "provider": provider}
    ci = env.get("CI", "").strip().lower()
    return {"detected": bool(ci) and ci not in ("0", "false", "no"), "provider": None}


def collect_environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Python, platform, the versions of the packages that matter, and whether this is CI."""
    from importlib import metadata

    packages: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "packages": packages,
        "ci": detect_ci(env),
    }


def _tail(text: str | None) -> str | None:
    if not text:
        return None
    lines = text.splitlines()[-OUTPUT_TAIL_LINES:]
    out = "\n".join(lines)
    limit = OUTPUT_TAIL_LINES * 64 * 4
    return out[-limit:] if len(out) > limit else out


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _normalize_item(raw: Mapping[str, Any]) -> dict[str, Any]:
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError(f"every report item needs a non-empty string id, got {item_id!r}")
    status = str(raw.get("status", "pending"))
    started, finished = _num(raw.get("started_at")), _num(raw.get("finished_at"))
    attempts_in = raw.get("attempts")
    attempts: list[dict[str, Any]] = []
    if attempts_in is None:
        if status in _RAN_OUTCOME and (started is not None or finished is not None):
            attempts.append({"number": 1, "start": started, "end": finished, "outcome": _RAN_OUTCOME[status]})
            attempts[0]["error"] = raw.get("error") if status != "completed" else None
    else:
        for n, a in enumerate(attempts_in, 1):
            outcome = a.get("outcome") or _RAN_OUTCOME.get(status, "failed")
            attempts.append(
                {
                    "number": int(a.get("number") or n),
                    "start": _num(a.get("start")),
                    "end": _num(a.get("end")),
                    "outcome": str(outcome),
                    "error": a.get("error"),
                }
            )
            if a.get("worker") is not None:
                attempts[-1]["worker"] = str(a["worker"])
    duration = _num(raw.get("duration"))
    if duration is None:
        spans = [a["end"] - a["start"] for a in attempts if a["start"] is not None and a["end"] is not None]
        duration = sum(spans) if spans else (finished - started if started is not None and finished is not None else 0)
    if started is None:
        started = min((a["start"] for a in attempts if a["start"] is not None), default=None)
    if finished is None:
        finished = max((a["end"] for a in attempts if a["end"] is not None), default=None)
    worker = raw.get("worker")
    item: dict[str, Any] = {
        "id": item_id,
        "name": str(raw.get("name") or item_id),
        "kind": str(raw.get("kind") or "task"),
        "status": status,
        "duration": max(0.0, float(duration)),
        "started_at": started,
        "finished_at": finished,
        "attempts": attempts,
        "worker": None if worker is None else str(worker),
        "stage": None if raw.get("stage") is None else str(raw["stage"]),
        "dependencies": [str(d) for d in raw.get("dependencies") or ()],
        "skip_cause": raw.get("skip_cause"),
        "root_cause": raw.get("root_cause"),
        "error": raw.get("error"),
        "output_tail": _tail(raw.get("output_tail")),
    }
    if raw.get("tags"):
        item["tags"] = [str(t) for t in raw["tags"]]
    return item


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _assign_lanes(items: Sequence[dict[str, Any]]) -> list[str]:
    """Give each attempt a lane: its own or its item's worker, else the first free concurrency slot."""
    named = {a.get("worker") or item["worker"] for item in items for a in item["attempts"]} - {None}
    if named:
        for item in items:
            for a in item["attempts"]:
                a.setdefault("worker", item["worker"])
                if a["worker"] is None:
                    a["worker"] = item["worker"]
        return sorted((str(w) for w in named), key=_natural_key)
    timed = sorted(
        (a["start"], a["end"], a)
        for item in items
        for a in item["attempts"]
        if a["start"] is not None and a["end"] is not None
    )
    ends: list[float] = []
    for start, end, attempt in timed:
        for lane, free_at in enumerate(ends):  # noqa: B007 - the lane found is used after the loop
            if free_at <= start + 1e-6:
                break
        else:
            lane = len(ends)
            ends.append(0.0)
        ends[lane] = max(end, start)
        attempt["worker"] = f"slot {lane + 1}"
    for item in items:
        for a in item["attempts"]:
            a.setdefault("worker", None)
    return [f"slot {n + 1}" for n in range(len(ends))]


def _root_causes(items: dict[str, dict[str, Any]]) -> None:
    """Fill ``root_cause`` of items skipped or cancelled because a dependency did not succeed."""
    bad = {"failed", "error", "timeout"}

    def root(item_id: str, seen: set[str]) -> str | None:
        item = items[item_id]
        if item["root_cause"] is not None:
            return str(item["root_cause"])
        if item["status"] in bad:
            return item_id
        if item["status"] not in ("skipped", "cancelled") or item_id in seen:
            return None
        seen.add(item_id)
        for dep in item["dependencies"]:
            if items[dep]["status"] in bad:
                return str(dep)
        for dep in item["dependencies"]:
            found = root(dep, seen)
            if found is not None:
                return found
        return None

    for item_id, item in items.items():
        if item["status"] in ("skipped", "cancelled") and item["root_cause"] is None and item["dependencies"]:
            item["root_cause"] = root(item_id, set())


def build_report(
    *,
    kind: str,
    name: str,
    items: Iterable[Mapping[str, Any]],
    edges: Iterable[Mapping[str, Any] | tuple[str, str]] = (),
    run_id: str | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    wall_time: float | None = None,
    critical_path: Sequence[str] | None = None,
    stages: Sequence[str] | None = None,
    success: bool | None = None,
    environment: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    secrets: SecretMasker | None = None,
    extra_secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """A report dict that validates against ``report-1.json``; see the module docstring for the item keys.

    :param edges: ``(dependency, dependent)`` pairs or ``{"from", "to", "kind"}`` dicts, on top of each item's
        ``dependencies``. Edges naming unknown items are dropped.
    :param critical_path: item ids; by default the longest chain by duration, or nothing when there are no edges.
    :param secrets: the masker to apply to the whole report; by default one over ``os.environ`` and
        ``extra_secrets`` (names or patterns of more secret variables).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    by_id: dict[str, dict[str, Any]] = {}
    for raw in items:
        item = _normalize_item(raw)
        if item["id"] in by_id:
            raise ValueError(f"duplicate report item id {item['id']!r}")
        by_id[item["id"]] = item
    edge_list: dict[tuple[str, str], dict[str, Any]] = {}
    for item in by_id.values():
        for dep in item["dependencies"]:
            edge_list.setdefault((dep, item["id"]), {"from": dep, "to": item["id"]})
    for e in edges:
        src, dst, ekind = (e[0], e[1], None) if isinstance(e, tuple) else (e["from"], e["to"], e.get("kind"))
        entry = edge_list.setdefault((str(src), str(dst)), {"from": str(src), "to": str(dst)})
        if ekind is not None:
            entry["kind"] = ekind
    edge_out = [e for e in edge_list.values() if e["from"] in by_id and e["to"] in by_id and e["from"] != e["to"]]
    deps: dict[str, list[str]] = {item_id: [] for item_id in by_id}
    for e in edge_out:
        deps[e["to"]].append(e["from"])
    for item_id, item in by_id.items():
        item["dependencies"] = deps[item_id]
    _root_causes(by_id)
    item_list = list(by_id.values())
    workers = _assign_lanes(item_list)

    starts = [t for i in item_list for t in [i["started_at"], *(a["start"] for a in i["attempts"])] if t is not None]
    ends = [t for i in item_list for t in [i["finished_at"], *(a["end"] for a in i["attempts"])] if t is not None]
    if started_at is None:
        started_at = min(starts, default=None)
    if finished_at is None:
        finished_at = max(ends, default=None)
        if finished_at is None and started_at is not None and wall_time is not None:
            finished_at = started_at + wall_time
    if wall_time is None:
        wall_time = finished_at - started_at if started_at is not None and finished_at is not None else 0.0
    wall_time = max(0.0, float(wall_time))
    total = sum(i["duration"] for i in item_list)
    efficiency = min(1.0, total / (wall_time * max(1, len(workers)))) if wall_time > 0 else None

    durations = {item_id: item["duration"] for item_id, item in by_id.items()}
    if critical_path is None:
        # over the items that have edges: a lone slow item is not a chain (and no edges means no critical path)
        linked = {e["from"] for e in edge_out} | {e["to"] for e in edge_out}
        critical_path = _critical_path({n: deps[n] for n in by_id if n in linked}, durations) if linked else []
    path = [p for p in critical_path if p in by_id]
    counts: dict[str, int] = {}
    for item in item_list:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    if stages is None:
        stages = list(dict.fromkeys(i["stage"] for i in item_list if i["stage"] is not None))
    report: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "kind": kind,
        "name": name,
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "success": (not any(s in FAILED_STATUSES for s in counts)) if success is None else bool(success),
        "wall_time": wall_time,
        "total_duration": total,
        "efficiency": efficiency,
        "workers": workers,
        "stages": list(stages),
        "counts": counts,
        "environment": dict(environment) if environment is not None else collect_environment(),
        "items": item_list,
        "edges": edge_out,
        "critical_path": path,
        "critical_path_duration": sum(durations[p] for p in path),
        "metadata": dict(metadata or {}),
    }
    masker = secrets if secrets is not None else SecretMasker(extra=extra_secrets)
    return masker(report)


def report_from_workflow(
    wf: Workflow,
    recorder: ReportRecorder | None = None,
    *,
    kind: str = "workflow",
    metadata: Mapping[str, Any] | None = None,
    extra_secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """The report of ``wf``'s last run, from its tasks, their results and dependencies.

    Per-attempt start and end times come from ``recorder`` (or the first ``ReportRecorder`` among the workflow's
    listeners); without one, only the last attempt of a retried task has times.
    """
    from pytest_orchestrator.reporting.recorder import ReportRecorder
    from pytest_orchestrator.reporting.recorder import workflow_items

    if recorder is None:
        recorder = next((lsn for lsn in wf.listeners if isinstance(lsn, ReportRecorder)), None)
    started_at = recorder.started_at if recorder is not None else None
    finished_at = recorder.finished_at if recorder is not None else None
    if started_at is None:
        started_at = min(
            (t.result.started_at for t in wf.tasks.values() if t.result and t.result.started_at), default=None
        )
    wall_time = wf.elapsed_time if wf.elapsed_time else None
    if finished_at is None and started_at is not None and wall_time is not None:
        finished_at = started_at + wall_time
    meta: dict[str, Any] = {"fail_fast": wf.fail_fast, "max_concurrency": wf.max_concurrency}
    meta.update(metadata or {})
    return build_report(
        kind=kind,
        name=wf.name,
        run_id=(recorder.run_id if recorder is not None else None) or wf.run_id,
        items=workflow_items(wf, recorder),
        started_at=started_at,
        finished_at=finished_at,
        wall_time=wall_time,
        metadata=meta,
        extra_secrets=extra_secrets,
    )


def write_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as JSON (``.json``) or as the self-contained HTML page (``.html``/``.htm``); return the path.

    The file is written atomically (a temporary file, then a rename). Raises ``ValueError`` for another suffix.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".json":
        text = json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"
    elif suffix in (".html", ".htm"):
        from pytest_orchestrator.reporting.html import render_html

        text = render_html(report)
    else:
        raise ValueError(f"cannot tell the report format from {str(target)!r}: use a .json or .html path")
    return write_text_atomic(target, text)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` (its folders made as needed) through a temporary file and a rename, so a reader
    never sees half a file; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target
