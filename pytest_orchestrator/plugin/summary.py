"""The terminal "workflow summary": what each item did, read from the test reports, and the text printed for it.

:class:`Recorder` folds reports into one :class:`ItemRecord` per item (it works the same on an xdist controller,
which sees only reports). :func:`build_summary` turns the records and the item graph into a JSON-ready dict (the
one the ``pytest_orchestrate_summary`` hook receives) and :func:`format_summary` into lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from typing import Any

import pytest

from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.outcomes import DEPENDENCY_SKIP_ATTR as DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.outcomes import ERROR_ATTR
from pytest_orchestrator.plugin.outcomes import INTERRUPTED
from pytest_orchestrator.plugin.outcomes import OUTCOME_STATUS
from pytest_orchestrator.plugin.outcomes import RERUN
from pytest_orchestrator.plugin.outcomes import TIMEOUT_ATTR
from pytest_orchestrator.plugin.outcomes import report_outcome


__all__ = ["STATUSES", "ItemRecord", "Recorder", "build_summary", "format_summary", "summary_markup"]

#: item statuses (the words of :data:`~pytest_orchestrator.plugin.outcomes.OUTCOME_STATUS`), in the order counts
#: are printed
STATUSES = tuple(outcome for outcome in OUTCOME_STATUS if outcome != RERUN)

_CRITICAL_PATH_SHOWN = 12


@dataclasses.dataclass(slots=True)
class ItemRecord:
    """What one item did in this session."""

    nodeid: str
    status: str = "passed"
    reruns: int = 0
    start: float = 0.0
    stop: float = 0.0
    #: for skips: the reason; for timeouts: "timed out after S s"
    reason: str = ""
    dependency_skip: bool = False
    #: its last report arrived (teardown, or xdist's report of a worker crash): ``status`` is final
    finished: bool = False
    #: messages of the failed attempts, the last one included when the item failed
    errors: Sequence[str] = ()

    @property
    def attempts(self) -> int:
        return self.reruns + 1

    @property
    def duration(self) -> float:
        return max(0.0, self.stop - self.start) if self.start else 0.0


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
        return text[len("Skipped: ") :] if text.startswith("Skipped: ") else text
    return str(getattr(report, "wasxfail", "") or "")


class Recorder:
    """Folds test reports (setup, call, teardown, reruns) into :class:`ItemRecord` s.

    An item is :data:`~.outcomes.INTERRUPTED` from its first report until its call or teardown report arrives (or
    its setup is skipped or fails): one whose run was cut short never counts as passed."""

    def __init__(self) -> None:
        self.items: dict[str, ItemRecord] = {}

    def add(self, report: pytest.TestReport) -> ItemRecord:
        record = self.items.get(report.nodeid)
        if record is None:
            record = self.items[report.nodeid] = ItemRecord(report.nodeid, INTERRUPTED)
        start, stop = getattr(report, "start", 0.0) or 0.0, getattr(report, "stop", 0.0) or 0.0
        if start and (not record.start or start < record.start):
            record.start = start
        if stop > record.stop:
            record.stop = stop
        when = report.when
        if report.outcome == "passed":  # most reports: what report_outcome says of them, without asking it
            if when == "call":
                record.status = "xpassed" if hasattr(report, "wasxfail") else "passed"
            elif when != "setup":  # teardown, or xdist's report of a worker crash
                record.finished = True
                if when != "teardown" or record.status == INTERRUPTED:
                    record.status = "passed"
            return record
        error = getattr(report, ERROR_ATTR, None)
        outcome = report_outcome(report)
        if outcome == RERUN:
            record.reruns += 1
            if error:
                record.errors = [*record.errors, str(error)]
            return record
        if when != "setup" and when != "call":
            record.finished = True
        if when == "teardown" and record.status == INTERRUPTED:
            record.status = "passed"  # no call phase (--setup-only), yet the item did finish
        if when not in ("setup", "teardown"):  # the call, or xdist's report of a worker crash
            record.status = outcome
            if outcome in ("failed", "timeout"):
                record.reason = str(getattr(report, TIMEOUT_ATTR, None) or "")
                if error:
                    record.errors = [*record.errors, str(error)]
            elif outcome in ("skipped", "xfailed"):
                record.reason = _skip_reason(report)
        elif outcome == "error":
            if when == "setup" or record.status in ("passed", "xpassed"):
                record.status = "error"
        elif outcome in ("skipped", "xfailed") and when == "setup":
            record.status = outcome
            record.reason = _skip_reason(report)
            record.dependency_skip = bool(getattr(report, DEPENDENCY_SKIP_ATTR, False))
        return record


def _fmt_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 600:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def build_summary(
    records: Mapping[str, ItemRecord],
    *,
    wall_time: float,
    session_start: float,
    workers: int = 1,
    graph: ItemGraph | None = None,
    with_items: bool = True,
) -> dict[str, Any]:
    """The summary as a JSON-ready dict (see the ``pytest_orchestrate_summary`` hook for its keys); its ``items``
    stay empty unless ``with_items`` (a dict per item: made only where something reads them)."""
    counts = dict.fromkeys(STATUSES, 0)
    reruns = 0
    total = 0.0
    items: dict[str, dict[str, Any]] = {}
    flaky: list[dict[str, Any]] = []
    retried_failed: list[dict[str, Any]] = []
    timeouts: list[dict[str, Any]] = []
    dependency_skips: list[dict[str, Any]] = []
    for n, r in records.items():  # one pass: a session's records are many
        status, start = r.status, r.start
        counts[status] = counts.get(status, 0) + 1
        duration = r.stop - start if start and r.stop > start else 0.0  # ItemRecord.duration, without the call
        total += duration
        if with_items:
            items[n] = {
                "status": status,
                "attempts": r.reruns + 1,
                "duration": round(duration, 6),
                "start": (round(start - session_start, 6) if start > session_start else 0.0) if start else None,
                "reason": r.reason,
            }
        if r.reruns:
            reruns += r.reruns
            if status == "passed":
                flaky.append({"nodeid": n, "attempts": r.attempts})
            elif status in ("failed", "timeout", "error"):
                retried_failed.append({"nodeid": n, "attempts": r.attempts, "errors": list(r.errors)})
        if status == "timeout":
            timeouts.append({"nodeid": n, "reason": r.reason})
        if r.dependency_skip:
            dependency_skips.append({"nodeid": n, "reason": r.reason})
    counts["rerun"] = reruns
    counts["dependency_skipped"] = len(dependency_skips)
    counts["not_run"] = sum(1 for n in graph if n not in records) if graph is not None else 0
    efficiency = total / (wall_time * workers) if wall_time > 0 and workers > 0 else 0.0
    path: list[str] = []
    if graph is not None and records and graph.has_edges():
        durations = {n: (records[n].duration if n in records else 0.0) for n in graph}
        path = graph.critical_path(durations)
    return {
        "counts": counts,
        "total_items": len(records) + counts["not_run"],
        "wall_time": wall_time,
        "total_duration": total,
        "efficiency": efficiency,
        "workers": workers,
        "critical_path": path,
        "critical_path_duration": sum(records[n].duration for n in path if n in records),
        "flaky": flaky,
        "retried_failed": retried_failed,
        "timeouts": timeouts,
        "dependency_skips": dependency_skips,
        "items": items,
    }


def _wall(seconds: float) -> str:
    """A wall time as pytest's final stats line writes it (``1.23s``), so the two read the same."""
    return f"{seconds:.2f}s"


