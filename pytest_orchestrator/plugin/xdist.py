"""The DAG-aware pytest-xdist scheduler of ``--orchestrate -n N``.

Two halves, each loaded only where it is needed:

- :mod:`.xdist_controller` on the xdist controller (``-n N`` and no ``workerinput``): a scheduler that starts an
  item only after all its dependencies finished on any worker, and reports dependency skips itself;
- :mod:`.xdist_worker` on each worker: hands the item graph to the controller and holds an item with dependencies
  until the controller's verdict arrives (see :mod:`.xdist_scheduling` for why an item may be sent before its
  dependencies finished).

:func:`register` is called from the plugin's ``pytest_configure`` under ``--orchestrate``, after the session plugin
is registered.

What the user sees: the controller prints one line when it starts scheduling,
``orchestrate: DAG scheduling on N workers: I items, D dependencies``. Dependency skips of items that never reached
a worker are reported by the controller; the workflow summary gains an ``xdist workers busy: ...`` line (busy time
per worker and parallel efficiency over the span from the first item sent to the last one finished).

The workers hand the graph over on an execnet channel of their own (:mod:`.xdist_handoff`), so remote workers
(``--tx socket=...``, ``--tx ssh=...``) work with a working directory of their own.

What is guaranteed about teardowns. An item with dependencies starts after each dependency's whole runtest protocol
ended on its worker: its setup, call and teardown, including the teardown of every fixture the *next item on that
worker* does not share (pytest tears down towards the next item, as in serial mode). A module or class fixture that
the dependency shares with the next item of its worker is torn down later, when that worker leaves the module; a
failure there is reported as the teardown error of the item running then, and skips *that* item's dependents, as
it would serially. So a dependency that is the only item of its module on its worker (or its module's last one)
has its module fixtures torn down, and their teardown errors counted, before any dependent starts.
"""

from __future__ import annotations

import pytest

from pytest_orchestrator.plugin.names import WORKER_PLUGIN_NAME


__all__ = ["CONTROLLER_PLUGIN_NAME", "WORKER_PLUGIN_NAME", "distributes", "register"]

CONTROLLER_PLUGIN_NAME = "orchestrate-xdist-controller"


def distributes(config: pytest.Config) -> bool:
    """Whether this process is an xdist controller that will distribute the run."""
    if hasattr(config, "workerinput"):
        return False
    if config.getoption("collectonly", False):
        return False
    return bool(config.getoption("numprocesses", None)) or config.getoption("dist", "no") != "no"


def register(config: pytest.Config) -> None:
    """Register the controller or worker half for this process, if either applies."""
    manager = config.pluginmanager
    if hasattr(config, "workerinput"):
        if not manager.has_plugin(WORKER_PLUGIN_NAME):
            from pytest_orchestrator.plugin.compat import disable_group_suffix
            from pytest_orchestrator.plugin.xdist_worker import WorkerPlugin

            # no "@group" suffixes: node ids must match the dependency targets (the groups are handed over instead)
            loadgroup = disable_group_suffix(config)
            manager.register(WorkerPlugin(config, loadgroup=loadgroup), WORKER_PLUGIN_NAME)
    elif distributes(config) and not manager.has_plugin(CONTROLLER_PLUGIN_NAME):
        from pytest_orchestrator.plugin.outcomes import register_rerun_word
        from pytest_orchestrator.plugin.xdist_controller import ControllerPlugin

        manager.register(ControllerPlugin(config), CONTROLLER_PLUGIN_NAME)
        register_rerun_word(config)  # the workers' retried attempts are shown here
