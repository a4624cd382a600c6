"""The session plugin: registered by ``plugin/__init__.py`` only under ``--orchestrate``.

A thin adapter: it holds the session's options and state and answers pytest's hooks by handing each to the module
that does the work.

- Collection: scripts are routed to script items by :mod:`.collect`; under ``--lf`` :mod:`.lastfailed` keeps the
  items pytest's last-failed plugin drops (innermost ``pytest_make_collect_report`` wrapper).
- ``pytest_collection_modifyitems`` (``wrapper=True, tryfirst=True``): snapshots the items before ``-k``, ``-m``,
  ``--deselect`` and ``--lf`` act, and after them :mod:`.arrange` builds the graph over the snapshot (with the
  cached durations of :mod:`.durations`), applies ``--orchestrate-stage``, brings back needed dependencies
  (``--orchestrate-deps``) and orders the items. :mod:`.item_hooks` then registers the per-item hooks the items
  need (dependency gate, retries, timeouts, report notes).
- ``pytest_report_collectionfinish`` and ``--orchestrate-graph`` (``pytest_runtestloop``, ``tryfirst``): the graph
  as text (:mod:`.graph_output`).
- ``pytest_runtest_logreport``: reports go to the summary's :class:`~.summary.Recorder` and to the dependency gate.
- ``pytest_terminal_summary`` (``trylast``): the workflow summary (:mod:`.summary`). It sits after pytest's failure
  and warning sections and just above the "short test summary info" and the final stats line, which stays the last
  line for tools that read it.
- ``pytest_sessionfinish`` (``trylast``): the measured durations go to pytest's cache (:mod:`.durations`); items
  skipped because a dependency failed join the last-failed cache, so ``--lf`` reruns them (:mod:`.lastfailed`).
- Durable state (:mod:`.state`): recorded per item at its teardown report, and ``--orchestrate-resume``'s carried
  items, decided once the items are arranged.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
import time
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.plugin.durations import load_durations
from pytest_orchestrator.plugin.durations import save_durations
from pytest_orchestrator.plugin.graph_output import collection_line
from pytest_orchestrator.plugin.graph_output import print_graph
from pytest_orchestrator.plugin.lastfailed import LastFailedSnapshot
from pytest_orchestrator.plugin.lastfailed import remember_dependency_skips
from pytest_orchestrator.plugin.names import DEPENDENCY_PLUGIN_NAME
from pytest_orchestrator.plugin.names import ORDER_PLUGIN_NAME
from pytest_orchestrator.plugin.names import notes_key
from pytest_orchestrator.plugin.names import rejected_config_key
from pytest_orchestrator.plugin.options import Settings
from pytest_orchestrator.plugin.plugin_errors import call_guarded
from pytest_orchestrator.plugin.state import SessionState
from pytest_orchestrator.plugin.state import open_state
from pytest_orchestrator.plugin.summary import Recorder
from pytest_orchestrator.plugin.summary import build_summary
from pytest_orchestrator.plugin.summary import format_summary
from pytest_orchestrator.plugin.summary import summary_markup


if TYPE_CHECKING:
    from pytest_orchestrator.core.scheduler import DagScheduler
    from pytest_orchestrator.plugin.collect import ScriptRouting
    from pytest_orchestrator.plugin.dag import ItemGraph
    from pytest_orchestrator.plugin.item_hooks import DependencyGate

__all__ = ["OrchestratePlugin"]


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class OrchestratePlugin:
    """The per-session state of ``--orchestrate``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        settings = self.settings = Settings.from_config(config)
        self.deps_policy: str = settings.deps_policy
        self.stages: list[str] = list(settings.stages)
        self.graph_format: str | None = settings.graph_format
        self.script_globs: list[str] = list(config.getini("orchestrate_scripts"))
        self.default_timeout: float | None = settings.timeout
        retries = settings.retries
        if retries:
            from pytest_orchestrator.core.retry import RetryPolicy

            self.default_retry: RetryPolicy | None = RetryPolicy(max_attempts=retries + 1, initial_delay=0.0)
        else:
            self.default_retry = None
        #: pytest-timeout handles the ``timeout`` marker of Python tests when it is active
        self.pytest_timeout = config.pluginmanager.hasplugin("timeout")
        #: the graph of what runs (None until collection is done, and on an xdist controller)
        self.graph: ItemGraph | None = None
        #: the scheduler that skips dependents (None when no item has a dependency)
        self.sched: DagScheduler[str] | None = None
        self.recorder = Recorder()
        self._gate: DependencyGate | None = None
        self._session_start = time.time()
        self._lf_active = bool(config.getoption("lf", False))
        self._routing_made: ScriptRouting | None = None
        self._lastfailed = LastFailedSnapshot(self._lf_active)
        if self.graph_format and config.getoption("numprocesses", None) and not _is_worker(config):
            raise pytest.UsageError("--orchestrate-graph prints the graph without running anything: drop -n")
        #: durable state (:mod:`.state`): the recorder, a worker's part, or None when off
        self.state: SessionState | None = open_state(config, runs_nothing=bool(self.graph_format))

    @property
    def _routing(self) -> ScriptRouting:
        """Script collection, made when first needed (an xdist controller collects nothing)."""
        if self._routing_made is None:
            from pytest_orchestrator.plugin.collect import ScriptRouting

            config = self.config
            self._routing_made = ScriptRouting(config.rootpath, self.script_globs, list(config.getini("python_files")))
        return self._routing_made

    # -- start -------------------------------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._session_start = time.time()  # when pytest's terminal starts the clock of its final line
        # pytest-dependency's skipping and pytest-order's reordering are ours under --orchestrate: say so once
        lines: list[str] = []
        manager = self.config.pluginmanager
        if manager.has_plugin(DEPENDENCY_PLUGIN_NAME):
            from pytest_orchestrator.plugin.compat_dependency import take_over as dependency_take_over

            lines.append(dependency_take_over(self.config) or "")
        if manager.has_plugin(ORDER_PLUGIN_NAME):
            from pytest_orchestrator.plugin.order import take_over as order_take_over

            lines.append(order_take_over(self.config) or "")
        lines = [line for line in lines if line]
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and not _is_worker(self.config):
            for line in lines:
                reporter.write_line(line)

    # -- collection ---------------------------------------------------------------------------------------------
    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        return self._routing.ignore(collection_path)

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        return self._routing.collect_file(file_path, parent)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        return self._routing.make_module(module_path, parent)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        # innermost wrapper: sees a file's items before the last-failed plugin drops the passed ones
        report = yield
        self._lastfailed.seen(collector, report)
        return report

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, object, object]:
        snapshot = list(items)  # before -k, -m, --deselect and --lf act
        self._lastfailed.add_to(snapshot)
        result = yield
        self._arrange(items, snapshot)
        return result

    def _arrange(self, items: list[pytest.Item], snapshot: list[pytest.Item]) -> None:
        # imported here: an xdist controller never arranges (it starts its workers sooner without them)
        from pytest_orchestrator.plugin.arrange import build_item_graph
        from pytest_orchestrator.plugin.arrange import marker_names
        from pytest_orchestrator.plugin.arrange import select_items
        from pytest_orchestrator.plugin.collect import script_finder
        from pytest_orchestrator.plugin.item_hooks import plan_items
        from pytest_orchestrator.plugin.item_hooks import register_item_hooks
        from pytest_orchestrator.plugin.item_hooks import rerunfailures_rule
        from pytest_orchestrator.plugin.markers import spec_marked
        from pytest_orchestrator.plugin.properties import sync_properties

        rejected = self.config.stash.get(rejected_config_key, [])
        if rejected:  # nothing runs on a configuration that was rejected
            raise pytest.UsageError("orchestrate: configuration rejected:\n" + "\n".join(dict.fromkeys(rejected)))
        missing = self._routing.scope.missing
        if missing and self.settings.strict:
            raise pytest.UsageError(
                "orchestrate: config entries that name no script:\n" + "\n".join(m.message for m in missing)
            )
        used = marker_names(snapshot)  # every marker name on the items and their collectors
        full = build_item_graph(
            self.config,
            snapshot,
            used=used,
            own_timeout=not self.pytest_timeout,
            find_script=script_finder(self.config.rootpath, self.script_globs),
            lf_active=self._lf_active,
            durations=load_durations(self.config),
            strict=self.settings.strict,
        )
        run = self.graph = select_items(
            self.config, items, snapshot, full, stages=self.stages, deps_policy=self.deps_policy
        )
        reruns = rerunfailures_rule(self.config, items)
        plans = plan_items(
            items,
            marked=spec_marked(used),
            default_retry=None if reruns else self.default_retry,
            default_timeout=self.default_timeout,
            pytest_timeout=self.pytest_timeout,
            timeout_marked="timeout" in used,
        )
        self._gate = register_item_hooks(self.config, items, run, plans, xfail_deps=self.settings.xfail_deps)
        self.sched = self._gate.sched if self._gate is not None else None
        if not _is_worker(self.config):  # here reports are logged: stage and root cause, where there can be any
            sync_properties(self.config, run, dependency_skips=self._gate is not None)
        if self.state is not None:  # after the item hooks: the carried items' protocol must be asked first
            self.state.arranged(items, snapshot, full, run)

    def notes(self) -> list[str]:
        """The lines collection has for the user, at every verbosity (under xdist the controller prints a worker's)."""
        hint = self._routing.opt_in_hint()
        return [*self.config.stash.get(notes_key, []), *([hint] if hint is not None else [])]

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str]:
        if self.graph is None:
            return []
        lines = self.notes()
        if config.option.verbose < 0:
            return lines
        line = collection_line(self.graph)  # empty when it would tell nothing
        return [*([line] if line else []), *lines]

    # -- --orchestrate-graph ----------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if not self.graph_format or self.graph is None or session.testsfailed:
            return None
        print_graph(self.config, self.graph, self.graph_format)
        return True

    # -- running ------------------------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.recorder.add(report)
        if self._gate is not None:
            self._gate.record(report)
        if report.when == "teardown" and self.state is not None:
            self.state.finished(report, record)

    # -- the end ---------------------------------------------------------------------------------------------
    def _workers(self) -> int:
        workers = self.config.getoption("numprocesses", None)
        if isinstance(workers, int) and workers > 0 and not _is_worker(self.config):
            return workers
        return 1

    def summary(self) -> dict[str, Any]:
        # the session's wall time so far, as pytest's final stats line measures it (collection included)
        wall = max(0.0, time.time() - self._session_start)
        return build_summary(
            self.recorder.items,
            wall_time=wall,
            session_start=self._session_start,
            workers=self._workers(),
            graph=self.graph,
            with_items=self._items_read(),
        )

    def _items_read(self) -> bool:
        """Whether the summary's per-item entries are read: by the per-item table (``-vv``) or the critical path's
        line (where there are edges), or by an implementation of ``pytest_orchestrate_summary`` other than the
        state's (which reads none)."""
        if self.config.option.verbose >= 2 or (self.graph is not None and self.graph.has_edges()):
            return True
        state = self.state
        return any(impl.plugin is not state for impl in self.config.hook.pytest_orchestrate_summary.get_hookimpls())

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
        if self.graph_format or config.getoption("collectonly") or not self.recorder.items:
            return
        verbose = config.option.verbose
        if verbose <= -2:  # -qq: pytest's stats line only
            return
        summary = self.summary()
        lines = format_summary(summary, verbose=verbose)
        # an implementation that raises is named, and pytest's stats line still follows
        error = call_guarded(config.hook.pytest_orchestrate_summary, config=config, summary=summary, lines=lines)
        if lines:  # else nothing pytest's own output does not already say
            terminalreporter.write_sep("=", "workflow summary", bold=True)
            for line, markup in summary_markup(lines):
                terminalreporter.write_line(line, **markup)
        if error is not None:
            terminalreporter.write_line(f"orchestrate: {error}", red=True, bold=True)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # the session is over: what it kept per item goes now, before pytest's last garbage collections walk it
        self.graph = None
        self.sched = None
        self._gate = None
        self.recorder.items.clear()

    @pytest.hookimpl(trylast=True)  # after the last-failed plugin wrote its cache
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if _is_worker(self.config):
            return
        remember_dependency_skips(self.config, self.recorder.items)
        save_durations(
            self.config,
            ((n, r.duration) for n, r in self.recorder.items.items() if r.status != "skipped" and r.duration > 0),
        )
