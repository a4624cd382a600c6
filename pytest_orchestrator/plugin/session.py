"""The session plugin: registered by ``plugin/__init__.py`` only under ``--orchestrate``.

A thin adapter: it collects scripts (:mod:`.items`), parses markers (:mod:`.markers`), builds and orders the item
graph (:mod:`.dag`), skips dependents through the graph's :class:`DagScheduler`, runs retries and timeouts
(:mod:`.runtest`), remembers durations in pytest's cache and prints the workflow summary (:mod:`.summary`).

Where things happen:

- ``pytest_collection_modifyitems`` (``wrapper=True, tryfirst=True``): snapshots the items before ``-k``, ``-m``,
  ``--deselect`` and ``--lf`` act, and after them builds the graph over the snapshot, applies ``--stage``, brings
  back needed dependencies (``--orchestrate-deps``) and orders the items.
- Per-item hooks live in small objects registered after collection, and only when some item needs them (an
  unused hookimpl still costs a call per item): ``_DependencyGate`` (``pytest_runtest_setup``, ``tryfirst``:
  an item the scheduler already skipped is skipped before any of its fixtures run), ``_Retries``
  (``pytest_runtest_protocol``), ``_Timeouts`` (``pytest_runtest_call`` wrapper) and ``_ReportNotes``
  (``pytest_runtest_makereport`` wrapper: timeouts, attempt errors and dependency skips noted on reports).
- ``pytest_runtest_logreport``: outcomes go to the scheduler when an item's teardown report arrives.
- ``pytest_terminal_summary`` (``trylast``): the workflow summary. It sits after pytest's failure and warning
  sections and just above the "short test summary info" and the final stats line, which stays the last line
  for tools that read it.
"""

from __future__ import annotations

from collections.abc import Generator
from collections.abc import Mapping
import math
import os
from pathlib import Path
import time
from typing import Any

import pytest

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.scheduler import COMPLETED
from pytest_orchestrator.core.scheduler import FAILED
from pytest_orchestrator.core.scheduler import SKIPPED
from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.errors import DependencyResolutionError
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import ItemRef
from pytest_orchestrator.plugin.dag import TargetResolver
from pytest_orchestrator.plugin.dag import build_graph
from pytest_orchestrator.plugin.items import ScriptFile
from pytest_orchestrator.plugin.items import ScriptItem
from pytest_orchestrator.plugin.items import ScriptTimeout
from pytest_orchestrator.plugin.items import is_script_path
from pytest_orchestrator.plugin.items import looks_like_test_module
from pytest_orchestrator.plugin.items import matches_python_files
from pytest_orchestrator.plugin.markers import ItemSpec
from pytest_orchestrator.plugin.markers import MarkerError
from pytest_orchestrator.plugin.markers import evaluate_marks
from pytest_orchestrator.plugin.markers import spec_key
from pytest_orchestrator.plugin.runtest import RERUN
from pytest_orchestrator.plugin.runtest import ItemTimeout
from pytest_orchestrator.plugin.runtest import alarm
from pytest_orchestrator.plugin.runtest import attempt_error_text
from pytest_orchestrator.plugin.runtest import attempt_key
from pytest_orchestrator.plugin.runtest import error_key
from pytest_orchestrator.plugin.runtest import run_with_retries
from pytest_orchestrator.plugin.runtest import set_property
from pytest_orchestrator.plugin.summary import DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.summary import ERROR_ATTR
from pytest_orchestrator.plugin.summary import TIMEOUT_ATTR
from pytest_orchestrator.plugin.summary import Recorder
from pytest_orchestrator.plugin.summary import build_summary
from pytest_orchestrator.plugin.summary import format_summary


__all__ = ["DURATIONS_KEY", "OrchestratePlugin", "dependency_skip_key"]

#: pytest cache key of the remembered item durations ({node id: seconds})
DURATIONS_KEY = "orchestrate/durations"
_MAX_REMEMBERED = 50_000