def format_summary(summary: Mapping[str, Any], *, verbose: int = 0) -> list[str]:
    """The lines of the workflow summary: only those that tell what pytest's own output does not.

    - the counts, when they say more than pytest's stats line (timeouts, items interrupted or that never ran);
    - the wall time (pytest's, measured the same way), the summed item durations and the one parallel efficiency
      figure, when more than one worker ran;
    - the critical path, when items depend on others;
    - flaky items, items retried and still failing, timeouts and dependency skips;
    - the per-item table under ``-vv``.

    Nothing under ``-qq``; an empty list when there is nothing to tell (the section is then not printed).
    """
    if verbose <= -2:
        return []
    counts = summary["counts"]
    lines: list[str] = []
    if counts.get("timeout") or counts.get("not_run") or counts.get(INTERRUPTED):
        parts = [f"{counts[s]} {s}" for s in STATUSES if counts.get(s)]
        if counts.get("not_run"):
            parts.append(f"{counts['not_run']} not run")
        line = f"{summary['total_items']} items: " + (", ".join(parts) or "none ran")
        if counts.get("rerun"):
            line += f"; {counts['rerun']} rerun" + ("s" if counts["rerun"] != 1 else "")
        lines.append(line)
    workers = summary["workers"]
    if workers > 1:
        lines.append(
            f"wall time {_wall(summary['wall_time'])} on {workers} workers, summed item durations "
            f"{_fmt_seconds(summary['total_duration'])}: parallel efficiency {summary['efficiency']:.0%}"
        )
    path: Sequence[str] = summary["critical_path"]
    if path:
        items = summary["items"]
        shown = [f"{n} ({_fmt_seconds(items[n]['duration'])})" if n in items else n for n in path]
        if len(shown) > _CRITICAL_PATH_SHOWN:
            half = _CRITICAL_PATH_SHOWN // 2
            shown = [*shown[:half], f"... {len(shown) - 2 * half} more ...", *shown[-half:]]
        lines.append(f"critical path {_fmt_seconds(summary['critical_path_duration'])}: " + " -> ".join(shown))
    if summary["flaky"]:
        lines.append(FLAKY_HEADING)
        lines.extend(f"  {f['nodeid']}: {f['attempts']} attempts" for f in summary["flaky"])
    if summary["retried_failed"]:
        lines.append(RETRIED_HEADING)
        for f in summary["retried_failed"]:
            last = f" (last error: {f['errors'][-1]})" if f["errors"] else ""
            lines.append(f"  {f['nodeid']}: {f['attempts']} attempts{last}")
    if summary["timeouts"]:
        lines.append(TIMEOUTS_HEADING)
        lines.extend(f"  {t['nodeid']}: {t['reason']}" for t in summary["timeouts"])
    if summary["dependency_skips"]:
        lines.append(SKIPS_HEADING)
        lines.extend(f"  {d['nodeid']}: {d['reason']}" for d in summary["dependency_skips"])
    if verbose >= 2 and summary["items"]:
        lines.append(TABLE_HEADING)
        for nodeid, item in sorted(
            summary["items"].items(), key=lambda kv: (kv[1]["start"] is None, kv[1]["start"] or 0.0)
        ):
            start = "" if item["start"] is None else f"+{item['start']:.2f} s"
            lines.append(
                f"{item['status']:<9} {item['attempts']:>8} {_fmt_seconds(item['duration']):>10} {start:>10}  {nodeid}"
            )
    return lines


