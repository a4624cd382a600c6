"""What a scripts run reports: the per-script outcome, the run report, and their text forms.

``RunReport`` is built by :mod:`pytest_orchestrator.orchestrator` once a run has settled (or was interrupted);
``format_summary`` is the text printed at the end of ``orchestrate run``, ``format_plan`` the ``--dry-run`` and
``orchestrate list`` text, and ``ProgressPrinter`` writes the live ``[ 3/12] START transform`` and
``[ 3/12] PASS transform (0.21s)`` lines (and a ``RETRY`` line when the engine retries an item, as it does pipeline
stages), the status word in colour on a terminal that takes it.

Status words of a script: ``passed``, ``failed``, ``timeout``, ``error`` (could not be run), ``skipped`` (exit
status 77, skipped by configuration, or a dependency did not pass), ``cancelled`` (killed or never started because
of ``--fail-fast`` or Ctrl-C) and ``not_run``.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import threading
import time
from typing import Any
from typing import TextIO


__all__ = [
    "FAILED_STATUSES",
    "STATUSES",
    "ProgressPrinter",
    "RunReport",
    "ScriptOutcome",
    "format_plan",
    "format_scripts",
    "format_summary",
]

STATUSES: tuple[str, ...] = ("passed", "failed", "timeout", "error", "skipped", "cancelled", "not_run")
#: statuses that make a run fail (exit status 1)
FAILED_STATUSES = frozenset({"failed", "timeout", "error", "cancelled", "not_run"})

_WORDS = {
    "passed": "PASS",
    "failed": "FAIL",
    "timeout": "TIMEOUT",
    "error": "ERROR",
    "skipped": "SKIP",
    "cancelled": "CANCEL",
    "not_run": "NOT RUN",
}
STDERR_TAIL_LINES = 5
SLOWEST = 5


@dataclasses.dataclass
class ScriptOutcome:
    """One script of a run (or of a plan, with ``status="not_run"``)."""

    name: str
    #: the script's path relative to the scripts folder
    path: str
    status: str = "not_run"
    depends: list[str] = dataclasses.field(default_factory=list)
    stage: str | None = None
    #: the effective per-attempt timeout in seconds (``None``: none)
    timeout: float | None = None
    max_attempts: int = 1
    retry_delay: float = 0.0
    attempts: int = 0
    exit_code: int | None = None
    duration: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    #: why it was skipped or cancelled, or what went wrong
    reason: str | None = None
    #: errors of the failed attempts before the last one
    attempt_errors: list[str] = dataclasses.field(default_factory=list)
    stderr_tail: list[str] = dataclasses.field(default_factory=list)
    command: list[str] = dataclasses.field(default_factory=list)
    #: the log file, relative to the run folder
    log: str | None = None
    #: it completed in the resumed run and did not run again
    carried_over: bool = False

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class RunReport:
    """The outcome of one ``orchestrate run``: every script, in definition order, plus the run's facts."""

    run_id: str
    root: str
    jobs: int
    fail_fast: bool
    started_at: float
    elapsed: float = 0.0
    interrupted: bool = False
    scripts: list[ScriptOutcome] = dataclasses.field(default_factory=list)
    critical_path: list[str] = dataclasses.field(default_factory=list)
    #: the run folder (logs and summary.json), or None if it could not be written
    run_folder: str | None = None
    #: the id of this run in the state store, and the run it resumed (``orchestrate run --resume``)
    state_run_id: str | None = None
    resumed_from: str | None = None
    #: the signal that interrupted the run (``SIGINT`` for Ctrl-C, ``SIGTERM``), when one did
    signal: int | None = None

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for s in self.scripts:
            out[s.status] = out.get(s.status, 0) + 1
        return out

    @property
    def success(self) -> bool:
        """Every script passed or was skipped, and the run was not interrupted."""
        return not self.interrupted and not any(s.failed for s in self.scripts)

    @property
    def exit_code(self) -> int:
        """0 when everything passed or was skipped, 1 otherwise; interrupted: 128 + the signal (130 Ctrl-C, 143
        SIGTERM), as a shell reports a process a signal ended."""
        if self.interrupted:
            return 128 + (self.signal or 2)
        return 0 if self.success else 1

    @property
    def carried_over(self) -> list[str]:
        """The items that completed in the resumed run and did not run again."""
        return [s.name for s in self.scripts if s.carried_over]

    @property
    def total_script_time(self) -> float:
        return sum(s.duration for s in self.scripts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "root": self.root,
            "jobs": self.jobs,
            "fail_fast": self.fail_fast,
            "started_at": self.started_at,
            "started": _iso(self.started_at),
            "elapsed": self.elapsed,
            "total_script_time": self.total_script_time,
            "state_run_id": self.state_run_id,
            "resumed_from": self.resumed_from,
            "carried_over": self.carried_over,
            "interrupted": self.interrupted,
            "success": self.success,
            "exit_code": self.exit_code,
            "counts": {"total": len(self.scripts), **self.counts},
            "critical_path": list(self.critical_path),
            "run_folder": self.run_folder,
            "scripts": {s.name: s.to_dict() for s in self.scripts},
        }


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(timestamp))


