"""The pytest plugin (entry point ``pytest11: orchestrator``).

Without ``--orchestrate`` (or ini ``orchestrate = true``) it registers its options, ini values and markers, gives
``retry`` and ``timeout`` markers their effect and warns, in one line, about ordering markers it ignores
(:mod:`.inactive`): no reordering, no script items, and nothing heavy imported unless a marker needs it. With it,
the session plugin in ``plugin/session.py`` is registered and does the work. The hook specifications
(``plugin/hooks.py``) and the ``run_script`` fixture are always there: the specs so a conftest implementing them
validates, the fixture because it is useful on its own (both import nothing until used).
"""

from __future__ import annotations

from collections.abc import Generator
from collections.abc import Iterator
import importlib.util
import os
from typing import TYPE_CHECKING

import pytest

from pytest_orchestrator.argtypes import report_path
from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME as SESSION_PLUGIN_NAME
from pytest_orchestrator.plugin.names import WATCH_RERUN_ENV
from pytest_orchestrator.plugin.options import DEPS_CHOICES
from pytest_orchestrator.plugin.options import GRAPH_CHOICES
from pytest_orchestrator.plugin.options import XFAIL_DEPS_CHOICES
from pytest_orchestrator.plugin.options import retry_count
from pytest_orchestrator.plugin.options import seconds


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.items import ScriptRunner

__all__ = ["ignored_options", "is_active", "run_script"]

DEPENDENCY_MARKER = (
    "dependency(name=None, depends=(), scope='module'): pytest-dependency's marker, read natively under "
    "--orchestrate: run after the named tests, and skip when one of them did not pass"
)
ORDER_MARKER = (
    "order(index=None, before=(), after=()): pytest-order's marker, read natively under --orchestrate as "
    "ordering-only edges. Example: order('first'), order(after='test_a')"
)

