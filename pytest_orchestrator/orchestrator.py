"""Run a folder of scripts as a DAG: discover -> configure -> build the DAG -> run -> report.

``build_plan(path)`` discovers the scripts under ``path`` (``**/*.py``, ``**/*.sh``), reads each one's settings
(PEP 723 ``[tool.orchestrate]`` metadata merged with ``orchestrate.yaml``, see :mod:`pytest_orchestrator.scripts`)
and resolves its ``depends`` entries to other scripts. A dependency names a script by stem (``extract``), file
name (``extract.py``), or path relative to ``path`` (or to the config file's folder). Everything wrong (bad
metadata or config, unknown or ambiguous dependencies, cycles) is collected in ``Plan.problems``, one line each.

``run_plan(plan, options)`` runs the plan on the core :class:`~pytest_orchestrator.core.workflow.Workflow` engine:
one task per script, at most ``jobs`` at once. A task's action runs :func:`~pytest_orchestrator.runners.run_script`
in a worker thread; the script's retries and timeout are applied by ``run_script`` itself (so the engine gets no
retry policy and no timeout). Outcomes map to the engine as follows:

- passed -> the task completes;
- failed, timed out, could not run -> the action raises ``ScriptFailedError``: the task fails, its dependents
  are skipped, independent branches run on (unless ``fail_fast``);
- skipped (exit status 77, or ``skip`` in the config) -> the task completes with the skipped ``ScriptResult``;
  each dependent has a condition that is false when a dependency was skipped, so the engine skips it (and its
  dependents in turn). After the run the skipped task itself is marked ``SKIPPED`` too.

Cancellation (``--fail-fast``, Ctrl-C): the engine cancels the running actions; each sets its script's cancel
event, which kills the script's process group, and waits for that before the run ends. ``run_plan`` turns Ctrl-C
into ``RunReport.interrupted``: the run folder still gets its ``summary.json``.

``run_orchestrator(argv)`` is ``orchestrate run ARGS...``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
import copy
import dataclasses
import os
from pathlib import Path
import posixpath
import signal
import sys
import threading
import time
from typing import Any
from typing import TextIO

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.graph import critical_path
from pytest_orchestrator.core.graph import find_cycle
from pytest_orchestrator.core.graph import generations
from pytest_orchestrator.core.graph import topological_order
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.workflow import TaskResult
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.reporting.runfolder import DEFAULT_RUNS_DIR
from pytest_orchestrator.reporting.runfolder import RunFolder
from pytest_orchestrator.reporting.runfolder import new_run_id
from pytest_orchestrator.reporting.runfolder import previous_durations
from pytest_orchestrator.reporting.summary import ProgressPrinter
from pytest_orchestrator.reporting.summary import RunReport
from pytest_orchestrator.reporting.summary import ScriptOutcome
from pytest_orchestrator.runners import ScriptResult
from pytest_orchestrator.runners import run_script
from pytest_orchestrator.scripts import ConfigError
from pytest_orchestrator.scripts import OrchestrateConfig
from pytest_orchestrator.scripts import discover_scripts
from pytest_orchestrator.scripts import get_script_config
from pytest_orchestrator.scripts import load_config


__all__ = [
    "DEFAULT_SCRIPTS_DIR",
    "DEFAULT_TIMEOUT",
    "Plan",
    "RunOptions",
    "ScriptFailedError",
    "ScriptSpec",
    "build_plan",
    "plan_outcomes",
    "plan_levels",
    "run_orchestrator",
    "run_plan",
]

DEFAULT_SCRIPTS_DIR = "scripts"
#: per-attempt timeout of a script that sets none (metadata, orchestrate.yaml or --timeout)
DEFAULT_TIMEOUT = 60.0
#: first delay between attempts when --retries gives a script its retries
DEFAULT_RETRY_DELAY = 0.5
STDERR_TAIL = 5

_FALLBACK_SETTINGS: dict[str, Any] = {
    "depends": [],
    "timeout": None,
    "retry": None,
    "args": [],
    "env": {},
    "stage": None,
    "allowed_exit_codes": [0],
    "skip": False,
}


class ScriptFailedError(StepError):
    """A script failed, timed out or could not be run (after its retries). ``.result`` is its ``ScriptResult``."""


# -- discover, configure, build the DAG -----------------------------------------------------------------------
@dataclasses.dataclass
class ScriptSpec:
    """One discovered script: its node name in the DAG, where it is and its effective settings."""

    #: the node name: the stem, or the relative path when two scripts share a stem
    name: str
    path: Path
    #: posix path relative to the scripts folder
    rel: str
    #: ``get_script_config`` output (depends, timeout, retry, args, env, stage, allowed_exit_codes, skip)
    settings: dict[str, Any]
    #: resolved dependencies (node names)
    depends: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Plan:
    """The scripts under one folder and their DAG, with every problem found on the way."""

    root: Path
    config: OrchestrateConfig | None
    scripts: dict[str, ScriptSpec] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def graph(self) -> dict[str, list[str]]:
        """``{script: dependencies}`` in discovery order (known dependencies only)."""
        return {name: list(spec.depends) for name, spec in self.scripts.items()}

    @property
    def ok(self) -> bool:
        return not self.problems


def _display(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when it is inside it."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def build_plan(path: str | os.PathLike[str] = DEFAULT_SCRIPTS_DIR) -> Plan:
    """Discover and configure the scripts under ``path`` and resolve their dependencies.

    Raises ``FileNotFoundError`` / ``NotADirectoryError`` when ``path`` is not a folder; every other problem is
    collected in ``Plan.problems`` (a bad config file stops there, a script with bad metadata gets the defaults).
    """
    given = Path(path)
    if not given.exists():
        raise FileNotFoundError(f"{str(given)!r} does not exist")
    if not given.is_dir():
        raise NotADirectoryError(f"{str(given)!r} is not a folder")
    root = given.resolve()
    try:
        config = load_config(root)
    except ConfigError as exc:
        return Plan(root, None, problems=[exc.message])
    plan = Plan(root, config)
    files = discover_scripts(root)
    if not files:
        plan.problems.append(f"{_display(root)}: no scripts found (looked for **/*.py and **/*.sh)")
        return plan
    stems = Counter(f.stem for f in files)
    for file in files:
        rel = file.relative_to(root).as_posix()
        name = file.stem if stems[file.stem] == 1 else rel
        try:
            settings = get_script_config(file, config=config)
        except ConfigError as exc:
            plan.problems.append(exc.message)
            settings = copy.deepcopy(_FALLBACK_SETTINGS)
        plan.scripts[name] = ScriptSpec(name, file, rel, settings)
    _resolve_dependencies(plan)
    _find_cycles(plan)
    return plan


def _normalize(ref: str) -> str:
    ref = posixpath.normpath(ref.strip().replace(os.sep, "/"))
    return ref[2:] if ref.startswith("./") else ref


def _resolve_dependencies(plan: Plan) -> None:
    index: dict[str, set[str]] = {}
    config_root = plan.config.root.resolve() if plan.config is not None and plan.config.path is not None else None
    for name, spec in plan.scripts.items():
        keys = {name, spec.path.stem, spec.path.name, spec.rel, posixpath.splitext(spec.rel)[0]}
        if config_root is not None and spec.path.is_relative_to(config_root):
            keys.add(spec.path.relative_to(config_root).as_posix())
        for key in keys:
            index.setdefault(key, set()).add(name)
    # "did you mean" looks at names and file names, and suggests the script's name
    by_candidate = {spec.path.name: name for name, spec in plan.scripts.items()}
    by_candidate.update({name: name for name in plan.scripts})
    for name, spec in plan.scripts.items():
        resolved: list[str] = []
        for ref in spec.settings.get("depends") or ():
            key = _normalize(str(ref))
            if os.path.isabs(key):
                target = Path(key).resolve()
                key = target.relative_to(plan.root).as_posix() if target.is_relative_to(plan.root) else key
            found = index.get(key, set())
            if len(found) == 1:
                resolved.append(next(iter(found)))
            elif found:
                plan.problems.append(
                    f"{_display(spec.path)}: dependency {ref!r} is ambiguous: it matches "
                    f"{', '.join(sorted(found))}; name the file or its path"
                )
            else:
                found_hints = close_matches(key, [c for c, n in by_candidate.items() if n != name])
                hints = list(dict.fromkeys(by_candidate[h] for h in found_hints))
                hint = f" (did you mean {' or '.join(repr(h) for h in hints)}?)" if hints else ""
                plan.problems.append(f"{_display(spec.path)}: unknown dependency {ref!r}{hint}")
        spec.depends = list(dict.fromkeys(resolved))


def _find_cycles(plan: Plan, limit: int = 10) -> None:
    graph = plan.graph
    for _ in range(limit):
        cycle = find_cycle(graph)
        if cycle is None:
            return
        plan.problems.append(f"dependency cycle: {' -> '.join(cycle)}")
        graph[cycle[-2]].remove(cycle[-1])  # break it to look for the next one


# -- options and effective settings ---------------------------------------------------------------------------
@dataclasses.dataclass
class RunOptions:
    """How to run a plan (the ``orchestrate run`` flags)."""

    #: scripts at once (default: the number of CPUs)
    jobs: int | None = None
    #: per-attempt timeout for scripts that set none; ``0`` means no limit (default ``DEFAULT_TIMEOUT``)
    timeout: float | None = None
    #: extra attempts for scripts that set no ``retry``
    retries: int | None = None
    fail_fast: bool = False
    #: no live progress lines
    quiet: bool = False
    #: where run folders go (default ``.orchestrate/runs`` under the current folder)
    runs_dir: Path | None = None
    #: where progress lines go (default stderr)
    stream: TextIO | None = None
    #: extra environment for every script
    env: Mapping[str, str] | None = None
    #: the scripts' working folder (default: the current one)
    cwd: Path | None = None

    @property
    def effective_jobs(self) -> int:
        return self.jobs if self.jobs else os.cpu_count() or 1


def _limits(spec: ScriptSpec, options: RunOptions) -> tuple[float | None, RetryPolicy | None]:
    """The script's per-attempt timeout and retry policy: its own settings, else the run's defaults."""
    timeout = spec.settings.get("timeout")
    if timeout is None:
        timeout = options.timeout if options.timeout is not None else DEFAULT_TIMEOUT
    if timeout is not None and timeout <= 0:
        timeout = None
    policy = spec.settings.get("retry")
    if policy is None and options.retries:
        policy = RetryPolicy(max_attempts=options.retries + 1, initial_delay=DEFAULT_RETRY_DELAY)
    return timeout, policy


def _outcome(spec: ScriptSpec, options: RunOptions) -> ScriptOutcome:
    timeout, policy = _limits(spec, options)
    return ScriptOutcome(
        name=spec.name,
        path=spec.rel,
        depends=list(spec.depends),
        stage=spec.settings.get("stage"),
        timeout=timeout,
        max_attempts=policy.max_attempts if policy else 1,
        retry_delay=policy.initial_delay if policy and policy.max_attempts > 1 else 0.0,
        reason="skipped by configuration" if spec.settings.get("skip") else None,
    )


def plan_outcomes(plan: Plan, options: RunOptions | None = None) -> list[ScriptOutcome]:
    """Every script of the plan with its effective settings, in dependency order, nothing run (for ``list``)."""
    options = options or RunOptions()
    try:
        order = topological_order(plan.graph)
    except CycleError:
        order = list(plan.scripts)
    return [_outcome(plan.scripts[name], options) for name in order]


def plan_levels(plan: Plan, options: RunOptions | None = None) -> list[list[ScriptOutcome]]:
    """The scripts by level (for ``--dry-run``): each level only depends on earlier ones. Needs a valid plan."""
    options = options or RunOptions()
    return [[_outcome(plan.scripts[n], options) for n in level] for level in generations(plan.graph)]


# -- run -------------------------------------------------------------------------------------------------------
async def _wait_through_cancellation(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` even if this task is cancelled again meanwhile (the kill is already under way)."""
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            continue