def _seconds(value: float) -> str:
    return f"{value:.2f}s"


def _retry_text(s: ScriptOutcome) -> str:
    if s.max_attempts <= 1:
        return "no retry"
    delay = f", delay {s.retry_delay:g}s" if s.retry_delay else ""
    return f"{s.max_attempts} attempts{delay}"


def _timeout_text(s: ScriptOutcome) -> str:
    return "none" if s.timeout is None else f"{s.timeout:g}s"


# -- live progress -------------------------------------------------------------------------------------------
#: the colour of each status word in the progress lines
_WORD_STYLES = {
    "PASS": ("green",),
    "FAIL": ("red", "bold"),
    "TIMEOUT": ("red", "bold"),
    "ERROR": ("red", "bold"),
    "SKIP": ("yellow",),
    "CANCEL": ("yellow",),
    "NOT RUN": ("yellow",),
    "START": ("cyan",),
    "RETRY": ("yellow", "bold"),
}


class ProgressPrinter:
    """One line per script start and finish, e.g. ``[ 3/12] START transform`` then ``[ 2/12] PASS transform
    (0.21s)``: a start line counts the scripts started so far, a finish line those finished so far. Thread-safe.

    ``colour``: ``True``/``False``, or ``None`` to decide by :func:`~pytest_orchestrator.reporting.terminal.use_colour`
    (``NO_COLOR``, ``FORCE_COLOR``, whether the stream is a TTY). Only the status word is coloured.
    """

    def __init__(self, total: int, stream: TextIO | None, *, enabled: bool = True, colour: bool | None = None) -> None:
        from pytest_orchestrator.reporting.terminal import use_colour

        self.total = total
        self.stream = stream
        self.enabled = enabled and stream is not None
        self.colour = use_colour(stream) if colour is None else colour
        self.started_count = 0
        self.finished_count = 0
        self._width = len(str(total))
        self._lock = threading.Lock()

    def _word(self, word: str) -> str:
        if not self.colour or word not in _WORD_STYLES:
            return word
        from pytest_orchestrator.reporting.terminal import paint

        return paint(word, *_WORD_STYLES[word])

    def _write(self, count: int, word: str, text: str) -> None:
        self._write_line(f"[{count:>{self._width}}/{self.total}] {self._word(word)} {text}")

    def _write_line(self, line: str) -> None:
        if not self.enabled or self.stream is None:
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not break the run
            self.enabled = False

    def note(self, text: str) -> None:
        """A line of its own between the progress lines (e.g. what happens after Ctrl-C)."""
        self._write_line(text)

    def started(self, name: str) -> None:
        with self._lock:
            self.started_count += 1
            self._write(self.started_count, "START", name)

    def retrying(self, name: str, attempt: int, error: str, delay: float) -> None:
        """Attempt ``attempt`` of ``name`` failed with ``error``; the next starts in ``delay`` seconds."""
        with self._lock:
            self._write_line(
                f"{'':{self._width * 2 + 4}} {self._word('RETRY')} {name} "
                f"(attempt {attempt}: {error}; next in {delay:.2g}s)"
            )

    def finished(self, name: str, status: str, *, duration: float | None = None, detail: str | None = None) -> None:
        """A script reached a final ``status`` (one of ``STATUSES``); ``detail`` is shown in the parentheses."""
        with self._lock:
            self.finished_count += 1
            parts = [_seconds(duration)] if duration is not None else []
            if detail:
                parts.append(detail)
            suffix = f" ({', '.join(parts)})" if parts else ""
            self._write(self.finished_count, _WORDS.get(status, status.upper()), f"{name}{suffix}")