FLAKY_HEADING = "flaky (passed after retries):"
RETRIED_HEADING = "retried and still failing:"
TIMEOUTS_HEADING = "timeouts:"
SKIPS_HEADING = "dependency skips:"
TABLE_HEADING = f"{'status':<9} {'attempts':>8} {'duration':>10} {'start':>10}  item"

#: the colour of each section (its heading and its indented lines), in pytest's markup words
_SECTION_MARKUP: Mapping[str, Mapping[str, bool]] = {
    FLAKY_HEADING: {"yellow": True},
    RETRIED_HEADING: {"red": True},
    TIMEOUTS_HEADING: {"red": True},
    SKIPS_HEADING: {"yellow": True},
}
_STATUS_MARKUP: Mapping[str, Mapping[str, bool]] = {
    "passed": {"green": True},
    "xpassed": {"yellow": True},
    "failed": {"red": True},
    "timeout": {"red": True},
    "error": {"red": True},
    "skipped": {"yellow": True},
    "xfailed": {"yellow": True},
}


def summary_markup(lines: Sequence[str]) -> list[tuple[str, dict[str, bool]]]:
    """Each line with the markup to write it in (``TerminalReporter.write_line(line, **markup)``): section headings
    bold in their section's colour, their lines in that colour, table rows by status, the critical path in cyan."""
    out: list[tuple[str, dict[str, bool]]] = []
    section: Mapping[str, bool] = {}
    table = False
    for line in lines:
        if line in _SECTION_MARKUP:
            section, table = _SECTION_MARKUP[line], False
            out.append((line, {**section, "bold": True}))
        elif line == TABLE_HEADING:
            section, table = {}, True
            out.append((line, {"bold": True}))
        elif line.startswith("  ") and section:
            out.append((line, dict(section)))
        elif table and line.split(" ", 1)[0] in _STATUS_MARKUP:
            out.append((line, dict(_STATUS_MARKUP[line.split(" ", 1)[0]])))
        else:
            section, table = {}, False
            out.append((line, {"cyan": True} if line.startswith("critical path ") else {}))
    return out
