"""``orchestrate schedule FILE`` and ``orchestrate watch PATH``: a scheduler in the foreground, until SIGTERM or Ctrl-C.

A schedule file is YAML: one entry per job under ``jobs``, keyed by the job's name::

    jobs:
      nightly:
        target: pipelines/nightly.yaml     # a pipeline file, a scripts folder, or "package.module:function"
        cron: "0 2 * * *"                  # or every: 30 (seconds; also "90s", "5m", "1h"), or at: "07:30"
        tz: Europe/Berlin                  # optional: the zone of cron/at (default: the local zone)
      health:
        target: checks:ping                # imported with the schedule file's folder first on sys.path
        every: 5m
        args: [https://example.org]
        kwargs: {timeout: 3}
        overlap: skip                      # skip | queue | allow
        misfire: run_once                  # run_once | skip
        max_runs: 100

Paths are relative to the schedule file. Every error is a ``ConfigError`` naming the file and the line. Jobs are kept
in the state file (``--state``, default ``.orchestrate/state.db``): after a restart they go on where they were, and a
job no longer in the schedule file is removed from it. One line is printed per fire and per finish. On SIGTERM or
Ctrl-C nothing more fires; running jobs get ``--grace`` seconds to finish and are then cancelled (a pipeline's or a
scripts folder's processes are killed).

``orchestrate watch PATH`` runs a scripts folder or a pipeline file once, then again after each change under it
(a pipeline file: its folder), printing the output of each run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import contextlib
import dataclasses
import datetime as dt
import os
from pathlib import Path
import re
import signal
import sys
import threading
import time
from typing import Any
from typing import TextIO
import warnings

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.schedule.jobs import MISFIRE_POLICIES
from pytest_orchestrator.schedule.jobs import OVERLAP_POLICIES
from pytest_orchestrator.schedule.jobs import JobFinished
from pytest_orchestrator.schedule.jobs import JobSkipped
from pytest_orchestrator.schedule.jobs import JobStarted
from pytest_orchestrator.schedule.persist import import_target
from pytest_orchestrator.schedule.scheduler import Scheduler
from pytest_orchestrator.schedule.targets import PIPELINE_SUFFIXES
from pytest_orchestrator.schedule.triggers import CronTrigger
from pytest_orchestrator.schedule.triggers import at as at_trigger
from pytest_orchestrator.schedule.triggers import every as every_trigger
from pytest_orchestrator.scripts.documents import load_yaml_document
from pytest_orchestrator.scripts.errors import ConfigError
from pytest_orchestrator.scripts.lines import yaml_key_line
from pytest_orchestrator.state.store import DEFAULT_PATH
from pytest_orchestrator.state.store import StateStore


__all__ = [
    "COMMANDS",
    "DEFAULT_GRACE",
    "JobSpec",
    "add_commands",
    "load_schedule",
    "run_command",
    "run_schedule",
    "run_watch",
]

#: the subcommands this module adds to ``orchestrate``
COMMANDS = ("schedule", "watch")
#: seconds running jobs get to finish after SIGTERM / Ctrl-C
DEFAULT_GRACE = 10.0
_PROG = "orchestrate"
#: how long the pool threads that are not in a job get to leave once the scheduler stopped (seconds)
_IDLE_EXIT = 1.0
_USAGE_ERROR = 2
_TRIGGER_KEYS = ("cron", "every", "at")
_JOB_KEYS = ("target", *_TRIGGER_KEYS, "tz", "args", "kwargs", "misfire", "overlap", "max_runs")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """One job of a schedule file, checked and ready for ``Scheduler.schedule``."""

    name: str
    target: Any
    trigger: Any
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    misfire: str = "run_once"
    overlap: str = "skip"
    max_runs: int | None = None


# -- the schedule file --------------------------------------------------------------------------------------------
def load_schedule(path: str | os.PathLike[str]) -> list[JobSpec]:
    """Read and check a schedule file; ``ConfigError`` (``file:line: problem``) on the first problem found.

    Function targets are imported here (with the file's folder first on ``sys.path``), so a typo is reported
    before anything runs.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError("no such schedule file", path=file)
    node, data = load_yaml_document(file)

    def fail(message: str, keypath: Sequence[str | int] = (), **context: Any) -> ConfigError:
        return ConfigError(message, path=file, line=yaml_key_line(node, keypath) or 1, **context)

    if not isinstance(data, dict):
        raise fail("a schedule file is a mapping with a 'jobs' key")
    for key in data:
        if key != "jobs":
            raise fail(f"unknown key {key!r}; a schedule file has one key, 'jobs'", (str(key),), key=str(key))
    jobs = data.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        raise fail("'jobs' must map job names to their settings (target and cron, every or at)", ("jobs",))
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return [_job_spec(str(name), settings, file, fail) for name, settings in jobs.items()]


def _job_spec(name: str, settings: Any, file: Path, fail: Callable[..., ConfigError]) -> JobSpec:
    where: tuple[str, ...] = ("jobs", name)
    if not isinstance(settings, dict):
        raise fail(f"job {name!r}: its settings must be a mapping (target and cron, every or at)", where)
    for key in settings:
        if key not in _JOB_KEYS:
            hints = close_matches(str(key), _JOB_KEYS)
            hint = f"; did you mean {hints[0]!r}?" if hints else f" (known: {', '.join(_JOB_KEYS)})"
            raise fail(f"job {name!r}: unknown key {key!r}{hint}", (*where, str(key)), key=str(key))
    given = [str(k) for k in settings if k in _TRIGGER_KEYS]
    if len(given) != 1:
        raise fail(
            f"job {name!r}: give exactly one of cron, every or at" + (f" (got {', '.join(given)})" if given else ""),
            (*where, given[1]) if len(given) > 1 else where,
        )
    kind = given[0]
    trigger = _trigger(name, kind, settings[kind], settings.get("tz"), lambda m: fail(m, (*where, kind)))
    if "target" not in settings:
        raise fail(f"job {name!r}: 'target' is missing (a pipeline file, a scripts folder or 'module:function')", where)
    target = _target(name, settings["target"], file, lambda m: fail(m, (*where, "target")))
    args = settings.get("args", [])
    if not isinstance(args, list):
        raise fail(f"job {name!r}: 'args' must be a list", (*where, "args"))
    kwargs = settings.get("kwargs", {})
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise fail(f"job {name!r}: 'kwargs' must be a mapping of names to values", (*where, "kwargs"))
    choices: dict[str, str] = {}
    for key, allowed in (("misfire", MISFIRE_POLICIES), ("overlap", OVERLAP_POLICIES)):
        value = settings.get(key, allowed[0] if key == "misfire" else "skip")
        if value not in allowed:
            hints = close_matches(str(value), allowed)
            raise fail(
                f"job {name!r}: {key} must be one of {', '.join(allowed)}, got {value!r}"
                + (f"; did you mean {hints[0]!r}?" if hints else ""),
                (*where, key),
            )
        choices[key] = value
    max_runs = settings.get("max_runs")
    if max_runs is not None and (isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1):
        raise fail(f"job {name!r}: max_runs must be a positive whole number, got {max_runs!r}", (*where, "max_runs"))
    return JobSpec(
        name=name,
        target=target,
        trigger=trigger,
        args=tuple(args),
        kwargs=dict(kwargs),
        misfire=choices["misfire"],
        overlap=choices["overlap"],
        max_runs=max_runs,
    )


def _trigger(name: str, kind: str, value: Any, tz: Any, fail: Callable[[str], ConfigError]) -> Any:
    if tz is not None and not isinstance(tz, str):
        raise fail(f"job {name!r}: tz must be a zone name such as 'Europe/Berlin', got {tz!r}")
    try:
        if kind == "cron":
            if not isinstance(value, str):
                raise ValueError(f"cron must be a string such as '0 2 * * *', got {value!r}")
            return CronTrigger(value, tz)
        if kind == "at":
            if not isinstance(value, str):
                raise ValueError(f"at must be a time of day 'HH:MM' in quotes, got {value!r}")
            return at_trigger(value, tz)
        if tz is not None:
            raise ValueError("tz applies to cron and at, not to every")
        return every_trigger(seconds=_seconds(value))
    except ValueError as exc:
        raise fail(f"job {name!r}: {exc}") from None


def _seconds(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(
            f"every must be a positive number of seconds or a duration such as '90s', '5m', '1h', got {value!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def _target(name: str, value: Any, file: Path, fail: Callable[[str], ConfigError]) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"job {name!r}: target must be a pipeline file, a scripts folder or 'module:function'")
    path = file.resolve().parent / value
    looks_like_path = value.endswith(PIPELINE_SUFFIXES) or "/" in value or os.sep in value or path.exists()
    if looks_like_path:
        if path.is_dir() or (path.is_file() and path.suffix in PIPELINE_SUFFIXES):
            return str(path)
        if not path.exists():
            raise fail(f"job {name!r}: target {value!r} does not exist (relative to {str(file.parent)!r})")
        raise fail(f"job {name!r}: target {value!r} is neither a pipeline file (.yaml, .yml) nor a folder")
    if ":" not in value:
        raise fail(f"job {name!r}: target {value!r} is not a path; a function is given as 'package.module:function'")
    try:
        found = import_target(value)
    except Exception as exc:
        raise fail(f"job {name!r}: cannot import target {value!r}: {type(exc).__name__}: {exc}") from None
    if not callable(found):
        raise fail(f"job {name!r}: target {value!r} is not a function")
    return found


# -- running ------------------------------------------------------------------------------------------------------
def _stamp() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _printer(out: TextIO, scheduler: Scheduler, *, show_output: bool = False) -> Callable[[Any], None]:
    """A scheduler listener printing one line per fire, finish and skip."""
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            out.write(text + "\n")
            out.flush()

    def listener(event: Any) -> None:
        if isinstance(event, JobStarted):
            say(f"{_stamp()} fire    {event.job} (due {event.due.astimezone():%H:%M:%S}, lag {event.lag:.2f}s)")
        elif isinstance(event, JobFinished):
            record = event.record
            if show_output:
                value = scheduler.get_job(event.job_id).last_result
                if isinstance(value, str) and value.strip():
                    say(value.rstrip("\n"))
            tail = f": {record.error}" if record.error else ""
            say(f"{_stamp()} finish  {event.job} {record.status.value} in {record.duration:.2f}s{tail}")
        elif isinstance(event, JobSkipped):
            say(f"{_stamp()} skip    {event.job} ({event.record.reason})")

    return listener


def _until_signalled() -> None:
    """Block until SIGTERM or SIGINT (Ctrl-C); the previous handlers are restored afterwards."""
    stop = threading.Event()
    handled = (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover - the command's main thread
        stop.wait()
        return
    previous = {sig: signal.getsignal(sig) for sig in handled}
    try:
        for sig in handled:
            signal.signal(sig, lambda _sig, _frame: stop.set())
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_until_signalled(scheduler: Scheduler, grace: float, out: TextIO) -> int:
    scheduler.start()
    _until_signalled()
    running = sum(job.running for job in scheduler.list_jobs())
    wait = f"; waiting up to {grace:g}s for {running} running job{'s' if running != 1 else ''}" if running else ""
    out.write(f"{_PROG}: stopping{wait}\n")
    out.flush()
    scheduler.stop(wait=True, grace=grace)
    left = [t for t in threading.enumerate() if t.name.startswith("scheduled-job") and t.is_alive()]
    # an idle pool thread leaves as soon as it sees the pool shut down; only one still in a job is abandoned
    deadline = time.monotonic() + _IDLE_EXIT
    for thread in left:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [t for t in left if t.is_alive()]
    if left:  # a sync function that ignores cancellation: its thread cannot be stopped, the process can
        out.write(f"{_PROG}: abandoning {len(left)} job thread(s) still running after the grace period\n")
        out.flush()
        sys.stderr.flush()
        os._exit(0)
    out.write(f"{_PROG}: stopped\n")
    out.flush()
    return 0


def run_schedule(
    path: str | os.PathLike[str],
    *,
    state: str | os.PathLike[str] | None = DEFAULT_PATH,
    grace: float = DEFAULT_GRACE,
    out: TextIO | None = None,
    max_workers: int = 4,
) -> int:
    """``orchestrate schedule FILE``: schedule the file's jobs and serve them until SIGTERM or Ctrl-C.

    ``state`` is the state file (``None``: jobs are not kept). Returns the exit status: 0 after a clean stop, 2
    for a bad schedule file or state file.
    """
    out = out if out is not None else sys.stdout
    try:
        specs = load_schedule(path)
    except ConfigError as exc:
        return _usage_error(str(exc))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scheduler = Scheduler(max_workers=max_workers, state=StateStore(state) if state is not None else None)
            for spec in specs:
                scheduler.schedule(
                    spec.target,
                    spec.trigger,
                    name=spec.name,
                    args=spec.args,
                    kwargs=spec.kwargs,
                    max_runs=spec.max_runs,
                    misfire=spec.misfire,
                    overlap=spec.overlap,
                )
    except StateError as exc:
        return _usage_error(exc.message)
    except ValueError as exc:
        return _usage_error(f"{path}: {exc}")
    names = {spec.name for spec in specs}
    for job in scheduler.list_jobs():
        if job.name not in names:  # the file is the truth: a job taken out of it goes
            scheduler.remove(job.id)
            out.write(f"{_PROG}: removed job {job.name!r} from the state file (no longer in {path})\n")
    for warning in caught:
        if "cannot run" not in str(warning.message):  # broken jobs that are no longer in the file are gone
            out.write(f"{_PROG}: warning: {warning.message}\n")
    scheduler.add_listener(_printer(out, scheduler))
    kept = f"; state in {state}" if state is not None else ""
    out.write(f"{_PROG}: {len(specs)} job{'s' if len(specs) != 1 else ''} from {path}{kept}; Ctrl-C or SIGTERM stops\n")
    for job in scheduler.list_jobs():
        nxt = f"next {job.next_fire_time.astimezone():%Y-%m-%d %H:%M:%S}" if job.next_fire_time else "no next fire"
        out.write(f"  {job.name}: {job.target}, {job.trigger!r}, {nxt}, {job.runs} runs so far\n")
    out.flush()
    return _serve_until_signalled(scheduler, grace, out)


def run_watch(
    path: str | os.PathLike[str], *, debounce: float = 0.2, grace: float = DEFAULT_GRACE, out: TextIO | None = None
) -> int:
    """``orchestrate watch PATH``: run a scripts folder or a pipeline file now and after each change under it."""
    from pytest_orchestrator.triggers.files import FileTrigger

    out = out if out is not None else sys.stdout
    target = Path(path)
    if target.is_dir():
        watched = target
    elif target.is_file() and target.suffix in PIPELINE_SUFFIXES:
        watched = target.resolve().parent
    else:
        return _usage_error(f"{str(target)!r} is neither a scripts folder nor a pipeline file (.yaml, .yml)")
    scheduler = Scheduler(max_workers=1)
    job_id = scheduler.schedule(
        target.resolve(), FileTrigger(watched, debounce=debounce), name=str(target), overlap="queue"
    )
    scheduler.add_listener(_printer(out, scheduler, show_output=True))
    scheduler.run_now(job_id)
    out.write(f"{_PROG}: watching {watched} (Ctrl-C or SIGTERM stops)\n")
    out.flush()
    return _serve_until_signalled(scheduler, grace, out)


def _usage_error(message: str) -> int:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return _USAGE_ERROR


# -- the command line ----------------------------------------------------------------------------------------------
def add_commands(commands: Any) -> None:
    """Add ``schedule`` and ``watch`` to the ``orchestrate`` subcommands (an argparse subparsers object)."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"expected a non-negative number of seconds, got {text!r}")
        return value

    text = "run the jobs of a schedule file (cron, every, at) in the foreground until Ctrl-C or SIGTERM"
    sub = commands.add_parser("schedule", help=text, description=text)
    sub.add_argument("file", metavar="FILE", help="the schedule file (YAML, a 'jobs' mapping)")
    keep = sub.add_mutually_exclusive_group()
    keep.add_argument("--state", default=DEFAULT_PATH, metavar="PATH", help=f"state file (default: {DEFAULT_PATH})")
    keep.add_argument("--no-state", action="store_true", help="do not keep the jobs across restarts")
    sub.add_argument(
        "--grace",
        type=seconds,
        default=DEFAULT_GRACE,
        metavar="S",
        help="seconds running jobs get to "
        f"finish after Ctrl-C or SIGTERM before they are cancelled (default: {DEFAULT_GRACE:g})",
    )
    text = "run a scripts folder or a pipeline file, then again after each change under it"
    sub = commands.add_parser("watch", help=text, description=text)
    sub.add_argument("path", metavar="DIR|PIPELINE", help="a scripts folder or a pipeline file (.yaml)")
    sub.add_argument("--debounce", type=seconds, default=0.2, metavar="S", help="quiet time before a rerun (0.2)")
    sub.add_argument("--grace", type=seconds, default=DEFAULT_GRACE, metavar="S", help="as for schedule")


def run_command(args: argparse.Namespace) -> int:
    """Run ``orchestrate schedule`` or ``orchestrate watch`` from parsed arguments."""
    with contextlib.suppress(AttributeError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.command == "schedule":
        return run_schedule(args.file, state=None if args.no_state else args.state, grace=args.grace)
    return run_watch(args.path, debounce=args.debounce, grace=args.grace)