# -- plan and list -------------------------------------------------------------------------------------------
def format_plan(levels: Sequence[Sequence[ScriptOutcome]], *, jobs: int, fail_fast: bool) -> str:
    """The ``--dry-run`` text: scripts by level (a level's scripts may run side by side), with their settings."""
    total = sum(len(level) for level in levels)
    lines = [
        f"plan: {total} script{'s' if total != 1 else ''} in {len(levels)} level{'s' if len(levels) != 1 else ''}"
        f" (-j {jobs}, fail-fast {'on' if fail_fast else 'off'}); nothing is run"
    ]
    width = max((len(s.name) for level in levels for s in level), default=0)
    for i, level in enumerate(levels, 1):
        lines.append(f"level {i}:")
        for s in level:
            deps = ", ".join(s.depends) or "-"
            stage = f"  stage: {s.stage}" if s.stage else ""
            lines.append(
                f"  {s.name:<{width}}  deps: {deps}  timeout: {_timeout_text(s)}  retry: {_retry_text(s)}{stage}"
            )
    return "\n".join(lines) + "\n"


def format_scripts(scripts: Sequence[ScriptOutcome]) -> str:
    """The ``orchestrate list`` table: name, stage, dependencies and path."""
    rows = [("NAME", "STAGE", "DEPENDS", "PATH")]
    rows += [(s.name, s.stage or "-", ", ".join(s.depends) or "-", s.path) for s in scripts]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "".join(
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() + "\n" for r in rows
    )


# -- the end-of-run summary ----------------------------------------------------------------------------------
def format_summary(report: RunReport, *, slowest: int = SLOWEST) -> str:
    """The text printed after a run: counts, slowest scripts, retries, failures (with their last stderr lines),
    skips with their reasons, the critical path and where the run folder is."""
    counts = report.counts
    shown = [f"{counts[k]} {k.replace('_', ' ')}" for k in STATUSES if counts.get(k)]
    total = len(report.scripts)
    verdict = "INTERRUPTED" if report.interrupted else ("OK" if report.success else "FAILED")
    lines = [
        f"orchestrate: {verdict}: {total} script{'s' if total != 1 else ''} in {_seconds(report.elapsed)}"
        f" (-j {report.jobs}, {_seconds(report.total_script_time)} of script time): {', '.join(shown) or 'nothing run'}"
    ]
    ran = sorted((s for s in report.scripts if s.attempts), key=lambda s: s.duration, reverse=True)
    if ran and slowest:
        lines.append("slowest:")
        lines += [f"  {_seconds(s.duration):>8}  {s.name}" for s in ran[:slowest]]
    retried = [s for s in report.scripts if s.attempts > 1]
    if retried:
        lines.append("retried:")
        for s in retried:
            errors = "; ".join(s.attempt_errors)
            lines.append(f"  {s.name}: {s.attempts} attempts, {s.status}" + (f" (earlier: {errors})" if errors else ""))
    failures = [s for s in report.scripts if s.status in ("failed", "timeout", "error")]
    if failures:
        lines.append("failures:")
        for s in failures:
            lines.append(
                f"  {_WORDS[s.status]} {s.name}: {s.reason or s.status}" + (f"  [log: {s.log}]" if s.log else "")
            )
            lines += [f"      | {line}" for line in s.stderr_tail]
    skipped = [s for s in report.scripts if s.status == "skipped"]
    if skipped:
        lines.append("skipped:")
        lines += [f"  {s.name}: {s.reason or 'skipped'}" for s in skipped]
    unfinished = [s for s in report.scripts if s.status in ("cancelled", "not_run")]
    if unfinished:
        lines.append("not finished:")
        lines += [f"  {s.name}: {s.reason or s.status}" for s in unfinished]
    if report.critical_path:
        by_name = {s.name: s for s in report.scripts}
        length = sum(by_name[n].duration for n in report.critical_path if n in by_name)
        lines.append(f"critical path: {' -> '.join(report.critical_path)} ({_seconds(length)})")
    if report.resumed_from:
        carried = report.carried_over
        lines.append(
            f"resumed run {report.resumed_from}: {len(carried)} carried over, {total - len(carried)} run again"
        )
    if report.run_folder:
        lines.append(f"run folder: {report.run_folder}")
    return "\n".join(lines) + "\n"
