"""The DAG-aware pytest-xdist scheduler of ``--orchestrate -n N``.

Two halves, each loaded only where it is needed:

- :mod:`.xdist_controller` on the xdist controller (``-n N`` and no ``workerinput``): a scheduler that sends an item
  to a worker only after all its dependencies finished on any worker, and reports dependency skips itself;
- :mod:`.xdist_worker` on each worker: hands the item graph to the controller and runs the *flush* items that keep
  xdist's worker from holding back the last item of its queue.

:func:`register` is called from the plugin's ``pytest_configure`` under ``--orchestrate``, after the session plugin
is registered.

What the user sees: the controller always prints one line when it starts scheduling,
``orchestrate: DAG scheduling on N workers: I items, D dependencies``, ending in
``; --dist=MODE overridden by the DAG scheduler`` when a mode other than xdist's default ``load`` was given (any
``--dist`` is overridden under ``--orchestrate``). Dependency skips are reported by the controller (without the
``[gwN]`` prefix under ``-v``); the workflow summary gains an ``xdist workers busy: ...`` line (busy time per
worker and parallel efficiency over the span from the first item sent to the last one finished).

The workers hand the graph over on an execnet channel of their own (:mod:`.xdist_handoff`), so remote workers
(``--tx socket=...``, ``--tx ssh=...``) work with a working directory of their own. A module or class fixture is torn down by
the flush item that follows the worker's last item of that module, so a failing fixture *teardown* is reported
against that item after its dependents may already have run (serial mode would skip them).
"""

from __future__ import annotations

import pytest


__all__ = ["CONTROLLER_PLUGIN_NAME", "WORKER_PLUGIN_NAME", "distributes", "register"]

CONTROLLER_PLUGIN_NAME = "orchestrate-xdist-controller"
WORKER_PLUGIN_NAME = "orchestrate-xdist-worker"


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

            disable_group_suffix(config)  # no "@group" suffixes: node ids must match the dependency targets
            manager.register(WorkerPlugin(config), WORKER_PLUGIN_NAME)
    elif distributes(config) and not manager.has_plugin(CONTROLLER_PLUGIN_NAME):
        from pytest_orchestrator.plugin.xdist_controller import ControllerPlugin

        manager.register(ControllerPlugin(config), CONTROLLER_PLUGIN_NAME)