#: set on an item skipped because a dependency did not complete
dependency_skip_key = pytest.StashKey[str]()
#: an item's (retry policy, our call-phase timeout), decided once at collection
plan_key = pytest.StashKey["tuple[RetryPolicy | None, float | None]"]()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def item_ref(item: pytest.Item, spec: ItemSpec) -> ItemRef:
    """What target resolution needs to know about ``item``."""
    file = item.getparent(pytest.File)  # type: ignore[type-abstract]
    module = file.nodeid if file is not None else item.nodeid.partition("::")[0]
    parent = item.parent.nodeid if item.parent is not None else module
    base = item.nodeid
    original = getattr(item, "originalname", None)
    if isinstance(item, pytest.Function) and original and original != item.name:
        base = f"{parent}::{original}"
    return ItemRef(
        nodeid=item.nodeid,
        path=os.path.normpath(str(item.path)),
        module=module,
        parent=parent,
        base=base,
        kind="script" if isinstance(item, ScriptItem) else "test",
        targets=spec.targets,
        aliases=spec.aliases,
        stage=spec.stage,
        location=item.location,
    )


class OrchestratePlugin:
    """The per-session state of ``--orchestrate``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.deps_policy: str = config.getoption("orchestrate_deps", None) or "run"
        self.stages: list[str] = list(config.getoption("stage", None) or [])
        self.graph_format: str | None = config.getoption("orchestrate_graph", None)
        self.script_globs: list[str] = list(config.getini("orchestrate_scripts"))
        self.python_files: list[str] = list(config.getini("python_files"))
        self.default_timeout: float | None = config.getoption("orchestrate_timeout", None)
        retries = config.getoption("orchestrate_retries", None)
        self.default_retry = RetryPolicy(max_attempts=retries + 1, initial_delay=0.0) if retries else None
        #: pytest-timeout handles the ``timeout`` marker of Python tests when it is active
        self.pytest_timeout = config.pluginmanager.hasplugin("timeout")
        #: the graph of what runs (None until collection is done, and on an xdist controller)
        self.graph: ItemGraph | None = None
        self.full_graph: ItemGraph | None = None
        self.sched: DagScheduler[str] | None = None
        self.recorder = Recorder()
        self._phase_outcome: dict[str, str] = {}
        #: whether outcomes must reach the scheduler (some item has a dependency)
        self._gating = False
        self._session_start = time.time()
        self._lf_active = bool(config.getoption("lf", False))
        #: under --lf: items that pytest's last-failed plugin dropped at collection (candidates to bring back)
        self._lf_dropped: list[pytest.Item] = []
        if self.graph_format and config.getoption("numprocesses", None) and not _is_worker(config):
            raise pytest.UsageError("--orchestrate-graph prints the graph without running anything: drop -n")

    # -- collection: scripts ----------------------------------------------------------------------------------
    def _is_script(self, path: Path) -> bool:
        return is_script_path(path, self.config.rootpath, self.script_globs)

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.suffix == ".py":
            if not self._is_script(file_path):
                return None
            # pytest's python plugin asks pytest_pycollect_makemodule for these two: it decides there
            if parent.session.isinitpath(file_path) or matches_python_files(file_path, self.python_files):
                return None
            return ScriptFile.from_parent(parent, path=file_path)
        if self._is_script(file_path) or (file_path.suffix == ".sh" and parent.session.isinitpath(file_path)):
            return ScriptFile.from_parent(parent, path=file_path)
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if self._is_script(module_path):
            return ScriptFile.from_parent(parent, path=module_path)
        if (
            parent.session.isinitpath(module_path)
            and module_path.name not in ("__init__.py", "conftest.py")
            and not looks_like_test_module(module_path, self.python_files)
        ):
            # a .py named on the command line that is no test module: run it as a script
            return ScriptFile.from_parent(parent, path=module_path)
        return None

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        # Innermost wrapper: under --lf we see a file's items before the last-failed plugin drops the passed
        # ones, so a failed test's passed dependencies can still be brought back.
        report = yield
        if self._lf_active and isinstance(collector, pytest.File) and report.result:
            self._lf_dropped.extend(x for x in report.result if isinstance(x, pytest.Item))
        return report

    # -- collection: the graph and the order ------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, object, object]:
        snapshot = list(items)
        if self._lf_dropped:
            present = {id(item) for item in snapshot}
            snapshot.extend(item for item in self._lf_dropped if id(item) not in present)
            self._lf_dropped = []
        result = yield
        self._arrange(items, snapshot)
        return result

    def _spec(self, item: pytest.Item) -> ItemSpec:
        spec = item.stash.get(spec_key, None)
        if spec is None:
            spec = item.stash[spec_key] = evaluate_marks(item, own_timeout=not self.pytest_timeout)
        return spec

    def _find_script(self) -> Any:
        found: dict[str, str] | None = None

        def find(target: str) -> str | None:
            nonlocal found
            if found is None:
                from pytest_orchestrator.scripts.discovery import discover_scripts

                found = {}
                try:
                    scripts = discover_scripts(self.config.rootpath, self.script_globs)
                except (OSError, ValueError):
                    scripts = []
                for path in scripts:
                    found.setdefault(path.stem, str(path))
            return found.get(target)

        return find

    def _load_durations(self) -> dict[str, float]:
        cache = getattr(self.config, "cache", None)
        if cache is None:
            return {}
        data = cache.get(DURATIONS_KEY, {})
        if not isinstance(data, dict):
            return {}
        return {
            k: float(v)
            for k, v in data.items()
            if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }

    def _arrange(self, items: list[pytest.Item], snapshot: list[pytest.Item]) -> None:
        problems: list[str] = []
        specs: dict[str, ItemSpec] = {}
        for item in snapshot:
            try:
                specs[item.nodeid] = self._spec(item)
            except MarkerError as exc:
                problems.append(str(exc))
        if problems:
            raise pytest.UsageError("orchestrate: malformed markers:\n" + "\n".join(problems))
        refs = [item_ref(item, specs[item.nodeid]) for item in snapshot]
        resolver = TargetResolver(
            refs,
            self.config.rootpath,
            find_script=self._find_script(),
            lf_active=self._lf_active,
        )
        full, unknown = build_graph(resolver, self._load_durations())
        if unknown:
            raise pytest.UsageError("orchestrate: unknown dependencies:\n" + "\n".join(u.message for u in unknown))
        self.config.hook.pytest_orchestrate_modify_graph(config=self.config, graph=full)
        try:
            full.validate()
        except CycleError as exc:
            raise pytest.UsageError(f"orchestrate: {exc.message}") from None
        except DependencyResolutionError as exc:
            raise pytest.UsageError(f"orchestrate: {exc.message} (edge added by pytest_orchestrate_modify_graph?)")

        selected = list(dict.fromkeys(item.nodeid for item in items))
        if self.stages:
            wanted = set(self.stages)
            selected = [n for n in selected if full.nodes[n].stage in wanted]
        run = full.select(selected, self.deps_policy)

        by_id: dict[str, list[pytest.Item]] = {}
        for item in items:
            by_id.setdefault(item.nodeid, []).append(item)
        for item in snapshot:
            if item.nodeid not in by_id and item.nodeid in run:
                by_id[item.nodeid] = [item]
        dropped = [item for item in items if item.nodeid not in run]
        if dropped:
            self.config.hook.pytest_deselected(items=dropped)
        brought = set(run.brought_back())
        if brought:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            stats = getattr(reporter, "stats", None)
            if stats is not None and stats.get("deselected"):
                stats["deselected"] = [i for i in stats["deselected"] if getattr(i, "nodeid", None) not in brought]
        items[:] = [item for nodeid in run.order() for item in by_id.get(nodeid, ())]
        self.full_graph = full
        self.graph = run
        self.sched = run.make_scheduler()
        for item in items:
            item.stash[plan_key] = self._plan(item, item.stash[spec_key])
        self._register_runtime_hooks(items)

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str]:
        graph = self.graph
        if graph is None or config.option.verbose < 0:
            return []
        text = f"orchestrate: {len(graph)} items, {graph.edge_count()} dependencies"
        brought = graph.brought_back()
        if brought:
            text += f", {len(brought)} deselected dependencies brought back"
        stages = sorted({n.stage for n in graph.nodes.values() if n.stage})
        if stages:
            text += ", stages: " + ", ".join(stages)
        known = [n for n in graph.nodes.values() if n.estimated_duration is not None]
        if known and graph.edge_count():
            path = graph.critical_path()
            estimate = sum(graph.nodes[n].estimated_duration or 0.0 for n in path)
            text += f"; estimated critical path {estimate:.2f} s ({len(path)} items, cached durations)"
        return [text]

    # -- --orchestrate-graph ----------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if not self.graph_format or self.graph is None or session.testsfailed:
            return None
        from pytest_orchestrator.reporting.graph import render_graph

        graph = self.graph
        text = render_graph(graph.deps_map(), self.graph_format)
        if any(n.estimated_duration is not None for n in graph.nodes.values()) and graph.edge_count():
            comment = "%%" if self.graph_format == "mermaid" else "//"
            path = graph.critical_path()
            text += f"{comment} estimated critical path (cached durations): {' -> '.join(path)}\n"
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write(text)
        else:
            print(text, end="")
        return True

    # -- running ------------------------------------------------------------------------------------------------
    def _plan(self, item: pytest.Item, spec: ItemSpec) -> tuple[RetryPolicy | None, float | None]:
        """``(retry policy, our call-phase timeout)`` of an item; the timeout is for Python tests only."""
        policy = spec.retry if spec.retry is not None else self.default_retry
        timeout: float | None = None
        if not isinstance(item, ScriptItem):
            timeout = spec.timeout if spec.timeout is not None else self.default_timeout
            if timeout and self.pytest_timeout and item.get_closest_marker("timeout") is not None:
                timeout = None  # pytest-timeout handles a Python test's timeout marker
        return policy, timeout or None

    def _register_runtime_hooks(self, items: list[pytest.Item]) -> None:
        """Register the per-item hooks only when some item needs them: an unused hookimpl still costs a call."""
        plans = [item.stash[plan_key] for item in items]
        wanted: list[tuple[object, str]] = []
        if self.graph is not None and (self.graph.edge_count() or any(n.blocked for n in self.graph.nodes.values())):
            self._gating = True
            wanted.append((_DependencyGate(self), "orchestrate-dependencies"))
        if any(policy is not None for policy, _ in plans):
            wanted.append((_Retries(), "orchestrate-retries"))
        if any(timeout is not None for _, timeout in plans):
            wanted.append((_Timeouts(), "orchestrate-timeouts"))
        if wanted or any(isinstance(item, ScriptItem) for item in items):
            wanted.append((_ReportNotes(), "orchestrate-reports"))
        manager = self.config.pluginmanager
        for plugin, name in wanted:
            if manager.get_plugin(name) is None:
                manager.register(plugin, name)

    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> tuple[str, str, tuple[str, Mapping[str, bool]]] | None:
        if report.outcome == RERUN:
            return "rerun", "R", ("RERUN", {"yellow": True})
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.recorder.add(report)
        sched = self.sched
        if not self._gating or sched is None or report.outcome == RERUN or report.nodeid not in sched.state:
            return
        nodeid = report.nodeid
        if report.failed:
            self._phase_outcome[nodeid] = FAILED
        elif report.skipped and self._phase_outcome.get(nodeid) != FAILED:
            self._phase_outcome[nodeid] = SKIPPED
        if report.when == "teardown":
            outcome = self._phase_outcome.pop(nodeid, COMPLETED)
            if not sched.is_finished(nodeid):
                sched.done(nodeid, outcome)

    # -- the end ---------------------------------------------------------------------------------------------
    def _workers(self) -> int:
        workers = self.config.getoption("numprocesses", None)
        if isinstance(workers, int) and workers > 0 and not _is_worker(self.config):
            return workers
        return 1

    def summary(self) -> dict[str, Any]:
        records = self.recorder.items.values()
        starts = [r.start for r in records if r.start]
        # the wall time of the run itself: first item's start to last item's end (collection not included)
        wall = max(r.stop for r in records) - min(starts) if starts else 0.0
        return build_summary(
            self.recorder.items,
            wall_time=wall,
            session_start=self._session_start,
            workers=self._workers(),
            graph=self.graph,
        )

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
        if self.graph_format or config.getoption("collectonly") or not self.recorder.items:
            return
        summary = self.summary()
        lines = format_summary(summary, verbose=config.option.verbose)
        config.hook.pytest_orchestrate_summary(config=config, summary=summary, lines=lines)
        terminalreporter.write_sep("=", "workflow summary")
        for line in lines:
            terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is None or _is_worker(self.config):
            return
        measured = {
            n: round(r.duration, 6)
            for n, r in self.recorder.items.items()
            if r.status not in ("skipped",) and r.duration > 0
        }
        if not measured:
            return
        known = self._load_durations()
        known.update(measured)
        if len(known) > _MAX_REMEMBERED:
            known = dict(list(known.items())[-_MAX_REMEMBERED:])
        cache.set(DURATIONS_KEY, known)


# --------------------------------------------------------------------------------------------------------------
# per-item hooks, registered by OrchestratePlugin only when some item needs them
# --------------------------------------------------------------------------------------------------------------


class _DependencyGate:
    """Skips an item the scheduler already skipped, before any of its fixtures run."""

    def __init__(self, owner: OrchestratePlugin) -> None:
        self.owner = owner

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        sched = self.owner.sched
        if sched is not None and sched.state.get(item.nodeid) == SKIPPED:
            reason = sched.reasons.get(item.nodeid, "a dependency did not complete")
            item.stash[dependency_skip_key] = reason
            raise pytest.skip.Exception(reason, _use_item_location=True)


class _Retries:
    """Runs items that have a retry policy through :func:`run_with_retries`."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        plan = item.stash.get(plan_key, None)
        if plan is None or plan[0] is None:
            return None
        run_with_retries(item, nextitem, plan[0])
        return True


class _Timeouts:
    """Interrupts a Python test's call phase after its timeout (SIGALRM)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None]:
        plan = item.stash.get(plan_key, None)
        if plan is None or plan[1] is None:
            return (yield)
        with alarm(plan[1]):
            return (yield)


class _ReportNotes:
    """Notes on reports for the summary and JUnit: timeouts, attempt errors, dependency skips."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        error = call.excinfo.value if call.excinfo is not None else None
        if call.when == "call":
            item.stash[error_key] = error
            if report.failed:
                text = attempt_error_text(error, report)
                setattr(report, ERROR_ATTR, text)
                if isinstance(error, ItemTimeout):
                    setattr(report, TIMEOUT_ATTR, str(error.msg))
                elif isinstance(error, ScriptTimeout):
                    setattr(report, TIMEOUT_ATTR, error.result.error or "timed out")
                attempt = item.stash.get(attempt_key, None)
                if attempt is not None:
                    set_property(item, f"attempt_{attempt}_error", text)
        elif call.when == "setup" and report.skipped and dependency_skip_key in item.stash:
            setattr(report, DEPENDENCY_SKIP_ATTR, True)
        return report
