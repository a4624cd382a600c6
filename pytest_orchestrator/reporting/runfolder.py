"""The run folder of ``orchestrate run``: ``.orchestrate/runs/<run_id>/`` with one log per script and a
``summary.json``.

Layout::

    .orchestrate/runs/20240601-120000-1a2b3c/
        logs/extract.log          command, cwd, status, exit code, attempts, then stdout and stderr
        logs/clean_users.log
        summary.json              RunReport.to_dict(): every script, finished or not

Logs are written as each script finishes, so an interrupted run keeps the logs of what finished; ``summary.json``
is written last (atomically: a temporary file, then ``os.replace``). Run ids sort by start time, so the newest
folder is the last one in name order (``previous_durations`` uses that to remember how long scripts took).
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
from pathlib import Path
import re
import time
from typing import TYPE_CHECKING
from typing import Any
import uuid


if TYPE_CHECKING:
    from pytest_orchestrator.reporting.summary import RunReport
    from pytest_orchestrator.runners import ScriptResult

__all__ = ["DEFAULT_RUNS_DIR", "RunFolder", "new_run_id", "previous_durations"]

#: where run folders go, relative to the current directory, unless ``--run-dir`` says otherwise
DEFAULT_RUNS_DIR = Path(".orchestrate") / "runs"
SUMMARY_FILE = "summary.json"


def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS-xxxxxx``: sortable by start time, unique enough for parallel runs."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__")).strip("_") or "script"


class RunFolder:
    """The folder of one run. Nothing touches the disk before :meth:`create`."""

    def __init__(self, base: str | os.PathLike[str], run_id: str) -> None:
        self.base = Path(base)
        self.run_id = run_id
        self.path = self.base / run_id
        self._log_names: dict[str, str] = {}

    def create(self) -> Path:
        (self.path / "logs").mkdir(parents=True, exist_ok=True)
        return self.path

    def log_name(self, name: str) -> str:
        """The log file of script ``name``, relative to the run folder (unique per script)."""
        found = self._log_names.get(name)
        if found is None:
            stem = _safe_name(name)
            taken = set(self._log_names.values())
            found = f"logs/{stem}.log"
            i = 2
            while found in taken:
                found = f"logs/{stem}-{i}.log"
                i += 1
            self._log_names[name] = found
        return found

    def write_log(self, name: str, result: ScriptResult, *, cwd: str | None = None) -> str:
        """Write the log of one finished script; return its path relative to the run folder."""
        rel = self.log_name(name)
        lines = [
            f"script: {result.script}",
            f"command: {' '.join(result.command)}",
            f"cwd: {cwd or os.getcwd()}",
            f"status: {result.status}",
            f"exit code: {result.exit_code}",
            f"attempts: {result.attempts}",
            f"duration: {result.execution_time:.3f}s",
        ]
        if result.error:
            lines.append(f"error: {result.error}")
        for i, err in enumerate(result.attempt_errors, 1):
            lines.append(f"attempt {i}: {err}")
        if result.truncated:
            lines.append("note: output was truncated (only the tail is kept)")
        if result.attempts > 1:
            lines.append("(the output below is the last attempt's)")
        text = "\n".join(lines)
        text += f"\n----- stdout -----\n{result.stdout}"
        if result.stdout and not result.stdout.endswith("\n"):
            text += "\n"
        text += f"----- stderr -----\n{result.stderr}"
        if result.stderr and not result.stderr.endswith("\n"):
            text += "\n"
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", errors="replace")
        return rel

    def write_summary(self, report: RunReport) -> Path:
        """Write ``summary.json`` atomically and return its path."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / SUMMARY_FILE
        tmp = target.with_name(f".{SUMMARY_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        return target


def previous_durations(base: str | os.PathLike[str], names: Sequence[str]) -> dict[str, float]:
    """Durations of passed scripts in the newest earlier run under ``base`` (empty if none can be read)."""
    root = Path(base)
    try:
        folders = sorted((p for p in root.iterdir() if (p / SUMMARY_FILE).is_file()), reverse=True)
    except OSError:
        return {}
    wanted = set(names)
    for folder in folders[:3]:
        try:
            data: Any = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
            scripts = data["scripts"]
            out = {
                name: float(entry["duration"])
                for name, entry in scripts.items()
                if name in wanted and entry.get("status") == "passed"
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        return out
    return {}