MARKERS = (
    "depends(*targets, on=(), name=None, before=(), any_of=(), soft=False): run this item after the named tests, "
    "classes, scripts, files or folders, and skip it if one of them failed or was skipped. name= gives it an alias "
    "others can depend on; before= targets run after it; any_of= is met when one of its targets passed; soft=True "
    "only orders. Example: depends('test_login', on=['scripts/seed.py'])",
    "retry(max_attempts=3, initial_delay=1.0, max_delay=60.0, exponential_base=2.0, jitter=0.0, "
    "retry_on=(Exception,)): rerun a failing item with exponential backoff (--orchestrate). "
    "Example: retry(max_attempts=3, initial_delay=0.1)",
    "timeout(seconds): fail the item when it runs longer than this (--orchestrate; on Python tests pytest-timeout "
    "handles it when installed). Example: timeout(30)",
    "stage(name): put the item in a workflow stage, selectable with --orchestrate-stage (--orchestrate). "
    "Example: stage('unit')",
)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # every option is --orchestrate-*, and each has an ini key of the same name (the command line wins over it)
    group = parser.getgroup("orchestrate", "Workflow orchestration (pytest-orchestrator)")
    group.addoption(
        "--orchestrate",
        action="store_true",
        default=None,
        help="Run tests and scripts as one dependency graph, with retry, timeout and stage markers",
    )
    group.addoption(
        "--orchestrate-deps",
        choices=DEPS_CHOICES,
        default=None,
        help="What to do with a dependency that was deselected: run it first (default), skip its dependents, "
        "or treat it as met (ini: orchestrate_deps)",
    )
    group.addoption(
        "--orchestrate-retries",
        type=retry_count,
        default=None,
        metavar="N",
        help="Retry every failing item up to N more times (a default retry policy; ini: orchestrate_retries)",
    )
    group.addoption(
        "--orchestrate-timeout",
        type=seconds,
        default=None,
        metavar="S",
        help="Default timeout in seconds for every item (ini: orchestrate_timeout). With pytest-timeout active, "
        "Python tests get the shorter of this and its limit, enforced by pytest-timeout",
    )
    group.addoption(
        "--orchestrate-stage",
        action="append",
        default=[],
        metavar="NAME",
        help="Run only items of this stage (repeatable); dependencies in other stages follow --orchestrate-deps "
        "(ini: orchestrate_stage)",
    )
    group.addoption(
        "--orchestrate-graph",
        choices=GRAPH_CHOICES,
        default=None,
        help="Print the item dependency graph in this format and exit without running anything "
        "(ini: orchestrate_graph)",
    )
    group.addoption(
        "--orchestrate-no-state",
        action="store_true",
        default=False,
        help="Do not record this session's item outcomes in the state file (recorded by default, for "
        "--orchestrate-resume)",
    )
    group.addoption(
        "--orchestrate-resume",
        nargs="?",
        const=True,
        default=None,
        metavar="RUN_ID",
        help="Run only what did not pass in the last unfinished session (or in run RUN_ID; write "
        "--orchestrate-resume=RUN_ID): items that passed there are reported as passed, carried over",
    )
    group.addoption(
        "--orchestrate-strict",
        action="store_true",
        default=None,
        help="An unknown dependency or a cycle stops the session (exit 4) instead of erroring the items that "
        "carry it (ini: orchestrate_strict)",
    )
    group.addoption(
        "--orchestrate-xfail-deps",
        choices=XFAIL_DEPS_CHOICES,
        default=None,
        help="An xfailed dependency skips its dependents (skip, default, as pytest-dependency does) or counts as "
        "met (run) (ini: orchestrate_xfail_deps)",
    )
    group.addoption(
        "--orchestrate-report",
        type=report_path,
        default=None,
        metavar="PATH",
        help="Write the run report to PATH: .json (schema pytest-orchestrator/report/1) or .html (a self-contained "
        "page with the dependency graph and a timeline); under -n N the controller writes it",
    )
    group.addoption(
        "--orchestrate-metrics",
        default=None,
        metavar="PATH",
        help="Write the session's metrics to PATH: JSON (counts by status, retries, durations, queue waits, "
        "concurrency, critical path), or the Prometheus text format when PATH ends in .prom; under -n N the "
        "controller writes it (ini: orchestrate_metrics)",
    )
    group.addoption(
        "--orchestrate-watch",
        action="store_true",
        default=None,
        help="After the run, watch the rootdir and rerun the test files and scripts that change, and every item "
        "that depends on them, until Ctrl-C",
    )
    if pluginmanager.is_blocked("dependency") or importlib.util.find_spec("pytest_dependency") is None:
        # pytest-dependency's own option and ini key, for its markers read under --orchestrate
        group.addoption(
            "--ignore-unknown-dependency",
            action="store_true",
            default=False,
            help="dependency(depends=...) names that name no known test are ignored instead of skipping the test",
        )
        parser.addini("automark_dependency", "Every test is known to dependency(depends=...)", type="bool")
    parser.addini("orchestrate", "Turn on --orchestrate for every run", type="bool", default=False)
    parser.addini(
        "orchestrate_scripts",
        "Globs (relative to rootdir) of scripts collected as test items under --orchestrate (none by default: "
        "scripts are opt-in, also through orchestrate.yaml or a script's own [tool.orchestrate] block)",
        type="args",
        default=[],
    )
    parser.addini("orchestrate_deps", "Default of --orchestrate-deps (run, skip or ignore)", default="")
    parser.addini("orchestrate_retries", "Default of --orchestrate-retries", default="")
    parser.addini("orchestrate_timeout", "Default of --orchestrate-timeout", default="")
    parser.addini("orchestrate_stage", "Default of --orchestrate-stage (stage names)", type="args", default=[])
    parser.addini("orchestrate_graph", "Default of --orchestrate-graph (mermaid or dot)", default="")
    parser.addini("orchestrate_xfail_deps", "Default of --orchestrate-xfail-deps (skip or run)", default="")
    parser.addini("orchestrate_strict", "Default of --orchestrate-strict", type="bool", default=False)
    parser.addini("orchestrate_metrics", "Default of --orchestrate-metrics (a path)", default="")
    parser.addini(
        "orchestrate_state",
        "The state file --orchestrate records sessions in (relative to rootdir; default: in pytest's cache folder)",
        type="string",
        default="",
    )
    parser.addini(
        "orchestrate_secrets",
        "Names (or fnmatch patterns) of more environment variables whose values are masked in reports and failure "
        "output, besides *TOKEN*, *SECRET*, *PASSWORD* and *_KEY",
        type="args",
        default=[],
    )


def is_active(config: pytest.Config) -> bool:
    """Whether orchestration is on for this run (the flag, or ini ``orchestrate = true``)."""
    flag = config.getoption("orchestrate", None)
    if flag is not None:
        return bool(flag)
    return bool(config.getini("orchestrate"))