def _tail(result: ScriptResult, lines: int = STDERR_TAIL) -> list[str]:
    text = result.stderr if result.stderr.strip() else result.stdout
    return [line for line in text.splitlines() if line.strip()][-lines:]


class _ScriptsRun:
    """One run of a plan: the workflow, the worker threads, the results and the run folder."""

    def __init__(self, plan: Plan, options: RunOptions) -> None:
        self.plan = plan
        self.options = options
        self.jobs = options.effective_jobs
        self.run_id = new_run_id()
        self.runs_dir = options.runs_dir if options.runs_dir is not None else DEFAULT_RUNS_DIR
        self.folder = RunFolder(self.runs_dir, self.run_id)
        self.results: dict[str, ScriptResult] = {}
        self.logs: dict[str, str] = {}
        #: why the engine's condition skipped a script (a dependency was skipped)
        self.skip_reasons: dict[str, str] = {}
        self.cancel_events: list[threading.Event] = []
        self.interrupted = False
        stream = options.stream if options.stream is not None else sys.stderr
        self.progress = ProgressPrinter(len(plan.scripts), stream, enabled=not options.quiet)
        self.cwd = str(options.cwd) if options.cwd is not None else None
        self.env = {
            "ORCHESTRATE_RUN_ID": self.run_id,
            "ORCHESTRATE_RUN_DIR": str(self.folder.path.absolute()),
            **(options.env or {}),
        }
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None

    # -- the workflow ----------------------------------------------------------------------------------------
    def build_workflow(self) -> Workflow:
        wf = Workflow("orchestrate", fail_fast=self.options.fail_fast, max_concurrency=self.jobs)
        remembered = previous_durations(self.runs_dir, list(self.plan.scripts))
        for name, spec in self.plan.scripts.items():
            metadata: dict[str, Any] = {"path": str(spec.path)}
            if name in remembered:
                metadata["estimated_duration"] = remembered[name]
            wf.add_task(
                name,
                self._action(spec),
                dependencies=spec.depends,
                condition=self._condition(spec) if spec.depends else None,
                tags=(spec.settings["stage"],) if spec.settings.get("stage") else (),
                metadata=metadata,
            )
        wf.add_listener(self._on_event)
        return wf

    def _condition(self, spec: ScriptSpec) -> Callable[[dict[str, TaskResult]], bool]:
        def no_dependency_skipped(results: dict[str, TaskResult]) -> bool:
            for dep in spec.depends:
                found = results.get(dep)
                value = found.value if found is not None else None
                if isinstance(value, ScriptResult) and value.status == "skipped":
                    self.skip_reasons[spec.name] = f"dependency {dep!r} was skipped"
                    return False
            return True

        return no_dependency_skipped

    def _action(self, spec: ScriptSpec) -> Callable[[], Any]:
        async def run_one_script() -> ScriptResult:
            assert self.pool is not None
            cancel = threading.Event()
            self.cancel_events.append(cancel)
            future = asyncio.get_running_loop().run_in_executor(self.pool, self._execute, spec, cancel)
            try:
                result = await asyncio.shield(future)
            except asyncio.CancelledError:
                cancel.set()  # kills the script's process group
                await _wait_through_cancellation(future)
                raise
            if result.status in ("failed", "timeout", "error"):
                raise ScriptFailedError(
                    f"{spec.name}: {result.error or result.status}", step_name=spec.name, result=result
                )
            return result

        return run_one_script

    def _execute(self, spec: ScriptSpec, cancel: threading.Event) -> ScriptResult:
        """Run one script (in a worker thread) and write its log."""
        if spec.settings.get("skip"):
            now = time.time()
            result = ScriptResult(
                str(spec.path),
                spec.path.stem,
                "skipped",
                error="skipped by configuration",
                start_time=now,
                end_time=now,
            )
            self.results[spec.name] = result
            return result
        timeout, policy = _limits(spec, self.options)
        config = {**spec.settings, "timeout": timeout, "retry": policy}
        result = run_script(spec.path, config=config, timeout=timeout, env=self.env, cwd=self.cwd, cancel_event=cancel)
        self.results[spec.name] = result
        try:
            self.logs[spec.name] = self.folder.write_log(spec.name, result, cwd=self.cwd)
        except OSError:
            pass
        return result

    # -- live progress ---------------------------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.TaskStarted):
            self.progress.started(event.task)
        elif isinstance(event, ev.TaskFinished):
            result = self.results.get(event.task)
            if result is None:
                self.progress.finished(event.task, "error", detail=event.result.error)
                return
            status = result.status
            detail = result.skip_reason if status == "skipped" else result.error
            if result.attempts > 1:
                detail = f"{result.attempts} attempts" + (f", {detail}" if detail else "")
            self.progress.finished(event.task, status, duration=result.execution_time, detail=detail)
        elif isinstance(event, ev.TaskSkipped):
            self.progress.finished(event.task, "skipped", detail=self._skip_reason(event.task, event.reason))
        elif isinstance(event, ev.TaskCancelled):
            self.progress.finished(event.task, "cancelled", detail=self._cancel_reason(event.reason))

    def _skip_reason(self, name: str, reason: str | None) -> str:
        if reason == "condition" or not reason:
            return self.skip_reasons.get(name, reason or "skipped")
        return reason

    def _cancel_reason(self, reason: str | None) -> str:
        return "interrupted" if self.interrupted or reason == "workflow run was cancelled" else reason or "cancelled"

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self) -> RunReport:
        wf = self.build_workflow()
        self.folder.create()
        started = time.time()
        t0 = time.perf_counter()
        self.pool = concurrent.futures.ThreadPoolExecutor(self.jobs, thread_name_prefix="orchestrate-script")
        try:
            asyncio.run(self._main(wf))
        except TaskFailedError:
            pass  # reported per script
        except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (see _main)
            self.interrupted = True
        finally:
            for event in self.cancel_events:  # after a second Ctrl-C some scripts may still run
                if self.interrupted:
                    event.set()
            self.pool.shutdown(wait=True, cancel_futures=True)
        report = self.report(wf, started, time.perf_counter() - t0)
        try:
            self.folder.write_summary(report)
        except OSError:
            report.run_folder = None
        return report

    async def _main(self, wf: Workflow) -> None:
        """Run the workflow; SIGTERM is treated like Ctrl-C (running scripts are killed, the summary written)."""
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()
        assert main_task is not None
        try:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                raise ValueError("someone else handles SIGTERM")
            loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
        except (AttributeError, NotImplementedError, RuntimeError, ValueError):  # not the main thread, not POSIX
            await wf.run()
            return
        try:
            await wf.run()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def report(self, wf: Workflow, started: float, elapsed: float) -> RunReport:
        report = RunReport(
            run_id=self.run_id,
            root=str(self.plan.root),
            jobs=self.jobs,
            fail_fast=self.options.fail_fast,
            started_at=started,
            elapsed=elapsed,
            interrupted=self.interrupted,
            run_folder=_display(self.folder.path.absolute()),
        )
        for name in topological_order(self.plan.graph):
            spec = self.plan.scripts[name]
            outcome = _outcome(spec, self.options)
            task = wf.tasks[name]
            result = self.results.get(name)
            reason = task.result.reason if task.result is not None else None
            if result is not None:
                outcome.status = result.status
                outcome.exit_code = result.exit_code
                outcome.attempts = result.attempts
                outcome.duration = result.execution_time
                outcome.started_at = result.start_time
                outcome.finished_at = result.end_time
                outcome.command = list(result.command)
                outcome.attempt_errors = list(result.attempt_errors)
                outcome.log = self.logs.get(name)
                if result.status == "skipped" and result.error == "cancelled":  # killed by --fail-fast / Ctrl-C
                    outcome.status, outcome.reason = "cancelled", self._cancel_reason(reason)
                elif result.status == "skipped":
                    outcome.reason = result.skip_reason
                    _mark_skipped(wf, name, outcome.reason)
                elif result.status != "passed":
                    outcome.reason = result.error or result.status
                    outcome.stderr_tail = _tail(result)
            elif task.status is TaskStatus.SKIPPED:
                outcome.status, outcome.reason = "skipped", self._skip_reason(name, reason)
            elif task.status is TaskStatus.CANCELLED:
                outcome.status, outcome.reason = "cancelled", self._cancel_reason(reason)
            else:
                outcome.status, outcome.reason = "not_run", "interrupted" if self.interrupted else "not run"
            report.scripts.append(outcome)
        ran = {s.name: s.duration for s in report.scripts if s.attempts}
        if ran:  # the longest chain of scripts that ran, by their durations
            graph = {name: [d for d in deps if d in ran] for name, deps in self.plan.graph.items() if name in ran}
            report.critical_path = critical_path(graph, ran)
        return report


def _mark_skipped(wf: Workflow, name: str, reason: str | None) -> None:
    """A script that skipped itself completed as far as the engine knew; record it as SKIPPED there too."""
    task = wf.tasks[name]
    task.status = TaskStatus.SKIPPED
    if task.result is not None:
        task.result.status = TaskStatus.SKIPPED
        task.result.success = False
        task.result.reason = reason


def run_plan(plan: Plan, options: RunOptions | None = None) -> RunReport:
    """Run a valid plan and write its run folder; Ctrl-C ends it with ``RunReport.interrupted`` set.

    Raises ``ValueError`` if the plan has problems, ``OSError`` if the run folder cannot be created.
    """
    if plan.problems:
        raise ValueError("the plan has problems:\n" + "\n".join(plan.problems))
    return _ScriptsRun(plan, options or RunOptions()).run()


def run_orchestrator(argv: Sequence[str] | None = None) -> int:
    """``orchestrate run ARGV...``: e.g. ``run_orchestrator(["examples/etl/scripts", "-j", "4"])``.

    Returns the exit status: 0 all passed or skipped, 1 a script failed, 2 bad input, 130 interrupted.
    """
    from pytest_orchestrator.cli import main

    return main(["run", *(sys.argv[1:] if argv is None else argv)])
