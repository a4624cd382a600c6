"""The pytest plugin (entry point ``pytest11: orchestrator``).

Without ``--orchestrate`` (or ini ``orchestrate = true``) it only registers its options, ini values and markers:
no reordering, no script items, and nothing heavy imported. With it, the session plugin in ``plugin/session.py``
is registered and does the work. The hook specifications (``plugin/hooks.py``) and the ``run_script`` fixture are
always there: the specs so a conftest implementing them validates, the fixture because it is useful on its own
(both import nothing until used).
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from typing import TYPE_CHECKING

import pytest

from pytest_orchestrator.argtypes import number
from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME as SESSION_PLUGIN_NAME


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.items import ScriptRunner

__all__ = ["ignored_options", "is_active", "run_script"]

DEFAULT_SCRIPT_GLOBS = ["scripts/**/*.py", "scripts/**/*.sh"]

MARKERS = (
    "depends(*targets, on=(), name=None): run this item after the named tests, scripts, files or folders, and skip "
    "it if one of them failed or was skipped. name= gives it an alias others can depend on. "
    "Example: depends('test_login', on=['scripts/seed.py'])",
    "retry(max_attempts=3, initial_delay=1.0, max_delay=60.0, exponential_base=2.0, jitter=0.0, "
    "retry_on=(Exception,)): rerun a failing item with exponential backoff (--orchestrate). "
    "Example: retry(max_attempts=3, initial_delay=0.1)",
    "timeout(seconds): fail the item when it runs longer than this (--orchestrate; on Python tests pytest-timeout "
    "handles it when installed). Example: timeout(30)",
    "stage(name): put the item in a workflow stage, selectable with --stage (--orchestrate). Example: stage('unit')",
)


_positive_float = number(float, minimum=0, above=True, what="a number of seconds")
_attempts = number(int, minimum=0, what="a whole number of retries")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("orchestrate", "Workflow orchestration (pytest-orchestrator)")
    group.addoption(
        "--orchestrate",
        action="store_true",
        default=None,
        help="Run tests and scripts as one dependency graph, with retry, timeout and stage markers",
    )
    group.addoption(
        "--orchestrate-deps",
        choices=("run", "skip", "ignore"),
        default=None,
        help="What to do with a dependency that was deselected: run it first (default), skip its dependents, "
        "or treat it as met",
    )
    group.addoption(
        "--orchestrate-retries",
        type=_attempts,
        default=None,
        metavar="N",
        help="Retry every failing item up to N more times (a default retry policy)",
    )
    group.addoption(
        "--orchestrate-timeout",
        type=_positive_float,
        default=None,
        metavar="S",
        help="Default timeout in seconds for every item",
    )
    group.addoption(
        "--stage",
        action="append",
        default=[],
        metavar="NAME",
        help="Run only items of this stage (repeatable); dependencies in other stages follow --orchestrate-deps",
    )
    group.addoption(
        "--orchestrate-graph",
        choices=("mermaid", "dot"),
        default=None,
        help="Print the item dependency graph in this format and exit without running anything",
    )
    parser.addini("orchestrate", "Turn on --orchestrate for every run", type="bool", default=False)
    parser.addini(
        "orchestrate_scripts",
        "Globs (relative to rootdir) of scripts collected as test items under --orchestrate",
        type="args",
        default=DEFAULT_SCRIPT_GLOBS,
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


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_orchestrator.plugin import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if is_active(config) and not config.pluginmanager.has_plugin(SESSION_PLUGIN_NAME):
        from pytest_orchestrator.plugin.session import OrchestratePlugin
        from pytest_orchestrator.plugin.shutdown import register as register_shutdown
        from pytest_orchestrator.plugin.xdist import register as register_xdist

        config.pluginmanager.register(OrchestratePlugin(config), SESSION_PLUGIN_NAME)
        register_shutdown(config)  # SIGTERM/SIGINT: stop cleanly, exit 143/130, leave no process behind
        # under xdist: the DAG scheduler on the controller, the graph export and flush items on each worker
        register_xdist(config)
        if os.environ.get("GITHUB_ACTIONS") == "true":  # annotations for failed items, a step summary
            from pytest_orchestrator.plugin.github import register as register_github

            register_github(config)


@pytest.fixture
def run_script(pytestconfig: pytest.Config) -> Iterator[ScriptRunner]:
    """``run_script(path, *args, timeout=None, env=None) -> ScriptResult``: run a script like a script item.

    A relative path is taken relative to the rootdir; the script's inline metadata and ``orchestrate.yaml``
    settings apply (args, env, timeout, allowed exit codes, retry). Available with or without ``--orchestrate``.
    """
    from pytest_orchestrator.plugin.items import ScriptRunner

    yield ScriptRunner(pytestconfig)