def ignored_options(config: pytest.Config) -> list[str]:
    """The ``--orchestrate-*`` options (and ``--stage``) given on a run without orchestration, as ``--opt value``."""
    given: list[str] = []
    for dest, value in sorted(vars(config.option).items()):
        if not (dest.startswith("orchestrate_") or dest == "stage") or value in (None, False, [], ()):
            continue
        flag = "--" + dest.replace("_", "-")
        values = value if isinstance(value, list | tuple) else [value]
        given.extend(flag if v is True else f"{flag} {v}" for v in values)
    return given


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if is_active(config) or hasattr(config, "workerinput"):
        return
    ignored = ignored_options(config)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if ignored and reporter is not None:
        reporter.write_line(
            f"orchestrate: ignored without --orchestrate (or ini orchestrate = true): {', '.join(ignored)}",
            yellow=True,
        )


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    # --orchestrate-watch: the session runs as usual, then (in the process the user started) the watch loop
    watching = config.getoption("orchestrate_watch", None) and is_active(config)
    if not watching or hasattr(config, "workerinput") or os.environ.get(WATCH_RERUN_ENV):
        return (yield)
    from pytest_orchestrator.plugin.watch import WATCH_PLUGIN_NAME
    from pytest_orchestrator.plugin.watch import Watch

    watch = Watch(config)
    config.pluginmanager.register(watch, WATCH_PLUGIN_NAME)
    status = yield
    return watch.loop(status if isinstance(status, int) else 0)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_orchestrator.plugin import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if config.getoption("orchestrate_report", None) and not is_active(config):
        raise pytest.UsageError("--orchestrate-report needs --orchestrate (or ini orchestrate = true)")
    # pytest-dependency's and pytest-order's markers, when those plugins do not register them
    if not config.pluginmanager.has_plugin("dependency"):
        config.addinivalue_line("markers", DEPENDENCY_MARKER)
    if not config.pluginmanager.has_plugin("pytest_order"):
        config.addinivalue_line("markers", ORDER_MARKER)
    if not is_active(config):  # under xdist, the ignored-markers line is a worker's: the controller prints it
        from pytest_orchestrator.plugin.xdist import distributes

        if distributes(config) and not config.pluginmanager.has_plugin("orchestrate-inactive-line"):
            from pytest_orchestrator.plugin.inactive import ControllerLine

            config.pluginmanager.register(ControllerLine(config), "orchestrate-inactive-line")
    if is_active(config) and not config.pluginmanager.has_plugin(SESSION_PLUGIN_NAME):
        from pytest_orchestrator.plugin.masking import SecretMasking
        from pytest_orchestrator.plugin.session import OrchestratePlugin
        from pytest_orchestrator.plugin.shutdown import register as register_shutdown
        from pytest_orchestrator.plugin.xdist import register as register_xdist

        config.pluginmanager.register(OrchestratePlugin(config), SESSION_PLUGIN_NAME)
        masking = SecretMasking(config)
        if masking.masker:  # the secrets are read once, now: with none, there is nothing to mask in any report
            config.pluginmanager.register(masking, "orchestrate-secrets")
        path = config.getoption("orchestrate_report", None)
        if not hasattr(config, "workerinput"):  # where reports are logged
            from pytest_orchestrator.plugin.options import metrics_path
            from pytest_orchestrator.plugin.xdist import distributes

            if distributes(config):  # stage and root cause for JUnit (a serial session adds them as it arranges)
                from pytest_orchestrator.plugin.properties import PROPERTIES_PLUGIN_NAME
                from pytest_orchestrator.plugin.properties import ItemProperties

                config.pluginmanager.register(ItemProperties(config), PROPERTIES_PLUGIN_NAME)
            metrics = metrics_path(config)
            if path or metrics:  # the session's results, gathered once for the report and the metrics
                from pytest_orchestrator.plugin.run_report import ReportWriter

                results = ReportWriter(config, path)
                config.pluginmanager.register(results, "orchestrate-report")
                if metrics:
                    from pytest_orchestrator.plugin.metrics import MetricsWriter

                    config.pluginmanager.register(MetricsWriter(config, metrics, results), "orchestrate-metrics")
        rerun = os.environ.get(WATCH_RERUN_ENV)
        if rerun and not hasattr(config, "workerinput"):  # a --orchestrate-watch rerun: tell the loop what ran
            from pytest_orchestrator.plugin.watch import RerunRecord

            config.pluginmanager.register(RerunRecord(rerun), "orchestrate-watch-rerun")
        register_shutdown(config)  # SIGTERM/SIGINT: stop cleanly, exit 143/130, leave no process behind
        # under xdist: the DAG scheduler on the controller, the graph export and flush items on each worker
        register_xdist(config)
        if os.environ.get("GITHUB_ACTIONS") == "true":  # annotations for failed items, a step summary
            from pytest_orchestrator.plugin.github import register as register_github

            register_github(config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # without --orchestrate: retry/timeout markers act, and ignored ordering markers are counted (one pass)
    if not is_active(config) and items:
        from pytest_orchestrator.plugin.inactive import arrange_inactive

        arrange_inactive(config, items)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # tryfirst: an xdist worker hands its line over before xdist's own implementation says collection ended
    config = session.config
    if not is_active(config) and hasattr(config, "workerinput"):
        from pytest_orchestrator.plugin.inactive import hand_over_line

        hand_over_line(config)


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    if is_active(config):
        return []
    from pytest_orchestrator.plugin.inactive import ignored_key

    line = config.stash.get(ignored_key, None)
    return [line] if line else []


@pytest.fixture
def run_script(pytestconfig: pytest.Config) -> Iterator[ScriptRunner]:
    """``run_script(path, *args, timeout=None, env=None) -> ScriptResult``: run a script like a script item.

    A relative path is taken relative to the rootdir; the script's inline metadata and ``orchestrate.yaml``
    settings apply (args, env, timeout, allowed exit codes, retry). Available with or without ``--orchestrate``.
    """
    from pytest_orchestrator.plugin.items import ScriptRunner

    yield ScriptRunner(pytestconfig)
